"""aiokafka clients for the kafka driver: connection options from the `kafka:` section,
the producer (with its idempotence fallback), the topic check, the consumer's
options and where a partition starts (consumer_offset)."""

from __future__ import annotations

import asyncio
import itertools
import ssl
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError

from fastrr.jobs.drivers.base import DriverError
from fastrr.jobs.drivers.kafka.config import (
    ACKS,
    ConsumerOptions,
    GroupOptions,
    KafkaBroker,
    Offset,
    ProducerOptions,
)
from fastrr.log import Logger

DEFAULT_DELIVERY_TIMEOUT = 30.0  # seconds aiokafka retries one produce (its request_timeout_ms)


def describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, KeyError) and text == "'v'":  # aiokafka's SCRAM client meeting a server-final error
        return "SASL authentication failed (the broker refused the credentials)"
    return text if type(exc).__name__ in text else f"{type(exc).__name__}: {text}"


class RoundRobin:
    """aiokafka partitioner for `partitioning_strategy: RoundRobin`."""

    def __init__(self) -> None:
        self._next = itertools.count()

    def __call__(self, key: bytes, all_partitions: list[int], available: list[int]) -> int:
        choices = available or all_partitions
        return choices[next(self._next) % len(choices)]


def where(broker: KafkaBroker) -> str:
    return ",".join(broker.brokers)


def connection_options(broker: KafkaBroker) -> dict[str, Any]:
    """What every aiokafka client of the pipeline is given: brokers, TLS, SASL."""
    options: dict[str, Any] = {"bootstrap_servers": broker.brokers, "client_id": "fastrr",
                               "request_timeout_ms": int(max(broker.ping_timeout, 1.0) * 1000)}
    secure = broker.tls.enabled
    if secure:
        try:
            context = ssl.create_default_context(cafile=broker.tls.root_ca or None)
            if broker.tls.cert:
                context.load_cert_chain(broker.tls.cert, broker.tls.key)
        except (OSError, ssl.SSLError) as exc:
            raise DriverError(f"kafka tls: cannot load the certificates: {exc}") from None
        options["ssl_context"] = context
    if broker.sasl.mechanism:
        options["security_protocol"] = "SASL_SSL" if secure else "SASL_PLAINTEXT"
        options["sasl_mechanism"] = broker.sasl.mechanism
        options["sasl_plain_username"] = broker.sasl.username
        options["sasl_plain_password"] = broker.sasl.password
    elif secure:
        options["security_protocol"] = "SSL"
    return options


async def start_producer(broker: KafkaBroker, popts: ProducerOptions, log: Logger, pipeline: str) -> Any:
    """A started producer; DriverError naming the brokers when they cannot be reached or refuse us.
    A broker that refuses an idempotent producer (Tansu does) gets an acks=all one, logged."""
    kwargs = connection_options(broker)
    delivery = popts.delivery_timeout or popts.request_timeout or DEFAULT_DELIVERY_TIMEOUT
    kwargs.update(acks=ACKS[popts.required_acks], request_timeout_ms=int(delivery * 1000), linger_ms=0,
                  retry_backoff_ms=200)
    if popts.max_message_bytes:
        kwargs["max_request_size"] = popts.max_message_bytes
    if popts.compression_codec:
        kwargs["compression_type"] = popts.compression_codec
    if popts.partitioning_strategy == "RoundRobin":
        kwargs["partitioner"] = RoundRobin()
    idempotent = not popts.disable_idempotent
    while True:
        try:
            producer = AIOKafkaProducer(enable_idempotence=idempotent, **kwargs)
        except (ValueError, RuntimeError, AssertionError) as exc:  # e.g. a codec without its library
            raise DriverError(f"kafka producer options: {exc}") from None
        try:
            await asyncio.wait_for(producer.start(), broker.ping_timeout)
            return producer
        except (KafkaConnectionError, TimeoutError, OSError, KeyError) as exc:
            await producer.stop()
            why = "no answer within ping.timeout" if isinstance(exc, TimeoutError) else describe(exc)
            raise DriverError(f"kafka brokers {where(broker)}: {why}") from None
        except KafkaError as exc:
            await producer.stop()
            if not idempotent:
                raise DriverError(f"kafka brokers {where(broker)}: {describe(exc)}") from None
            log.warn("kafka broker refused an idempotent producer: writes use acks=all without idempotence "
                     "(a retried produce may duplicate a job)", pipeline=pipeline, brokers=where(broker),
                     error=describe(exc))
            idempotent = False


