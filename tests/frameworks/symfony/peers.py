"""Start the Symfony test app under fastrr (APP_RUNTIME=Fastrr\\Symfony\\Runtime, the app's own
public/index.php as the worker) and under Debian's nginx + php-fpm, both with php-fpm's php.ini.

The nginx side reuses the differential suite's plumbing (tests/differential/conftest.py: the stock
fastcgi files, the Peer that sends raw bytes); only the location differs, since a Symfony app is
served through its front controller: `try_files $uri /index.php$is_args$args`, as Symfony's docs
configure nginx."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.conftest import ServerFactory, free_port
from tests.differential.conftest import HOST, NGINX_ETC, PHP_INI, Peer, _binary

APP = Path(__file__).resolve().parent / "app"
FRONT = APP / "public" / "index.php"
APP_ENV = {"APP_ENV": "prod", "APP_DEBUG": "0"}


def fastrr_config(var_dir: Path, workers: int = 1, extra_env: dict[str, str] | None = None,
                  log_level: str = "warn") -> dict[str, Any]:
    """The .rr.yaml of a Symfony app on fastrr (merged into ServerFactory's base config)."""
    env = {"APP_RUNTIME": "Fastrr\\Symfony\\Runtime", "APP_VAR_DIR": str(var_dir), **APP_ENV, **(extra_env or {})}
    return {
        "server": {"command": f"{_binary('php')} -c {PHP_INI} {FRONT}", "env": env},
        "http": {"pool": {"num_workers": workers}, "max_request_size": 32},
        "logs": {"level": log_level},  # the workers' stderr is logged at info
    }


def start_fastrr(factory: ServerFactory, var_dir: Path, workers: int = 1, log_level: str = "warn") -> Any:
    server = factory.start(fastrr_config(var_dir, workers, log_level=log_level), workers=workers)
    wait_ok(server.port)
    return server


def fastrr_peer(factory: ServerFactory, var_dir: Path) -> Peer:
    server = start_fastrr(factory, var_dir)
    return Peer("fastrr (Fastrr\\Symfony\\Runtime)", server.port, [server.proc], [server.out_path, server.err_path])


def wait_ok(port: int, timeout: float = 30.0, procs: list[subprocess.Popen[bytes]] | None = None) -> None:
    """Until GET / answers 200 (the first request may build the container cache)."""
    peer = Peer("probe", port, procs or [], [])
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        for proc in procs or []:
            if proc.poll() is not None:
                raise RuntimeError(f"a server process exited with {proc.returncode}")
        try:
            answer = peer.send(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
            if answer.status == 200:
                return
            last = answer.status
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"the Symfony app on port {port} did not answer 200 within {timeout}s (last: {last})")


def start_fpm(base: Path) -> Peer:
    """nginx + php-fpm serving app/public through index.php, env as the fastrr side gets it."""
    base.mkdir(parents=True)
    for name in ("fastcgi_params", "fastcgi.conf", "snippets"):
        (base / name).symlink_to(NGINX_ETC / name)
    var_dir = base / "var"
    var_dir.mkdir()
    sock, port = base / "fpm.sock", free_port()
    env = {**APP_ENV, "APP_VAR_DIR": str(var_dir)}
    (base / "fpm.conf").write_text(
        f"[global]\npid = {base}/fpm.pid\nerror_log = {base}/fpm.log\ndaemonize = no\n"
        f"[symfony]\nlisten = {sock}\npm = static\npm.max_children = 2\nclear_env = yes\n"
        "catch_workers_output = yes\n" + "".join(f"env[{k}] = {v}\n" for k, v in env.items()))
    (base / "nginx.conf").write_text(
        f"worker_processes 1;\npid {base}/nginx.pid;\nerror_log {base}/nginx.log warn;\n"
        + ("user root;\n" if os.geteuid() == 0 else "")
        + "events { worker_connections 256; }\n"
        "http {\n  access_log off;\n"
        f"  client_body_temp_path {base}/body; fastcgi_temp_path {base}/fcgi; proxy_temp_path {base}/proxy;\n"
        f"  uwsgi_temp_path {base}/uwsgi; scgi_temp_path {base}/scgi;\n"
        "  client_max_body_size 32m;\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n    server_name {HOST};\n    root {APP / 'public'};\n"
        "    location / { try_files $uri /index.php$is_args$args; }\n"
        "    location ~ ^/index\\.php(/|$) {\n"
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
    peer = Peer("nginx+php-fpm", port, [nginx, fpm], logs)
    try:
        wait_ok(port, procs=[nginx, fpm])
    except BaseException:
        peer.stop()
        raise
    return peer
