"""The `http:` section: the listener, its limits, middleware settings and pool."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from fastrr.config.section import Section, address, choice, readable_file
from fastrr.config.units import (
    ConfigError,
    parse_bool,
    parse_duration,
    parse_int,
    parse_str,
    parse_str_list,
    parse_str_map,
)
from fastrr.pool.config import PoolConfig, parse_pool


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
    # `websockets` in http.middleware: the websockets plugin (fastrr/websockets) takes the
    # GETs on its paths from either front. Kept out of `middleware`, which lists filters.
    websockets: bool = False

    @property
    def max_body_bytes(self) -> int:
        return self.max_request_size * 1024 * 1024



def _status(path: str, value: Any) -> int:
    code = parse_int(path, value)
    if not 100 <= code <= 599:
        raise ConfigError(path, f"expected an HTTP status code (100-599), got {code}")
    return code



def _extensions(path: str, value: Any) -> list[str]:
    exts = [ext.strip().lower() for ext in parse_str_list(path, value) if ext.strip()]
    for ext in exts:
        if not ext.startswith("."):
            raise ConfigError(path, f"expected file extensions with the dot, such as .php, got {ext!r}")
    return exts


def _uploads(section: Section) -> UploadsConfig:
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


def _static(section: Section) -> StaticConfig:
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


def _gzip(section: Section) -> GzipConfig:
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


def _headers(section: Section) -> HeadersConfig:
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


def _ssl(section: Section) -> SslConfig:
    ssl = SslConfig()
    ssl.address = section.get("address", address, ssl.address)
    ssl.redirect = section.get("redirect", parse_bool, False)
    ssl.cert = section.get("cert", readable_file, required=True, expected="the certificate file (PEM)")
    ssl.key = section.get("key", readable_file, required=True, expected="the private key file (PEM)")
    ssl.root_ca = section.get("root_ca", readable_file, "")
    ssl.client_auth_type = section.get("client_auth_type", choice(set(CLIENT_AUTH_TYPES)), "no_client_certs")
    if ssl.client_auth_type != "no_client_certs" and not ssl.root_ca:
        raise ConfigError(section.key("root_ca"), f"required when client_auth_type is {ssl.client_auth_type}")
    section.finish()
    return ssl


def _http2(section: Section) -> Http2Config:
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




def parse_http(hs: Section, cpu_count: int, workers_override: int | None = None) -> HttpConfig:
    """`http:`; `workers_override` is `serve --workers` (0: one per CPU)."""
    http = HttpConfig(address=hs.get("address", address, required=True, expected="host:port"))
    http.max_request_size = hs.get("max_request_size", parse_int, 1000)
    http.internal_error_code = hs.get("internal_error_code", _status, 500)
    http.raw_body = hs.get("raw_body", parse_bool, False)
    http.access_logs = hs.get("access_logs", parse_bool, False)
    http.middleware = hs.get("middleware", parse_str_list, [])
    if "websockets" in http.middleware:
        http.websockets = True
        http.middleware = [m for m in http.middleware if m != "websockets"]
    http.max_header_size = hs.get("max_header_size", parse_int, http.max_header_size)
    if http.max_header_size < 1024:
        raise ConfigError("http.max_header_size", f"expected at least 1024 bytes, got {http.max_header_size}")
    for name in ("read_timeout", "idle_timeout", "shutdown_timeout"):
        setattr(http, name, hs.get(name, parse_duration, getattr(http, name)))
    http.codec = hs.get("codec", choice({"json", "proto"}), "json")
    engines = choice({"auto", "python", "c"})
    http.engine = hs.get("engine", engines, engines("FASTRR_ENGINE", os.environ.get("FASTRR_ENGINE") or "auto"))
    http.pool = parse_pool(hs.sub("pool"), cpu_count)
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
    return http
