"""Between the drivers and the consumer pool: the shared priority queue and one job's run.

Drivers offer deliveries to the `Dispatcher` (their sink). It keeps them in
one heap for every pipeline, as RoadRunner does: lower `priority` first,
then arrival (FIFO among equals, which RoadRunner's heap is not), at most
`jobs.pipeline_size` waiting. It hands a delivery to the pool only while
fewer jobs run than the pool has workers, so jobs wait here, where pause and
shutdown can take them back, not in the pool's queue where allocate_timeout
would bounce them.

`JobRun` is the pool's Job protocol (pool/worker.py) for one delivery: the
frame RoadRunner sends (FLAGS CODEC_RAW, options [len(context)], context JSON
then the payload) and what each answer means. Every way a run can end maps
to exactly one delivery outcome (job.py), and every failure is logged with
the job id and pipeline:

| what happened                                  | outcome                               |
|------------------------------------------------|---------------------------------------|
| ack / complete (types 2, 0)                    | ack                                   |
| requeue (4)                                    | retry after delay_seconds, headers merged, no attempt counted |
| nack (3) with requeue (or `redelivery`)        | retry after delay_seconds, attempt counted |
| fail (1) with requeue                          | retry with headers and delay, attempt counted |
| nack / fail without requeue                    | dead letter pipeline, or dropped (error log) |
| worker crash, exec_ttl, ERROR frame, an answer that is not JSON, an unknown type | retry, attempt counted |
| no worker took it (pool stopping)              | release: back to its pipeline, as it was |

A job that has failed `max_attempts` times is not retried again: it goes to
the pipeline's `dead_letter`, or is dropped with an error log (RoadRunner
redelivers such a poison job forever, #1089). RoadRunner acks garbage
answers and unknown types; fastrr retries them, bounded by max_attempts.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastrr import _core
from fastrr.jobs.job import Delivery, Job
from fastrr.log import Logger
from fastrr.pool.worker import WorkerProtocolError

if TYPE_CHECKING:
    from fastrr.pool.pool import WorkerPool
    from fastrr.pool.worker import Worker

ACK_TYPES = (0, 2)
FAIL, NACK, REQUEUE = 1, 3, 4
NO_WORKER_BACKOFF = 0.5  # seconds before a job no worker took is offered again
LATENCY_SAMPLES = 100_000  # push-to-ack latencies kept for informer.Jobs (the benchmark reads them)


class Dispatcher:
    def __init__(self, pool: WorkerPool, capacity: int, log: Logger,
                 give_up: Callable[[Delivery, str], None]):
        self.pool = pool
        self.capacity = capacity
        self.log = log
        self.give_up = give_up  # dead letter or drop (plugin.py)
        self.heap: list[tuple[int, int, Delivery]] = []
        self._order = itertools.count()
        self.running = 0
        self.queued_by: dict[str, int] = {}
        self.running_by: dict[str, int] = {}
        self.accepting = True
        self.wakers: list[Callable[[], None]] = []  # drivers' wake(), when room frees up
        self._full = False
        self._idle: list[asyncio.Future[None]] = []
        self.latencies: list[float] = []
        self.failed = 0  # retries caused by failures (crash, timeout, garbage, nack)
        self.dropped = 0
        # rr_jobs_jobs_{ok,err,requeue} (the metrics plugin reads them at scrape time): worker
        # answers that acked, runs that failed (any way), requeue answers
        self.jobs_ok = self.jobs_err = self.jobs_requeue = 0

    # -- the drivers' sink --------------------------------------------------------

    def has_room(self) -> bool:
        if len(self.heap) < self.capacity:
            return True
        self._full = True
        return False

    def offer(self, delivery: Delivery) -> None:
        pipe = delivery.job.pipeline
        self.queued_by[pipe] = self.queued_by.get(pipe, 0) + 1
        heapq.heappush(self.heap, (delivery.job.priority, next(self._order), delivery))
        self.pump()

    # -- to the pool ----------------------------------------------------------------

    def pump(self) -> None:
        heap = self.heap
        limit = max(1, self.pool.target)
        while heap and self.accepting and self.running < limit:
            _, _, delivery = heapq.heappop(heap)
            pipe = delivery.job.pipeline
            self.queued_by[pipe] -= 1
            if delivery.done:
                continue
            self.running += 1
            self.running_by[pipe] = self.running_by.get(pipe, 0) + 1
            delivery.started = True
            run = JobRun(self, delivery)
            if delivery.job.auto_ack:
                delivery.ack()  # RoadRunner: acked before it runs; the answer is only logged
            self.pool.submit(run)
        if self._full and len(heap) < self.capacity:
            self._full = False
            for wake in self.wakers:
                wake()

    def finished(self, run: JobRun) -> None:
        self.running -= 1
        self.running_by[run.delivery.job.pipeline] -= 1
        if not self.running:
            for fut in self._idle:
                if not fut.done():
                    fut.set_result(None)
            self._idle.clear()
        self.pump()

    def take_back(self, pipeline: str | None = None) -> int:
        """Release the queued, unstarted deliveries (of one pipeline, or all) to their drivers."""
        keep: list[tuple[int, int, Delivery]] = []
        back: list[Delivery] = []
        for entry in self.heap:
            if pipeline is None or entry[2].job.pipeline == pipeline:
                back.append(entry[2])
            else:
                keep.append(entry)
        heapq.heapify(keep)
        self.heap = keep
        for delivery in back:
            self.queued_by[delivery.job.pipeline] -= 1
            delivery.release()
        return len(back)

    async def idle(self, timeout: float) -> bool:
        """Wait until no job runs (True), or `timeout` seconds (False)."""
        if not self.running:
            return True
        fut = asyncio.get_running_loop().create_future()
        self._idle.append(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return False
        return True

    def record_latency(self, job: Job) -> None:
        lat = self.latencies
        if len(lat) >= LATENCY_SAMPLES:
            del lat[: LATENCY_SAMPLES // 2]
        lat.append(time.time() - job.pushed_at)


def context_json(job: Job, driver: str, queue: str, extra: dict[str, Any] | None = None) -> bytes:
    """The context RoadRunner's drivers send, keys in their order (rr-jobs.md §2)."""
    ctx: dict[str, Any] = {"id": job.id, "job": job.name, "driver": driver, "headers": job.headers}
    if queue:
        ctx["queue"] = queue
    ctx["pipeline"] = job.pipeline
    if extra:
        ctx.update(extra)
    return json.dumps(ctx, separators=(",", ":"), ensure_ascii=False).encode()


