"""The kafka driver's keys, as RoadRunner's kafka plugin names them (kafkajobs/opts.go, config.go).

Global section `kafka:` (read by parse_global):

    kafka:
      brokers: ["127.0.0.1:9092"]
      tls: {timeout: 10s, key: "", cert: "", root_ca: "", client_auth_type: no_client_cert}
      sasl: {mechanism: plain | SCRAM-SHA-256 | SCRAM-SHA-512, username: "", password: ""}
      ping: {timeout: 10s}

Pipeline keys (YAML top level or `config`; in jobs.Declare the three option
maps arrive as JSON strings):

    priority: 10
    auto_create_topics_enable: false
    prefetch: 100              # fastrr: records held (running, queued or delayed) at once
    producer_options: {disable_idempotent, required_acks NoAck|LeaderAck|AllISRAck,
                       max_message_bytes, request_timeout, delivery_timeout,
                       transaction_timeout, compression_codec, partitioning_strategy}
    consumer_options: {topics: [...] | consume_partitions: {topic: {partition: {type, value}}},
                       consumer_offset: {type: At|AfterMilli|AtEnd|AtStart|Relative, value},
                       consume_regexp, max_fetch_message_size, min_fetch_message_size}
    group_options: {group_id, instance_id, block_rebalance_on_poll,
                    session_timeout, heartbeat_interval}   # the last two: fastrr's

Keys with no aiokafka equivalent: `transaction_timeout` (fastrr does not use
transactions) and `block_rebalance_on_poll` (fastrr always lets the running
jobs of a revoked partition finish, bounded, before giving it up) are accepted
and warned about at open; `tls.client_auth_type` is a server-side notion and
is accepted without effect. Ones that would mislead are errors: the
`aws_msk_iam` mechanism, `WithEpoch` offsets, and the `Manual` partitioning
strategy (fastrr's Push carries no partition).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from fastrr.config.section import Section
from fastrr.config.units import ConfigError, parse_bool, parse_duration, parse_int, parse_str, parse_str_list
from fastrr.jobs.config import PipelineConfig, Reader

GLOBAL_SECTION: str | None = "kafka"

ACKS = {"NoAck": 0, "LeaderAck": 1, "AllISRAck": "all"}
CODECS = ("gzip", "snappy", "lz4", "zstd")
PARTITIONING = ("Manual", "Uniform", "RoundRobin", "LeastBackup", "Sticky")
OFFSET_TYPES = ("At", "AfterMilli", "AtEnd", "AtStart", "Relative", "WithEpoch")
SASL_MECHANISMS = {"plain": "PLAIN", "scram-sha-256": "SCRAM-SHA-256", "scram-sha-512": "SCRAM-SHA-512"}
CLIENT_AUTH_TYPES = ("no_client_cert", "request_client_cert", "require_any_client_cert",
                     "verify_client_cert_if_given", "require_and_verify_client_cert")
DEFAULT_PREFETCH = 100


@dataclass
class TLSConfig:
    timeout: float = 10.0
    key: str = ""
    cert: str = ""
    root_ca: str = ""
    client_auth_type: str = "no_client_cert"

    @property
    def enabled(self) -> bool:  # as RoadRunner: a key pair or a CA turns TLS on
        return bool(self.key and self.cert) or bool(self.root_ca)


@dataclass
class SASLConfig:
    mechanism: str = ""  # aiokafka's spelling (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); "" = none
    username: str = ""
    password: str = ""


@dataclass
class KafkaBroker:
    """The `kafka:` section."""

    brokers: list[str] = field(default_factory=list)
    tls: TLSConfig = field(default_factory=TLSConfig)
    sasl: SASLConfig = field(default_factory=SASLConfig)
    ping_timeout: float = 10.0
    present: bool = False  # the section was in the config (RoadRunner needs it for any kafka pipeline)


@dataclass
class Offset:
    type: str = "AtStart"
    value: int = 0


@dataclass
class ProducerOptions:
    disable_idempotent: bool = False
    required_acks: str = "AllISRAck"
    max_message_bytes: int = 0  # 0: aiokafka's default (1 MiB)
    request_timeout: float = 0.0
    delivery_timeout: float = 0.0
    transaction_timeout: float = 0.0
    compression_codec: str = ""
    partitioning_strategy: str = ""


@dataclass
class ConsumerOptions:
    topics: list[str] = field(default_factory=list)
    consume_partitions: dict[str, dict[int, Offset]] = field(default_factory=dict)
    consumer_offset: Offset = field(default_factory=Offset)
    consume_regexp: bool = False
    max_fetch_message_size: int = 0
    min_fetch_message_size: int = 0


@dataclass
class GroupOptions:
    group_id: str = ""
    instance_id: str = ""
    block_rebalance_on_poll: bool = False
    session_timeout: float = 10.0  # aiokafka's default (Tansu delays a group's first join by half of it)
    heartbeat_interval: float = 3.0


# -- the global section ---------------------------------------------------------------------


def _broker_address(path: str, value: Any) -> str:
    text = parse_str(path, value).strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    if not re.fullmatch(r"[^\s:/]+:\d{1,5}", text):
        raise ConfigError(path, f"expected host:port, got {value!r}")
    return text


def parse_global(section: Section) -> KafkaBroker:
    cfg = KafkaBroker(present=bool(section.raw))
    raw = section.get("brokers", parse_str_list, [])
    cfg.brokers = [_broker_address(f"{section.key('brokers')}[{i}]", b) for i, b in enumerate(raw)]
    tls = section.sub("tls")
    cfg.tls = TLSConfig(timeout=tls.get("timeout", parse_duration, 10.0), key=tls.get("key", parse_str, ""),
                        cert=tls.get("cert", parse_str, ""), root_ca=tls.get("root_ca", parse_str, ""),
                        client_auth_type=tls.get("client_auth_type", parse_str, "no_client_cert"))
    if cfg.tls.client_auth_type not in CLIENT_AUTH_TYPES:
        raise ConfigError(tls.key("client_auth_type"),
                          f"expected one of {', '.join(CLIENT_AUTH_TYPES)}, got {cfg.tls.client_auth_type!r}")
    if bool(cfg.tls.key) != bool(cfg.tls.cert):
        raise ConfigError(tls.key("key" if not cfg.tls.key else "cert"), "tls.key and tls.cert go together")
    tls.finish()
    sasl = section.sub("sasl")
    if sasl.raw:
        mechanism = sasl.get("mechanism", parse_str, "", required=True,
                             expected="plain, SCRAM-SHA-256 or SCRAM-SHA-512")
        if mechanism.strip().lower() == "aws_msk_iam":
            raise ConfigError(sasl.key("mechanism"), "aws_msk_iam is not supported by fastrr's kafka driver "
                                                     "(aiokafka has no MSK IAM signer); use SCRAM or plain")
        name = SASL_MECHANISMS.get(mechanism.strip().lower())
        if name is None:
            raise ConfigError(sasl.key("mechanism"), f"expected plain, SCRAM-SHA-256 or SCRAM-SHA-512, "
                                                     f"got {mechanism!r}")
        cfg.sasl = SASLConfig(mechanism=name, username=sasl.get("username", parse_str, ""),
                              password=sasl.get("password", parse_str, ""))
        for unused in ("zid", "nonce", "is_token", "access_key", "secret_key", "session_token", "user_agent"):
            if unused in sasl.raw:
                sasl.used.add(unused)
                section.warnings.append(f"{sasl.key(unused)}: not supported by fastrr's kafka driver, ignored")
        sasl.finish()
    ping = section.sub("ping")
    cfg.ping_timeout = ping.get("timeout", parse_duration, 10.0)
    ping.finish()
    return cfg


# -- the pipeline's option maps ----------------------------------------------------------------


def _mapping(path: str, value: Any) -> dict[str, Any]:
    """A YAML mapping, or the JSON object string jobs.Declare carries."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError as exc:
            raise ConfigError(path, f"expected a JSON object, got {value[:100]!r} ({exc})") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(path, f"expected a mapping, got {type(value).__name__} {value!r}")
    return value