async def check_topics(producer: Any, broker: KafkaBroker, copts: ConsumerOptions, create: bool) -> list[str]:
    """The pipeline's topics exist (or are created, with `create`): the ones created."""
    if copts.consume_regexp:
        return []  # a pattern names no topic to check
    wanted = list(copts.topics or copts.consume_partitions)
    try:
        cluster = await asyncio.wait_for(producer.client.fetch_all_metadata(), broker.ping_timeout)
    except (KafkaError, TimeoutError, OSError) as exc:
        raise DriverError(f"kafka brokers {where(broker)}: cannot read the topics: {describe(exc)}") from None
    missing = [t for t in wanted if t not in cluster.topics()]
    if not missing:
        return []
    if not create:
        raise DriverError(f"kafka brokers {where(broker)}: topic {', '.join(missing)} does not exist (create it, "
                          "or set auto_create_topics_enable: true)")
    admin = AIOKafkaAdminClient(**connection_options(broker))
    try:
        await admin.start()
        await admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1) for t in missing])
    except KafkaError as exc:
        raise DriverError(f"kafka brokers {where(broker)}: cannot create topic {', '.join(missing)}: "
                          f"{describe(exc)}") from None
    finally:
        await admin.close()
    return missing


def consumer_options(broker: KafkaBroker, copts: ConsumerOptions, group: GroupOptions | None,
                     prefetch: int) -> dict[str, Any]:
    kwargs = connection_options(broker)
    kwargs.update(enable_auto_commit=False, max_poll_records=prefetch,
                  auto_offset_reset="latest" if copts.consumer_offset.type == "AtEnd" else "earliest")
    if copts.max_fetch_message_size:
        kwargs["fetch_max_bytes"] = copts.max_fetch_message_size
    if copts.min_fetch_message_size:
        kwargs["fetch_min_bytes"] = copts.min_fetch_message_size
    if group is not None:
        # a JoinGroup may be held by the coordinator up to the session timeout: the request must outlive it
        kwargs.update(group_id=group.group_id, session_timeout_ms=int(group.session_timeout * 1000),
                      heartbeat_interval_ms=int(group.heartbeat_interval * 1000),
                      request_timeout_ms=int(max(30.0, group.session_timeout + 5.0) * 1000))
        if group.instance_id:
            kwargs["group_instance_id"] = group.instance_id
        if copts.consume_regexp:
            kwargs["metadata_max_age_ms"] = 5000  # new matching topics are found within seconds
    return kwargs


async def seek(consumer: Any, tp: Any, spec: Offset) -> None:
    """Start `tp` where `spec` says (a partition with no committed offset, or a fixed one)."""
    if spec.type == "AtStart":
        await consumer.seek_to_beginning(tp)
    elif spec.type == "AtEnd":
        await consumer.seek_to_end(tp)
    elif spec.type == "At":
        consumer.seek(tp, spec.value)
    elif spec.type == "AfterMilli":
        found = (await consumer.offsets_for_times({tp: spec.value})).get(tp)
        if found is None:
            await consumer.seek_to_end(tp)
        else:
            consumer.seek(tp, found.offset)
    elif spec.type == "Relative":  # from the end, as franz-go's NewOffset().Relative(n)
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.seek(tp, max(0, end + spec.value))
