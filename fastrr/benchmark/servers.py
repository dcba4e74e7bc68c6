"""Private server instances in a temp dir: nginx + php-fpm, and fastrr, for one app at a time.

Both sides get the same PHP: one php.ini written here (Debian's production
php.ini when present, plus opcache on, timestamps off, JIT off) is given to
php-fpm with `-c` and to every fastrr worker (`php -c`), and both load the same
Debian conf.d module list. fpm runs pm=static with as many children as fastrr
has workers. Everything listens on 127.0.0.1 on a free port.
"""

from __future__ import annotations

import http.client
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fastrr.benchmark import procs
from fastrr.benchmark.apps import ROOT, App
from fastrr.benchmark.env import Layout, SetupError

PHP_INI_BASE = Path("/etc/php/8.2/fpm/php.ini")

# Appended after the base ini, so they win.
PHP_INI_OVERRIDES = """
; ---- fastrr bench: the same settings for php-fpm and the fastrr workers ----
include_path = ".:/usr/share/php"
memory_limit = 256M
display_errors = Off
display_startup_errors = Off
log_errors = On
error_reporting = E_ALL
zend.assertions = -1
opcache.enable = 1
opcache.enable_cli = 1
opcache.validate_timestamps = 0
opcache.memory_consumption = 128
opcache.max_accelerated_files = 10000
opcache.jit = off
opcache.jit_buffer_size = 0
"""

