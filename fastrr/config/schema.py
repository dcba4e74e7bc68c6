"""The typed configuration: `.rr.yaml` sections → dataclasses with RoadRunner's defaults.

The top-level keys (`version`, `server`, `logs`) are read here; each plugin's
section is read by that plugin's own config.py (fastrr/<plugin>/config.py),
called in the order of fastrr/plugins.py. A plugin whose section is absent is
off. Unknown keys are collected as warnings (printed once at start-up), wrong
types raise `ConfigError` naming the key path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from fastrr.config.logs import LogsConfig, parse_logs
from fastrr.config.section import KNOWN_UNSUPPORTED, Section, address, choice, listen, readable_file, relay
from fastrr.config.units import ConfigError, parse_command, parse_str_map

# Re-exported: these lived here before the plugin folders had their own config.py.
from fastrr.http.config import (  # noqa: F401
    CLIENT_AUTH_TYPES,
    DEFAULT_TRUSTED_SUBNETS,
    CorsConfig,
    GzipConfig,
    HeadersConfig,
    Http2Config,
    HttpConfig,
    SslConfig,
    StaticConfig,
    UploadsConfig,
)
from fastrr.pool.config import ACTIVE_LIMIT_AUTO, DEFAULT_EXEC_TTL, PoolConfig, parse_active_limit  # noqa: F401

_Section = Section
_listen = listen
_relay = relay
_address = address
_choice = choice
_file = readable_file
_KNOWN_UNSUPPORTED = KNOWN_UNSUPPORTED


@dataclass
class ServerConfig:
    command: list[str]
    relay: str = "pipes"
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Config:
    version: str
    server: ServerConfig
    http: HttpConfig | None
    rpc_listen: str | None
    logs: LogsConfig
    workdir: str
    raw: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    # Every enabled plugin's parsed section, by plugin name (http and rpc too).
    sections: dict[str, Any] = field(default_factory=dict)


@dataclass
class ConfigContext:
    """What a plugin's config reader may need besides its own section."""

    cpu_count: int
    workers_override: int | None
    raw: dict[str, Any]
    # the top level, for a plugin that also reads sections of other names
    # (jobs: the brokers' `amqp:`, `nats:`, ...); reading one marks it used
    top: Section | None = None


def build_config(raw: dict[str, Any], workdir: str, workers_override: int | None = None) -> Config:
    from fastrr.plugins import PLUGINS

    warnings: list[str] = []
    top = Section("", raw, warnings)
    version = top.get("version", lambda p, v: v)
    if version is None:
        # Older Laravel Octane releases pass everything with -o but no version;
        # RoadRunner of that era accepted it, so do we, with a warning.
        warnings.append('version: missing, assuming "3"')
        version = "3"
    if not isinstance(version, str):
        raise ConfigError("version", f'expected a string such as "3" (quote it in YAML), got {version!r}')
    if version.strip() not in ("3", "2.7"):
        raise ConfigError("version", f'expected "3", got {version!r}')

    srv = top.sub("server")
    # PHP workers need server.command; a config of services alone starts none.
    services_only = "server" not in raw and "service" in raw and not {"http", "jobs"} & set(raw)
    server = ServerConfig(
        command=srv.get("command", parse_command, [], required=not services_only, expected='e.g. "php worker.php"'),
        relay=srv.get("relay", relay, "pipes"),
        env={k.upper(): v for k, v in srv.get("env", parse_str_map, {}).items()},
    )
    srv.finish()

    ctx = ConfigContext(cpu_count=os.cpu_count() or 1, workers_override=workers_override, raw=raw, top=top)
    sections: dict[str, Any] = {}
    for plugin in PLUGINS:
        if plugin.enabled(raw):
            sections[plugin.name] = plugin.parse_config(top.sub(plugin.section), ctx)

    logs = parse_logs(top.sub("logs"))
    top.finish()
    return Config(version=version, server=server, http=sections.get("http"), rpc_listen=sections.get("rpc"),
                  logs=logs, workdir=workdir, raw=raw, warnings=warnings, sections=sections)
