"""The machine's floor: bench/floor.c, a bare epoll server with a fixed hello
answer, measured in the same run and layout as the real servers.

fastrr's front CPU per request includes what the kernel charges for one
loopback recv + send (on a VM mostly the TCP send path and waking wrk on the
other core); this figure is that part alone, so a report can say how much of
the front is fastrr's own work and compare the ≤ 5 µs budget with what the
machine allows.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from fastrr.benchmark import procs, servers
from fastrr.benchmark.apps import ROOT, App
from fastrr.benchmark.env import Layout

SOURCE = ROOT / "bench" / "floor.c"


def build(directory: Path) -> Path:
    """Compile bench/floor.c into `directory`; RuntimeError when there is no C compiler or it fails."""
    return compile_c(SOURCE, directory / "floor")


def compile_c(source: Path, binary: Path) -> Path:
    """cc -O2 one C file of bench/ (floor.c, ws_client.c) into `binary`; RuntimeError when there
    is no C compiler or it fails."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("no C compiler (Debian: gcc)")
    out = subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-o", str(binary), str(source)],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"building {source.name} failed: {out.stderr.strip()[-400:]}")
    return binary


def start(binary: Path, app: App, layout: Layout, reaper: procs.Reaper, log: Path) -> servers.Server:
    port = servers.free_port()
    proc = reaper.add(procs.spawn([*layout.server_prefix, str(binary), str(port)], log=log))
    servers.wait_ready(port, app, [proc], timeout=10)
    return servers.Server(kind="floor", label="bare C epoll server", port=port, roots=[proc.pid],
                          front=[proc.pid], front_tree=False, processes=[proc], logs=[log])


def summary(samples: list[dict[str, float]]) -> dict[str, Any]:
    """Median CPU µs/req and req/s of the repeats, with their spread."""
    cpu = sorted(s["cpu_us"] for s in samples)
    rps = sorted(s["rps"] for s in samples)
    return {"cpu_us": cpu[len(cpu) // 2], "cpu_min": cpu[0], "cpu_max": cpu[-1],
            "rps": rps[len(rps) // 2], "repeats": len(samples)}