def _known(path: str, values: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in values:
        if key not in keys:
            raise ConfigError(f"{path}.{key}", f"unknown key (known: {', '.join(keys)})")


def _offset(path: str, value: Any) -> Offset:
    values = _mapping(path, value)
    _known(path, values, ("type", "value"))
    kind = parse_str(f"{path}.type", values.get("type") or "AtStart")
    match = next((t for t in OFFSET_TYPES if t.lower() == kind.strip().lower()), None)
    if match is None:
        raise ConfigError(f"{path}.type", f"expected one of {', '.join(OFFSET_TYPES)}, got {kind!r}")
    if match == "WithEpoch":
        raise ConfigError(f"{path}.type", "WithEpoch offsets are not supported by fastrr's kafka driver "
                                          "(aiokafka cannot seek by leader epoch)")
    number = parse_int(f"{path}.value", values.get("value") or 0, minimum=None)
    if match in ("At", "AfterMilli") and number < 0:
        raise ConfigError(f"{path}.value", f"expected an offset or a time >= 0 for {match}, got {number}")
    return Offset(match, number)


def _producer_options(path: str, value: Any) -> ProducerOptions:
    values = _mapping(path, value)
    _known(path, values, tuple(ProducerOptions.__dataclass_fields__))
    opts = ProducerOptions()
    if values.get("disable_idempotent") is not None:
        opts.disable_idempotent = parse_bool(f"{path}.disable_idempotent", values["disable_idempotent"])
    if values.get("required_acks"):
        acks = parse_str(f"{path}.required_acks", values["required_acks"])
        if acks not in ACKS:
            raise ConfigError(f"{path}.required_acks", f"expected one of {', '.join(ACKS)}, got {acks!r}")
        opts.required_acks = acks
    if values.get("max_message_bytes") is not None:
        opts.max_message_bytes = parse_int(f"{path}.max_message_bytes", values["max_message_bytes"])
    for key in ("request_timeout", "delivery_timeout", "transaction_timeout"):
        if values.get(key) is not None:
            setattr(opts, key, parse_duration(f"{path}.{key}", values[key]))
    if values.get("compression_codec"):
        codec = parse_str(f"{path}.compression_codec", values["compression_codec"]).strip().lower()
        if codec not in CODECS:
            raise ConfigError(f"{path}.compression_codec", f"expected one of {', '.join(CODECS)}, got {codec!r}")
        opts.compression_codec = codec
    if values.get("partitioning_strategy"):
        strategy = parse_str(f"{path}.partitioning_strategy", values["partitioning_strategy"])
        match = next((s for s in PARTITIONING if s.lower() == strategy.strip().lower()), None)
        if match is None:
            raise ConfigError(f"{path}.partitioning_strategy",
                              f"expected one of {', '.join(PARTITIONING)}, got {strategy!r}")
        if match == "Manual":
            raise ConfigError(f"{path}.partitioning_strategy",
                              "Manual is not supported: fastrr's jobs.Push carries no partition; use Uniform, "
                              "RoundRobin or Sticky")
        opts.partitioning_strategy = match
    return opts


def _consumer_options(path: str, value: Any) -> ConsumerOptions:
    values = _mapping(path, value)
    _known(path, values, tuple(ConsumerOptions.__dataclass_fields__))
    opts = ConsumerOptions()
    if values.get("topics") is not None:
        opts.topics = parse_str_list(f"{path}.topics", values["topics"])
    parts = _mapping(f"{path}.consume_partitions", values.get("consume_partitions"))
    for topic, by_partition in parts.items():
        where = f"{path}.consume_partitions.{topic}"
        offsets: dict[int, Offset] = {}
        if isinstance(by_partition, list):  # PHP's json_encode of {0: ...} is a list: index = partition
            by_partition = dict(enumerate(by_partition))
        for number, spec in _mapping(where, by_partition).items():
            partition = parse_int(f"{where}.{number}", number)
            offsets[partition] = _offset(f"{where}.{number}", spec)
        if not offsets:
            raise ConfigError(where, "expected at least one partition: {partition: {type, value}}")
        opts.consume_partitions[str(topic)] = offsets
    if values.get("consumer_offset") is not None:
        opts.consumer_offset = _offset(f"{path}.consumer_offset", values["consumer_offset"])
    if values.get("consume_regexp") is not None:
        opts.consume_regexp = parse_bool(f"{path}.consume_regexp", values["consume_regexp"])
    for key in ("max_fetch_message_size", "min_fetch_message_size"):
        if values.get(key) is not None:
            setattr(opts, key, parse_int(f"{path}.{key}", values[key]))
    return opts


def _group_options(path: str, value: Any) -> GroupOptions:
    values = _mapping(path, value)
    _known(path, values, tuple(GroupOptions.__dataclass_fields__))
    opts = GroupOptions()
    for key in ("group_id", "instance_id"):
        if values.get(key) is not None:
            setattr(opts, key, parse_str(f"{path}.{key}", values[key]).strip())
    if values.get("block_rebalance_on_poll") is not None:
        opts.block_rebalance_on_poll = parse_bool(f"{path}.block_rebalance_on_poll", values["block_rebalance_on_poll"])
    for key in ("session_timeout", "heartbeat_interval"):
        if values.get(key) is not None:
            setattr(opts, key, parse_duration(f"{path}.{key}", values[key]))
    if values and not opts.group_id:
        # RoadRunner: "no group ID defined for group options"
        raise ConfigError(f"{path}.group_id", "required when group_options is given")
    return opts


def _prefetch(path: str, value: Any) -> int:
    return parse_int(path, value, minimum=1)


def _declared_brokers(path: str, value: Any) -> list[str]:
    """roadrunner-php's KafkaCreateInfo sends `brokers` (a JSON list); RoadRunner ignores it."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ConfigError(path, f"expected a JSON list of host:port, got {value[:100]!r} ({exc})") from None
    return [_broker_address(f"{path}[{i}]", b) for i, b in enumerate(parse_str_list(path, value))]


OPTIONS: dict[str, tuple[Reader, Any]] = {
    "auto_create_topics_enable": (parse_bool, False),
    # what roadrunner-php's KafkaCreateInfo sends: `auto_create_topics` (fastrr honours it, RoadRunner reads
    # only auto_create_topics_enable), `brokers` and `sasl` (the global kafka section wins, as in RoadRunner)
    "auto_create_topics": (parse_bool, False),
    "brokers": (_declared_brokers, []),
    "sasl": (_mapping, {}),
    "prefetch": (_prefetch, DEFAULT_PREFETCH),
    "producer_options": (_producer_options, ProducerOptions()),
    "consumer_options": (_consumer_options, ConsumerOptions()),
    "group_options": (_group_options, None),
}
DECLARE_DEFAULTS: dict[str, Any] = {}


def check(pipe: PipelineConfig, path: str) -> None:
    consumer: ConsumerOptions = pipe.options["consumer_options"]
    group: GroupOptions | None = pipe.options["group_options"]
    where = f"{path}.consumer_options"
    if consumer.topics and consumer.consume_partitions:
        raise ConfigError(f"{where}.consume_partitions", "give topics or consume_partitions, not both")
    if not consumer.topics and not consumer.consume_partitions:
        raise ConfigError(f"{where}.topics", "a kafka pipeline needs at least one topic (pushes go to the first "
                                             "one; consumers read them all)")
    if consumer.consume_regexp:
        if group is None:
            raise ConfigError(f"{where}.consume_regexp", "needs group_options.group_id (a pattern subscription "
                                                         "is a consumer group's)")
        for i, topic in enumerate(consumer.topics):
            try:
                re.compile(topic)
            except re.error as exc:
                raise ConfigError(f"{where}.topics[{i}]", f"not a regular expression: {exc}") from None
    if consumer.consume_partitions and group is not None:
        raise ConfigError(f"{where}.consume_partitions", "consume_partitions reads fixed partitions without a "
                                                         "consumer group: drop group_options or use topics")
    if group is not None and group.heartbeat_interval >= group.session_timeout:
        raise ConfigError(f"{path}.group_options.heartbeat_interval",
                          f"must be below session_timeout ({group.session_timeout:g}s)")
    min_fetch, max_fetch = consumer.min_fetch_message_size, consumer.max_fetch_message_size
    if min_fetch and max_fetch and min_fetch > max_fetch:
        raise ConfigError(f"{where}.min_fetch_message_size", f"is above max_fetch_message_size ({max_fetch})")
    if pipe.options.pop("auto_create_topics"):
        pipe.options["auto_create_topics_enable"] = True
    producer: ProducerOptions = pipe.options["producer_options"]
    if producer.required_acks != "AllISRAck" and not producer.disable_idempotent:
        # franz-go refuses the same: an idempotent producer needs acks from every in-sync replica
        raise ConfigError(f"{path}.producer_options.required_acks",
                          f"{producer.required_acks} needs disable_idempotent: true (idempotent writes need "
                          "AllISRAck)")


def push_topic(consumer: ConsumerOptions) -> str:
    """Where pushes go: the first topic (RoadRunner takes it from each push's options)."""
    return consumer.topics[0] if consumer.topics else next(iter(consumer.consume_partitions))
