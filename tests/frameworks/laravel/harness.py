"""The Laravel test app under both servers: fastrr with php/bin/fastrr-laravel-worker, and Debian's
nginx + php-fpm with the app's public/index.php as front controller (the stock fastcgi files, the
differential suite's Peer). Each server gets its own storage directory (sessions, compiled views)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Server, ServerFactory, free_port
from tests.differential.conftest import HOST, NGINX_ETC, PHP_INI, Peer, _binary

APP = Path(__file__).parent / "app"
WORKER = ROOT / "php" / "bin" / "fastrr-laravel-worker"
LARAVEL_AUTOLOAD = Path("/usr/share/php/Illuminate/autoload.php")


def require_laravel() -> None:
    if not LARAVEL_AUTOLOAD.exists():
        pytest.skip("Debian's php-laravel-framework is not installed (make setup installs it)")


def make_storage(base: Path) -> Path:
    """The directories a Laravel app writes to (storage_path()), empty."""
    for sub in ("framework/sessions", "framework/views", "framework/cache", "logs", "app"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    return base


def fastrr_config(storage: Path, workers: int = 1, log_level: str = "info",
                  engine: str | None = None) -> dict[str, Any]:
    http: dict[str, Any] = {"pool": {"num_workers": workers}, "max_request_size": 16}
    if engine is not None:
        http["engine"] = engine
    return {
        "server": {
            "command": f"{_binary('php')} -c {PHP_INI} {WORKER}",
            "env": {"FASTRR_LARAVEL_BASE_PATH": str(APP), "APP_STORAGE": str(storage)},
        },
        "http": http,
        "logs": {"level": log_level},
    }


def start_fastrr(factory: ServerFactory, storage: Path, workers: int = 1, log_level: str = "info",
                 engine: str | None = None) -> Server:
    """fastrr's HTTP front given by `engine` (c or python), else fastrr's default."""
    server = factory.start(fastrr_config(storage, workers, log_level, engine), workers=workers)
    server.wait_workers(workers)
    return server


def start_fpm(base: Path, storage: Path) -> Peer:
    """nginx + php-fpm as a Laravel app is deployed on Debian: the app's public/ as root,
    `try_files $uri /index.php?$query_string`, PHP through snippets/fastcgi-php.conf."""
    base.mkdir(parents=True)
    for name in ("fastcgi_params", "fastcgi.conf", "snippets"):
        (base / name).symlink_to(NGINX_ETC / name)
    sock, port = base / "fpm.sock", free_port()
    (base / "fpm.conf").write_text(
        f"[global]\npid = {base}/fpm.pid\nerror_log = {base}/fpm.log\ndaemonize = no\n"
        f"[laravel]\nlisten = {sock}\npm = static\npm.max_children = 2\nclear_env = yes\n"
        f"catch_workers_output = yes\nenv[APP_STORAGE] = {storage}\n")
    (base / "nginx.conf").write_text(
        f"worker_processes 1;\npid {base}/nginx.pid;\nerror_log {base}/nginx.log warn;\n"
        + ("user root;\n" if os.geteuid() == 0 else "")
        + "events { worker_connections 256; }\n"
        "http {\n  access_log off;\n"
        f"  client_body_temp_path {base}/body; fastcgi_temp_path {base}/fcgi; proxy_temp_path {base}/proxy;\n"
        f"  uwsgi_temp_path {base}/uwsgi; scgi_temp_path {base}/scgi;\n"
        "  client_max_body_size 16m;\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n    server_name {HOST};\n    root {APP / 'public'};\n"
        "    index index.php;\n"
        "    location / { try_files $uri /index.php?$query_string; }\n"
        "    location ~ \\.php$ {\n"
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
    peer = Peer("nginx+php-fpm (Laravel)", port, [nginx, fpm], logs)
    try:
        wait_answering(peer)
    except BaseException:
        peer.stop()
        raise
    return peer


def wait_answering(peer: Peer, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in peer.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{peer.name} exited with {proc.returncode}:\n{peer.log_tail()}")
        try:
            answer = peer.send(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
            if answer.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{peer.name} did not answer within {timeout}s:\n{peer.log_tail()}")


@pytest.fixture(scope="module")
def laravel_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    require_laravel()
    factory = ServerFactory(tmp_path_factory.mktemp("laravel-fastrr"))
    yield factory
    factory.close()
