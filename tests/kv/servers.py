"""Real Redis and memcached servers for the kv driver tests (import the fixtures explicitly).

- `redis_db`: the machine's Redis at 127.0.0.1:6379 (make test starts it when it is down),
  database REDIS_DB, emptied before and after the test.
- `private_redis`: a redis-server of the test's own on a free port (`--save '' --appendonly no`),
  which the test may kill and start again on the same port.
- `memcached`: a memcached of the test's own on a free port, `-I 2m`, always stopped.
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import free_port

# db 13 (14, 15, ... for the other processes of a `pytest -n` run: each empties its own)
REDIS_HOST, REDIS_PORT, REDIS_DB = "127.0.0.1", 6379, 13 + int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)


def async_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test body in a loop of its own (pytest sees the fixtures of `fn`)."""
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))
    return run


def _ask(port: int, request: bytes, timeout: float = 0.5) -> bytes:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(request)
            return sock.recv(4096)
    except OSError:
        return b""


def redis_answers(port: int) -> bool:
    return _ask(port, b"PING\r\n").startswith(b"+PONG")


def memcached_answers(port: int) -> bool:
    return _ask(port, b"version\r\n").startswith(b"VERSION")


class ServerProcess:
    """A server process on a fixed port: start(), kill() (SIGKILL), stop(), start() again."""

    def __init__(self, name: str, argv: list[str], port: int, answers: Callable[[int], bool], log: Path):
        self.name, self.argv, self.port, self.answers, self.log = name, argv, port, answers, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        assert self.proc is None, f"{self.name} already running"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self.answers(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start on port {self.port}: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        self.stop(sig=signal.SIGKILL)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[ServerProcess]:
    port = free_port()
    server = ServerProcess("redis-server", _redis_argv(port, tmp_path), port, redis_answers, tmp_path / "redis.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_db() -> Iterator[dict[str, Any]]:
    """Options for RedisKv on the machine's Redis, db REDIS_DB, emptied around the test."""
    if not redis_answers(REDIS_PORT):
        pytest.fail(f"redis: not answering on {REDIS_HOST}:{REDIS_PORT} (`make test` starts it)")
    with redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB) as client:
        client.flushdb()
        try:
            yield {"addrs": [f"{REDIS_HOST}:{REDIS_PORT}"], "db": REDIS_DB}
        finally:
            client.flushdb()


def memcached_process(tmp_path: Path, *extra: str, name: str = "memcached") -> ServerProcess:
    """A memcached on a free port of 127.0.0.1, `-I 2m`, not started yet."""
    binary = shutil.which("memcached")
    if binary is None:
        pytest.fail("memcached is not installed (Debian package memcached; `make` installs it)")
    port = free_port()
    argv = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-I", "2m", "-m", "64", *extra]
    if os.geteuid() == 0:
        argv += ["-u", getpass.getuser()]  # memcached refuses to run as root without -u
    return ServerProcess("memcached", argv, port, memcached_answers, tmp_path / f"{name}.log")


@pytest.fixture
def memcached(tmp_path: Path) -> Iterator[ServerProcess]:
    server = memcached_process(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _redis_argv(port: int, workdir: Path, *extra: str) -> list[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (Debian package redis-server)")
    workdir.mkdir(parents=True, exist_ok=True)
    return [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(workdir), "--daemonize", "no", *extra]


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    while True:
        port = free_port()
        if port + 10000 < 65536:
            try:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port + 10000))
                return port
            except OSError:
                pass


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[list[int]]:
    """Three private redis-servers made into a cluster (3 primaries, no replicas); yields their ports."""
    servers = []
    try:
        for i in range(3):
            port, workdir = _cluster_port(), tmp_path / f"node{i}"
            argv = _redis_argv(port, workdir, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
            servers.append(ServerProcess("redis-server (cluster)", argv, port, redis_answers, tmp_path / f"{i}.log"))
            servers[-1].start()
        ports = [s.port for s in servers]
        subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports], "--cluster-yes"],
                       check=True, capture_output=True, timeout=30)
        deadline = time.monotonic() + 20
        while not all(b"cluster_state:ok" in _ask(p, b"CLUSTER INFO\r\n") for p in ports):
            if time.monotonic() > deadline:
                pytest.fail("the redis cluster did not reach cluster_state:ok")
            time.sleep(0.1)
        yield ports
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def redis_sentinel(tmp_path: Path) -> Iterator[tuple[int, ServerProcess]]:
    """A private master and one sentinel watching it as `mymaster`; yields (sentinel port, master)."""
    port = free_port()
    master = ServerProcess("redis-server", _redis_argv(port, tmp_path / "master"), port, redis_answers,
                           tmp_path / "master.log")
    sentinel_port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
                    f"sentinel monitor mymaster 127.0.0.1 {master.port} 1\n")
    sentinel = ServerProcess("redis-sentinel", [_redis_argv(0, tmp_path)[0], str(conf), "--sentinel"],
                             sentinel_port, redis_answers, tmp_path / "sentinel.log")
    try:
        master.start()
        sentinel.start()
        ask = b"SENTINEL get-master-addr-by-name mymaster\r\n"
        deadline = time.monotonic() + 10
        while str(master.port).encode() not in _ask(sentinel_port, ask):
            if time.monotonic() > deadline:
                pytest.fail("the sentinel does not know mymaster")
            time.sleep(0.1)
        yield sentinel_port, master
    finally:
        sentinel.stop()
        master.stop()


def _tls_answers(ca: Path) -> Callable[[int], bool]:
    def answers(port: int) -> bool:
        context = ssl.create_default_context(cafile=str(ca))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as raw:
                with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(64).startswith((b"+PONG", b"-"))
        except OSError:
            return False
    return answers


@pytest.fixture
def redis_tls(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A private redis-server speaking TLS only, client certificates optional; yields port and PEM paths."""
    certs = tmp_path / "certs"
    certs.mkdir()

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=certs, check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=fastrr test CA",
            "-keyout", "ca.key", "-out", "ca.crt")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr")
        (certs / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt")
    port = free_port()
    argv = _redis_argv(0, tmp_path / "data", "--tls-port", str(port), "--tls-cert-file", str(certs / "server.crt"),
                       "--tls-key-file", str(certs / "server.key"), "--tls-ca-cert-file", str(certs / "ca.crt"),
                       "--tls-auth-clients", "optional")
    server = ServerProcess("redis-server (tls)", argv, port, _tls_answers(certs / "ca.crt"), tmp_path / "tls.log")
    server.start()
    try:
        yield {"port": port, "root_ca": str(certs / "ca.crt"), "cert": str(certs / "client.crt"),
               "key": str(certs / "client.key")}
    finally:
        server.stop()
