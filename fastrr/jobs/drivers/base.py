"""The driver interface every jobs backend implements (memory, local, and the brokers).

A driver owns a pipeline's jobs. It is opened at start (push works from then
on, consumed or not), and while it `runs` it hands jobs to the plugin through
`sink.offer(delivery)`, at most `prefetch` unfinished at a time and only
while `sink.has_room()`; when room frees up the plugin calls `wake()`. Every
delivery comes back exactly once (job.py): `ack` (remove it), `retry` (make
it due again after a delay, with its new headers and attempt count),
`release` (it was never started: put it back as it was). A broker driver
that loses its connection keeps its deliveries' acks pending or lets the
broker redeliver; it reconnects by itself and reports it in `state()`.

Methods are called on the event loop; `push`, `run`, `pause` and `close` may
wait (network, disk); the per-delivery calls must not block.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Any, Protocol

from fastrr.jobs.config import PipelineConfig
from fastrr.jobs.job import Delivery, Job
from fastrr.log import Logger


class DriverError(Exception):
    """A push or an operation the driver could not carry out (the text says why)."""


class Sink(Protocol):
    def offer(self, delivery: Delivery) -> None: ...

    def has_room(self) -> bool: ...


class Driver(ABC):
    name: str = ""

    def __init__(self, pipe: PipelineConfig, sink: Sink, log: Logger, workdir: str, broker: Any = None):
        self.pipe = pipe
        self.broker = broker  # a broker driver's connection settings (its config.parse_global)
        self.sink = sink
        self.log = log
        self.workdir = workdir
        self.loop = asyncio.get_running_loop()
        self.running = False
        self.error = ""  # the last connection/storage error, for Stat / informer.Jobs
        # Counters for informer.Jobs (fastrr's fields) and the benchmark.
        # failed: runs that failed (worker error, crash, timeout, nack or fail), retried or not.
        self.pushed = self.acked = self.retried = self.failed = 0

    @property
    def prefetch(self) -> int:
        return int(self.pipe.options.get("prefetch", 1))

    @property
    def queue_name(self) -> str:
        """The broker queue (Stat, informer.Jobs)."""
        return ""

    @property
    def context_queue(self) -> str:
        """`queue` in the job context sent to PHP (omitted when empty)."""
        return self.queue_name

    def context_extra(self, delivery: Delivery) -> dict[str, Any] | None:
        """Keys the driver adds to the job context after RoadRunner's common
        ones (kafka: topic, partition, offset), or None."""
        return None

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def push(self, jobs: list[Job]) -> None:
        """Store `jobs` (durably, for a durable driver) before returning."""

    async def run(self) -> None:
        self.running = True
        self.wake()

    async def pause(self) -> None:
        self.running = False

    @abstractmethod
    async def close(self) -> None:
        """Stop handing out jobs and let go of the storage or connection."""

    @abstractmethod
    def wake(self) -> None:
        """Hand out due jobs while running, below prefetch and while the sink has room."""

    @abstractmethod
    def ack(self, delivery: Delivery) -> None: ...

    def drop(self, delivery: Delivery) -> None:
        """Failed for good (max_attempts, a nack without requeue): gone from the
        pipeline as an ack makes it; a broker that can say so differently (NATS
        Term) overrides this."""
        self.ack(delivery)

    @abstractmethod
    def retry(self, delivery: Delivery, delay: float) -> None: ...

    @abstractmethod
    def release(self, delivery: Delivery) -> None: ...

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """{"active": due and waiting, "delayed": not due yet, "reserved": handed out, not finished}."""

    def state(self) -> dict[str, Any]:
        return {**self.counts(), "ready": self.running, "error": self.error}
