"""Connection scale: the server's memory with many idle keep-alive clients.

    .venv/bin/python bench/conn_scale.py [--clients 5000,10000] [--bursts 3] [--front c|python|both]
                                         [--workers 2] [--settle 1.0] [--out FILE]

For each front and each client count a fresh `fastrr serve` (this checkout's
code, php/demo/worker.php as the hello worker, logs.level warn) is started;
then, per burst, N keep-alive connections are opened on loopback, each sends
one `GET /hello` and reads its answer, and all stay idle; the server's RSS
(/proc/<pid>/status VmRSS, and Anonymous from smaps_rollup) is read idle,
with the N open, and after the client closed them all and the server's fd
count is back where it was. Prints a table and writes JSON to
bench/results/conn_scale-<date>.json (or --out).

Clients of burst k connect from 127.0.0.<k+10> (IP_BIND_ADDRESS_NO_PORT), so
the TIME_WAIT ports of one burst never run the next out of ports. Both
processes get RLIMIT_NOFILE raised to its hard limit. Every phase is bounded
(--phase-timeout) and the server is always stopped.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import resource
import selectors
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
HELLO = ROOT / "php" / "demo" / "worker.php"
REQUEST = b"GET /hello HTTP/1.1\r\nHost: bench\r\n\r\n"
IP_BIND_ADDRESS_NO_PORT = 24  # linux/in.h; not in Python's socket module
IN_FLIGHT = 1000               # connects outstanding at once (the listen backlog is 4096)


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def memory(pid: int) -> dict[str, int]:
    """kB figures of the server process."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "Threads"):
                out[key] = int(value.split()[0])
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("Anonymous", "Private_Dirty"):
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


class Server:
    def __init__(self, front: str, workers: int, tmp: Path):
        self.port = free_port()
        cfg = tmp / "rr.yaml"
        cfg.write_text(
            'version: "3"\n'
            f'server:\n  command: "php {HELLO}"\n'
            f"http:\n  address: 127.0.0.1:{self.port}\n  engine: {front}\n"
            f"  pool:\n    num_workers: {workers}\n"
            "logs:\n  level: warn\n")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("FASTRR_ENGINE", None)
        self.log = open(tmp / "server.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "fastrr", "serve", "-c", str(cfg)], cwd=tmp,
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=raise_nofile, start_new_session=True)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fastrr exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    for _ in range(200):  # warm: workers, scratch buffers, the Date cache
                        s.sendall(REQUEST)
                        read_answer(s)
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("fastrr did not answer /hello in time")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        try:  # workers are in the server's session
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.log.close()


def answer_complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def read_answer(s: socket.socket) -> None:
    data = b""
    while not answer_complete(data):
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("closed before an answer")
        data += chunk


def open_clients(port: int, n: int, source: str, timeout: float) -> tuple[list[socket.socket], int]:
    """n connections from `source`, each with one request answered; (sockets, failures)."""
    sel = selectors.DefaultSelector()
    done: list[socket.socket] = []
    failed = 0
    started = 0
    buffers: dict[int, bytes] = {}
    deadline = time.monotonic() + timeout

    def start_one() -> None:
        nonlocal failed
        s = socket.socket()
        s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind((source, 0))
        s.setblocking(False)
        rc = s.connect_ex(("127.0.0.1", port))
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            failed += 1
            return
        sel.register(s, selectors.EVENT_WRITE, "connect")

    while (started < n or sel.get_map()) and time.monotonic() < deadline:
        while started < n and len(sel.get_map()) < IN_FLIGHT:
            started += 1
            start_one()
        for key, _ in sel.select(0.5):
            s = key.fileobj
            assert isinstance(s, socket.socket)
            if key.data == "connect":
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                    sel.unregister(s)
                    s.close()
                    failed += 1
                    continue
                s.send(REQUEST)  # 38 bytes: always fits a fresh socket
                sel.modify(s, selectors.EVENT_READ, "answer")
                buffers[s.fileno()] = b""
                continue
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            data = buffers[s.fileno()] + chunk
            if not chunk or answer_complete(data):
                sel.unregister(s)
                del buffers[s.fileno()]
                if chunk:
                    done.append(s)
                else:
                    s.close()
                    failed += 1
            else:
                buffers[s.fileno()] = data
    for key in list(sel.get_map().values()):  # timed out
        sel.unregister(key.fileobj)
        key.fileobj.close()  # type: ignore[union-attr]
        failed += 1
    sel.close()
    return done, failed + (n - started)


