"""The beanstalk driver: a pipeline is a beanstalkd tube (protocol.py is the client).

What maps to what:
- push: `put` on the producer connection (which `use`s the tube); the
  reply INSERTED means beanstalkd has the job (and, started with -b, wrote
  it to its binlog before answering: it survives a restart of beanstalkd).
  Delay is beanstalkd's own (put delay, whole seconds, rounded up). TTR is
  `beanstalk.timeout`, as RoadRunner. The beanstalkd pri of a job is
  `tube_priority + job priority` (clamped to 0..2^32-1): beanstalkd hands
  out the lowest pri first, so job priorities order the tube natively;
  RoadRunner puts every job at tube_priority and ignores the job's own.
- The body is fastrr's JSON envelope, not RoadRunner's gob (which only Go
  reads): {"fastrr": 1, "id", "job", "headers", "priority", "auto_ack",
  "attempts", "pushed_at", and "payload" (the payload as text when it is
  UTF-8) or "payload_base64"}. A body that is not such an envelope (another
  producer's, RoadRunner's gob) becomes a job named "deduced_by_rr" with a
  new uuid and the raw body as payload, as RoadRunner does for foreign
  messages.
- consume: `reserve-with-timeout` on the consumer connection (which
  `watch`es the tube only), at most `prefetch` reserved and unfinished.
  ack = `delete`; retry = `put` a copy (delay, merged headers, attempts + 1)
  then `delete` the original (RoadRunner's NACK-requeue forgets the delete
  and the job comes back after TTR as well); release = `release` with its
  pri and no delay. beanstalkd lets only the reserving connection delete,
  release or touch a job, so those run on the consumer connection between
  reserves: while jobs are out, it polls with timeout 0 every POLL_IDLE s
  instead of blocking for reserve_timeout, so acks are not held back.
- Long jobs: every reserved job (running or still queued in fastrr) is
  `touch`ed every TTR/3 s, and at once when beanstalkd answers DEADLINE_SOON,
  so it is not handed to another consumer while it runs.
- A killed fastrr's reserved jobs come back: beanstalkd releases them when
  the connection closes (or when it restarts).
- Faults: the first dial at open() failing is a DriverError naming the
  address. After that, the consumer redials forever with exponential
  backoff (BACKOFF_MIN doubling to BACKOFF_MAX; RoadRunner caps at 1 min),
  logging each failure, `error` set meanwhile. Deliveries reserved on a dead
  connection that no worker started are withdrawn (beanstalkd gives them
  out again); the acks of those that ran go out on the new connection: a
  `delete` of a job that is ready again succeeds (no duplicate), one that
  someone else reserved meanwhile answers NOT_FOUND and runs again there,
  a duplicate, never a loss. A push while beanstalkd is unreachable dials
  once and fails with a DriverError naming the address.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
import uuid
from collections import deque
from typing import Any

from fastrr.jobs.drivers.base import Driver, DriverError
from fastrr.jobs.drivers.beanstalk.config import BeanstalkSettings
from fastrr.jobs.drivers.beanstalk.protocol import (
    DEADLINE_SOON,
    MAX_PRIORITY,
    BeanstalkError,
    Connection,
    Reserved,
)
from fastrr.jobs.job import Delivery, Job

BACKOFF_MIN = 0.1  # seconds before the first redial
BACKOFF_MAX = 30.0
POLL_IDLE = 0.2  # seconds between non-blocking reserves while jobs are out (their acks must not wait)
STATS_EVERY = 1.0  # seconds between stats-tube reads (counts() is synchronous: it reads the cache)
DIAL_TIMEOUT = 5.0
FOREIGN_JOB = "deduced_by_rr"
ENVELOPE_VERSION = 1


def encode_job(job: Job) -> bytes:
    envelope: dict[str, Any] = {"fastrr": ENVELOPE_VERSION, "id": job.id, "job": job.name, "headers": job.headers,
                                "priority": job.priority, "auto_ack": job.auto_ack, "attempts": job.attempts,
                                "pushed_at": job.pushed_at}
    try:
        envelope["payload"] = job.payload.decode("utf-8")
    except UnicodeDecodeError:
        envelope["payload_base64"] = base64.b64encode(job.payload).decode("ascii")
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


def decode_job(body: bytes, pipeline: str, default_priority: int) -> Job:
    """The job of a reserved body; a body that is not fastrr's envelope is a foreign job."""
    try:
        env = json.loads(body)
        if not isinstance(env, dict) or env.get("fastrr") != ENVELOPE_VERSION:
            raise ValueError("not an envelope")
        payload = (env["payload"].encode("utf-8") if "payload" in env
                   else base64.b64decode(env["payload_base64"], validate=True))
        headers = env.get("headers") or {}
        if not isinstance(headers, dict) or not all(isinstance(v, list) for v in headers.values()):
            raise ValueError("bad headers")
        return Job(id=str(env["id"]), name=str(env["job"]), payload=payload, pipeline=pipeline,
                   headers={str(k): [str(x) for x in v] for k, v in headers.items()},
                   priority=int(env.get("priority", default_priority)), auto_ack=bool(env.get("auto_ack")),
                   attempts=int(env.get("attempts", 0)), pushed_at=float(env.get("pushed_at", time.time())))
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeError):
        return Job(id=str(uuid.uuid4()), name=FOREIGN_JOB, payload=body, pipeline=pipeline,
                   priority=default_priority)


