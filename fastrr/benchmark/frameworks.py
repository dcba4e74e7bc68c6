"""The Laravel and Symfony apps (bench/apps/laravel, bench/apps/symfony): what each needs before
a server may serve it, built once per run into the run's temp dir.

Both run in production mode (APP_ENV=prod/production, debug off) with their caches built up
front, as a deployment does (`artisan config:cache` + `route:cache`; `cache:warmup`): the apps
have no artisan/console, so bench/apps/laravel/build-caches.php and bench/apps/symfony/warmup.php
do the same. Nothing is written next to the code (an installed fastrr's copy may be read-only).
php-fpm and fastrr get the same environment and share the cache files, which are never written
again once built (opcache.validate_timestamps=0 would not see a change anyway).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

SYMFONY_RUNTIME = "Fastrr\\Symfony\\Runtime"


def _run_php(php: Sequence[str], script: Path, env: dict[str, str], what: str, timeout: float = 120.0) -> None:
    if not script.is_file():
        raise RuntimeError(f"{what}: {script} not found (is this the app's directory?)")
    try:
        out = subprocess.run([*php, str(script)], env={**os.environ, **env}, cwd=script.parent,
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{what}: {script.name} did not finish in {timeout:.0f} s") from None
    if out.returncode != 0:
        raise RuntimeError(f"{what}: {script.name} exited with {out.returncode}: "
                           f"{(out.stderr or out.stdout).strip()[-600:]}")


def prepare_laravel(app_dir: Path, work: Path, php: Sequence[str]) -> dict[str, str]:
    """Storage and cache dirs under `work`, the config and route caches built; the environment
    both servers (and the hot script) give the app."""
    storage, caches = work / "storage", work / "cache"
    for sub in ("framework/views", "framework/cache", "framework/sessions", "logs", "app"):
        (storage / sub).mkdir(parents=True, exist_ok=True)
    caches.mkdir(parents=True, exist_ok=True)
    env = {"APP_STORAGE": str(storage), "APP_CACHE_DIR": str(caches), "FASTRR_LARAVEL_BASE_PATH": str(app_dir)}
    _run_php(php, app_dir / "build-caches.php", env, "Laravel config/route caches")
    for name in ("config.php", "routes-v7.php"):
        if not (caches / name).is_file():
            raise RuntimeError(f"Laravel caches: build-caches.php wrote no {name}")
    return env


def prepare_symfony(app_dir: Path, work: Path, php: Sequence[str]) -> dict[str, str]:
    """APP_VAR_DIR under `work` with the prod container compiled and warmed."""
    var = work / "var"
    var.mkdir(parents=True, exist_ok=True)
    env = {"APP_ENV": "prod", "APP_DEBUG": "0", "APP_VAR_DIR": str(var)}
    _run_php(php, app_dir / "warmup.php", env, "Symfony cache warm-up")
    if not any((var / "cache" / "prod").glob("*Container*.php")):
        raise RuntimeError("Symfony cache warm-up: no compiled container in the cache dir")
    return env