def wait_fds(pid: int, want: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(os.listdir(f"/proc/{pid}/fd")) <= want:
            return True
        time.sleep(0.1)
    return False


def mb(kb: int) -> float:
    return kb / 1024


def run_one(front: str, clients: int, bursts: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fastrr-connscale-") as tmp:
        server = Server(front, args.workers, Path(tmp))
        try:
            server.wait_ready(30)
            time.sleep(args.settle)
            pid = server.proc.pid
            idle = memory(pid)
            out: dict[str, Any] = {"front": front, "clients": clients, "idle": idle, "bursts": []}
            print(f"{front:>6} {clients:>6}  idle {mb(idle['VmRSS']):7.1f} MB", flush=True)
            for burst in range(bursts):
                t0 = time.monotonic()
                socks, failed = open_clients(server.port, clients, f"127.0.0.{10 + burst}", args.phase_timeout)
                opened_s = time.monotonic() - t0
                time.sleep(args.settle)
                with_open = memory(pid)
                for s in socks:
                    s.close()
                back = wait_fds(pid, idle["fds"], args.phase_timeout)
                time.sleep(args.settle)
                closed = memory(pid)
                row = {"burst": burst + 1, "open": with_open, "closed": closed, "connected": len(socks),
                       "failed": failed, "open_seconds": round(opened_s, 2), "fds_back": back}
                out["bursts"].append(row)
                per_conn = (with_open["VmRSS"] - idle["VmRSS"]) * 1024 / max(1, len(socks))
                print(f"{front:>6} {clients:>6}  burst {burst + 1}: open {mb(with_open['VmRSS']):7.1f} MB "
                      f"(+{mb(with_open['VmRSS'] - idle['VmRSS']):6.1f}, {per_conn:6.0f} B/conn, "
                      f"{len(socks)} ok, {failed} failed, {opened_s:.1f} s)  "
                      f"closed {mb(closed['VmRSS']):7.1f} MB (+{mb(closed['VmRSS'] - idle['VmRSS']):5.1f})"
                      + ("" if back else "  [server fds not back]"), flush=True)
            return out
        finally:
            server.stop()


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| front | clients | idle MB | burst | open MB | +MB | bytes/conn | closed MB | +MB after close |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        idle = r["idle"]["VmRSS"]
        for b in r["bursts"]:
            o, c = b["open"]["VmRSS"], b["closed"]["VmRSS"]
            lines.append(f"| {r['front']} | {r['clients']} | {mb(idle):.1f} | {b['burst']} | {mb(o):.1f} | "
                         f"{mb(o - idle):+.1f} | {(o - idle) * 1024 / max(1, b['connected']):.0f} | "
                         f"{mb(c):.1f} | {mb(c - idle):+.1f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default="5000,10000", help="comma list of connection counts")
    ap.add_argument("--bursts", type=int, default=3)
    ap.add_argument("--front", choices=("c", "python", "both"), default="both")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--settle", type=float, default=1.0, help="seconds before each reading")
    ap.add_argument("--phase-timeout", type=float, default=60.0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    counts = [int(x) for x in args.clients.split(",") if x.strip()]
    hard = raise_nofile()
    if max(counts) + 100 > hard:
        print(f"RLIMIT_NOFILE hard limit {hard} is too low for {max(counts)} clients", file=sys.stderr)
        return 2
    fronts = ["c", "python"] if args.front == "both" else [args.front]
    results = [run_one(front, n, args.bursts, args) for front in fronts for n in counts]
    print()
    print(table(results))
    doc = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "request": REQUEST.decode().strip(),
           "workers": args.workers, "bursts": args.bursts, "settle": args.settle, "results": results}
    out = args.out or ROOT / "bench" / "results" / f"conn_scale-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
