"""The amqp driver's keys: RoadRunner's `amqp:` section and its pipeline options
(rr-jobs.md §1.2, `amqpjobs/config.go`), read without importing the AMQP client.

    amqp:
      addr: amqp://guest:guest@127.0.0.1:5672/
      tls: {root_ca: ca.pem, cert: client.pem, key: client.key}   # optional
    jobs:
      pipelines:
        emails:
          driver: amqp
          config: {queue: emails, routing_key: emails, exchange: amqp.default, prefetch: 10}

`queue_headers` (the queue's declare arguments, e.g. `x-max-priority` or
`x-dead-letter-exchange`) is a YAML map, or a JSON object string as
`jobs.Declare` sends it. `consume_all` is accepted because RoadRunner's PHP
AMQPCreateInfo sends it; no RoadRunner version reads it and neither does
fastrr. `exchange_declare`/`queue_declare` (RoadRunner v6's Declare keys,
default true) turn off declaring an exchange/queue that exists already.

TLS: `root_ca` verifies the broker, `cert`+`key` are the client certificate
(both or neither); an `amqp://` addr is dialed as `amqps://` when `tls` is
set. `client_auth_type` is a server-side setting in RoadRunner's shared TLS
config: it is checked for a valid value and has no effect on a client.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

from fastrr.config.section import Section
from fastrr.config.units import ConfigError, parse_bool, parse_int, parse_str
from fastrr.jobs.config import PipelineConfig, Reader

GLOBAL_SECTION: str | None = "amqp"
DEFAULT_ADDR = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_REDIAL_TIMEOUT = 60
EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers")
CLIENT_AUTH_TYPES = ("no_client_certs", "request_client_cert", "require_any_client_cert",
                     "verify_client_cert_if_given", "require_and_verify_client_cert")
MAX_PREFETCH = 65535  # basic.qos prefetch-count is a 16-bit field


@dataclass
class AmqpTls:
    root_ca: str = ""
    cert: str = ""
    key: str = ""
    client_auth_type: str = ""


@dataclass
class AmqpBroker:
    addr: str = DEFAULT_ADDR
    tls: AmqpTls | None = None


def _prefetch(path: str, value: Any) -> int:
    n = parse_int(path, value)
    if not 1 <= n <= MAX_PREFETCH:
        raise ConfigError(path, f"expected 1..{MAX_PREFETCH} unacked jobs (AMQP basic.qos), got {n}")
    return n


def _redial_timeout(path: str, value: Any) -> int:
    n = parse_int(path, value, minimum=None)
    return n if n > 0 else DEFAULT_REDIAL_TIMEOUT  # RoadRunner's InitDefault: <= 0 means 60


def _exchange_type(path: str, value: Any) -> str:
    kind = parse_str(path, value).strip().lower()
    if kind not in EXCHANGE_TYPES:
        raise ConfigError(path, f"expected one of {', '.join(EXCHANGE_TYPES)}, got {value!r}")
    return kind


def _check_table(path: str, value: Any) -> None:
    """What an AMQP field table can carry (strings, numbers, bools, lists, maps)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_table(f"{path}[{i}]", item)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _check_table(f"{path}.{key}", item)
        return
    raise ConfigError(path, f"expected a string, number, bool, list or map, got {type(value).__name__}")


def _queue_headers(path: str, value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ConfigError(path, f"expected a JSON object (as jobs.Declare sends it): {exc}") from None
    if not isinstance(value, dict):
        raise ConfigError(path, f"expected a map of queue arguments, got {type(value).__name__} {value!r}")
    _check_table(path, value)
    return {str(k): v for k, v in value.items()}


OPTIONS: dict[str, tuple[Reader, Any]] = {
    "prefetch": (_prefetch, 10),
    "redial_timeout": (_redial_timeout, DEFAULT_REDIAL_TIMEOUT),
    "queue": (parse_str, ""),
    "exchange": (parse_str, "amqp.default"),
    "exchange_type": (_exchange_type, "direct"),
    "routing_key": (parse_str, ""),
    "exclusive": (parse_bool, False),
    "durable": (parse_bool, False),
    "delete_queue_on_stop": (parse_bool, False),
    "multiple_ack": (parse_bool, False),
    "requeue_on_fail": (parse_bool, False),
    "exchange_durable": (parse_bool, False),
    "exchange_auto_delete": (parse_bool, False),
    "queue_auto_delete": (parse_bool, False),
    "queue_headers": (_queue_headers, {}),
    "consumer_id": (parse_str, ""),  # "" → roadrunner-<uuid4>, one per driver instance
    "consume_all": (parse_bool, False),
    "exchange_declare": (parse_bool, True),
    "queue_declare": (parse_bool, True),
}
# RoadRunner's FromPipeline (jobs.Declare) uses the same defaults as its YAML config.
DECLARE_DEFAULTS: dict[str, Any] = {}


def _file(section: Section, name: str) -> str:
    path = section.get(name, parse_str, "")
    if path and not os.path.isfile(path):
        raise ConfigError(section.key(name), f"no such file: {path}")
    return str(path)


def parse_global(section: Section) -> AmqpBroker:
    addr = section.get("addr", parse_str, DEFAULT_ADDR).strip() or DEFAULT_ADDR
    if not addr.startswith(("amqp://", "amqps://")):
        raise ConfigError(section.key("addr"), f"expected an amqp:// or amqps:// URL, got {addr!r}")
    broker = AmqpBroker(addr=addr)
    if section.raw.get("tls") is not None:
        tls_section = section.sub("tls")
        tls = AmqpTls(root_ca=_file(tls_section, "root_ca"), cert=_file(tls_section, "cert"),
                      key=_file(tls_section, "key"),
                      client_auth_type=tls_section.get("client_auth_type", parse_str, ""))
        if bool(tls.cert) != bool(tls.key):
            raise ConfigError(tls_section.key("cert" if tls.key else "key"),
                              "a client certificate needs both cert and key")
        if tls.client_auth_type and tls.client_auth_type not in CLIENT_AUTH_TYPES:
            raise ConfigError(tls_section.key("client_auth_type"),
                              f"expected one of {', '.join(CLIENT_AUTH_TYPES)}, got {tls.client_auth_type!r}")
        tls_section.finish()
        broker.tls = tls
    else:
        section.used.add("tls")
    return broker


def check(pipe: PipelineConfig, path: str) -> None:
    opts = pipe.options
    if not str(opts["exchange"]).strip():
        raise ConfigError(f"{path}.exchange", "expected an exchange name (the default exchange \"\" cannot be "
                                              "declared or bound; the default is amqp.default)")
    if not opts["queue"]:
        for key in ("exclusive", "durable", "delete_queue_on_stop", "queue_auto_delete"):
            if opts[key]:
                raise ConfigError(f"{path}.{key}", "is a queue option, but the pipeline has no queue "
                                                   "(a push-only pipeline): set queue or drop the option")
        if opts["queue_headers"]:
            raise ConfigError(f"{path}.queue_headers", "the pipeline has no queue to declare with these arguments")
    if opts["exclusive"] and opts["durable"]:
        raise ConfigError(f"{path}.exclusive", "an exclusive queue is deleted with its connection, so it cannot "
                                               "also be durable")
    if not opts["consumer_id"]:
        opts["consumer_id"] = f"roadrunner-{uuid.uuid4()}"
