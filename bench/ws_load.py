"""WebSocket fan-out load: 10,000 connections on one topic, the front's memory and the time
until the LAST of them has each publish.

    .venv/bin/python bench/ws_load.py [--connections 10000] [--publishes 20] [--idle 10]
                                      [--payload 64] [--engine auto|python|c] [--out FILE]

One `fastrr serve` (this checkout; broadcast memory broker `default`, the websockets
middleware on /ws, a PHP worker that answers 200 to every upgrade and join) pinned to CPU 0
with taskset; bench/ws_client.c (compiled here with cc -O2) pinned to CPU 1 opens N
connections on loopback, each joins topic `bench`, and prints READY. Then:

1. idle for --idle s: the front's RSS (VmRSS of the fastrr process, not its PHP workers)
   and CPU (its user+system seconds over the interval) with N open and nothing sent;
2. --publishes times: broadcast.Publish over RPC (fastrr/rpc/client.py) of `r<k>` padded
   to --payload bytes; the client records CLOCK_MONOTONIC per connection when round k
   arrives (Python's time.monotonic is the same clock), and reports the first and the
   last arrival; fan-out = last arrival - the instant before the RPC call. p50/p99 over
   the rounds; the front's CPU per publish;
3. for scale, the floor: the CPU one thread spends sending a frame of that size on N
   loopback TCP sockets (measured in this process before the server starts), to set
   against the front's CPU per publish (wall times move with the machine's other load).

Targets reported against: N=10,000 in under 150 MB of front RSS, fan-out to all of them in
under 100 ms. Prints a table, writes JSON to bench/results/ws_load-<date>.json (or --out).
Loopback only; every phase is bounded; the server and the client are always stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastrr.benchmark.floor import compile_c  # noqa: E402
from fastrr.benchmark.servers import free_port  # noqa: E402
from fastrr.broadcast import proto  # noqa: E402
from fastrr.rpc.client import RpcClient  # noqa: E402
from fastrr.rpc.codec import FLAG_PROTO  # noqa: E402

CLIENT_SOURCE = ROOT / "bench" / "ws_client.c"
TOPIC = "bench"
TARGET_RSS_MB = 150.0
TARGET_FANOUT_MS = 100.0

WORKER = """<?php
// Authorizes every websockets upgrade and join (HTTP 200), answers anything else with 200 too.
require {autoload!r};
$http = new Fastrr\\Http\\HttpWorker(Fastrr\\Worker::create());
while ($req = $http->waitRequest()) {{
    $http->respond(200, 'ok');
}}
"""


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def build_client(directory: Path) -> Path:
    return compile_c(CLIENT_SOURCE, directory / "ws_client")


def pinned(cpu: int) -> list[str]:
    taskset = shutil.which("taskset")
    return [taskset, "-c", str(cpu)] if taskset and (os.cpu_count() or 1) > cpu else []


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


class Lines:
    """Lines of a child's stdout, each awaited with a deadline."""

    def __init__(self, proc: subprocess.Popen[bytes]):
        assert proc.stdout is not None
        self.proc, self.buf = proc, b""
        os.set_blocking(proc.stdout.fileno(), False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(proc.stdout, selectors.EVENT_READ)

    def next(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line from the client within {timeout:g}s")
            if self.sel.select(left):
                assert self.proc.stdout is not None
                chunk = self.proc.stdout.read(65536)
                if not chunk:
                    raise RuntimeError(f"the client exited ({self.proc.poll()})")
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 20.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    try:  # the PHP workers are in the server's session
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass


def config(tmp: Path, http_port: int, rpc_port: int, engine: str) -> Path:
    worker = tmp / "worker.php"
    worker.write_text(WORKER.format(autoload=str(ROOT / "php" / "autoload.php")))
    cfg = tmp / "rr.yaml"
    engine_line = f"  engine: {engine}\n" if engine != "auto" else ""
    cfg.write_text(
        'version: "3"\n'
        f'server:\n  command: "php {worker}"\n'
        f"rpc:\n  listen: tcp://127.0.0.1:{rpc_port}\n"
        f"http:\n  address: 127.0.0.1:{http_port}\n{engine_line}  middleware: [websockets]\n"
        "  pool:\n    num_workers: 1\n"
        "websockets:\n  path: /ws\n  broker: default\n  allowed_origin: \"*\"\n  pool:\n    num_workers: 2\n"
        "broadcast:\n  default:\n    driver: memory\n"
        "logs:\n  level: warn\n")
    return cfg


def send_floor(n: int, frame_len: int, repeats: int = 5) -> float:
    """CPU ms to send one `frame_len`-byte frame on each of n loopback TCP sockets (best of `repeats`),
    the kernel's share of a fan-out (on loopback the sender's send also runs the receiver's TCP
    input). Measured on min(n, 4000) connected pairs in this process (two fds each) and scaled."""
    m = min(n, 4000)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    clients: list[socket.socket] = []
    servers: list[socket.socket] = []
    try:
        for _ in range(m):
            clients.append(socket.create_connection(listener.getsockname()))
            conn, _ = listener.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            servers.append(conn)
        frame = b"\x81" + bytes((min(frame_len, 125),)) + b"x" * min(frame_len, 125)
        best = float("inf")
        for _ in range(repeats):
            t = time.thread_time()  # CPU, user + system: what other load on the machine does not change
            for conn in servers:
                conn.send(frame)
            best = min(best, time.thread_time() - t)
            for c in clients:
                c.recv(4096)
        return best * 1e3 * n / m
    finally:
        for sock in clients + servers:
            sock.close()
        listener.close()


def publish(client: RpcClient, payload: bytes) -> None:
    req = proto.Request()
    req.messages.add(topics=[TOPIC], payload=payload)
    answer = proto.Response()
    answer.ParseFromString(client.call("broadcast.Publish", req.SerializeToString(), flags=FLAG_PROTO))
    if not answer.ok:
        raise RuntimeError("broadcast.Publish answered ok=false")


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    binary = build_client(tmp)
    floor_ms = send_floor(args.connections, len(f'{{"topic":"{TOPIC}","payload":""}}') + args.payload)
    http_port, rpc_port = free_port(), free_port()
    cfg = config(tmp, http_port, rpc_port, args.engine)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("FASTRR_ENGINE", None)
    server = client = None
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed in finally
    try:
        server = subprocess.Popen([*pinned(0), sys.executable, "-m", "fastrr", "serve", "-c", str(cfg)], cwd=tmp,
                                  env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=raise_nofile,
                                  start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"fastrr exited with {server.returncode}:\n{(tmp / 'server.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", http_port), timeout=0.5).close()
                socket.create_connection(("127.0.0.1", rpc_port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("fastrr did not listen within 30 s") from None
                time.sleep(0.1)
        front = server.pid  # taskset execs in place: the pid is fastrr's
        time.sleep(1.0)
        rss_before = rss_kb(front)

        client = subprocess.Popen([*pinned(1), str(binary), "127.0.0.1", str(http_port), "/ws",
                                   str(args.connections), TOPIC, str(args.publishes), str(args.setup_timeout),
                                   str(args.round_timeout)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(tmp / "client.log", "wb"),
                                  preexec_fn=raise_nofile, start_new_session=True)
        lines = Lines(client)
        ready = lines.next(args.setup_timeout + 30).split()
        if not ready or ready[0] != "READY":
            raise RuntimeError(f"client: {' '.join(ready)}")
        joined, failed, setup_s = int(ready[1]), int(ready[2]), float(ready[3])
        print(f"{joined} joined, {failed} failed, in {setup_s:.1f} s", file=sys.stderr)
        if joined == 0:
            raise RuntimeError(f"no connection joined; client log:\n{(tmp / 'client.log').read_text()[-2000:]}\n"
                               f"server log:\n{(tmp / 'server.log').read_text()[-2000:]}")

        cpu0, t0 = cpu_s(front), time.monotonic()
        time.sleep(args.idle)
        idle_cpu = (cpu_s(front) - cpu0) / (time.monotonic() - t0)
        rss_idle = rss_kb(front)

        rpc = RpcClient(f"tcp://127.0.0.1:{rpc_port}", 30.0)
        rounds: list[dict[str, float]] = []
        cpu_pub0 = cpu_s(front)
        try:
            for k in range(args.publishes):
                payload = f"r{k}".encode().ljust(args.payload, b".")
                sent = time.monotonic()
                publish(rpc, payload)
                answered = time.monotonic()
                parts = lines.next(args.round_timeout + 10).split()
                if parts[0] != "ROUND" or int(parts[1]) != k:
                    raise RuntimeError(f"client: {' '.join(parts)} (expected round {k})")
                count, first, last, p50, p99 = int(parts[2]), *map(float, parts[3:7])
                rounds.append({"round": k, "received": count, "rpc_ms": (answered - sent) * 1e3,
                               "first_ms": (first - sent) * 1e3, "last_ms": (last - sent) * 1e3,
                               "conn_p50_ms": (p50 - sent) * 1e3, "conn_p99_ms": (p99 - sent) * 1e3})
                time.sleep(args.gap)
        finally:
            rpc.close()
        pub_cpu = cpu_s(front) - cpu_pub0
        rss_after = rss_kb(front)
        assert client.stdin is not None
        try:
            client.stdin.write(b"QUIT\n")  # it has usually exited already, after the last round
            client.stdin.flush()
        except BrokenPipeError:
            pass
        lasts = [r["last_ms"] for r in rounds]
        complete = sum(1 for r in rounds if r["received"] == joined)
        return {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "connections": args.connections, "joined": joined, "failed": failed, "setup_s": setup_s,
            "engine": args.engine, "payload_bytes": args.payload, "publishes": args.publishes,
            "front_rss_mb": {"before": rss_before / 1024, "idle": rss_idle / 1024, "after": rss_after / 1024},
            "rss_kb_per_connection": (rss_idle - rss_before) / max(joined, 1),
            "idle_cpu_percent": idle_cpu * 100, "idle_s": args.idle,
            "fanout_last_ms": {"p50": percentile(lasts, 0.5), "p99": percentile(lasts, 0.99),
                               "min": min(lasts, default=0.0), "max": max(lasts, default=0.0)},
            "fanout_first_ms_p50": percentile([r["first_ms"] for r in rounds], 0.5),
            "rpc_ms_p50": percentile([r["rpc_ms"] for r in rounds], 0.5),
            "front_cpu_ms_per_publish": pub_cpu * 1e3 / max(len(rounds), 1),
            "floor_send_cpu_ms": floor_ms,
            "rounds_complete": complete,
            "targets": {"rss_mb": TARGET_RSS_MB, "fanout_ms": TARGET_FANOUT_MS,
                        "rss_ok": rss_idle / 1024 < TARGET_RSS_MB,
                        "fanout_ok": percentile(lasts, 0.99) < TARGET_FANOUT_MS and complete == len(rounds)},
            "rounds": rounds,
            "cpus": {"server": 0 if pinned(0) else None, "client": 1 if pinned(1) else None},
        }
    finally:
        if client is not None and client.poll() is None:
            try:
                client.wait(5)
            except subprocess.TimeoutExpired:
                client.kill()
                client.wait(5)
        stop(server)
        log.close()


def table(r: dict[str, Any]) -> str:
    rss, fan = r["front_rss_mb"], r["fanout_last_ms"]
    rows = [
        ("connections joined", f"{r['joined']} of {r['connections']} ({r['failed']} failed, {r['setup_s']:.1f} s)"),
        ("front RSS before / idle", f"{rss['before']:.1f} MB / {rss['idle']:.1f} MB "
                                    f"({r['rss_kb_per_connection']:.1f} kB per connection)"),
        ("front RSS target", f"< {r['targets']['rss_mb']:.0f} MB: {'met' if r['targets']['rss_ok'] else 'MISSED'}"),
        ("front CPU at rest", f"{r['idle_cpu_percent']:.2f} % over {r['idle_s']:g} s"),
        ("fan-out to the last, p50 / p99", f"{fan['p50']:.1f} ms / {fan['p99']:.1f} ms "
                                           f"(min {fan['min']:.1f}, max {fan['max']:.1f})"),
        ("fan-out target", f"< {r['targets']['fanout_ms']:.0f} ms: {'met' if r['targets']['fanout_ok'] else 'MISSED'}"),
        ("first arrival p50", f"{r['fanout_first_ms_p50']:.1f} ms"),
        ("RPC round trip p50", f"{r['rpc_ms_p50']:.1f} ms"),
        ("front CPU per publish", f"{r['front_cpu_ms_per_publish']:.1f} ms"),
        ("floor: CPU of N loopback sends", f"{r['floor_send_cpu_ms']:.1f} ms (one thread, measured here)"),
        ("rounds complete", f"{r['rounds_complete']} of {r['publishes']}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connections", type=int, default=10_000)
    ap.add_argument("--publishes", type=int, default=20)
    ap.add_argument("--idle", type=float, default=10.0, help="seconds at rest before measuring RSS and CPU")
    ap.add_argument("--payload", type=int, default=64, help="bytes per published message")
    ap.add_argument("--gap", type=float, default=0.2, help="seconds between publishes")
    ap.add_argument("--engine", choices=("auto", "python", "c"), default="auto")
    ap.add_argument("--setup-timeout", type=float, default=300.0)
    ap.add_argument("--round-timeout", type=float, default=10.0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if not 1 <= args.connections <= 15_000 or not 1 <= args.publishes <= 1000:
        ap.error("--connections 1..15000, --publishes 1..1000")
    if not (ROOT / "fastrr" / "websockets" / "plugin.py").exists():
        print("fastrr/websockets is not there: nothing to measure", file=sys.stderr)
        return 2
    raise_nofile()
    with tempfile.TemporaryDirectory(prefix="fastrr-ws-load-") as tmp:
        try:
            result = run(args, Path(tmp))
        except (RuntimeError, TimeoutError) as exc:
            print(f"ws_load: {exc}", file=sys.stderr)
            for name in ("server.log", "client.log"):
                path = Path(tmp) / name
                if path.exists():
                    print(f"--- {name} (tail)\n{path.read_text(errors='replace')[-3000:]}", file=sys.stderr)
            return 1
    out = args.out or ROOT / "bench" / "results" / f"ws_load-{datetime.now(UTC):%Y-%m-%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"\nwritten {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
