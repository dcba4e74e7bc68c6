"""The two servers of the differential suite, started once per module: Debian's nginx + php-fpm
with the stock fastcgi configuration (fastcgi_params, snippets/fastcgi-php.conf), and fastrr
with php-cgi SuperglobalsWorker workers (both engines), running the same page.php with the
same php.ini (php-fpm's). A request is sent as raw bytes to both, so what arrives is the same."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, free_port

HERE = Path(__file__).parent
PAGE = HERE / "page.php"
WORKER = HERE / "worker.php"
PSR7_WORKER = HERE / "psr7_worker.php"
PHP_INI = Path("/etc/php/8.2/fpm/php.ini")  # Debian's, for php-fpm and fastrr's php-cgi alike
NGINX_ETC = Path("/etc/nginx")
HOST = "example.test"  # every request says Host: example.test (see php/README.md on HTTP_HOST)
# Response headers that describe the transport or the server, not the page.
TRANSPORT_HEADERS = {"date", "server", "connection", "content-length", "transfer-encoding", "keep-alive",
                     "x-powered-by"}


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]  # lower-case names, in order, transport headers left out
    body: bytes

    def view(self) -> dict[str, Any]:
        return {"status": self.status, "headers": self.headers, "body": self.body.decode("utf-8", "replace")}


class Peer:
    def __init__(self, name: str, port: int, procs: list[subprocess.Popen[bytes]], logs: list[Path]):
        self.name = name
        self.port = port
        self.procs = procs
        self.logs = logs

    def send(self, raw: bytes, method: str = "GET", timeout: float = 10.0) -> Answer:
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(raw)
            resp = http.client.HTTPResponse(sock, method=method)
            resp.begin()
            body = resp.read()
            headers = [(k.lower(), v) for k, v in resp.getheaders() if k.lower() not in TRANSPORT_HEADERS]
            return Answer(resp.status, headers, body)

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.logs if p.exists())

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if path is None:
        raise RuntimeError(f"{name} is not installed (make setup installs nginx and php8.2-fpm)")
    return path


def wait_answering(peer: Peer, path: str = "/page.php", timeout: float = 20.0) -> None:
    """Until GET `path` answers 200 (a peer process that exits fails at once)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in peer.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{peer.name} exited with {proc.returncode}:\n{peer.log_tail()}")
        try:
            answer = peer.send(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
            if answer.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{peer.name} did not answer within {timeout}s:\n{peer.log_tail()}")


def start_nginx_fpm(base: Path, name: str, root: Path, php_location: str, front: str = "", pool: str = "diff",
                    env: dict[str, str] | None = None, max_body: str = "16m",
                    ready: Callable[[Peer], None] | None = None) -> Peer:
    """nginx in front of php-fpm as Debian sets them up (the stock fastcgi files, PHP through
    snippets/fastcgi-php.conf) in `base`, serving `root`: `php_location` is the regex of the PHP
    location, `front` a `location /` body for front-controller apps (try_files ...), `env` what
    the fpm pool passes to PHP. `ready(peer)` waits until it answers (default: it accepts)."""
    base.mkdir(parents=True, exist_ok=True)
    for link in ("fastcgi_params", "fastcgi.conf", "snippets"):  # the snippet includes fastcgi.conf
        (base / link).symlink_to(NGINX_ETC / link)
    sock, port = base / "fpm.sock", free_port()
    (base / "fpm.conf").write_text(
        f"[global]\npid = {base}/fpm.pid\nerror_log = {base}/fpm.log\ndaemonize = no\n"
        f"[{pool}]\nlisten = {sock}\npm = static\npm.max_children = 2\nclear_env = yes\n"
        "catch_workers_output = yes\n" + "".join(f"env[{k}] = {v}\n" for k, v in (env or {}).items()))
    (base / "nginx.conf").write_text(
        f"worker_processes 1;\npid {base}/nginx.pid;\nerror_log {base}/nginx.log warn;\n"
        + ("user root;\n" if os.geteuid() == 0 else "")
        + "events { worker_connections 256; }\n"
        "http {\n  access_log off;\n"
        f"  client_body_temp_path {base}/body; fastcgi_temp_path {base}/fcgi; proxy_temp_path {base}/proxy;\n"
        f"  uwsgi_temp_path {base}/uwsgi; scgi_temp_path {base}/scgi;\n"
        f"  client_max_body_size {max_body};\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n    server_name {HOST};\n    root {root};\n"
        "    index index.php;\n"
        + (f"    location / {{ {front}; }}\n" if front else "")
        + f"    location ~ {php_location} {{\n"
        "      include snippets/fastcgi-php.conf;\n"
        f"      fastcgi_pass unix:{sock};\n"
        "    }\n  }\n}\n")
    logs = [base / "fpm.log", base / "fpm.out", base / "nginx.log", base / "nginx.out"]
    fpm = subprocess.Popen([_binary("php-fpm8.2"), "-F", "-R", "-y", str(base / "fpm.conf"), "-c", str(PHP_INI)],
                           stdout=(base / "fpm.out").open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    nginx = subprocess.Popen([_binary("nginx"), "-p", str(base), "-e", str(base / "nginx.log"), "-c",
                              str(base / "nginx.conf"), "-g", "daemon off;"],
                             stdout=(base / "nginx.out").open("wb"), stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
    peer = Peer(name, port, [nginx, fpm], logs)
    try:
        (ready or wait_answering)(peer)
    except BaseException:
        peer.stop()
        raise
    return peer


def start_fpm(base: Path) -> Peer:
    """The differential suite's nginx + php-fpm: page.php and psr7.php in a docroot of their own."""
    docroot = base / "www"
    docroot.mkdir(parents=True)
    (docroot / "page.php").symlink_to(PAGE)
    (docroot / "psr7.php").symlink_to(HERE / "psr7_fpm.php")  # the PSR-7 view of the same request
    return start_nginx_fpm(base, "nginx+php-fpm", docroot, "\\.php(/|$)")


def start_fastrr(base: Path, engine: str, psr7: bool = False) -> Peer:
    """SuperglobalsWorker under php-cgi, or (psr7) Fastrr\\Http\\PSR7Worker with Nyholm under php-cli."""
    base.mkdir(parents=True)
    port = free_port()
    command = (f"{_binary('php')} -c {PHP_INI} {PSR7_WORKER}" if psr7 else
               f"{_binary('php-cgi')} -q -c {PHP_INI} -d max_execution_time=0 {WORKER}")
    cfg = {
        "version": "3",
        "server": {"command": command},
        "http": {"address": f"127.0.0.1:{port}", "engine": engine, "max_request_size": 16,
                 "pool": {"num_workers": 2}},
        "logs": {"level": "warn"},
    }
    (base / ".rr.yaml").write_text(yaml.safe_dump(cfg))
    out = base / "fastrr.log"
    proc = subprocess.Popen([sys.executable, "-m", "fastrr", "serve", "-c", str(base / ".rr.yaml")],
                            stdout=out.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(ROOT))
    peer = Peer(f"fastrr {'PSR7Worker' if psr7 else 'SuperglobalsWorker'} ({engine} engine)", port, [proc], [out])
    try:
        wait_answering(peer)
    except BaseException:
        peer.stop()
        raise
    return peer


@pytest.fixture(scope="module")
def fpm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    peer = start_fpm(tmp_path_factory.mktemp("fpm") / "srv")
    yield peer
    peer.stop()


@pytest.fixture(scope="module", params=["c", "python"])
def fastrr_peer(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    peer = start_fastrr(tmp_path_factory.mktemp("fastrr") / "srv", request.param)
    yield peer
    peer.stop()


@pytest.fixture(scope="module", params=["c", "python"])
def psr7_peer(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    peer = start_fastrr(tmp_path_factory.mktemp("fastrr-psr7") / "srv", request.param, psr7=True)
    yield peer
    peer.stop()
