"""The Laravel test app under both servers: fastrr with php/bin/fastrr-laravel-worker, and Debian's
nginx + php-fpm with the app's public/index.php as front controller (the stock fastcgi files, the
differential suite's Peer). Each server gets its own storage directory (sessions, compiled views)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Server, ServerFactory
from tests.differential.conftest import PHP_INI, Peer, _binary, start_nginx_fpm, wait_answering

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
    return start_nginx_fpm(base, "nginx+php-fpm (Laravel)", APP / "public", "\\.php$", pool="laravel",
                           front="try_files $uri /index.php?$query_string", env={"APP_STORAGE": str(storage)},
                           ready=lambda peer: wait_answering(peer, "/"))


@pytest.fixture(scope="module")
def laravel_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    require_laravel()
    factory = ServerFactory(tmp_path_factory.mktemp("laravel-fastrr"))
    yield factory
    factory.close()
