"""What it costs when several PHP workers share one core: the worker CPU per
request of a bench app (its real worker script, no HTTP) for 1..N workers, each
fed `depth` requests at a time by a minimal driver, everything on one CPU.

    python bench/micro/worker_rotation.py [--app slim] [--workers 1,2,4] [--depth 1,2] [--requests 20000]

With one worker the core alternates between the driver and that worker; with
four it rotates through four PHP address spaces, and every request starts on
caches and TLB entries another process just evicted. `depth` > 1 keeps the
next request already in a worker's pipe, so it can go on without sleeping
(what a prefetching front would do). Compare the "workers µs/req" column:
the difference between rows is what the rotation costs, not the app.
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fastrr.benchmark import apps, phpside, servers  # noqa: E402


def process_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def frame_size(buf: bytearray) -> int:
    """A complete goridge frame's length at the start of buf, or 0."""
    if len(buf) < 12:
        return 0
    size = (buf[0] & 0x0F) * 4 + int.from_bytes(buf[2:6], "little")
    return size if len(buf) >= size else 0


def run(app: apps.App, ini: Path, workers: int, depth: int, total: int) -> dict[str, float]:
    frame = phpside.request_frame(app)
    procs = [subprocess.Popen([servers.php_binary(), "-c", str(ini), "-d", "error_reporting=0",
                               str(app.worker_script)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
             for _ in range(workers)]
    try:
        time.sleep(1.0)  # boot, not measured
        outs = {p.stdout.fileno(): p.stdin.fileno() for p in procs}  # type: ignore[union-attr]
        pending = dict.fromkeys(outs, 0)
        bufs = {fd: bytearray() for fd in outs}
        sent = done = 0
        cpu0 = sum(process_cpu(p.pid) for p in procs)
        me0 = os.times()
        t0 = time.monotonic()

        def refill(fd: int) -> None:
            nonlocal sent
            while pending[fd] < depth and sent < total:
                os.write(outs[fd], frame)
                pending[fd] += 1
                sent += 1

        for fd in outs:
            refill(fd)
        while done < total:
            ready, _, _ = select.select(list(outs), [], [], 10)
            if not ready:
                raise RuntimeError("workers stopped answering")
            for fd in ready:
                buf = bufs[fd]
                data = os.read(fd, 1 << 16)
                if not data:
                    raise RuntimeError("a worker exited")
                buf += data
                while size := frame_size(buf):
                    del buf[:size]
                    pending[fd] -= 1
                    done += 1
                refill(fd)
        elapsed = time.monotonic() - t0
        me1 = os.times()
        cpu1 = sum(process_cpu(p.pid) for p in procs)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    return {"rps": total / elapsed, "workers_us": (cpu1 - cpu0) / total * 1e6,
            "driver_us": ((me1.user - me0.user) + (me1.system - me0.system)) / total * 1e6}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--app", default="slim", choices=list(apps.APPS))
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--depth", default="1,2")
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--cpu", type=int, default=0, help="the one CPU the driver and the workers share")
    args = ap.parse_args()
    os.sched_setaffinity(0, {args.cpu})  # inherited by the workers
    app = apps.APPS[args.app]
    with tempfile.TemporaryDirectory(prefix="fastrr-rotation-") as tmp:
        ini = servers.write_php_ini(Path(tmp))
        print(f"{app.name}: {args.requests} requests per row, driver and workers on CPU {args.cpu}")
        print(f"{'workers':>7} {'depth':>5} {'req/s':>9} {'workers µs/req':>15} {'driver µs/req':>14}")
        for depth in (int(x) for x in args.depth.split(",")):
            for workers in (int(x) for x in args.workers.split(",")):
                r = run(app, ini, workers, depth, args.requests)
                print(f"{workers:>7} {depth:>5} {r['rps']:>9,.0f} {r['workers_us']:>15.1f} {r['driver_us']:>14.1f}",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
