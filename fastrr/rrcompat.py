"""Behaving as RoadRunner's `rr` CLI when invoked through an `rr` shim.

Tools such as Laravel Octane start `<app>/rr` (or `rr` on PATH) and parse what
it prints: `rr --version` must start with `rr version` and carry a version
>= 2023.3.0 as its third token; `rr serve` announces itself with an [INFO]
line. fastrr does not install a script named `rr` (PHP projects already have
`vendor/bin/rr`); `fastrr rr-shim DIR` writes one that sets FASTRR_AS_RR=1.
"""

from __future__ import annotations

import os
import platform
import stat
import sys
import time

from fastrr import RR_COMPAT_VERSION, __version__

ENV_FLAG = "FASTRR_AS_RR"
_BUILD_TIME = "2026-11-27T00:00:00+0000"


def active() -> bool:
    return os.environ.get(ENV_FLAG) == "1"


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def version_line() -> str:
    return (f"rr version {RR_COMPAT_VERSION} (build time: {_BUILD_TIME}, fastrr {__version__}), "
            f"OS: {sys.platform}, arch: {_arch()}")


def started_line() -> str:
    return f"[INFO] RoadRunner server started; version: {RR_COMPAT_VERSION}, buildtime: {_BUILD_TIME}"


def write_shim(directory: str) -> str:
    """Write DIR/rr: a wrapper that runs this fastrr as RoadRunner's CLI."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "rr")
    script = (
        "#!/bin/sh\n"
        f"# Written by `fastrr rr-shim` on {time.strftime('%Y-%m-%d')}: runs fastrr as RoadRunner's rr CLI.\n"
        f"{ENV_FLAG}=1 exec {sys.executable} -m fastrr \"$@\"\n"
    )
    with open(path, "w") as fh:
        fh.write(script)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path
