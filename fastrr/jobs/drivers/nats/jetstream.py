"""The JetStream objects a nats pipeline needs, and the words its errors are told in.

`ensure_stream` creates a missing stream (file storage) or checks an existing
one covers the subject; it never changes a stream that exists (RoadRunner's
CreateOrUpdateStream replaces its subjects). `ensure_consumer` creates the
durable pull consumer or updates the settings JetStream lets change
(ack_wait, max_ack_pending); its deliver policy stays what it was made with.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from nats.errors import NoRespondersError
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from fastrr.jobs.drivers.base import DriverError
from fastrr.log import Logger


def shown(addr: str) -> str:
    """The address without its password, for logs and errors."""
    out = []
    for url in addr.split(","):
        url = url.strip()
        parts = urlsplit(url if "://" in url else f"nats://{url}")
        if parts.password is not None:
            host = parts.hostname or ""
            netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
            url = urlunsplit(parts._replace(netloc=netloc))
        out.append(url)
    return ",".join(out)


def describe(exc: BaseException) -> str:
    if isinstance(exc, NoRespondersError):
        return "no JetStream answers on this server (is it started with JetStream, -js?)"
    text = str(exc).strip()
    if text.startswith("nats: "):
        text = text[6:]
    return text or type(exc).__name__


def covers(pattern: str, subject: str) -> bool:
    """Whether stream subject `pattern` (with * and > wildcards) matches `subject`."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(want) == len(have)


async def ensure_stream(js: JetStreamContext, log: Logger, where: str, pipeline: str, name: str, subjects: str,
                        retention: api.RetentionPolicy, needed: str) -> None:
    """Stream `name` exists and stores subject `needed` (made with `subjects` if missing)."""
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        try:
            await js.add_stream(name=name, subjects=[subjects], storage=api.StorageType.FILE, retention=retention)
        except Exception as exc:
            raise DriverError(f"{where}: cannot create stream {name!r} for subject {subjects!r}: "
                              f"{describe(exc)}") from None
        log.info("nats stream created", pipeline=pipeline, stream=name, subject=subjects)
        return
    have = list(info.config.subjects or [])
    if not any(covers(pattern, needed) for pattern in have):
        raise DriverError(f"{where}: stream {name!r} exists with subjects {have}, which do not cover the "
                          f"pipeline's subject {needed!r} (add it to the stream, or use another stream name)")
    if info.config.storage == api.StorageType.MEMORY:
        log.warn("nats stream keeps its messages in memory: a broker restart loses the jobs", pipeline=pipeline,
                 stream=name)


async def ensure_consumer(js: JetStreamContext, log: Logger, where: str, pipeline: str, stream: str, name: str,
                          subject: str, max_ack_pending: int, ack_wait: float, new_only: bool) -> None:
    """Durable pull consumer `name` of `stream`, filtered on `subject`, with these settings."""
    config = api.ConsumerConfig(
        durable_name=name, ack_policy=api.AckPolicy.EXPLICIT, ack_wait=ack_wait,
        max_ack_pending=max_ack_pending, max_deliver=-1, filter_subject=subject,
        deliver_policy=api.DeliverPolicy.NEW if new_only else api.DeliverPolicy.ALL)
    try:
        info = await js.consumer_info(stream, name)
    except NotFoundError:
        await js.add_consumer(stream, config)
        log.info("nats consumer created", pipeline=pipeline, stream=stream, consumer=name,
                 deliver="new" if new_only else "all")
        return
    have: Any = info.config
    if have.filter_subject != subject:
        raise DriverError(f"{where}: consumer {name!r} of stream {stream!r} exists with filter subject "
                          f"{have.filter_subject!r}, not {subject!r} (another application's pipeline of the "
                          f"same name?)")
    if have.ack_wait != ack_wait or have.max_ack_pending != max_ack_pending:
        config.deliver_policy = have.deliver_policy  # JetStream cannot change it
        config.opt_start_seq = have.opt_start_seq
        config.opt_start_time = have.opt_start_time
        await js.add_consumer(stream, config)  # an update
        log.info("nats consumer updated", pipeline=pipeline, consumer=name, ack_wait=ack_wait,
                 max_ack_pending=max_ack_pending)