# nginx's stock fastcgi_params, minus HTTPS/REMOTE_USER we never set; SCRIPT_* come per app.
FASTCGI_PARAMS = """
    fastcgi_param QUERY_STRING $query_string;
    fastcgi_param REQUEST_METHOD $request_method;
    fastcgi_param CONTENT_TYPE $content_type;
    fastcgi_param CONTENT_LENGTH $content_length;
    fastcgi_param REQUEST_URI $request_uri;
    fastcgi_param DOCUMENT_URI $document_uri;
    fastcgi_param DOCUMENT_ROOT $document_root;
    fastcgi_param SERVER_PROTOCOL $server_protocol;
    fastcgi_param REQUEST_SCHEME $scheme;
    fastcgi_param GATEWAY_INTERFACE CGI/1.1;
    fastcgi_param SERVER_SOFTWARE nginx/$nginx_version;
    fastcgi_param REMOTE_ADDR $remote_addr;
    fastcgi_param REMOTE_PORT $remote_port;
    fastcgi_param SERVER_ADDR $server_addr;
    fastcgi_param SERVER_PORT $server_port;
    fastcgi_param SERVER_NAME $server_name;
    fastcgi_param REDIRECT_STATUS 200;
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
        if path:
            return path
    raise SetupError(f"none of {', '.join(names)} found on PATH")


def php_binary() -> str:
    return find_binary("php8.2", "php")


def worker_command(app: App, ini: Path) -> list[str]:
    """The PHP command of `app`'s fastrr worker, with the bench's php.ini."""
    if app.sapi == "cgi":
        # -q: no CGI headers on stdout (it carries the frames); no time limit in a long-lived worker
        return [find_binary("php-cgi8.2", "php-cgi"), "-q", "-c", str(ini), "-d", "max_execution_time=0",
                str(app.worker_script)]
    return [php_binary(), "-c", str(ini), str(app.worker_script)]


def fpm_binary() -> str:
    return find_binary("php-fpm8.2", "php-fpm")


def write_php_ini(directory: Path, base: Path = PHP_INI_BASE) -> Path:
    text = base.read_text() if base.exists() else ""
    path = directory / "php.ini"
    path.write_text(text + PHP_INI_OVERRIDES)
    return path


def request(port: int, app: App, timeout: float = 5.0, path: str | None = None) -> tuple[int, bytes]:
    """One request as wrk sends it (method, path, body, content type); `path` instead of the app's."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": app.content_type} if app.content_type else {}
        body = app.request_body() if app.method != "GET" else None
        conn.request(app.method, path or app.path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(port: int, app: App, alive: list, timeout: float = 60.0) -> None:
    """Until the app answers (any HTTP status) or a server process died or the time is up."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        for proc in alive:
            if proc.poll() is not None:
                raise RuntimeError(f"server process exited with code {proc.returncode} during start-up")
        try:
            status, _ = request(port, app, timeout=2.0)
            if status not in (502, 503):  # a gateway that has no backend yet
                return
            last = f"HTTP {status}"
        except (OSError, http.client.HTTPException) as exc:
            last = str(exc) or type(exc).__name__
        time.sleep(0.1)
    raise RuntimeError(f"not ready after {timeout:.0f} s ({last})")


@dataclass
class Server:
    """A running instance: `roots` are the processes whose trees count as the server,
    `front` the process(es) that speak HTTP to clients (nginx; fastrr's main process)."""

    kind: str                     # "fpm" | "fastrr"
    label: str
    port: int
    roots: list[int]
    front: list[int]
    front_tree: bool              # count the front's children too (nginx's worker) or not (fastrr's PHP workers)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def cpu_seconds(self) -> tuple[float, float]:
        """(whole server tree, front alone) CPU seconds so far."""
        total = procs.tree_cpu_seconds(self.roots)
        if self.front_tree:
            front = procs.tree_cpu_seconds(self.front)
        else:
            front = sum(procs.process_cpu_seconds(pid) for pid in self.front)
        return total, front

    def log_tail(self, lines: int = 15) -> str:
        out = []
        for path in self.logs:
            if path.exists():
                text = path.read_text(errors="replace").strip().splitlines()[-lines:]
                if text:
                    out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)


def _user_line() -> str:
    if os.geteuid() != 0:
        return ""  # nginx runs its worker as the current user anyway
    return f"user {pwd.getpwuid(os.geteuid()).pw_name};\n"


OPCACHE_PROBE_PATH = "/__fastrr_bench/opcache"


def _pool_env(env: dict[str, str]) -> str:
    """php-fpm pool lines giving the app its environment (clear_env = yes drops the rest)."""
    out = []
    for key, value in env.items():
        if not key.replace("_", "").isalnum() or any(c in value for c in '"\n'):
            raise RuntimeError(f"cannot pass {key}={value!r} through php-fpm's pool config")
        out.append(f'env[{key}] = "{value}"\n')
    return "".join(out)


def start_fpm(app: App, tmp: Path, ini: Path, layout: Layout, workers: int, reaper: procs.Reaper,
              env: dict[str, str] | None = None, probe: Path | None = None) -> Server:
    """nginx (1 worker process) in front of php-fpm (pm=static) over a unix socket.

    `env`: the app's environment (pool env[] lines). `probe`: a script nginx runs for
    OPCACHE_PROBE_PATH through the same pool (what opcache_get_status() says inside php-fpm).

    nginx opens one FastCGI connection per request (its default). Reusing them
    (upstream keepalive + fastcgi_keep_conn) was measured: −30 % CPU per hello
    request, but p99 near 2 s, as requests queue behind connections held by busy
    children; so the default stays.
    """
    base = tmp / f"fpm-{app.name}"
    base.mkdir()
    sock = base / "fpm.sock"
    port = free_port()
    (base / "fpm.conf").write_text(
        "[global]\n"
        f"pid = {base}/fpm.pid\nerror_log = {base}/fpm.log\ndaemonize = no\nlog_level = warning\n"
        "[bench]\n"
        f"listen = {sock}\nlisten.backlog = 4096\n"
        f"pm = static\npm.max_children = {workers}\npm.max_requests = 0\n"
        "clear_env = yes\ncatch_workers_output = yes\n" + _pool_env(env or {})
    )
    script_dir = app.fpm_script.parent
    (base / "nginx.conf").write_text(
        "worker_processes 1;\n" + _user_line()
        + f"pid {base}/nginx.pid;\nerror_log {base}/nginx.log warn;\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        "  access_log off;\n"
        f"  client_body_temp_path {base}/body; fastcgi_temp_path {base}/fcgi; proxy_temp_path {base}/proxy;\n"
        f"  uwsgi_temp_path {base}/uwsgi; scgi_temp_path {base}/scgi;\n"
        "  keepalive_requests 1000000;   # as fastrr: no cap on requests per connection\n"
        "  client_body_buffer_size 128k; # the 100 KB upload stays in memory, as with fastrr\n"
        "  client_max_body_size 8m;\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n    root {script_dir};\n"
        + (f"    location = {OPCACHE_PROBE_PATH} {{\n" + FASTCGI_PARAMS
           + f"      fastcgi_param SCRIPT_FILENAME {probe};\n      fastcgi_pass unix:{sock};\n    }}\n"
           if probe is not None else "")
        + "    location / {\n" + FASTCGI_PARAMS
        + f"      fastcgi_param SCRIPT_FILENAME {app.fpm_script};\n"
        f"      fastcgi_param SCRIPT_NAME /{app.fpm_script.name};\n"
        f"      fastcgi_pass unix:{sock};\n"
        "    }\n  }\n}\n"
    )
    fpm_log, nginx_log = base / "fpm.out", base / "nginx.out"
    fpm = reaper.add(procs.spawn([*layout.server_prefix, fpm_binary(), "-F", "-R", "-y", str(base / "fpm.conf"),
                                  "-c", str(ini)], log=fpm_log))
    nginx = reaper.add(procs.spawn([*layout.server_prefix, find_binary("nginx"), "-p", str(base), "-e",
                                    str(base / "nginx.log"), "-c", str(base / "nginx.conf"), "-g", "daemon off;"],
                                   log=nginx_log))
    server = Server("fpm", "nginx+php-fpm", port, [fpm.pid, nginx.pid], [nginx.pid], front_tree=True,
                    processes=[fpm, nginx], logs=[base / "fpm.log", fpm_log, base / "nginx.log", nginx_log])
    try:
        wait_ready(port, app, [fpm, nginx])
    except RuntimeError as exc:
        raise RuntimeError(f"nginx+php-fpm for {app.name}: {exc}\n{server.log_tail()}") from exc
    return server


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    """Nested mappings merged key by key (http.pool.active_limit keeps http.pool.num_workers)."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def start_fastrr(app: App, tmp: Path, ini: Path, layout: Layout, workers: int, reaper: procs.Reaper,
                 extra_config: dict | None = None, env: dict[str, str] | None = None,
                 code_root: Path = ROOT, app_env: dict[str, str] | None = None) -> Server:
    """fastrr serving `app`; `extra_config` is merged into the sections, `env` into the environment.
    The fastrr package is imported from `code_root` (a snapshot of the tree, or the tree itself).
    `app_env` (and the app's worker_env) go to the PHP workers (server.env)."""
    base = tmp / f"fastrr-{app.name}"
    base.mkdir()
    port = free_port()
    config: dict[str, Any] = {
        "version": "3",
        "server": {"command": worker_command(app, ini)},
        "http": {"address": f"127.0.0.1:{port}",
                 "pool": {"num_workers": workers, "max_jobs": 0}},
        "logs": {"level": "warn", "mode": "production"},
    }
    worker_env = {**(app_env or {}), **dict(app.worker_env)}
    if worker_env:
        config["server"]["env"] = worker_env
    _merge(config, extra_config or {})
    cfg = base / ".rr.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    log = base / "fastrr.out"
    child_env = {**os.environ, **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(code_root), child_env.get("PYTHONPATH")) if p)
    proc = reaper.add(procs.spawn([*layout.server_prefix, sys.executable, "-m", "fastrr", "serve", "-c", str(cfg)],
                                  cwd=code_root, log=log, env=child_env))
    server = Server("fastrr", "fastrr", port, [proc.pid], [proc.pid], front_tree=False, processes=[proc],
                    logs=[log])
    try:
        wait_ready(port, app, [proc])
    except RuntimeError as exc:
        raise RuntimeError(f"fastrr for {app.name}: {exc}\n{server.log_tail()}") from exc
    return server
