"""The memory driver: a pipeline's jobs in this process (RoadRunner's `memory`).

Jobs wait in a heap by (priority, arrival): lower priority first, FIFO among
equals. Delayed jobs wait on loop timers (no cap on how many, RoadRunner
allows 1000). Everything is lost with the process: use `boltdb` (the local
durable driver) or a broker for jobs that must survive a restart.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

from fastrr.jobs.drivers.base import Driver
from fastrr.jobs.job import Delivery, Job


class MemoryDriver(Driver):
    name = "memory"

    def __init__(self, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.ready: list[tuple[int, int, Job]] = []
        self.delayed = 0
        self.reserved: dict[int, Delivery] = {}
        self._order = itertools.count()
        self._timers: dict[int, asyncio.TimerHandle] = {}  # delayed jobs, by a number of their own
        self.closed = False

    async def open(self) -> None:
        pass

    async def push(self, jobs: list[Job]) -> None:
        for job in jobs:
            self._enqueue(job)
        self.pushed += len(jobs)
        self.wake()

    def _enqueue(self, job: Job, order: int | None = None) -> None:
        if job.delay > 0:
            self.delayed += 1
            delay, job.delay = job.delay, 0.0
            key = next(self._order)
            self._timers[key] = self.loop.call_later(delay, self._due, key, job)
            return
        heapq.heappush(self.ready, (job.priority, next(self._order) if order is None else order, job))

    def _due(self, key: int, job: Job) -> None:
        self._timers.pop(key, None)
        self.delayed -= 1
        if not self.closed:
            self._enqueue(job)
            self.wake()

    def wake(self) -> None:
        sink = self.sink
        while self.running and self.ready and len(self.reserved) < self.prefetch and sink.has_room():
            _, order, job = heapq.heappop(self.ready)
            delivery = Delivery(job, self, handle=order)
            self.reserved[id(delivery)] = delivery
            sink.offer(delivery)

    def ack(self, delivery: Delivery) -> None:
        self.reserved.pop(id(delivery), None)
        self.acked += 1
        self.wake()

    def retry(self, delivery: Delivery, delay: float) -> None:
        self.reserved.pop(id(delivery), None)
        self.retried += 1
        delivery.job.delay = delay
        self._enqueue(delivery.job)
        self.wake()

    def release(self, delivery: Delivery) -> None:
        self.reserved.pop(id(delivery), None)
        self._enqueue(delivery.job, order=delivery.handle)  # its old place in line
        self.wake()

    async def close(self) -> None:
        self.running = False
        self.closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        lost = len(self.ready) + self.delayed
        if lost:
            self.log.warn("memory pipeline closed with jobs not run; they are gone with it",
                          pipeline=self.pipe.name, jobs=lost)

    def counts(self) -> dict[str, int]:
        return {"active": len(self.ready), "delayed": self.delayed, "reserved": len(self.reserved)}
