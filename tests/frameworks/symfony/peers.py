"""Start the Symfony test app under fastrr (APP_RUNTIME=Fastrr\\Symfony\\Runtime, the app's own
public/index.php as the worker) and under Debian's nginx + php-fpm, both with php-fpm's php.ini.

The nginx side reuses the differential suite's plumbing (tests/differential/conftest.py: the stock
fastcgi files, the Peer that sends raw bytes); only the location differs, since a Symfony app is
served through its front controller: `try_files $uri /index.php$is_args$args`, as Symfony's docs
configure nginx."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import ServerFactory
from tests.differential.conftest import PHP_INI, Peer, _binary, start_nginx_fpm, wait_answering

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


def wait_ok(port: int, timeout: float = 30.0) -> None:
    """Until GET / answers 200 (the first request may build the container cache)."""
    wait_answering(Peer(f"the Symfony app on port {port}", port, [], []), "/", timeout)


def start_fpm(base: Path) -> Peer:
    """nginx + php-fpm serving app/public through index.php, env as the fastrr side gets it."""
    var_dir = base / "var"
    var_dir.mkdir(parents=True)
    return start_nginx_fpm(base, "nginx+php-fpm", APP / "public", "^/index\\.php(/|$)", pool="symfony",
                           front="try_files $uri /index.php$is_args$args", max_body="32m",
                           env={**APP_ENV, "APP_VAR_DIR": str(var_dir)},
                           ready=lambda peer: wait_answering(peer, "/", 30.0))
