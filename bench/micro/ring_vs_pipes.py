"""shm ring vs pipes: relay round trips with a PHP echo worker, and wrk end to end.

    python bench/micro/ring_vs_pipes.py [--rt 20000] [--duration 10] [--runs 3] [--no-wrk]

1. Round trip: a Python driver sends one frame (16-byte header + 64 + 27 bytes,
   a hello-sized response) to bench/micro/echo_worker.php (fastrr's PHP relay
   classes) and waits for it to come back - over pipes (blocking os.read) and
   over the ring (arm, poll the eventfd, read: what the event loop does). Same
   core and different cores (taskset), and with FASTRR_RING_SPIN.
2. End to end: `fastrr serve` with tests/workers/app.php, relay pipes vs shm,
   wrk -t1 -c64 GET /hello, server (and its workers) on CPU 0, wrk on CPU 1,
   alternating runs in the same session; medians.
"""

from __future__ import annotations

import argparse
import os
import re
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fastrr import _core  # noqa: E402
from fastrr.pool.ring import LIBRARY, ring_env  # noqa: E402

ECHO = ROOT / "bench" / "micro" / "echo_worker.php"
FRAME = _core.encode_frame(_core.FLAG_JSON, b"c" * 64 + b'{"message":"Hello, World!"}', (64,))


def _spawn(cpus: str | None, ring: _core.Ring | None, spin: int = 0) -> subprocess.Popen[bytes]:
    cmd = ["php", str(ECHO)]
    if cpus is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", cpus, *cmd]
    env = dict(os.environ)
    env.pop("FASTRR_RING", None)
    if ring is not None:
        env = ring_env(env, ring)
        env["FASTRR_RING_SPIN"] = str(spin)
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            pass_fds=(ring.memfd, ring.eventfd) if ring else ())


class PipeEcho:
    """The echo worker on pipes; once() = one frame there and back (blocking reads)."""

    def __init__(self, cpus: str | None = None):
        self.p = _spawn(cpus, None)
        assert self.p.stdin and self.p.stdout
        self.w, self.r = self.p.stdin.fileno(), self.p.stdout.fileno()

    def once(self) -> None:
        os.write(self.w, FRAME)
        got, size = 0, len(FRAME)
        while got < size:
            got += len(os.read(self.r, 65536))

    def close(self) -> None:
        self.p.kill()
        self.p.wait()


class RingEcho:
    """The echo worker on the shm ring; once() = one frame there and back, waiting
    the way the event loop does (arm, poll the eventfd, ack, read)."""

    def __init__(self, cpus: str | None = None, spin: int = 0):
        self.ring = _core.Ring()
        self.p = _spawn(cpus, self.ring, spin)
        self.poll = select.poll()
        self.poll.register(self.ring.eventfd, select.POLLIN)

    def once(self) -> None:
        ring = self.ring
        ring.write(FRAME)
        got, size = 0, len(FRAME)
        while got < size:
            if not ring.arm(False):
                self.poll.poll()
                ring.ack()
            got += len(ring.read())

    def close(self) -> None:
        self.p.kill()
        self.p.wait()
        self.ring.close()


def _measure(echo: PipeEcho | RingEcho, n: int) -> float:
    try:
        for _ in range(2000):
            echo.once()
        t = time.perf_counter()
        for _ in range(n):
            echo.once()
        return (time.perf_counter() - t) / n * 1e6
    finally:
        echo.close()


def rt_pipes(n: int, cpus: str | None) -> float:
    return _measure(PipeEcho(cpus), n)


def rt_ring(n: int, cpus: str | None, spin: int = 0) -> float:
    return _measure(RingEcho(cpus, spin), n)


def roundtrips(n: int) -> None:
    two = (os.cpu_count() or 1) >= 2
    rows = []
    placements = [("same core", "0", "0")] + ([("different cores", "0", "1")] if two else [])
    for label, drv, wrk in placements:
        os.sched_setaffinity(0, {int(drv)})
        res = {"pipes": statistics.median(rt_pipes(n, wrk) for _ in range(3)),
               "shm": statistics.median(rt_ring(n, wrk) for _ in range(3))}
        for spin in (200, 2000):
            res[f"shm spin={spin}"] = statistics.median(rt_ring(n, wrk, spin) for _ in range(3))
        rows.append((label, res))
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    print("\nRound trip, Python driver <-> PHP echo worker (fastrr relay classes), µs (median of 3):")
    names = list(rows[0][1])
    print(f"{'placement':18s}" + "".join(f"{k:>16s}" for k in names))
    for label, res in rows:
        print(f"{label:18s}" + "".join(f"{res[k]:16.2f}" for k in names))


# ------------------------------------------------------------------ end to end

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PIN = True


def serve(relay: str, workers: int, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    cfg = workdir / f"{relay}.rr.yaml"
    cfg.write_text(
        f'version: "3"\nserver:\n  command: "php {ROOT / "tests" / "workers" / "app.php"}"\n  relay: {relay}\n'
        f"http:\n  address: 127.0.0.1:{port}\n  pool:\n    num_workers: {workers}\nlogs:\n  level: error\n")
    cmd = [sys.executable, "-m", "fastrr", "serve", "-c", str(cfg)]
    if PIN and shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        cmd = ["taskset", "-c", "0", *cmd]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                if b"200" in s.recv(4096):
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"fastrr ({relay}) did not start")


def wrk(port: int, duration: int, connections: int) -> float:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", f"http://127.0.0.1:{port}/hello"]
    if PIN and shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        cmd = ["taskset", "-c", "1", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise SystemExit(f"wrk output not understood:\n{out}")
    return float(m.group(1))


def end_to_end(duration: int, runs: int, workers: int, connections: int) -> None:
    if not shutil.which("wrk"):
        print("wrk not installed: end-to-end comparison skipped")
        return
    res: dict[str, list[float]] = {"pipes": [], "shm": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            for relay in ("pipes", "shm"):
                port = free_port()
                proc = serve(relay, workers, port, Path(tmp))
                try:
                    wrk(port, 2, connections)  # warm-up
                    res[relay].append(wrk(port, duration, connections))
                finally:
                    proc.terminate()
                    proc.wait(30)
    where = "server on CPU 0, wrk on CPU 1" if PIN else "not pinned"
    print(f"\nEnd to end, wrk -t1 -c{connections} -d{duration}s GET /hello, tests/workers/app.php, "
          f"{workers} workers, {where}:")
    for relay, vals in res.items():
        print(f"  {relay:6s} median {statistics.median(vals):9,.0f} req/s   runs: "
              + ", ".join(f"{v:,.0f}" for v in vals))
    print(f"  shm / pipes: {statistics.median(res['shm']) / statistics.median(res['pipes']):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rt", type=int, default=20000, help="round trips per measurement")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--no-wrk", action="store_true")
    ap.add_argument("--no-rt", action="store_true")
    ap.add_argument("--no-pin", action="store_true", help="let the scheduler place server, workers and wrk")
    args = ap.parse_args()
    global PIN
    PIN = not args.no_pin
    if not LIBRARY.exists():
        raise SystemExit(f"{LIBRARY} is missing: run `make build`")
    if not args.no_rt:
        roundtrips(args.rt)
    if not args.no_wrk:
        end_to_end(args.duration, args.runs, args.workers, args.connections)


if __name__ == "__main__":
    main()
