"""First measurement: fastrr vs nginx + php-fpm on the hello JSON endpoint, same run.

Both servers are pinned to CPU 0 and wrk to CPU 1 (when the machine has two
cores), so the server side gets exactly one core and its CPU cost per request
shows in req/s. Reports req/s, p50/p99 latency, server CPU µs per request
(from /proc of the whole server process tree) and the ratio fastrr / fpm.

    python bench/quick.py [--duration 10] [--connections 64] [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "php" / "demo"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(port: int, path: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not answer {path}")


def tree_cpu(pid: int, children: bool = True) -> float:
    total = 0.0
    try:
        procs = [psutil.Process(pid)]
        if children:
            procs += psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def pin(cpu: str | None) -> list[str]:
    return ["taskset", "-c", cpu] if cpu is not None and shutil.which("taskset") else []


def run_wrk(url: str, connections: int, duration: int, cpu: str | None) -> dict[str, float]:
    out = subprocess.run(pin(cpu) + ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def parse_wrk(text: str) -> dict[str, float]:
    result: dict[str, float] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    result["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in", text)
    result["requests"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        result[f"p{pct}"] = float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    result["errors"] = float(m.group(1)) if m else 0.0
    return result


def measure(name: str, pid: int, url: str, args: argparse.Namespace, wrk_cpu: str | None,
            front_pid: int | None = None) -> dict[str, float]:
    run_wrk(url, args.connections, 2, wrk_cpu)  # warm-up
    before, front_before = tree_cpu(pid), tree_cpu(front_pid, children=False) if front_pid else 0.0
    res = run_wrk(url, args.connections, args.duration, wrk_cpu)
    res["cpu_us"] = (tree_cpu(pid) - before) / max(res["requests"], 1) * 1e6
    front = ""
    if front_pid:
        res["front_us"] = (tree_cpu(front_pid, children=False) - front_before) / max(res["requests"], 1) * 1e6
        front = f" (front process {res['front_us']:.1f})"
    print(f"  {name:<16} {res['rps']:>10,.0f} req/s   p50 {res['p50']:.2f} ms   p99 {res['p99']:.2f} ms   "
          f"{res['cpu_us']:.1f} CPU µs/req{front}   non-2xx {res['errors']:.0f}", flush=True)
    return res


def start_fpm(tmp: Path, cpu: str | None, children: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    sock = tmp / "fpm.sock"
    (tmp / "fpm.conf").write_text(
        f"[global]\npid = {tmp}/fpm.pid\nerror_log = {tmp}/fpm.log\ndaemonize = no\n"
        f"[www]\nlisten = {sock}\npm = static\npm.max_children = {children}\n"
        "php_admin_value[opcache.enable] = 1\nphp_admin_value[opcache.validate_timestamps] = 0\n")
    (tmp / "nginx.conf").write_text(
        f"worker_processes 1;\nuser root;\npid {tmp}/nginx.pid;\nerror_log {tmp}/nginx.err;\n"
        "events { worker_connections 4096; }\n"
        f"http {{ access_log off; client_body_temp_path {tmp}; fastcgi_temp_path {tmp};\n"
        f"  server {{ listen 127.0.0.1:{port}; root {DEMO};\n"
        "    location / { include /etc/nginx/fastcgi_params;\n"
        f"      fastcgi_param SCRIPT_FILENAME {DEMO}/hello.php; fastcgi_pass unix:{sock}; }} }} }}\n")
    fpm_bin = shutil.which("php-fpm8.2") or "/usr/sbin/php-fpm8.2"
    script = (f"{fpm_bin} -R -y {tmp}/fpm.conf -c /etc/php/8.2/fpm/php.ini & "
              f"nginx -p {tmp} -c {tmp}/nginx.conf -g 'daemon off;' & wait")
    proc = subprocess.Popen(pin(cpu) + ["sh", "-c", script], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(port, "/")
    return proc, port


def start_fastrr(tmp: Path, cpu: str | None, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cfg = tmp / "fastrr.yaml"
    cfg.write_text(f"version: '3'\nserver: {{command: 'php -d opcache.enable_cli=1 {DEMO}/worker.php'}}\n"
                   f"http: {{address: '127.0.0.1:{port}', pool: {{num_workers: {workers}}}}}\nlogs: {{level: warn}}\n")
    proc = subprocess.Popen(pin(cpu) + [sys.executable, "-m", "fastrr", "serve", "-c", str(cfg)],
                            start_new_session=True, cwd=str(ROOT))
    wait_http(port, "/hello")
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--workers", type=int, default=4, help="PHP workers (fastrr) and fpm children")
    args = ap.parse_args()
    two = (os.cpu_count() or 1) >= 2
    server_cpu, wrk_cpu = ("0", "1") if two else (None, None)
    print(f"hello JSON, wrk -t1 -c{args.connections} -d{args.duration}s, "
          f"{'server on CPU 0, wrk on CPU 1' if two else 'unpinned (one core)'}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="fastrr-bench-") as tmpdir:
        tmp = Path(tmpdir)
        for name, starter, path in (("nginx+php-fpm", start_fpm, "/"), ("fastrr", start_fastrr, "/hello")):
            proc, port = starter(tmp, server_cpu, args.workers)
            try:
                front = proc.pid if name == "fastrr" else None
                results[name] = measure(name, proc.pid, f"http://127.0.0.1:{port}{path}", args, wrk_cpu, front)
            finally:
                stop(proc)
    a, b = results["fastrr"], results["nginx+php-fpm"]
    print(f"  ratio fastrr/fpm: {a['rps'] / b['rps']:.2f}x req/s, p99 {a['p99'] / b['p99']:.2f}x, "
          f"CPU/req {a['cpu_us'] / b['cpu_us']:.2f}x")


if __name__ == "__main__":
    main()