class BeanstalkDriver(Driver):
    name = "beanstalk"
    broker: BeanstalkSettings

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.broker is None:
            self.broker = BeanstalkSettings()
        options = self.pipe.options
        self.tube: str = options.get("tube", "default")
        self.tube_priority: int = options.get("tube_priority", 0)
        self.reserve_wait = max(1, math.ceil(options.get("reserve_timeout", 1.0)))
        self.touch_every = max(0.3, self.broker.ttr / 3)
        self.reserved: dict[int, Delivery] = {}  # beanstalkd job id -> delivery, reserved by this process
        self.ops: deque[tuple[str, int, int, int, int]] = deque()  # (op, generation, job id, pri, delay)
        self.generation = 0  # of the consumer connection; a delivery's handle is (generation, job id)
        self.closed = False
        self._producer: Connection | None = None
        self._producer_lock = asyncio.Lock()
        self._consumer: Connection | None = None
        self._consume_task: asyncio.Task[None] | None = None
        self._stats_task: asyncio.Task[None] | None = None
        self._retries: set[asyncio.Task[None]] = set()
        self._wakeup = asyncio.Event()
        self._reserving_long = False  # the consumer waits in reserve-with-timeout reserve_timeout
        self._consume_error = self._produce_error = ""
        self._tube_counts = {"active": 0, "delayed": 0}

    @property
    def prefetch(self) -> int:
        return int(self.pipe.options.get("prefetch", 10))

    @property
    def queue_name(self) -> str:
        return self.tube

    def _set_error(self, consume: str | None = None, produce: str | None = None) -> None:
        if consume is not None:
            self._consume_error = consume
        if produce is not None:
            self._produce_error = produce
        self.error = self._consume_error or self._produce_error

    async def _dial(self) -> Connection:
        b = self.broker
        return await Connection.open(b.host, b.port, b.unix_path, DIAL_TIMEOUT)

    def _pri(self, job: Job) -> int:
        return min(max(self.tube_priority + job.priority, 0), MAX_PRIORITY)

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        try:
            await self._producer_connection()
        except (OSError, TimeoutError, BeanstalkError) as exc:
            raise DriverError(f"cannot connect to beanstalk at {self.broker.addr}: {_why(exc)}") from None
        await self._read_stats()
        self._stats_task = asyncio.ensure_future(self._stats_loop())

    async def _producer_connection(self) -> Connection:
        async with self._producer_lock:
            conn = self._producer
            if conn is None or conn.closed:
                conn = await self._dial()
                try:
                    await conn.use(self.tube)
                except BeanstalkError:
                    conn.close()
                    raise
                self._producer = conn
            return conn

    async def run(self) -> None:
        self.running = True
        if self._consume_task is None:
            self._consume_task = asyncio.ensure_future(self._consume_forever())
        self.wake()

    async def pause(self) -> None:
        self.running = False  # the consumer stops reserving; acks of running jobs still go out
        self.wake()

    async def close(self) -> None:
        self.running = False
        self.closed = True
        self.wake()
        if self._retries:
            await asyncio.wait(self._retries, timeout=5.0)
        if self._reserving_long and self._consumer is not None and not self.ops:
            self._consumer.close()  # nothing of ours is reserved on it and no op waits: no need to wait
        if self._consume_task is not None:
            try:  # the ops still queued (acks, releases) go out first
                await asyncio.wait_for(self._flush_then_stop(), self.reserve_wait + 5.0)
            except TimeoutError:
                self._consume_task.cancel()
        for task in (self._stats_task,):
            if task is not None:
                task.cancel()
        for conn in (self._producer, self._consumer):
            if conn is not None:
                conn.close()  # what is still reserved goes back to the tube
        self._producer = self._consumer = None

    async def _flush_then_stop(self) -> None:
        assert self._consume_task is not None
        await asyncio.shield(self._consume_task)

    # -- push -----------------------------------------------------------------------------

    async def push(self, jobs: list[Job]) -> None:
        if self.closed:
            raise DriverError(f"pipeline {self.pipe.name} is closed")
        try:
            conn = await self._producer_connection()
            for job in jobs:
                await conn.put(encode_job(job), self._pri(job), math.ceil(job.delay), self.broker.ttr)
                self.pushed += 1
        except (OSError, TimeoutError, BeanstalkError) as exc:
            why = _why(exc)
            self._set_error(produce=f"beanstalk at {self.broker.addr}: {why}")
            raise DriverError(f"pipeline {self.pipe.name}: cannot put the job into beanstalk at "
                              f"{self.broker.addr}: {why}") from None
        self._set_error(produce="")
        await self._read_stats()

    async def _put_copy(self, delivery: Delivery, generation: int, job_id: int, delay: float) -> None:
        """retry: the copy first, then the original's delete (a copy that failed keeps
        the original: it is released with the delay, its attempt count not updated)."""
        job = delivery.job
        try:
            conn = await self._producer_connection()
            await conn.put(encode_job(job), self._pri(job), math.ceil(delay), self.broker.ttr)
        except (OSError, TimeoutError, BeanstalkError) as exc:
            self.log.warn("beanstalk: cannot put the retried job's copy; the original is released with the delay",
                          pipeline=self.pipe.name, id=job.id, error=_why(exc))
            self._queue_op("release", generation, job_id, self._pri(job), math.ceil(delay))
            return
        self._queue_op("delete", generation, job_id)

    # -- stats --------------------------------------------------------------------------------

    async def _read_stats(self) -> None:
        try:
            conn = await self._producer_connection()
            stats = await conn.stats_tube(self.tube)
        except (OSError, TimeoutError, BeanstalkError) as exc:
            self._set_error(produce=f"beanstalk at {self.broker.addr}: {_why(exc)}")
            return
        self._set_error(produce="")
        stats = stats or {}
        self._tube_counts = {"active": _count(stats, "current-jobs-ready"),
                             "delayed": _count(stats, "current-jobs-delayed")}

    async def _stats_loop(self) -> None:
        while not self.closed:
            await asyncio.sleep(STATS_EVERY)
            await self._read_stats()

    def counts(self) -> dict[str, int]:
        return {**self._tube_counts, "reserved": len(self.reserved)}

    def state(self) -> dict[str, Any]:
        return {**self.counts(), "ready": self.running and not self._consume_error, "error": self.error}

    # -- deliveries ------------------------------------------------------------------------------

    def wake(self) -> None:
        self._wakeup.set()

    def _queue_op(self, op: str, generation: int, job_id: int, pri: int = 0, delay: int = 0) -> None:
        self.ops.append((op, generation, job_id, pri, delay))
        self.wake()

    def _forget(self, delivery: Delivery) -> tuple[int, int]:
        """Its (generation, job id); off the reserved list unless a newer reservation of
        the same job (after a reconnect) took its place there."""
        generation, job_id = delivery.handle
        if self.reserved.get(job_id) is delivery:
            del self.reserved[job_id]
        return generation, job_id

    def ack(self, delivery: Delivery) -> None:
        generation, job_id = self._forget(delivery)
        self.acked += 1
        self._queue_op("delete", generation, job_id)

    def retry(self, delivery: Delivery, delay: float) -> None:
        generation, job_id = self._forget(delivery)
        self.retried += 1
        task = asyncio.ensure_future(self._put_copy(delivery, generation, job_id, delay))
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)
        self.wake()

    def release(self, delivery: Delivery) -> None:
        generation, job_id = self._forget(delivery)
        self._queue_op("release", generation, job_id, self._pri(delivery.job), 0)

    # -- the consumer connection ---------------------------------------------------------------

    async def _consume_forever(self) -> None:
        backoff = BACKOFF_MIN
        attempt = 0
        while not self.closed:
            try:
                conn = await self._dial()
                self._consumer = conn
                await conn.watch(self.tube)
                if self.tube != "default":
                    await conn.ignore("default")
            except (OSError, TimeoutError, BeanstalkError) as exc:
                attempt += 1
                self._lost(f"beanstalk at {self.broker.addr}: {_why(exc)}", attempt, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            self.generation += 1
            if attempt:
                self.log.info("beanstalk reconnected, consuming again", pipeline=self.pipe.name,
                              addr=self.broker.addr, attempts=attempt)
            attempt, backoff = 0, BACKOFF_MIN
            self._set_error(consume="")
            try:
                await self._serve(conn)
                return  # closed
            except (OSError, TimeoutError, BeanstalkError) as exc:
                if self.closed:
                    return
                attempt += 1
                self._lost(f"beanstalk at {self.broker.addr}: {_why(exc)}", attempt, backoff)
                self._withdraw_unstarted()
                await self._sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
            finally:
                conn.close()

    def _lost(self, error: str, attempt: int, backoff: float) -> None:
        self._set_error(consume=error)
        self.log.error("beanstalk connection failed, redialing", pipeline=self.pipe.name, error=error,
                       attempt=attempt, retry_in=round(backoff, 2))

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._closing(), seconds)
        except TimeoutError:
            pass

    async def _closing(self) -> None:
        while not self.closed:
            self._wakeup.clear()
            await self._wakeup.wait()

    def _withdraw_unstarted(self) -> None:
        """Deliveries of the dead connection no worker started: beanstalkd gives them
        out again, so they leave fastrr's queue (marked done, no driver call)."""
        for job_id, delivery in list(self.reserved.items()):
            if delivery.handle[0] == self.generation and not delivery.started and not delivery.done:
                delivery.done = True
                del self.reserved[job_id]

    async def _serve(self, conn: Connection) -> None:
        last_touch = time.monotonic()
        while True:
            await self._run_ops(conn)
            if self.closed:
                return
            now = time.monotonic()
            if now - last_touch >= self.touch_every:
                await self._touch_all(conn)
                last_touch = now
            mine = bool(self._retries) or any(d.handle[0] == self.generation for d in self.reserved.values())
            if self.running and len(self.reserved) < self.prefetch and self.sink.has_room():
                wait = 0 if mine or self.ops else self.reserve_wait
                self._reserving_long = wait > 0
                try:
                    got = await conn.reserve(wait)
                finally:
                    self._reserving_long = False
                if got == DEADLINE_SOON:
                    await self._touch_all(conn)
                    last_touch = time.monotonic()
                elif isinstance(got, Reserved):
                    self._offer(got)
                    continue
                elif mine or self.ops:
                    await self._idle(POLL_IDLE)
                continue
            await self._idle(min(self.touch_every, 1.0) if mine else 1.0)

    async def _idle(self, seconds: float) -> None:
        self._wakeup.clear()
        if self.ops or self.closed:
            return
        try:
            await asyncio.wait_for(self._wakeup.wait(), seconds)
        except TimeoutError:
            pass

    def _offer(self, got: Reserved) -> None:
        job = decode_job(got.body, self.pipe.name, self.pipe.priority)
        delivery = Delivery(job, self, handle=(self.generation, got.id))
        if not self.running:  # paused while the reserve was out: straight back
            self._queue_op("release", self.generation, got.id, self._pri(job), 0)
            return
        self.reserved[got.id] = delivery
        self.sink.offer(delivery)

    async def _touch_all(self, conn: Connection) -> None:
        for job_id, delivery in list(self.reserved.items()):
            if delivery.handle[0] == self.generation and not delivery.done:
                if not await conn.touch(job_id):
                    self.log.warn("beanstalk: a reserved job could not be touched (its TTR passed?); "
                                  "it may run twice", pipeline=self.pipe.name, id=delivery.job.id)

    async def _run_ops(self, conn: Connection) -> None:
        while self.ops:
            op, generation, job_id, pri, delay = self.ops[0]
            current = generation == self.generation
            if op == "delete":
                if not await conn.delete(job_id):
                    # reserved on a dead connection and handed to someone else since (or its
                    # TTR passed): it runs again, a duplicate
                    self.log.warn("beanstalk: ack of a job beanstalkd no longer holds for this consumer; "
                                  "it will run again", pipeline=self.pipe.name, job=job_id)
            elif op == "release" and current:
                await conn.release(job_id, pri, delay)
            # a release of a dead connection's job: beanstalkd released it already
            self.ops.popleft()


def _count(stats: dict[str, str], key: str) -> int:
    value = stats.get(key, "0")
    return int(value) if value.isdigit() else 0


def _why(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, TimeoutError) and not text:
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return text or type(exc).__name__


DRIVER = BeanstalkDriver
