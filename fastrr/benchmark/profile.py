"""`fastrr bench --profile`: where the time goes.

- The front: py-spy (PyPI) samples fastrr's main process while wrk loads it at
  64 connections (after the measurements, so it does not disturb them); the
  collapsed stacks are saved and summarised as the functions with the most own
  time (`--native` shows C frames of fastrr._core and uvloop too).
- The PHP side: phpside.measure runs each app's worker alone on a file of frames.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fastrr.benchmark import apps as apps_mod
from fastrr.benchmark import wrk
from fastrr.benchmark.apps import App
from fastrr.benchmark.env import Layout

INSTALL_HINT = "pip install py-spy (or: pip install 'fastrr[bench]')"


def pyspy_binary() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


# Leaf frames where the event loop waits for work: not time spent on requests.
IDLE_LEAVES = ("epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select", "pselect")


def is_idle(frame: str) -> bool:
    return frame.split(" (", 1)[0].strip() in IDLE_LEAVES


def parse_collapsed(text: str) -> tuple[collections.Counter[str], collections.Counter[str], int, int]:
    """py-spy's raw output ('frame;frame;leaf count' per line) → (own time per
    function, inclusive time per function, busy samples, idle samples).

    py-spy counts a runnable thread as active, so with the front and the
    workers on one core, time the front spends preempted (typically right in
    the write() that woke a worker) shows as time in that system call.
    """
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = idle = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f]
        if not frames:
            continue
        if is_idle(frames[-1]):
            idle += n
            continue
        total += n
        own[_short(frames[-1])] += n
        for name in {_short(f) for f in frames}:
            incl[name] += n
    return own, incl, total, idle


def _short(frame: str) -> str:
    """'data_received (fastrr/http/connection.py:120)' → 'data_received (connection.py:120)'."""
    name, sep, where = frame.partition(" (")
    if not sep:
        return frame
    path = where.rstrip(")")
    return f"{name} ({Path(path.split(':')[0]).name}{':' + path.split(':')[1] if ':' in path else ''})"


def profile_front(pid: int, url: str, app: App, layout: Layout, out_dir: Path, seconds: int = 4,
                  connections: int = 64) -> dict[str, Any]:
    pyspy = pyspy_binary()
    if pyspy is None:
        return {"app": app.name, "error": f"py-spy not found: {INSTALL_HINT}"}
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"front-{app.name}.txt"
    argv = [*layout.load_prefix, pyspy, "record", "-p", str(pid), "-d", str(seconds), "-r", "250", "-f", "raw",
            "-o", str(raw), "--native"]
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        time.sleep(0.5)
        load = wrk.command(url, connections=connections, duration=seconds, script=apps_mod.WRK_SCRIPTS / app.wrk_script,
                           script_args=app.wrk_args, prefix=layout.load_prefix)
        result = wrk.run(load, seconds)
        _, err = spy.communicate(timeout=seconds + 30)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait()
    if spy.returncode != 0 or not raw.exists():
        return {"app": app.name, "error": f"py-spy failed: {err.decode(errors='replace').strip()[-300:]}"}
    own, incl, total, idle = parse_collapsed(raw.read_text())
    return {
        "app": app.name, "connections": connections, "samples": total, "idle_samples": idle, "file": raw.name,
        "rps_while_profiled": result.rps,
        "top": [{"function": f, "percent": 100.0 * n / total} for f, n in own.most_common(15)] if total else [],
        "inclusive": [{"function": f, "percent": 100.0 * n / total} for f, n in incl.most_common(25)] if total else [],
    }


def parse_perf_report(text: str) -> list[tuple[float, str]]:
    """`perf report --stdio` lines ('  45.12%  name ...') → [(percent, name)], biggest first."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pct, _, rest = line.partition("%")
        try:
            value = float(pct)
        except ValueError:
            continue
        rows.append((value, " ".join(rest.split())))
    return sorted(rows, reverse=True)


def perf_front(pid: int, url: str, app: App, layout: Layout, out_dir: Path, seconds: int = 4,
               connections: int = 64) -> dict[str, Any]:
    """On-CPU profile of the front with perf (cpu-clock; kernel included): unlike py-spy, it does
    not count time the front spends preempted, and it sees the C engine's thread."""
    perf = shutil.which("perf")
    if perf is None:
        return {"app": app.name, "error": "perf not installed (Debian: linux-perf)"}
    out_dir.mkdir(parents=True, exist_ok=True)
    data = out_dir / f"front-{app.name}.perf.data"
    argv = [*layout.load_prefix, perf, "record", "-e", "cpu-clock", "-F", "2000", "-g", "-o", str(data),
            "-p", str(pid), "--", "sleep", str(seconds)]
    rec = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        time.sleep(0.3)
        load = wrk.command(url, connections=connections, duration=seconds, script=apps_mod.WRK_SCRIPTS / app.wrk_script,
                           script_args=app.wrk_args, prefix=layout.load_prefix)
        wrk.run(load, seconds)
        _, err = rec.communicate(timeout=seconds + 30)
    finally:
        if rec.poll() is None:
            rec.kill()
            rec.wait()
    if rec.returncode != 0 or not data.exists():
        return {"app": app.name, "error": f"perf failed: {err.decode(errors='replace').strip()[-300:]}"}

    def report(sort: str) -> list[tuple[float, str]]:
        out = subprocess.run([perf, "report", "-i", str(data), "--stdio", "--no-children", "--sort", sort],
                             capture_output=True, text=True, timeout=120)
        return parse_perf_report(out.stdout)

    try:
        by_dso, by_symbol = report("dso"), report("dso,sym")
    finally:
        data.unlink(missing_ok=True)  # large, machine-specific: the summary is kept instead
    return {"app": app.name, "connections": connections, "tool": "perf",
            "by_dso": [{"percent": p, "dso": n} for p, n in by_dso[:8]],
            "top": [{"percent": p, "function": n} for p, n in by_symbol[:15]]}
