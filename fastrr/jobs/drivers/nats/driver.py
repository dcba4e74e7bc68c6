"""The nats driver: a pipeline is a subject of a JetStream stream and a durable pull consumer.

What maps to what on the broker (wire.py has the message format, RoadRunner's):
- `stream` is a JetStream stream with file storage, created with the
  pipeline's `subject` if missing. One that exists is only checked: it must
  cover the subject, else open() fails naming both (jetstream.py; RoadRunner
  replaces an existing stream's subjects with the pipeline's).
  The stream keeps acked messages (limits retention, as RoadRunner's) unless
  `delete_after_ack` deletes each one after its ack.
- Consuming: a durable pull consumer named `fastrr_<pipeline>` (characters
  other than letters, digits, `_` and `-` become `_`), filtered on the
  subject, AckExplicit, MaxAckPending = `prefetch`, AckWait = `ack_wait`,
  no MaxDeliver (max_attempts bounds runs). RoadRunner makes a fresh consumer
  with a random name at every start, so each RoadRunner instance gets every
  message and a restarted one starts over; the durable consumer is shared:
  two fastrr instances on one pipeline split the jobs (each job to one of
  them) and a restarted fastrr resumes where the consumer was. `deliver_new`
  makes a consumer that does not exist yet start at new messages
  (DeliverPolicy.NEW; an existing one keeps its position, JetStream cannot
  change it). Pipelines with the same subject under different names have
  consumers of their own: each gets every job, as with RoadRunner.
- Every delivery this fastrr holds (running, or waiting in the shared queue)
  gets an in-progress ack (+WPI) every third of `ack_wait`, so a long job is
  not redelivered to another instance while it runs (RoadRunner sends one, at
  receipt). A fastrr killed mid-job stops them: the consumer redelivers its
  jobs after `ack_wait`, to another instance or the restarted one.
- Pause stops the pull requests (the one in flight ends within FETCH_WAIT and
  what it brings is nak'ed back); the consumer stays.
- Delays (RoadRunner refuses them on nats): a stream of fastrr's own,
  `<stream>-fastrr-delayed`, and JetStream's NAK delay (delayed.py).
- ack: Ack (+ DeleteMsg with `delete_after_ack`); retry: publish a copy with
  the new headers and `Fastrr-Attempts` (to the delay stream when delayed),
  then Ack the original; a copy that cannot be published naks the original
  (it comes back as it was). A NAK could not carry the new headers or
  attempts, and a delayed NAK would hold a prefetch slot. release: Nak, no
  delay, no attempt counted. Order after a retry is the stream's (the copy
  goes last), as RoadRunner's requeue.
- `rate_limit` (stored, unused by RoadRunner): at most that many jobs per
  second handed out by this fastrr from the pipeline, a token bucket of one
  second; 0 (fastrr's default, config.py says why) = no bound.
- The connection: nats-py redials forever after a successful open, backing
  off 0.25 s doubling to 5 s, each failed attempt logged with its error;
  `state()` and Stat's error carry it while down. Pushes while down fail at
  once with a DriverError (nats-py would buffer them, and a push that timed
  out could still land later). After a reconnect the streams and consumers
  are declared again (a broker that lost its state gets them back), as they
  are when a push finds no stream or the consumer info is gone (deleted
  under a running fastrr: fetches would only time out). Acks of deliveries
  of the old connection still count if the consumer still holds them, else
  JetStream redelivers them (a duplicate, not a loss).
- close(): stop fetching, nak what this fastrr still holds (another instance
  gets it at once), wait for pending acks, delete both streams with
  `delete_stream_on_stop`, flush and close the connection.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Coroutine
from typing import Any

import nats
from nats.aio.client import Client
from nats.errors import NoRespondersError, NoServersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.errors import NoStreamResponseError, NotFoundError

from fastrr.jobs.drivers.base import Driver, DriverError
from fastrr.jobs.drivers.nats import wire
from fastrr.jobs.drivers.nats.config import DEFAULT_ADDR, DELAY_STREAM_SUFFIX, DELAY_SUBJECT_PREFIX
from fastrr.jobs.drivers.nats.delayed import move_due_jobs
from fastrr.jobs.drivers.nats.jetstream import describe, ensure_consumer, ensure_stream, shown
from fastrr.jobs.job import Delivery, Job

CONNECT_TIMEOUT = 5.0  # seconds for the first connection (open)
PUBLISH_TIMEOUT = 10.0  # seconds to wait for the stream's ack of one publish
FETCH_WAIT = 1.0  # seconds a pull request waits for messages (a pause takes effect within it)
FETCH_BATCH = 256  # messages asked for per pull request at most
PUSH_CHUNK = 256  # publishes in flight at once in one push
REDIAL_FIRST, REDIAL_CAP = 0.25, 5.0  # seconds: reconnect backoff, doubling per failed attempt
ERROR_BACKOFF_CAP = 5.0  # seconds between fetches that keep failing
STATS_EVERY = 1.0  # seconds between consumer-info refreshes (counts() is synchronous)


class NatsDriver(Driver):
    name = "nats"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.addr: str = getattr(self.broker, "addr", DEFAULT_ADDR)
        self.shown_addr = shown(self.addr)
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self.sub: Any = None  # the pipeline consumer's pull subscription
        self.delay_sub: Any = None
        self.reserved: dict[int, Delivery] = {}
        self.opened = False
        self.closing = False
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()  # acks, retries, re-declares in flight
        self._loops: list[asyncio.Task[Any]] = []
        self._broker_active = 0  # from the consumer infos, refreshed every STATS_EVERY
        self._broker_delayed = 0
        self._tokens = float(self.rate_limit or 0)
        self._tokens_at = time.monotonic()
        self._fetch_errors = 0
        self._first_error: Exception | None = None  # why the first connection failed
        self._redials = 0  # failed redial attempts of the current outage
        self._redeclaring = False

    # -- names -------------------------------------------------------------------------

    @property
    def stream(self) -> str:
        return str(self.pipe.options["stream"])

    @property
    def subject(self) -> str:
        return str(self.pipe.options["subject"])

    @property
    def consumer_name(self) -> str:
        return "fastrr_" + re.sub(r"[^A-Za-z0-9_-]", "_", self.pipe.name)

    @property
    def delay_stream(self) -> str:
        return self.stream + DELAY_STREAM_SUFFIX

    @property
    def delay_subject(self) -> str:
        return f"{DELAY_SUBJECT_PREFIX}.{self.stream}.{self.consumer_name}"

    @property
    def ack_wait(self) -> float:
        return float(self.pipe.options["ack_wait"])

    @property
    def rate_limit(self) -> int:
        return int(self.pipe.options.get("rate_limit", 0))

    @property
    def publish_timeout(self) -> float:
        return PUBLISH_TIMEOUT

    @property
    def queue_name(self) -> str:
        return self.subject  # RoadRunner's State.Queue

    @property
    def context_queue(self) -> str:
        return ""  # RoadRunner's nats context has `queue` (the stream) after `pipeline`: context_extra

    def context_extra(self, delivery: Delivery) -> dict[str, Any] | None:
        return {"queue": self.stream}

    def _where(self) -> str:
        return f"pipeline {self.pipe.name} (nats at {self.shown_addr})"

    # -- open / close ------------------------------------------------------------------

    async def open(self) -> None:
        try:
            # No redial for the first connection: a bad address or bad credentials
            # fail the start with the broker's error. (nats-py retries inside its
            # server selection unless max_reconnect_attempts is positive: one retry.)
            nc = await nats.connect(
                servers=[u.strip() for u in self.addr.split(",")], name=f"fastrr jobs {self.pipe.name}",
                allow_reconnect=False, connect_timeout=int(CONNECT_TIMEOUT), max_reconnect_attempts=1,
                reconnect_time_wait=0.1, ping_interval=10, max_outstanding_pings=2,
                reconnect_to_server_handler=self._redial_delay, error_cb=self._on_error,
                disconnected_cb=self._on_disconnect, reconnected_cb=self._on_reconnect, closed_cb=self._on_closed)
        except Exception as exc:  # OSError, nats errors, TimeoutError: all mean "cannot connect"
            cause = self._first_error if isinstance(exc, NoServersError) and self._first_error else exc
            raise DriverError(f"cannot connect to nats at {self.shown_addr}: {describe(cause)}") from None
        nc.options["max_reconnect_attempts"] = -1
        nc.options["allow_reconnect"] = True  # from now on, redial forever (nats-py reads it at each drop)
        self.nc = nc
        self.js = nc.jetstream(timeout=PUBLISH_TIMEOUT)
        try:
            await self._declare()
        except BaseException:
            await nc.close()
            self.nc = None
            raise
        self.opened = True
        if self.rate_limit:
            self.log.info("nats pipeline hands out at most rate_limit jobs per second", pipeline=self.pipe.name,
                          rate_limit=self.rate_limit)
        self._loops = [asyncio.ensure_future(self._consume()), asyncio.ensure_future(move_due_jobs(self)),
                       asyncio.ensure_future(self._heartbeat()), asyncio.ensure_future(self._refresh_counts())]

    async def _declare(self) -> None:
        """The streams and consumers this pipeline needs (created, checked, or updated)."""
        js = self.js
        assert js is not None
        try:
            where, name = self._where(), self.pipe.name
            await ensure_stream(js, self.log, where, name, self.stream, self.subject, api.RetentionPolicy.LIMITS,
                                self.subject)
            await ensure_stream(js, self.log, where, name, self.delay_stream,
                                f"{DELAY_SUBJECT_PREFIX}.{self.stream}.>", api.RetentionPolicy.WORK_QUEUE,
                                self.delay_subject)
            await ensure_consumer(js, self.log, where, name, self.stream, self.consumer_name, self.subject,
                                  self.prefetch, self.ack_wait, new_only=bool(self.pipe.options.get("deliver_new")))
            # no MaxAckPending: every delayed job waits nak'ed in this consumer
            await ensure_consumer(js, self.log, where, name, self.delay_stream, self.consumer_name + "_delayed",
                                  self.delay_subject, -1, self.ack_wait, new_only=False)
            if self.sub is None:
                self.sub = await js.pull_subscribe_bind(durable=self.consumer_name, stream=self.stream)
            if self.delay_sub is None:
                self.delay_sub = await js.pull_subscribe_bind(durable=self.consumer_name + "_delayed",
                                                              stream=self.delay_stream)
        except DriverError:
            raise
        except Exception as exc:
            raise DriverError(f"{self._where()}: cannot set up JetStream stream {self.stream!r}: "
                              f"{describe(exc)}") from None

    async def close(self) -> None:
        self.running = False
        self.closing = True
        self._wake.set()
        consume = self._loops[0] if self._loops else None
        for task in self._loops[1:]:
            task.cancel()
        if consume is not None:
            # Let the pull request in flight end by itself (FETCH_WAIT): cancelled, the
            # messages it got would wait for ack_wait before anyone saw them again.
            try:
                await asyncio.wait_for(asyncio.shield(consume), FETCH_WAIT + 2)
            except (TimeoutError, asyncio.CancelledError):
                consume.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        for delivery in list(self.reserved.values()):
            delivery.release()  # still out (stop timed out): back to the broker now, not after ack_wait
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=PUBLISH_TIMEOUT)
        nc = self.nc
        if nc is None:
            return
        if self.pipe.options.get("delete_stream_on_stop") and self.js is not None and nc.is_connected:
            for stream in (self.stream, self.delay_stream):
                try:
                    await self.js.delete_stream(stream)
                    self.log.info("nats stream deleted (delete_stream_on_stop)", pipeline=self.pipe.name,
                                  stream=stream)
                except Exception as exc:
                    self.log.error("cannot delete the nats stream (delete_stream_on_stop)",
                                   pipeline=self.pipe.name, stream=stream, error=describe(exc))
        try:
            # flush, not drain: nats-py's drain waits for pull subscriptions' queues,
            # which fetch() never marks done, until its timeout
            if nc.is_connected:
                await nc.flush(timeout=2)
        except Exception:  # the acks sent are the broker's now or lost with the connection: redelivered
            pass
        if not nc.is_closed:
            await nc.close()
        self.nc = None

    # -- the connection ----------------------------------------------------------------

    @staticmethod
    def _redial_delay(servers: list[Any], info: dict[str, Any]) -> tuple[Any, float]:
        """nats-py's hook: which server to redial (its choice) and after how long (capped doubling)."""
        attempts = min((s.reconnects for s in servers), default=0)
        return None, min(REDIAL_CAP, REDIAL_FIRST * 2 ** attempts)

    async def _on_error(self, exc: Exception) -> None:
        if not self.opened:
            self._first_error = self._first_error or exc
            return
        if self.closing:
            return
        nc = self.nc
        if nc is not None and not nc.is_connected:
            self._redials += 1
            self.error = f"nats at {self.shown_addr}: {describe(exc)} (redialing)"
            self.log.warn("nats redial failed", pipeline=self.pipe.name, addr=self.shown_addr,
                          error=describe(exc), attempt=self._redials)
        else:
            self.log.warn("nats connection error", pipeline=self.pipe.name, addr=self.shown_addr,
                          error=describe(exc))

    async def _on_disconnect(self) -> None:
        if self.opened and not self.closing:
            self.error = f"nats at {self.shown_addr}: disconnected (redialing)"
            self.log.warn("nats connection lost, redialing", pipeline=self.pipe.name, addr=self.shown_addr)

    async def _on_reconnect(self) -> None:
        if self.closing:
            return
        self.log.info("nats reconnected", pipeline=self.pipe.name, addr=self.shown_addr, attempts=self._redials + 1)
        self._redials = 0
        self._spawn(self._redeclare(), "re-declare after reconnect")

    async def _on_closed(self) -> None:
        if self.opened and not self.closing:
            self.error = f"nats at {self.shown_addr}: connection closed"

    async def _redeclare(self) -> None:
        """After a reconnect or a lost consumer: streams and consumers again, until it works."""
        if self._redeclaring:
            return
        self._redeclaring = True
        try:
            await self._redeclare_until_done()
        finally:
            self._redeclaring = False

    async def _redeclare_until_done(self) -> None:
        delay = REDIAL_FIRST
        while not self.closing:
            try:
                await self._declare()
            except DriverError as exc:
                self.error = str(exc)
                self.log.warn("nats: cannot declare the pipeline's stream/consumer yet", pipeline=self.pipe.name,
                              error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, ERROR_BACKOFF_CAP)
                continue
            self.error = ""
            self._wake.set()
            return

    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    def _spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                self.log.error(f"nats: {what} failed", pipeline=self.pipe.name, error=describe(t.exception()))

        task.add_done_callback(done)

    # -- push ----------------------------------------------------------------------------

    async def push(self, jobs: list[Job]) -> None:
        js = self.js
        if js is None or self.closing:
            raise DriverError(f"pipeline {self.pipe.name} is closed")
        if not self.connected():
            why = self.error or f"nats at {self.shown_addr}: disconnected (redialing)"
            raise DriverError(f"pipeline {self.pipe.name}: {why}; the jobs were not pushed")
        now = time.time()
        for start in range(0, len(jobs), PUSH_CHUNK):
            chunk = jobs[start:start + PUSH_CHUNK]
            results = await self._publish_all(chunk, now)
            lost_stream = [job for job, result in zip(chunk, results, strict=True)
                           if isinstance(result, NoStreamResponseError)]
            if lost_stream:
                # Nothing stores the subject: the stream was deleted (or the broker lost
                # it). Declare it again and publish those once more.
                self.log.warn("nats: no stream stores the pipeline's subject, declaring it again",
                              pipeline=self.pipe.name, stream=self.stream, subject=self.subject)
                await self._declare()
                again = iter(await self._publish_all(lost_stream, now))
                results = [next(again) if isinstance(r, NoStreamResponseError) else r for r in results]
            for job, result in zip(chunk, results, strict=True):
                if isinstance(result, BaseException):
                    raise DriverError(f"{self._where()}: job {job.id} was not stored by the stream: "
                                      f"{describe(result)}")
                self.pushed += 1
                if job.delay > 0:
                    self._broker_delayed += 1
                else:
                    self._broker_active += 1
        self._wake.set()

    async def _publish_all(self, jobs: list[Job], now: float) -> list[Any]:
        """Publish concurrently (written in order on the one connection); a result or an exception per job."""
        return await asyncio.gather(*(self._publish(job, now + job.delay if job.delay > 0 else None)
                                      for job in jobs), return_exceptions=True)

    async def _publish(self, job: Job, due: float | None) -> None:
        """One job's message, stored by its stream (the publish ack) before this returns."""
        js = self.js
        assert js is not None
        subject, stream = (self.delay_subject, self.delay_stream) if due is not None else (self.subject, self.stream)
        await js.publish(subject, wire.encode(job), timeout=PUBLISH_TIMEOUT, stream=stream,
                         headers=wire.nats_headers(job, due))

    # -- consuming -----------------------------------------------------------------------

    async def run(self) -> None:
        self.running = True
        self._wake.set()

    async def pause(self) -> None:
        # The pull request in flight ends within FETCH_WAIT; what it brings is nak'ed.
        self.running = False
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def _idle(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            pass

    def _rate_room(self) -> tuple[int, float]:
        """(jobs the rate limit lets out now, seconds until the next one if none)."""
        limit = self.rate_limit
        if limit <= 0:
            return FETCH_BATCH, 0.0
        now = time.monotonic()
        self._tokens = min(float(limit), self._tokens + (now - self._tokens_at) * limit)
        self._tokens_at = now
        if self._tokens >= 1:
            return int(self._tokens), 0.0
        return 0, (1 - self._tokens) / limit

    async def _consume(self) -> None:
        """Pull from the pipeline's consumer while running, within prefetch, the sink's room and rate_limit."""
        while not self.closing:
            self._wake.clear()
            room = self.prefetch - len(self.reserved)
            if not self.running or self.sub is None or not self.connected() or room <= 0 \
                    or not self.sink.has_room():
                await self._idle(FETCH_WAIT)
                continue
            allowed, wait = self._rate_room()
            if allowed <= 0:
                await asyncio.sleep(wait)
                continue
            try:
                msgs = await self.sub.fetch(min(room, allowed, FETCH_BATCH), timeout=FETCH_WAIT)
            except (NatsTimeoutError, TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self.fetch_failed("jobs", exc)
                continue
            self._fetch_errors = 0
            for msg in msgs:
                self._deliver(msg)

    async def fetch_failed(self, what: str, exc: Exception) -> None:
        """A pull request that failed (not one that found nothing): log, re-declare if the
        broker lost the consumer, back off."""
        self._fetch_errors += 1
        if self._fetch_errors == 1 or self.connected():
            self.log.warn(f"nats fetch of {what} failed", pipeline=self.pipe.name, error=describe(exc),
                          failures=self._fetch_errors)
        if isinstance(exc, (NotFoundError, NoRespondersError)) and self.connected():
            await self._redeclare()  # the broker lost the consumer (or the stream)
        await asyncio.sleep(min(ERROR_BACKOFF_CAP, 0.1 * 2 ** min(self._fetch_errors, 6)))

    def moved_due(self) -> None:
        """delayed.py moved a due job to the pipeline's subject."""
        self._broker_delayed = max(0, self._broker_delayed - 1)
        self._broker_active += 1
        self._wake.set()

    def _deliver(self, msg: Any) -> None:
        job = wire.decode(msg.data, msg.headers, msg.subject, self.pipe.name, self.pipe.priority)
        if not self.running or self.closing:
            self._spawn(msg.nak(), "nak after pause")  # fetched as the pipeline paused: back at once
            return
        if self.rate_limit > 0:
            self._tokens -= 1
        self._broker_active = max(0, self._broker_active - 1)
        delivery = Delivery(job, self, handle=msg)
        self.reserved[id(delivery)] = delivery
        self.sink.offer(delivery)

    async def _heartbeat(self) -> None:
        """In-progress acks for every delivery this fastrr holds, every third of ack_wait."""
        every = self.ack_wait / 3
        while not self.closing:
            await asyncio.sleep(every)
            if not self.connected():
                continue
            for delivery in list(self.reserved.values()):
                if not delivery.done:
                    try:
                        await delivery.handle.in_progress()
                    except Exception as exc:  # the next round tries again; ack_wait is three rounds
                        self.log.debug("nats in-progress failed", pipeline=self.pipe.name, id=delivery.job.id,
                                       error=describe(exc))

    async def _refresh_counts(self) -> None:
        js = self.js
        assert js is not None
        while not self.closing:
            await asyncio.sleep(STATS_EVERY)
            if not self.connected():
                continue
            try:
                main = await js.consumer_info(self.stream, self.consumer_name, timeout=2.0)
                later = await js.consumer_info(self.delay_stream, self.consumer_name + "_delayed", timeout=2.0)
            except NotFoundError:  # deleted under us (fetches only time out then): declare again
                self.log.warn("nats: the pipeline's consumer or stream is gone, declaring it again",
                              pipeline=self.pipe.name, stream=self.stream, consumer=self.consumer_name)
                await self._redeclare()
                continue
            except Exception:  # Stat shows the last known counts; the error (if any) is in self.error
                continue
            # Nak'ed (released) messages stay "ack pending" until redelivered: waiting
            # ones are the undelivered plus the pending this fastrr does not hold (so
            # with two instances, the other's running jobs count as waiting here).
            held = len(self.reserved)
            self._broker_active = int(main.num_pending or 0) + max(0, int(main.num_ack_pending or 0) - held)
            self._broker_delayed = int(later.num_pending or 0) + int(later.num_ack_pending or 0)

    # -- outcomes ------------------------------------------------------------------------

    def ack(self, delivery: Delivery) -> None:
        self.reserved.pop(id(delivery), None)
        self.acked += 1
        self._spawn(self._ack(delivery.handle), "ack")
        self.wake()

    async def _ack(self, msg: Any) -> None:
        await msg.ack()
        if self.pipe.options.get("delete_after_ack") and self.js is not None:
            await self.js.delete_msg(self.stream, msg.metadata.sequence.stream)

    def drop(self, delivery: Delivery) -> None:
        """Failed for good (max_attempts, nack without requeue): Term, JetStream's word for it
        (the message is not redelivered, and JetStream's advisories say it was terminated)."""
        self.reserved.pop(id(delivery), None)
        self.acked += 1
        self._spawn(delivery.handle.term(), "term")
        self.wake()

    def retry(self, delivery: Delivery, delay: float) -> None:
        self.reserved.pop(id(delivery), None)
        self.retried += 1
        self._spawn(self._retry(delivery, delay), "retry")
        self.wake()

    async def _retry(self, delivery: Delivery, delay: float) -> None:
        msg = delivery.handle
        try:
            await self._publish(delivery.job, time.time() + delay if delay > 0 else None)
        except Exception as exc:
            self.log.error("nats: cannot publish the retried job, it comes back as it was", id=delivery.job.id,
                           pipeline=self.pipe.name, error=describe(exc))
            await msg.nak(delay=delay or None)
            return
        if delay > 0:
            self._broker_delayed += 1
        await self._ack(msg)

    def release(self, delivery: Delivery) -> None:
        self.reserved.pop(id(delivery), None)
        self._spawn(delivery.handle.nak(), "release")
        self.wake()

    def state(self) -> dict[str, Any]:
        # Not ready while redialing: nothing is consumed then, whatever `running` says.
        return {**self.counts(), "ready": self.running and self.connected(), "error": self.error}

    def counts(self) -> dict[str, int]:
        return {"active": self._broker_active, "delayed": self._broker_delayed, "reserved": len(self.reserved)}


DRIVER = NatsDriver
