"""The `grpc:` section, RoadRunner's keys and defaults (rr-plugins.md §1.1):

    grpc:
      listen: tcp://127.0.0.1:9001   # or unix:///run/app.sock; must contain ':'
      proto: [proto/service.proto]   # globs expanded; services and methods come from these
      tls: {key: k.pem, cert: c.pem, root_ca: ca.pem, client_auth_type: require_and_verify_client_cert}
      max_send_msg_size: 50          # MB
      max_recv_msg_size: 50          # MB
      max_connection_idle: 0s        # 0 = infinity
      max_connection_age: 0s
      max_connection_age_grace: 0s
      max_concurrent_streams: 10     # per connection
      ping_time: 2h                  # keepalive: ping an idle connection this often...
      timeout: 20s                   # ...and drop it when the ping is not answered in this time
      env: {KEY: value}              # added to the workers' environment
      pool: {num_workers: 4}         # the grpc workers, RR_MODE=grpc

As in RoadRunner, `timeout` is the keepalive ping timeout, not a per-call
limit: a call is bounded by the client's deadline and by the pool's
`supervisor.exec_ttl` (fastrr's default 60s). A missing proto file is a
config error naming it (RoadRunner: "proto file '%s' does not exists"); a
glob that matches nothing is one too (RoadRunner silently serves nothing).
`interceptors` name Go plugins; fastrr has none, so a non-empty list is an
error rather than a silently missing (say, auth) interceptor.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from typing import Any

from fastrr.config.section import Section, choice
from fastrr.config.units import ConfigError, parse_duration, parse_int, parse_str, parse_str_list, parse_str_map
from fastrr.pool.config import PoolConfig, parse_pool

# Go's tls.ClientAuthType names; RoadRunner falls back to no_client_cert for any
# other value (the docs write no_client_certs), fastrr says so instead.
CLIENT_AUTH = {"no_client_cert", "no_client_certs", "request_client_cert", "require_any_client_cert",
               "verify_client_cert_if_given", "require_and_verify_client_cert"}
MB = 1 << 20


@dataclass
class TlsConfig:
    key: str = ""
    cert: str = ""
    root_ca: str = ""
    client_auth_type: str = "no_client_cert"


@dataclass
class GrpcConfig:
    listen: str = ""
    proto: list[str] = field(default_factory=list)
    tls: TlsConfig | None = None
    max_send_msg_size: int = 50 * MB  # bytes (the key is in MB)
    max_recv_msg_size: int = 50 * MB
    max_connection_idle: float = 0.0  # seconds, 0 = infinity
    max_connection_age: float = 0.0
    max_connection_age_grace: float = 0.0
    max_concurrent_streams: int = 10
    ping_time: float = 7200.0
    timeout: float = 20.0
    env: dict[str, str] = field(default_factory=dict)
    pool: PoolConfig = field(default_factory=PoolConfig)


def parse_listen(path: str, value: Any) -> str:
    """tcp://host:port, host:port, :port (every interface) or unix:///path, as RoadRunner's tcplisten."""
    text = parse_str(path, value).strip()
    if ":" not in text:
        raise ConfigError(path, f"malformed grpc address, expected tcp://host:port or unix:///path, got {text!r}")
    if text.startswith("unix://"):
        if len(text) == 7:
            raise ConfigError(path, "expected a socket path after unix://")
        return text
    rest = text[6:] if text.startswith("tcp://") else text
    host, _, port = rest.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise ConfigError(path, f"expected tcp://host:port, got {text!r}")
    return f"tcp://{host}:{port}"


def _protos(section: Section) -> list[str]:
    files: list[str] = []
    key = section.key("proto")
    for i, pattern in enumerate(section.get("proto", parse_str_list, [], required=True,
                                            expected="a list of .proto files")):
        if not pattern:
            continue
        if any(c in pattern for c in "*?[{"):
            matched = sorted(glob.glob(pattern, recursive=True))
            if not matched:
                raise ConfigError(f"{key}[{i}]", f"no proto file matches {pattern!r}")
            files.extend(matched)
        elif not os.path.isfile(pattern):
            raise ConfigError(f"{key}[{i}]", f"proto file '{pattern}' does not exist")
        else:
            files.append(pattern)
    if not files:
        raise ConfigError(key, "expected at least one .proto file")
    return files


def _tls(section: Section) -> TlsConfig | None:
    if not section.raw:
        section.finish()
        return None
    tls = TlsConfig(key=section.get("key", parse_str, ""), cert=section.get("cert", parse_str, ""),
                    root_ca=section.get("root_ca", parse_str, ""),
                    client_auth_type=section.get("client_auth_type", choice(CLIENT_AUTH), "no_client_cert"))
    section.finish()
    if not tls.key and not tls.cert:
        return None  # RoadRunner: TLS is on only with both
    for name in ("key", "cert", "root_ca"):
        value = getattr(tls, name)
        if name != "root_ca" and not value:
            raise ConfigError(section.key(name), "required with grpc.tls (key and cert turn TLS on)")
        if value and not os.path.isfile(value):
            raise ConfigError(section.key(name), f"{name} file '{value}' does not exist")
    if tls.client_auth_type == "no_client_certs":
        tls.client_auth_type = "no_client_cert"
    if tls.client_auth_type != "no_client_cert" and not tls.root_ca:
        raise ConfigError(section.key("client_auth_type"),
                          f"{tls.client_auth_type} needs grpc.tls.root_ca to check client certificates against")
    return tls


def _size_mb(section: Section, name: str) -> int:
    mb = section.get(name, parse_int, 0)
    return (mb or 50) * MB  # 0 = RoadRunner's default 50 MB


def parse_grpc(section: Section, cpu_count: int) -> GrpcConfig:
    cfg = GrpcConfig()
    cfg.listen = section.get("listen", parse_listen, required=True, expected="e.g. tcp://127.0.0.1:9001")
    cfg.proto = _protos(section)
    cfg.tls = _tls(section.sub("tls"))
    cfg.max_send_msg_size = _size_mb(section, "max_send_msg_size")
    cfg.max_recv_msg_size = _size_mb(section, "max_recv_msg_size")
    for name in ("max_connection_idle", "max_connection_age", "max_connection_age_grace"):
        setattr(cfg, name, section.get(name, parse_duration, 0.0))
    cfg.max_concurrent_streams = section.get("max_concurrent_streams", parse_int, 0) or 10
    cfg.ping_time = section.get("ping_time", parse_duration, 0.0) or 7200.0
    cfg.timeout = section.get("timeout", parse_duration, 0.0) or 20.0
    cfg.env = {k.upper(): v for k, v in section.get("env", parse_str_map, {}).items()}
    interceptors = section.get("interceptors", parse_str_list, [])
    if interceptors:
        raise ConfigError(section.key("interceptors"),
                          f"fastrr has no grpc interceptor plugins (asked for {', '.join(interceptors)}); "
                          "remove the key rather than serve without them")
    cfg.pool = parse_pool(section.sub("pool"), cpu_count)
    section.finish()
    return cfg
