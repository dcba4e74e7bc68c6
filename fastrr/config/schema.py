"""The typed configuration: `.rr.yaml` sections → dataclasses with RoadRunner's defaults.

Each section is read by one function that takes the raw mapping and returns a
dataclass; unknown keys are collected as warnings (printed once at start-up),
wrong types raise `ConfigError` naming the key path. Keys RoadRunner has and
fastrr does not implement yet are listed in `_KNOWN_UNSUPPORTED` so users get a
precise "ignored" warning instead of "unknown".
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastrr.config.units import (
    ConfigError,
    parse_bool,
    parse_command,
    parse_duration,
    parse_int,
    parse_str,
    parse_str_list,
    parse_str_map,
)

# fastrr's default hard limit per request: RoadRunner has none, so a hung worker
# holds its slot forever (its most reported pitfall). Override with
# `http.pool.supervisor.exec_ttl`; 0 disables it.
DEFAULT_EXEC_TTL = 60.0


@dataclass
class PoolConfig:
    command: list[str] | None = None
    num_workers: int = 0
    max_jobs: int = 0
    allocate_timeout: float = 60.0
    destroy_timeout: float = 60.0
    reset_timeout: float = 60.0
    stream_timeout: float = 60.0
    max_queue_size: int = 0
    debug: bool = False
    # fastrr: time a new worker has to answer the PID handshake, kept apart from
    # allocate_timeout so a slow framework boot does not eat request budgets.
    boot_timeout: float = 60.0
    # fastrr: time a worker has to exit after the stop frame before SIGKILL.
    stop_timeout: float = 10.0
    # pool.supervisor, RoadRunner's keys, units and meanings: ttl is a worker's
    # age, idle_ttl the time since its last request, max_worker_memory its RSS
    # in MB (soft limits: a busy worker is replaced after its request);
    # exec_ttl is a hard per-request limit (the worker is killed, the client
    # gets 504). fastrr checks memory after every request too, not only on the
    # tick, and ticks every second (RoadRunner: 5s); exec_ttl defaults to
    # DEFAULT_EXEC_TTL even without a supervisor section.
    watch_tick: float = 1.0
    ttl: float = 0.0
    idle_ttl: float = 0.0
    max_worker_memory: int = 0
    exec_ttl: float = DEFAULT_EXEC_TTL


@dataclass
class ServerConfig:
    command: list[str]
    relay: str = "pipes"
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class HttpConfig:
    address: str
    max_request_size: int = 1000  # MB, RoadRunner's unit
    internal_error_code: int = 500
    raw_body: bool = False
    access_logs: bool = False
    middleware: list[str] = field(default_factory=list)
    pool: PoolConfig = field(default_factory=PoolConfig)
    # fastrr: limits RoadRunner leaves to Go's net/http.
    max_header_size: int = 64 * 1024
    read_timeout: float = 60.0
    idle_timeout: float = 75.0
    # fastrr: how long a graceful stop waits for in-flight requests.
    shutdown_timeout: float = 30.0

    @property
    def max_body_bytes(self) -> int:
        return self.max_request_size * 1024 * 1024


@dataclass
class LogsConfig:
    level: str = "info"
    mode: str = "development"
    encoding: str | None = None
    output: list[str] = field(default_factory=lambda: ["stderr"])


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


_KNOWN_UNSUPPORTED = {
    "server.user", "server.group", "server.on_init", "server.relay_timeout",
    "http.ssl", "http.http2", "http.http3", "http.fcgi", "http.uploads", "http.static",
    "http.headers", "http.trusted_subnets", "http.pool.dynamic_allocator", "http.pool.command",
    "status", "metrics", "reload", "jobs", "kv", "service", "endure", "include",
    "logs.channels", "logs.line_ending", "logs.err_output", "logs.file_logger_options",
    "grpc", "websockets", "temporal", "tcp", "centrifuge", "otel", "lock", "informer",
    "resetter", "fileserver", "amqp", "kafka", "nats", "redis", "sqs", "beanstalk", "boltdb",
    "memcached", "memory", "rpc.listen_timeout",
}


class _Section:
    """Reads one mapping, remembering which keys were used so the rest can be warned about."""

    def __init__(self, path: str, raw: Any, warnings: list[str]):
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(path, f"expected a mapping, got {type(raw).__name__} {raw!r}")
        self.path = path
        self.raw = raw
        self.used: set[str] = set()
        self.warnings = warnings

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, conv: Callable[[str, Any], Any], default: Any = None,
            required: bool = False, expected: str = "") -> Any:
        self.used.add(name)
        if name not in self.raw or self.raw[name] is None:
            if required:
                raise ConfigError(self.key(name), f"required key is missing{': ' + expected if expected else ''}")
            return default
        return conv(self.key(name), self.raw[name])

    def sub(self, name: str) -> _Section:
        self.used.add(name)
        return _Section(self.key(name), self.raw.get(name), self.warnings)

    def finish(self) -> None:
        for name in self.raw:
            if name in self.used:
                continue
            path = self.key(str(name))
            if path in _KNOWN_UNSUPPORTED:
                self.warnings.append(f"{path}: not supported by fastrr yet, ignored")
            else:
                self.warnings.append(f"{path}: unknown key, ignored")


def _choice(options: set[str]) -> Callable[[str, Any], str]:
    def conv(path: str, value: Any) -> str:
        text = parse_str(path, value).strip().lower()
        if text not in options:
            raise ConfigError(path, f"expected one of {', '.join(sorted(options))}, got {value!r}")
        return text
    return conv


def _relay(path: str, value: Any) -> str:
    text = parse_str(path, value).strip()
    if text == "pipes" or text.startswith("unix://") and len(text) > 7:
        return text
    if text.startswith("tcp://"):
        host, _, port = text[6:].rpartition(":")
        if host and port.isdigit():
            return text
        raise ConfigError(path, f"expected tcp://host:port with a non-empty host (PHP needs one), got {text!r}")
    raise ConfigError(path, f"expected pipes, tcp://host:port or unix:///path, got {text!r}")


def _listen(path: str, value: Any) -> str:
    text = _relay(path, value)
    if text == "pipes":
        raise ConfigError(path, "expected tcp://host:port or unix:///path, got 'pipes'")
    return text


def _address(path: str, value: Any) -> str:
    text = parse_str(path, value).strip()
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(path, f"expected host:port, got {text!r}")
    return text


def _status(path: str, value: Any) -> int:
    code = parse_int(path, value)
    if not 100 <= code <= 599:
        raise ConfigError(path, f"expected an HTTP status code (100-599), got {code}")
    return code


def _pool(section: _Section, cpu_count: int) -> PoolConfig:
    pool = PoolConfig()
    pool.command = section.get("command", parse_command)
    pool.num_workers = section.get("num_workers", parse_int, 0) or cpu_count
    if pool.num_workers > 2048:
        raise ConfigError(section.key("num_workers"), f"expected at most 2048 workers, got {pool.num_workers}")
    pool.max_jobs = section.get("max_jobs", parse_int, 0)
    for name in ("allocate_timeout", "destroy_timeout", "reset_timeout", "stream_timeout",
                 "boot_timeout", "stop_timeout"):
        setattr(pool, name, section.get(name, parse_duration, getattr(pool, name)))
    pool.max_queue_size = section.get("max_queue_size", parse_int, 0)
    pool.debug = section.get("debug", parse_bool, False)
    sup = section.sub("supervisor")
    pool.watch_tick = sup.get("watch_tick", parse_duration, pool.watch_tick)
    pool.ttl = sup.get("ttl", parse_duration, 0.0)
    pool.idle_ttl = sup.get("idle_ttl", parse_duration, 0.0)
    pool.max_worker_memory = sup.get("max_worker_memory", parse_int, 0)
    pool.exec_ttl = sup.get("exec_ttl", parse_duration, DEFAULT_EXEC_TTL)
    sup.finish()
    section.finish()
    return pool


def build_config(raw: dict[str, Any], workdir: str, workers_override: int | None = None) -> Config:
    warnings: list[str] = []
    top = _Section("", raw, warnings)
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
    server = ServerConfig(
        command=srv.get("command", parse_command, required=True, expected='e.g. "php worker.php"'),
        relay=srv.get("relay", _relay, "pipes"),
        env={k.upper(): v for k, v in srv.get("env", parse_str_map, {}).items()},
    )
    srv.finish()

    cpu_count = os.cpu_count() or 1
    http: HttpConfig | None = None
    if "http" in raw:
        hs = top.sub("http")
        http = HttpConfig(address=hs.get("address", _address, required=True, expected="host:port"))
        http.max_request_size = hs.get("max_request_size", parse_int, 1000)
        http.internal_error_code = hs.get("internal_error_code", _status, 500)
        http.raw_body = hs.get("raw_body", parse_bool, False)
        http.access_logs = hs.get("access_logs", parse_bool, False)
        http.middleware = hs.get("middleware", parse_str_list, [])
        http.max_header_size = hs.get("max_header_size", parse_int, http.max_header_size)
        if http.max_header_size < 1024:
            raise ConfigError("http.max_header_size", f"expected at least 1024 bytes, got {http.max_header_size}")
        for name in ("read_timeout", "idle_timeout", "shutdown_timeout"):
            setattr(http, name, hs.get(name, parse_duration, getattr(http, name)))
        http.pool = _pool(hs.sub("pool"), cpu_count)
        if workers_override is not None:
            http.pool.num_workers = workers_override or cpu_count
        hs.finish()

    rpc_listen = None
    if "rpc" in raw:
        rs = top.sub("rpc")
        rpc_listen = rs.get("listen", _listen, "tcp://127.0.0.1:6001")
        rs.finish()

    ls = top.sub("logs")
    logs = LogsConfig(
        level=ls.get("level", _choice({"debug", "info", "warn", "warning", "error", "panic", "fatal"}), "info"),
        mode=ls.get("mode", _choice({"development", "production", "raw", "off", "none"}), "development"),
        encoding=ls.get("encoding", _choice({"console", "json"}), None),
        output=ls.get("output", parse_str_list, ["stderr"]),
    )
    ls.finish()
    top.finish()
    return Config(version=version, server=server, http=http, rpc_listen=rpc_listen, logs=logs,
                  workdir=workdir, raw=raw, warnings=warnings)
