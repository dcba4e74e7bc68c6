"""A job as pushed, and a delivery: a job handed out by a driver to be run once.

Rules of this file:
- A `Delivery` ends in exactly one of `ack`, `retry` (run it again, after a
  delay, maybe with new headers), `release` (it was never started: back to
  its pipeline, no attempt counted) or `drop` (done, failed for good); the
  first call wins and later ones are no-ops, so a late worker answer after a
  timeout can never ack or requeue a job twice.
- The driver token (`handle`) is the driver's business; nothing outside the
  driver reads it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastrr.jobs.drivers.base import Driver


@dataclass
class Job:
    id: str
    name: str
    payload: bytes
    pipeline: str
    headers: dict[str, list[str]] = field(default_factory=dict)
    priority: int = 10
    delay: float = 0.0  # seconds, from push (or a retry)
    auto_ack: bool = False
    topic: str = ""  # a push's own destination (Push options' topic: kafka); "" = the pipeline's
    attempts: int = 0  # failed runs so far (crash, timeout, garbage answer, nack)
    pushed_at: float = field(default_factory=time.time)  # wall clock, for push-to-ack latency


@dataclass
class Delivery:
    job: Job
    driver: Driver
    handle: Any = None
    seq: int = 0  # order within a priority in the shared queue
    done: bool = False
    started: bool = False  # handed to a worker (or acked at once: auto_ack)

    @property
    def priority(self) -> int:
        return self.job.priority

    def _finish(self) -> bool:
        if self.done:
            return False
        self.done = True
        return True

    def ack(self) -> None:
        if self._finish():
            self.driver.ack(self)

    def retry(self, delay: float = 0.0, headers: dict[str, list[str]] | None = None,
              failed: bool = True) -> None:
        """Run it again after `delay` s; `failed` counts an attempt; `headers`
        are merged over the old ones (RoadRunner's requeue)."""
        if self._finish():
            if headers:
                self.job.headers = {**self.job.headers, **headers}
            if failed:
                self.job.attempts += 1
            self.driver.retry(self, max(0.0, delay))

    def release(self) -> None:
        if self._finish():
            self.driver.release(self)

    def drop(self) -> None:
        if self._finish():
            self.driver.drop(self)
