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
    # fastrr: how many workers may run a request at once (fastrr/pool/active_limit.py).
    # ACTIVE_LIMIT_AUTO: all, unless the server's processes saturate the cores it
    # may use, then one more than those cores; 0 ("off"): always all; N: at most N.
    active_limit: int = -1


ACTIVE_LIMIT_AUTO = -1


def parse_active_limit(path: str, value: Any) -> int:
    if isinstance(value, str) and value.strip().lower() in ("auto", "off"):
        return ACTIVE_LIMIT_AUTO if value.strip().lower() == "auto" else 0
    if isinstance(value, bool):  # YAML 1.1 reads a bare off / on as a boolean
        return ACTIVE_LIMIT_AUTO if value else 0
    try:
        limit = parse_int(path, value)
    except ConfigError:
        raise ConfigError(path, f"expected auto, off or a number of workers, got {value!r}") from None
    if limit < 0:
        raise ConfigError(path, f"expected auto, off or a number of workers, got {value!r}")
    return limit


@dataclass
class ServerConfig:
    command: list[str]
    relay: str = "pipes"
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class UploadsConfig:
    """`http.uploads`: where multipart files go and which ones are accepted."""

    dir: str = ""  # "": the OS temp dir
    forbid: list[str] = field(default_factory=list)  # extensions with the dot, lowercased
    allow: list[str] = field(default_factory=list)
    # fastrr: per-file limit in MB (0: only max_request_size); a file over it
    # gets PHP's UPLOAD_ERR_INI_SIZE (1) and the request goes on.
    max_file_size: int = 0
    # fastrr: parts per request (Go's multipart reader allows 1000) and bytes
    # of headers per part; over them the request gets 413 / 400.
    max_parts: int = 1000
    max_part_header_size: int = 16 * 1024


@dataclass
class StaticConfig:
    """`http.static` (the static middleware)."""

    dir: str = "."
    forbid: list[str] = field(default_factory=list)
    allow: list[str] = field(default_factory=list)
    calculate_etag: bool = False
    weak: bool = False
    request: dict[str, str] = field(default_factory=dict)
    response: dict[str, str] = field(default_factory=dict)


@dataclass
class GzipConfig:
    """fastrr: `http.gzip` tunes the gzip middleware (RoadRunner's has no keys)."""

    min_size: int = 1024  # bytes; smaller bodies are sent as they are
    level: int = 5
    brotli: bool = True  # offer br when the brotli package is installed
    zstd: bool = True  # offer zstd when the zstandard package is installed


@dataclass
class CorsConfig:
    allowed_origin: str = ""
    allowed_origin_regex: str = ""
    allowed_headers: str = ""
    allowed_methods: str = ""
    allow_credentials: bool = False
    exposed_headers: str = ""
    max_age: int = 0


@dataclass
class HeadersConfig:
    """`http.headers` (the headers middleware)."""

    request: dict[str, str] = field(default_factory=dict)
    response: dict[str, str] = field(default_factory=dict)
    cors: CorsConfig | None = None


CLIENT_AUTH_TYPES = ("no_client_certs", "request_client_cert", "require_any_client_cert",
                     "verify_client_cert_if_given", "require_and_verify_client_cert")


@dataclass
class SslConfig:
    """`http.ssl`: the HTTPS listener (HTTP/2 is offered on it through ALPN)."""

    address: str = "127.0.0.1:443"
    redirect: bool = False  # plain-HTTP requests get a 308 to https
    key: str = ""
    cert: str = ""
    root_ca: str = ""  # CA bundle for client certificates
    client_auth_type: str = "no_client_certs"


@dataclass
class Http2Config:
    h2c: bool = False  # cleartext HTTP/2 with prior knowledge on http.address
    max_concurrent_streams: int = 128


DEFAULT_TRUSTED_SUBNETS = [
    "10.0.0.0/8", "127.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7", "fe80::/10",
]


