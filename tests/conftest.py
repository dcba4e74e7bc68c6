"""Fixtures that run real `fastrr serve` processes with real PHP workers.

Every server binds 127.0.0.1 on a free port, gets its own temp directory and
is stopped in teardown (SIGTERM, then SIGKILL of the server and its workers).
"""

from __future__ import annotations

import copy
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--engine", choices=("auto", "python", "c", "both"),
                     default=os.environ.get("FASTRR_ENGINE") or "auto",
                     help="HTTP front the integration tests run fastrr with: auto (fastrr's default), python, "
                          "c (the C engine) or both (every test twice, python and c); default $FASTRR_ENGINE, "
                          "else auto")


def pytest_configure(config: pytest.Config) -> None:
    # Each integration test sets FASTRR_ENGINE itself (tests/integration/conftest.py);
    # everything else sees fastrr's own default.
    os.environ.pop("FASTRR_ENGINE", None)
WORKERS = ROOT / "tests" / "workers"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def worker_cmd(script: str = "app.php") -> str:
    return f"php {WORKERS / script}"


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path
    out_path: Path
    err_path: Path
    workers_expected: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def output(self) -> str:
        return self.out_path.read_text(errors="replace") + self.err_path.read_text(errors="replace")

    def worker_pids(self) -> set[int]:
        try:
            return {c.pid for c in psutil.Process(self.proc.pid).children()
                    if c.status() != psutil.STATUS_ZOMBIE}
        except psutil.NoSuchProcess:
            return set()

    def wait_workers(self, count: int, timeout: float = 15.0) -> set[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.worker_pids()
            if len(pids) == count:
                return pids
            time.sleep(0.05)
        raise AssertionError(f"expected {count} workers, have {self.worker_pids()}\n{self.output()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        for child in children:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def base_config(port: int, script: str = "app.php", workers: int = 2) -> dict[str, Any]:
    return {
        "version": "3",
        "server": {"command": worker_cmd(script)},
        "http": {"address": f"127.0.0.1:{port}", "pool": {"num_workers": workers}},
        "logs": {"level": "info"},
    }


class ServerFactory:
    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.servers: list[Server] = []

    def start(self, config: dict[str, Any] | None = None, *, script: str = "app.php", workers: int = 2,
              args: list[str] | None = None, env: dict[str, str] | None = None, wait: bool = True,
              raw_config: str | None = None, timeout: float = 20.0) -> Server:
        port = free_port()
        workdir = self.tmp_path / f"srv{len(self.servers)}"
        workdir.mkdir()
        cfg_path = workdir / ".rr.yaml"
        if raw_config is not None:
            cfg_path.write_text(raw_config.replace("{port}", str(port)))
        else:
            cfg = deep_merge(base_config(port, script, workers), config or {})
            cfg_path.write_text(yaml.safe_dump(cfg))
        out_path, err_path = workdir / "stdout.log", workdir / "stderr.log"
        run_env = dict(os.environ)
        run_env.update(env or {})
        proc = subprocess.Popen(
            [sys.executable, "-m", "fastrr", "serve", "-c", str(cfg_path), *(args or [])],
            stdout=out_path.open("wb"), stderr=err_path.open("wb"), stdin=subprocess.DEVNULL,
            env=run_env, cwd=str(ROOT),
        )
        server = Server(proc, port, workdir, out_path, err_path, workers)
        self.servers.append(server)
        if wait:
            self._wait_listening(server, timeout)
        return server

    @staticmethod
    def _wait_listening(server: Server, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise AssertionError(f"fastrr exited with {server.proc.returncode}:\n{server.output()}")
            try:
                with socket.create_connection(("127.0.0.1", server.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"fastrr did not listen within {timeout}s:\n{server.output()}")

    def close(self) -> None:
        for server in self.servers:
            if server.proc.poll() is None:
                server.stop(timeout=15)
            server.kill()


@pytest.fixture
def fastrr(tmp_path: Path):
    factory = ServerFactory(tmp_path)
    yield factory
    factory.close()


def raw_request(port: int, data: bytes, timeout: float = 5.0, read_until_close: bool = True) -> bytes:
    """Send raw bytes and return everything the server sends until it closes (or timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if not read_until_close:
                break
        return b"".join(chunks)
