"""`.rr.yaml`-compatible configuration: load → interpolate → override → type-check."""

from __future__ import annotations

import os

from fastrr.config.loader import load_dotenv_file, load_raw
from fastrr.config.schema import Config, HttpConfig, LogsConfig, PoolConfig, ServerConfig, build_config
from fastrr.config.units import ConfigError

__all__ = ["Config", "ConfigError", "HttpConfig", "LogsConfig", "PoolConfig", "ServerConfig", "load_config"]


def load_config(path: str = ".rr.yaml", workdir: str | None = None, overrides: list[str] | None = None,
                dotenv: str | None = None, workers: int | None = None) -> Config:
    """Load the config the way `rr` does: the working directory becomes the
    config file's directory unless `workdir` is given; `$DOTENV_PATH` works
    like `--dotenv`."""
    if workdir:
        os.chdir(workdir)
    path = os.path.abspath(path)
    dotenv = dotenv or os.environ.get("DOTENV_PATH")
    if dotenv:
        load_dotenv_file(dotenv)
    if not workdir:
        os.chdir(os.path.dirname(path))
    raw = load_raw(path, overrides or [])
    return build_config(raw, os.getcwd(), workers)