@dataclass
class HttpConfig:
    address: str
    max_request_size: int = 1000  # MB, RoadRunner's unit
    internal_error_code: int = 500
    raw_body: bool = False
    access_logs: bool = False
    middleware: list[str] = field(default_factory=list)
    pool: PoolConfig = field(default_factory=PoolConfig)
    uploads: UploadsConfig = field(default_factory=UploadsConfig)
    static: StaticConfig = field(default_factory=StaticConfig)
    gzip: GzipConfig = field(default_factory=GzipConfig)
    headers: HeadersConfig = field(default_factory=HeadersConfig)
    trusted_subnets: list[str] = field(default_factory=lambda: list(DEFAULT_TRUSTED_SUBNETS))
    ssl: SslConfig | None = None
    http2: Http2Config = field(default_factory=Http2Config)
    # fastrr: limits RoadRunner leaves to Go's net/http.
    max_header_size: int = 64 * 1024
    read_timeout: float = 60.0
    idle_timeout: float = 75.0
    # fastrr: how long a graceful stop waits for in-flight requests.
    shutdown_timeout: float = 30.0
    # fastrr: request context codec. "json" works with every RoadRunner PHP
    # library; "proto" sends http.v1.Request (RoadRunner >= 2024.1 does) and
    # needs a library that decodes it (roadrunner-http >= 3.5, fastrr's own).
    codec: str = "json"
    # fastrr: which front runs HTTP/1.1. "c" (the epoll engine in a native
    # thread, csrc/engine*.c), "python" (uvloop protocol) or "auto": the engine
    # unless a setting only the Python front has (middleware, ssl, h2c, the shm
    # relay) is on. FASTRR_ENGINE sets the default.
    engine: str = "auto"

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
    "http.ssl.acme", "http.http3", "http.fcgi", "http.pool.dynamic_allocator", "http.pool.command",
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
    if text in ("pipes", "shm") or text.startswith("unix://") and len(text) > 7:
        return text
    if text.startswith("tcp://"):
        host, _, port = text[6:].rpartition(":")
        if host and port.isdigit():
            return text
        raise ConfigError(path, f"expected tcp://host:port with a non-empty host (PHP needs one), got {text!r}")
    raise ConfigError(path, f"expected pipes, shm, tcp://host:port or unix:///path, got {text!r}")


def _listen(path: str, value: Any) -> str:
    text = _relay(path, value)
    if text in ("pipes", "shm"):
        raise ConfigError(path, f"expected tcp://host:port or unix:///path, got {text!r}")
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
    pool.active_limit = section.get("active_limit", parse_active_limit, ACTIVE_LIMIT_AUTO)
    sup = section.sub("supervisor")
    pool.watch_tick = sup.get("watch_tick", parse_duration, pool.watch_tick)
    pool.ttl = sup.get("ttl", parse_duration, 0.0)
    pool.idle_ttl = sup.get("idle_ttl", parse_duration, 0.0)
    pool.max_worker_memory = sup.get("max_worker_memory", parse_int, 0)
    pool.exec_ttl = sup.get("exec_ttl", parse_duration, DEFAULT_EXEC_TTL)
    sup.finish()
    section.finish()
    return pool


def _extensions(path: str, value: Any) -> list[str]:
    exts = [ext.strip().lower() for ext in parse_str_list(path, value) if ext.strip()]
    for ext in exts:
        if not ext.startswith("."):
            raise ConfigError(path, f"expected file extensions with the dot, such as .php, got {ext!r}")
    return exts


def _uploads(section: _Section) -> UploadsConfig:
    up = UploadsConfig()
    up.dir = section.get("dir", parse_str, "")
    up.forbid = section.get("forbid", _extensions, [])
    up.allow = section.get("allow", _extensions, [])
    up.max_file_size = section.get("max_file_size", parse_int, 0)
    up.max_parts = section.get("max_parts", parse_int, up.max_parts)
    up.max_part_header_size = section.get("max_part_header_size", parse_int, up.max_part_header_size)
    if up.max_parts < 1:
        raise ConfigError(section.key("max_parts"), f"expected at least 1, got {up.max_parts}")
    if up.max_part_header_size < 256:
        raise ConfigError(section.key("max_part_header_size"),
                          f"expected at least 256 bytes, got {up.max_part_header_size}")
    if up.dir and not os.path.isdir(up.dir):
        raise ConfigError(section.key("dir"), f"expected an existing directory, got {up.dir!r}")
    section.finish()
    return up


def _static(section: _Section) -> StaticConfig:
    st = StaticConfig()
    st.dir = section.get("dir", parse_str, ".")
    st.forbid = section.get("forbid", _extensions, [])
    st.allow = section.get("allow", _extensions, [])
    st.calculate_etag = section.get("calculate_etag", parse_bool, False)
    st.weak = section.get("weak", parse_bool, False)
    st.request = section.get("request", parse_str_map, {})
    st.response = section.get("response", parse_str_map, {})
    section.finish()
    return st