def _headers(value: Any) -> dict[str, list[str]]:
    """Reply headers: {name: [values]}; a scalar or numbers are made strings (PHP v3
    sends ints), `[]` (PHP's empty array, roadrunner-php/jobs#4) is no headers."""
    if not isinstance(value, dict):
        return {}
    out: dict[str, list[str]] = {}
    for name, vals in value.items():
        if isinstance(vals, list):
            out[str(name)] = [v if isinstance(v, str) else json.dumps(v) for v in vals]
        elif vals is not None:
            out[str(name)] = [vals if isinstance(vals, str) else json.dumps(vals)]
    return out


def _delay(value: Any) -> float:
    try:
        return max(0.0, float(value or 0))
    except (TypeError, ValueError):
        return 0.0


class JobRun:
    """One delivery on one worker (the pool's Job protocol)."""

    __slots__ = ("dispatcher", "delivery", "request_frame", "cancelled", "retries", "queued_at", "_ended")

    def __init__(self, dispatcher: Dispatcher, delivery: Delivery):
        self.dispatcher = dispatcher
        self.delivery = delivery
        job = delivery.job
        driver = delivery.driver
        ctx = context_json(job, driver.name, driver.context_queue, driver.context_extra(delivery))
        self.request_frame = _core.encode_frame(_core.FLAG_RAW, ctx + job.payload, (len(ctx),))
        self.cancelled = False
        self.retries = 0
        self.queued_at = 0.0
        self._ended = False

    @property
    def log(self) -> Logger:
        return self.dispatcher.log

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self.dispatcher.finished(self)

    def _fields(self) -> dict[str, Any]:
        job = self.delivery.job
        return {"id": job.id, "job": job.name, "pipeline": job.pipeline}

    def failed(self, why: str, delay: float = 0.0, headers: dict[str, list[str]] | None = None) -> None:
        """A failed run: retry it, or give up after max_attempts."""
        delivery = self.delivery
        self.dispatcher.jobs_err += 1
        delivery.driver.failed += 1
        if delivery.done:
            self.log.error(f"job failed after it was acked (auto_ack): {why}", **self._fields())
            return
        job = delivery.job
        max_attempts = delivery.driver.pipe.max_attempts
        if job.attempts + 1 >= max_attempts:
            job.attempts += 1
            self.dispatcher.give_up(delivery, f"{why}; failed {job.attempts} times (max_attempts {max_attempts})")
            return
        self.dispatcher.failed += 1
        self.log.warn(f"job failed, will retry: {why}", **self._fields(), attempt=job.attempts + 1,
                      max_attempts=max_attempts, delay=delay)
        delivery.retry(delay, headers, failed=True)

    # -- the pool's Job protocol ----------------------------------------------------

    def on_worker_frame(self, worker: Worker, flags: int, byte10: int, options: tuple[int, ...],
                        payload: bytes) -> bool:
        if byte10 & _core.STREAM:
            raise WorkerProtocolError("a jobs worker answered with a stream frame")
        try:
            self._answer(flags, options, payload)
        finally:
            self._end()
        return True

    def _answer(self, flags: int, options: tuple[int, ...], payload: bytes) -> None:
        delivery = self.delivery
        if flags & _core.FLAG_ERROR:
            self.failed(f"worker error: {payload[:500].decode('utf-8', 'replace')}")
            return
        body = payload[options[0]:] if options and 0 < options[0] <= len(payload) else payload
        try:
            reply = json.loads(body)
            kind = reply["type"]
            data = reply.get("data")
            if not isinstance(kind, int) or isinstance(kind, bool):
                raise TypeError
        except (ValueError, TypeError, KeyError, AttributeError):
            self.failed(f"worker answer is not a jobs reply ({{\"type\":N,\"data\":...}}): {body[:200]!r}")
            return
        if kind in ACK_TYPES:
            self.dispatcher.jobs_ok += 1
            if not delivery.done:
                self.dispatcher.record_latency(delivery.job)
                delivery.ack()
            return
        if kind not in (FAIL, NACK, REQUEUE):
            self.failed(f"worker answered an unknown reply type {kind}: {body[:200]!r}")
            return
        if delivery.done:  # auto_ack: nothing left to do with it
            self.log.warn("worker nacked an auto_ack job (already acked)", **self._fields(), type=kind)
            return
        data = data if isinstance(data, dict) else {}
        message = str(data.get("message", ""))
        delay = _delay(data.get("delay_seconds"))
        headers = _headers(data.get("headers"))
        if kind == REQUEUE:
            self.dispatcher.jobs_requeue += 1
            self.log.debug("job requeued", **self._fields(), delay=delay, message=message)
            delivery.retry(delay, headers, failed=False)
        elif data.get("requeue") or data.get("redelivery"):
            self.failed(f"{'nacked' if kind == NACK else 'failed'}: {message}", delay, headers)
        else:
            self.dispatcher.jobs_err += 1
            delivery.driver.failed += 1
            self.dispatcher.give_up(delivery, f"{'nacked' if kind == NACK else 'failed'} without requeue: "
                                              f"{message}")

    def on_worker_lost(self, worker: Worker, status: int, reason: str) -> None:
        if self._ended:
            return
        self._end()
        self.failed(f"worker {worker.pid} lost during the job: {reason}")

    def on_no_worker(self, reason: str) -> None:
        """Never started: back to its pipeline. While the pool runs (allocate_timeout,
        max_queue_size) that happens after a pause, or it would bounce right back."""
        if self._ended:
            return
        self._end()
        if self.delivery.done:
            return
        if self.dispatcher.accepting:
            self.log.warn(f"no worker took the job, it goes back to its pipeline: {reason}", **self._fields())
            asyncio.get_running_loop().call_later(NO_WORKER_BACKOFF, self.delivery.release)
        else:
            self.delivery.release()
