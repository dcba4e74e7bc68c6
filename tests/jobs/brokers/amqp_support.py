"""The amqp driver tests' fixtures: unique RabbitMQ names per test, pipeline configs
for the machine's RabbitMQ, a direct AMQP client (to publish foreign messages and
look at queues), and the clean-up of everything a test declared."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiormq
import pytest
from pamqp import commands as spec

from tests.jobs.brokers.common import ensure_service
from tests.jobs.conftest import jobs_config

ADDR = "amqp://guest:guest@127.0.0.1:5672/"


async def _with_channel(work: Any) -> Any:
    conn = aiormq.Connection(ADDR)
    await conn.connect()
    try:
        channel = await conn.channel()
        return await work(channel)
    finally:
        await conn.close()


def broker(work: Any) -> Any:
    """Run `work(channel)` (a coroutine function) on a fresh connection to the machine's RabbitMQ."""
    return asyncio.run(_with_channel(work))


@dataclass
class Names:
    """Exchange, queues and routing keys unique to one test (a uuid in each)."""

    uid: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    queues: list[str] = field(default_factory=list)
    exchanges: list[str] = field(default_factory=list)

    def queue(self, tag: str = "q") -> str:
        name = f"fastrr-test-{tag}-{self.uid}"
        self.queues.append(name)
        return name

    def exchange(self, tag: str = "x") -> str:
        name = f"fastrr-test-{tag}-{self.uid}"
        self.exchanges.append(name)
        return name

    def pipeline(self, queue: str | None = "q", exchange: str = "x", **options: Any) -> dict[str, Any]:
        """An amqp pipeline on this test's exchange, consuming `queue` (None: push-only)."""
        config: dict[str, Any] = {"exchange": self.exchange(exchange), "prefetch": 10}
        if queue is not None:
            config["queue"] = self.queue(queue)
            config["routing_key"] = config["queue"]
        config.update(options)
        return {"driver": "amqp", "config": config}

    def cleanup(self) -> None:
        async def work(channel: aiormq.abc.AbstractChannel) -> None:
            conn = channel.connection
            for name in set(self.queues):
                ch = await conn.channel()
                try:
                    await ch.queue_delete(name)
                except aiormq.exceptions.AMQPError:
                    pass
            for name in set(self.exchanges):
                ch = await conn.channel()
                try:
                    await ch.exchange_delete(name)
                except aiormq.exceptions.AMQPError:
                    pass

        try:
            broker(work)
        except (OSError, aiormq.exceptions.AMQPError):
            pass  # the broker is down (a failed restart test): nothing to clean


@pytest.fixture
def names() -> Iterator[Names]:
    ensure_service("rabbitmq")
    made = Names()
    try:
        yield made
    finally:
        made.cleanup()


def amqp_config(pipelines: dict[str, Any], consume: list[str] | None = None, workers: int = 2,
                addr: str = ADDR, **jobs: Any) -> dict[str, Any]:
    cfg = jobs_config(pipelines, consume=consume, workers=workers, **jobs)
    cfg["amqp"] = {"addr": addr}
    return cfg


def publish_raw(exchange: str, routing_key: str, body: bytes, headers: dict[str, Any] | None = None) -> None:
    """A message from another client (a RoadRunner producer, or a foreign one without rr_* headers)."""
    async def work(channel: aiormq.abc.AbstractChannel) -> None:
        await channel.basic_publish(body, exchange=exchange, routing_key=routing_key, mandatory=True,
                                    properties=spec.Basic.Properties(delivery_mode=2, headers=headers or {}))

    broker(work)


def queue_messages(queue: str) -> int:
    """Ready messages in `queue` (-1: no such queue)."""
    async def work(channel: aiormq.abc.AbstractChannel) -> int:
        try:
            ok = await channel.queue_declare(queue, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            return -1
        return int(ok.message_count or 0)

    return int(broker(work))