def _gzip(section: _Section) -> GzipConfig:
    gz = GzipConfig()
    gz.min_size = section.get("min_size", parse_int, gz.min_size)
    gz.level = section.get("level", parse_int, gz.level)
    if not 1 <= gz.level <= 9:
        raise ConfigError(section.key("level"), f"expected a gzip level from 1 to 9, got {gz.level}")
    gz.brotli = section.get("brotli", parse_bool, True)
    gz.zstd = section.get("zstd", parse_bool, True)
    section.finish()
    return gz


def _regex(path: str, value: Any) -> str:
    import re
    text = parse_str(path, value)
    try:
        re.compile(text)
    except re.error as exc:
        raise ConfigError(path, f"expected a regular expression: {exc}")
    return text


def _headers(section: _Section) -> HeadersConfig:
    hd = HeadersConfig()
    hd.request = section.get("request", parse_str_map, {})
    hd.response = section.get("response", parse_str_map, {})
    if section.raw.get("cors") is not None:
        cs = section.sub("cors")
        cors = CorsConfig()
        for name in ("allowed_origin", "allowed_headers", "allowed_methods", "exposed_headers"):
            value = cs.get(name, lambda p, v: ",".join(parse_str_list(p, v)), "")
            setattr(cors, name, value)
        cors.allowed_origin_regex = cs.get("allowed_origin_regex", _regex, "")
        cors.allow_credentials = cs.get("allow_credentials", parse_bool, False)
        cors.max_age = cs.get("max_age", parse_int, 0)
        cs.finish()
        hd.cors = cors
    else:
        section.used.add("cors")
    section.finish()
    return hd


def _file(path: str, value: Any) -> str:
    text = parse_str(path, value)
    if not os.path.isfile(text):
        raise ConfigError(path, f"expected a readable file, got {text!r}")
    return text


def _ssl(section: _Section) -> SslConfig:
    ssl = SslConfig()
    ssl.address = section.get("address", _address, ssl.address)
    ssl.redirect = section.get("redirect", parse_bool, False)
    ssl.cert = section.get("cert", _file, required=True, expected="the certificate file (PEM)")
    ssl.key = section.get("key", _file, required=True, expected="the private key file (PEM)")
    ssl.root_ca = section.get("root_ca", _file, "")
    ssl.client_auth_type = section.get("client_auth_type", _choice(set(CLIENT_AUTH_TYPES)), "no_client_certs")
    if ssl.client_auth_type != "no_client_certs" and not ssl.root_ca:
        raise ConfigError(section.key("root_ca"), f"required when client_auth_type is {ssl.client_auth_type}")
    section.finish()
    return ssl


def _http2(section: _Section) -> Http2Config:
    h2 = Http2Config()
    h2.h2c = section.get("h2c", parse_bool, False)
    h2.max_concurrent_streams = section.get("max_concurrent_streams", parse_int, 128)
    if h2.max_concurrent_streams < 1:
        raise ConfigError(section.key("max_concurrent_streams"),
                          f"expected at least 1, got {h2.max_concurrent_streams}")
    section.finish()
    return h2


def _subnets(path: str, value: Any) -> list[str]:
    import ipaddress
    nets = parse_str_list(path, value)
    for i, net in enumerate(nets):
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ConfigError(f"{path}[{i}]", f"expected a CIDR subnet such as 10.0.0.0/8, got {net!r}")
    return nets


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
        http.codec = hs.get("codec", _choice({"json", "proto"}), "json")
        engines = _choice({"auto", "python", "c"})
        http.engine = hs.get("engine", engines, engines("FASTRR_ENGINE", os.environ.get("FASTRR_ENGINE") or "auto"))
        http.pool = _pool(hs.sub("pool"), cpu_count)
        http.uploads = _uploads(hs.sub("uploads"))
        http.static = _static(hs.sub("static"))
        http.gzip = _gzip(hs.sub("gzip"))
        http.headers = _headers(hs.sub("headers"))
        http.trusted_subnets = hs.get("trusted_subnets", _subnets, list(DEFAULT_TRUSTED_SUBNETS))
        if hs.raw.get("ssl"):  # an empty section is no TLS listener
            http.ssl = _ssl(hs.sub("ssl"))
        else:
            hs.used.add("ssl")
        http.http2 = _http2(hs.sub("http2"))
        if "static" in http.middleware and not os.path.isdir(http.static.dir):
            raise ConfigError("http.static.dir", f"expected an existing directory, got {http.static.dir!r}")
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
