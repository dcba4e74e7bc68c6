"""The PHP side alone: each app's real worker script fed request frames from a file.

The frames are exactly what fastrr's front sends for wrk's request (built with
fastrr._core), repeated N times on the worker's stdin; replies go to /dev/null.
No server, no pipe wake-ups, no HTTP: the CPU per request is what the PHP
library + app cost, the floor under fastrr's "PHP workers" figure. Boot cost is
removed by also running a short feed and taking the difference.
"""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from fastrr.benchmark.apps import App
from fastrr.benchmark.env import Layout
from fastrr.benchmark.servers import worker_command

MAX_FEED_BYTES = 128 * 2**20


def raw_request(app: App, port: int = 8080) -> bytes:
    """The request as wrk sends it: request line, Host, script headers, Content-Length."""
    body = app.request_body() if app.method != "GET" else b""
    head = [f"{app.method} {app.path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if app.content_type:
        head.append(f"Content-Type: {app.content_type}")
    if body:
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def request_frame(app: App) -> bytes:
    from fastrr import _core

    raw = raw_request(app)
    req = _core.parse_request(raw, 65536)
    if req is None:
        raise ValueError("incomplete request")
    body = raw[req.head_len:]
    return _core.encode_http_request(req, "127.0.0.1", "http", body, False)


def _run_feed(argv: Sequence[str], feed: Path, timeout: float, env: dict[str, str] | None = None) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(feed, "rb") as stdin:
        out = subprocess.run(list(argv), stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             timeout=timeout, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode not in (0, 1):  # EOF on the relay ends the loop; some workers exit 1 then
        raise RuntimeError(f"worker exited with {out.returncode}: {out.stderr.decode(errors='replace')[-400:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(app: App, ini: Path, layout: Layout, iterations: int = 20000, repeats: int = 3,
            env: dict[str, str] | None = None) -> dict[str, float]:
    """µs of PHP CPU per request (median of `repeats`), worker boot excluded. `env`: the app's
    environment (the framework apps), given with what fastrr gives an HTTP worker (RR_MODE)."""
    child_env = {**os.environ, **(env or {}), **dict(app.worker_env), "RR_MODE": "http", "RR_RELAY": "pipes"}
    frame = request_frame(app)
    n = max(50, min(iterations, MAX_FEED_BYTES // len(frame)))
    small = max(5, n // 20)
    argv = [*layout.server_prefix, *worker_command(app, ini)]
    costs = []
    with tempfile.TemporaryDirectory(prefix="fastrr-phpside-") as tmp:
        big_feed, small_feed = Path(tmp) / "big.bin", Path(tmp) / "small.bin"
        big_feed.write_bytes(frame * n)
        small_feed.write_bytes(frame * small)
        t0 = time.monotonic()
        for _ in range(repeats):
            t_small = _run_feed(argv, small_feed, 60, child_env)
            t_big = _run_feed(argv, big_feed, 120, child_env)
            costs.append((t_big - t_small) / (n - small) * 1e6)
        wall = time.monotonic() - t0
    costs.sort()
    return {"php_us": costs[len(costs) // 2], "min": costs[0], "max": costs[-1], "requests": n,
            "frame_bytes": len(frame), "wall_s": wall}
