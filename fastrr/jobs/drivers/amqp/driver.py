"""The amqp jobs driver: a pipeline on a RabbitMQ (AMQP 0-9-1) exchange and queue, through aiormq.

What maps to what on the broker:
- The pipeline's `exchange` (`exchange_type`) is declared at open; with a
  `queue`, the queue is declared with `queue_headers` as its arguments and
  bound with `routing_key` at open too, so pushes made before anyone consumes
  are kept (RoadRunner declares the queue only when consuming starts, so
  such pushes were routed nowhere and dropped silently, #739). Without a
  queue the pipeline is push-only (#2256): push works, consuming is refused
  with a clear error, Stat shows 0 (never an error, #1952).
- push publishes persistent (delivery_mode 2), application/octet-stream
  messages to the exchange with RoadRunner's headers (rr_id, rr_job,
  rr_pipeline, rr_headers as JSON bytes, rr_delay, rr_priority, rr_auto_ack)
  plus `fastrr_attempts`, the attempt count that lets max_attempts end a
  poison loop (#1089). A push header `x-routing-key` overrides the routing
  key for that job, as in RoadRunner. Every publish is confirmed (publisher
  confirms) and published `mandatory`: push returns only once the broker
  took every message; a nack, or a message no queue is bound for (RabbitMQ
  would drop it silently), is a DriverError for that push. A push-only
  pipeline therefore needs the consumer's queue bound before it pushes.
- Delays, as RoadRunner (Debian's RabbitMQ has no delayed-message plugin):
  a durable queue per delay and destination, with `x-message-ttl` = the
  delay, `x-dead-letter-exchange`/`x-dead-letter-routing-key` = where the job
  goes when it expires, and `x-expires` = twice the delay plus a minute (the
  minute keeps a short delay's queue from expiring between declare and
  publish). Its name is `delayed-<ms>.<pipeline>.<exchange>.<routing key>`:
  RoadRunner's has no pipeline, so pipelines sharing an exchange and a delay
  collided (#1792). Delayed publishes are confirmed too (RoadRunner's are not).
- Retry (a failed run, or a requeue) publishes a copy with the new headers,
  attempt count and delay straight to this pipeline's queue (through the
  default exchange, or the delay queue that dead-letters into it), then acks
  the original; if that publish fails the original is nacked with requeue
  (back as it was, this round's attempt not counted) rather than lost.
  Release is basic.nack(requeue=true). A fanout exchange's other queues never
  see a retry (RoadRunner republishes to the exchange).
- Prefetch is basic.qos on the consuming channel: the broker sends at most
  that many unacked deliveries. Priority is the rr_priority header ordering
  prefetched jobs in fastrr's queue (as RoadRunner; AMQP message priority is
  not set). Pause is basic.cancel (jobs already received are released,
  running ones finish and ack); resume consumes again.
- Acks of one event-loop turn go out as one multiple ack for those older than
  every delivery still unsettled (running, held, being retried), one by one
  for the rest, with or without `multiple_ack` (the result is the same as
  one ack each). RoadRunner's `multiple_ack` also acked deliveries still
  running, which lost them on a crash: fastrr accepts the key and never does
  that. `requeue_on_fail` has no effect: RoadRunner used it to
  choose between redelivering and dropping a failed job; fastrr always
  retries a failed run with its attempt count (a copy, as above) until
  max_attempts, then dead_letter or drop, which is the behaviour
  requeue_on_fail: true was for, without its endless loop.
- A delivery whose run outlasts RabbitMQ's consumer_timeout (30 min by
  default) makes the broker close the channel (#1103): the driver logs that,
  reconnects and consumes again; the broker redelivers the job (a duplicate).
  Below that, an unacked delivery stays with this consumer however long the
  job runs (AMQP heartbeats keep the connection alive): no other instance
  gets it, and a fastrr that dies has its deliveries redelivered.
- A consumer the broker cancels (its queue was deleted) is not left silent:
  the driver reconnects, which declares the queue again.

Faults: open fails with a DriverError naming the address (password hidden)
and the broker's error. After that, a lost connection is redialed forever
with capped exponential backoff (0.2 s doubling to 5 s, each failure logged
with its error): exchange, queue and binding are declared again, QoS set, and
consuming resumes if it was on. `error` is set while disconnected (Stat,
/ready) and `running` (Stat's ready) is false until consuming is on again,
so a pause asked during the outage is refused as "not consuming". After
`redial_timeout` seconds of failures `error` says the pipeline has failed
and an error is logged, but redialing goes on (RoadRunner stops, then
recreates the pipeline or exits). Pushes while disconnected wait up to 2 s
for the connection, then fail with a DriverError. Deliveries of a dead
connection cannot be acked: the broker redelivers them (counted in
`redelivered`, duplicates at-least-once allows); the ones not started yet
are dropped from fastrr's queue at once.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from typing import Any

import aiormq
from aiormq.abc import DeliveredMessage
from pamqp import commands as spec

from fastrr.jobs.drivers.amqp.config import AmqpBroker
from fastrr.jobs.drivers.amqp.publish import publish_many
from fastrr.jobs.drivers.amqp.settle import Settler
from fastrr.jobs.drivers.amqp.wire import (
    delay_queue,
    error_text,
    future_error,
    job_from_message,
    job_headers,
    safe_addr,
)
from fastrr.jobs.drivers.base import Driver, DriverError
from fastrr.jobs.job import Delivery, Job

REDIAL_FIRST, REDIAL_CAP = 0.2, 5.0  # seconds: the redial backoff
PUSH_WAIT = 2.0  # seconds a push waits for a redial before failing
STAT_EVERY = 0.5  # seconds between broker message counts (Stat asks more often)
RETRY_PUBLISH_BACKOFF = 1.0  # seconds before a job whose retry copy could not be published goes back


class AmqpDriver(Driver):
    name = "amqp"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.settings: AmqpBroker = self.broker or AmqpBroker()
        self.opts = self.pipe.options
        self.conn: aiormq.abc.AbstractConnection | None = None
        self.pub: aiormq.abc.AbstractChannel | None = None  # publisher confirms
        self.sub: aiormq.abc.AbstractChannel | None = None  # consuming, basic.qos prefetch
        self.generation = 0  # one per connection: deliveries of an older one cannot be acked
        self.connected = asyncio.Event()
        self.closed = False
        # run() was called and no pause since: consume whenever connected. `running` is
        # whether basic.consume is on now (Stat's ready: false while redialing)
        self.want_consume = False
        self.held: deque[Delivery] = deque()  # received, not offered yet (sink full or paused)
        self.reserved: dict[tuple[int, int], Delivery] = {}  # (generation, tag) -> offered, not finished
        self.settle = Settler(self.loop, self._spawn)  # acks and nacks on the consuming channel
        self.delayed_until: list[float] = []  # wall times this process's delayed pushes fall due
        self.broker_ready = 0  # the queue's message count at the last look
        self._stat_at = 0.0
        self._stat_task: asyncio.Task[None] | None = None
        self._redial: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.down_since = 0.0
        self.redelivered = 0  # deliveries the broker marked redelivered (duplicates after a fault)
        self.lost_acks = 0  # acks that could not be sent: their connection died
        self.consumer_tag = str(self.opts["consumer_id"])

    # -- names ---------------------------------------------------------------------

    @property
    def queue_name(self) -> str:
        return str(self.opts["queue"])

    @property
    def exchange(self) -> str:
        return str(self.opts["exchange"])

    # -- connection ------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext | None:
        tls = self.settings.tls
        if tls is None:
            return None
        context = ssl.create_default_context(cafile=tls.root_ca or None)
        if tls.cert:
            context.load_cert_chain(tls.cert, tls.key)
        return context

    async def _connect(self) -> None:
        """One connection: channels, declarations, QoS, and consuming if it was on."""
        addr = self.settings.addr
        if self.settings.tls is not None and addr.startswith("amqp://"):
            addr = "amqps://" + addr[len("amqp://"):]
        conn = aiormq.Connection(addr, context=self._ssl_context(),
                                 client_properties={"connection_name": f"fastrr {self.pipe.name}"})
        await conn.connect()
        try:
            pub = await conn.channel(publisher_confirms=True, on_return_raises=True)
            if self.opts["exchange_declare"]:
                await pub.exchange_declare(self.exchange, exchange_type=str(self.opts["exchange_type"]),
                                           durable=bool(self.opts["exchange_durable"]),
                                           auto_delete=bool(self.opts["exchange_auto_delete"]))
            if self.queue_name and self.opts["queue_declare"]:
                await pub.queue_declare(self.queue_name, durable=bool(self.opts["durable"]),
                                        exclusive=bool(self.opts["exclusive"]),
                                        auto_delete=bool(self.opts["queue_auto_delete"]),
                                        arguments=dict(self.opts["queue_headers"]) or None)
                await pub.queue_bind(self.queue_name, self.exchange, routing_key=str(self.opts["routing_key"]))
        except BaseException:
            await conn.close()
            raise
        self.generation += 1
        self.conn, self.pub = conn, pub
        generation = self.generation
        conn.closing.add_done_callback(lambda fut: self._lost(generation, fut))
        pub.closing.add_done_callback(lambda fut: self._channel_lost(generation, fut, "publish"))
        if self.want_consume:
            try:
                await self._consume()
            except BaseException:
                self.generation += 1  # this connection's close is not a loss to report: we give it up
                self.conn = self.pub = self.sub = None
                self.running = False
                await conn.close()
                raise
        self.error = ""
        self.down_since = 0.0
        self.connected.set()

    async def _consume(self) -> None:
        conn = self.conn
        if conn is None:
            raise DriverError(f"pipeline {self.pipe.name}: not connected to {safe_addr(self.settings.addr)}")
        if self.sub is None or self.sub.is_closed:
            sub = await conn.channel(publisher_confirms=False)
            await sub.basic_qos(prefetch_count=self.prefetch)
            generation = self.generation
            sub.closing.add_done_callback(lambda fut: self._channel_lost(generation, fut, "consume"))
            sub.on_consumer_cancel_callbacks.add(lambda frame: self._cancelled_by_broker(generation))
            self.sub = sub
            self.settle.reset(sub)
        await self.sub.basic_consume(self.queue_name, self._on_message, consumer_tag=self.consumer_tag)
        self.running = True

    def _channel_lost(self, generation: int, fut: asyncio.Future[Any], which: str) -> None:
        """A channel the broker closed (consumer_timeout, a failed declare) takes its
        connection down with it: the redial brings everything back in order."""
        if generation != self.generation or self.closed or self.conn is None:
            return
        why = future_error(fut)
        if "timeout" in why.lower() and which == "consume":
            why += " (a job ran longer than RabbitMQ's consumer_timeout)"
        self.log.error(f"amqp {which} channel closed by the broker, reconnecting", pipeline=self.pipe.name,
                       error=why)
        self._spawn(self.conn.close())

    def _cancelled_by_broker(self, generation: int) -> None:
        """basic.cancel from the broker (the queue was deleted): consuming would stop
        without a word, so reconnect, which declares the queue again and consumes."""
        if generation != self.generation or self.closed or self.conn is None:
            return
        self.log.error("amqp consumer cancelled by the broker (queue deleted?), reconnecting",
                       pipeline=self.pipe.name, queue=self.queue_name)
        self._spawn(self.conn.close())

    def _lost(self, generation: int, fut: asyncio.Future[Any]) -> None:
        if generation != self.generation or self.closed:
            return
        why = future_error(fut)
        self.conn = self.pub = self.sub = None
        self.running = False
        self.connected.clear()
        self.generation += 1  # acks of what that connection delivered are void now
        self.error = f"disconnected from {safe_addr(self.settings.addr)}: {why}"
        self.down_since = time.monotonic()
        self.log.error("amqp connection lost, redialing", pipeline=self.pipe.name, error=why)
        # Not started yet: the broker redelivers them, so they must not run from here too.
        for delivery in self.reserved.values():
            if not delivery.started:
                delivery.done = True
        self.reserved.clear()
        self.held.clear()
        self.settle.reset(None)
        if self._redial is None or self._redial.done():
            self._redial = asyncio.ensure_future(self._redial_forever())

    async def _redial_forever(self) -> None:
        backoff = REDIAL_FIRST
        attempt = 0
        reported_failed = False
        limit = int(self.opts["redial_timeout"])
        while not self.closed:
            await asyncio.sleep(backoff)
            attempt += 1
            try:
                await asyncio.wait_for(self._connect(), 30)
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except BaseException as exc:  # every broker/network failure: log it, wait, try again
                why = error_text(exc)
                down = time.monotonic() - self.down_since
                if down > limit:
                    self.error = (f"failed: {safe_addr(self.settings.addr)} unreachable for {down:.0f}s "
                                  f"(redial_timeout {limit}s), still redialing: {why}")
                    if not reported_failed:
                        reported_failed = True
                        self.log.error("amqp pipeline failed: broker unreachable past redial_timeout; "
                                       "redialing goes on", pipeline=self.pipe.name, redial_timeout=limit)
                else:
                    self.error = f"disconnected from {safe_addr(self.settings.addr)}, redialing: {why}"
                self.log.warn("amqp redial failed", pipeline=self.pipe.name, attempt=attempt, error=why,
                              next_in=min(backoff * 2, REDIAL_CAP))
                backoff = min(backoff * 2, REDIAL_CAP)
                continue
            self.log.info("amqp reconnected", pipeline=self.pipe.name, attempts=attempt,
                          consuming=self.running)
            return

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and not self.closed:
            self.log.warn("amqp background operation failed", pipeline=self.pipe.name,
                          error=error_text(task.exception()))

    # -- the Driver interface ------------------------------------------------------------

    async def open(self) -> None:
        try:
            await self._connect()
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except aiormq.exceptions.AMQPChannelError as exc:  # connected, but a declare was refused
            raise DriverError(f"the AMQP broker at {safe_addr(self.settings.addr)} refused the pipeline's "
                              f"exchange or queue: {error_text(exc)}") from None
        except BaseException as exc:
            raise DriverError(f"cannot connect to the AMQP broker at {safe_addr(self.settings.addr)}: "
                              f"{error_text(exc)}") from None

    async def run(self) -> None:
        if not self.queue_name:
            raise DriverError(f"pipeline {self.pipe.name} has no queue to consume (a push-only amqp pipeline): "
                              "set its queue option")
        self.want_consume = True
        if self.conn is not None and not self.running:
            try:
                await self._consume()
            except aiormq.exceptions.AMQPError as exc:
                self.want_consume = False
                raise DriverError(f"pipeline {self.pipe.name}: cannot consume {self.queue_name}: "
                                  f"{error_text(exc)}") from None
        # else the redial starts consuming when the broker is back
        self.wake()

    async def pause(self) -> None:
        self.want_consume = False
        if self.running and self.sub is not None and not self.sub.is_closed:
            self.running = False
            try:
                await self.sub.basic_cancel(self.consumer_tag)
            except (aiormq.exceptions.AMQPError, RuntimeError) as exc:
                self.log.warn("amqp basic.cancel failed", pipeline=self.pipe.name, error=error_text(exc))
        self.running = False
        while self.held:  # received, never offered: back to the broker
            self.held.popleft().release()

    async def push(self, jobs: list[Job]) -> None:
        if self.closed:
            raise DriverError(f"pipeline {self.pipe.name} is closed")
        if self.pub is None:
            try:
                await asyncio.wait_for(self.connected.wait(), PUSH_WAIT)
            except TimeoutError:
                raise DriverError(f"pipeline {self.pipe.name}: {self.error or 'not connected'}") from None
        pub = self.pub
        assert pub is not None
        now = [job for job in jobs if job.delay <= 0]
        later = [job for job in jobs if job.delay > 0]
        results: list[Any] = []
        if now:
            confirms = await publish_many(pub, [(job.payload, self.exchange, self._routing_key(job),
                                                 self._properties(job, 0.0)) for job in now])
            results += [_confirmed(c) for c in confirms]
        if later:
            results += await asyncio.gather(*(self._publish(pub, job, job.delay, None) for job in later),
                                            return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        self.pushed += len(jobs) - len(failed)
        if failed:
            raise DriverError(f"pipeline {self.pipe.name}: {len(failed)} of {len(jobs)} jobs not accepted by "
                              f"the broker: {error_text(failed[0])}")

    async def _publish(self, pub: aiormq.abc.AbstractChannel, job: Job, delay: float,
                       to_queue: str | None) -> None:
        """One confirmed, mandatory publish: to the exchange (push) or straight to
        `to_queue` (a retry), through a delay queue when `delay` > 0."""
        if to_queue is None:
            exchange, routing_key = self.exchange, self._routing_key(job)
        else:
            exchange, routing_key = "", to_queue
        if delay > 0:
            ms = max(1, int(delay * 1000))
            name, arguments = delay_queue(self.pipe.name, ms, exchange, routing_key)
            await pub.queue_declare(name, durable=True, arguments=arguments)
            exchange, routing_key = "", name
        [confirm] = await publish_many(pub, [(job.payload, exchange, routing_key, self._properties(job, delay))])
        problem = _confirmed(confirm)
        if problem is not None:
            raise problem
        if delay > 0:
            self.delayed_until.append(time.time() + delay)

    def _routing_key(self, job: Job) -> str:
        override = job.headers.get("x-routing-key")  # RoadRunner's per-push override
        return override[0] if override else str(self.opts["routing_key"])

    @staticmethod
    def _properties(job: Job, delay: float) -> spec.Basic.Properties:
        return spec.Basic.Properties(delivery_mode=2, content_type="application/octet-stream",
                                     headers=job_headers(job, delay))

    # -- consuming --------------------------------------------------------------------

    async def _on_message(self, message: DeliveredMessage) -> None:
        if message.channel is not self.sub or self.sub is None:
            return  # a late frame of a channel we left
        job, bad_headers = job_from_message(message, self.pipe.name, self.pipe.priority)
        if bad_headers:
            self.log.warn("amqp message with rr_headers that are not JSON, ignored", pipeline=self.pipe.name,
                          id=job.id)
        if message.delivery.redelivered:
            self.redelivered += 1
        tag = message.delivery.delivery_tag
        self.settle.received(tag)
        if not self.want_consume:  # sent before the broker saw our basic.cancel: give it back
            self.settle.nack(tag)
            return
        self.held.append(Delivery(job, self, handle=(self.generation, tag)))
        self.wake()

    def wake(self) -> None:
        sink = self.sink
        while self.running and self.held and sink.has_room():
            delivery = self.held.popleft()
            self.reserved[delivery.handle] = delivery
            sink.offer(delivery)

    def _current(self, delivery: Delivery) -> bool:
        """Still on the live connection (else the broker redelivers it: nothing to send)."""
        generation, _ = delivery.handle
        self.reserved.pop(delivery.handle, None)
        if generation == self.generation and self.sub is not None and not self.sub.is_closed:
            return True
        self.lost_acks += 1
        self.log.warn("amqp delivery of a lost connection finished; the broker redelivers it",
                      pipeline=self.pipe.name, id=delivery.job.id)
        return False

    def ack(self, delivery: Delivery) -> None:
        if not self._current(delivery):
            return
        self.acked += 1
        self.settle.ack(delivery.handle[1])
        self.wake()

    def retry(self, delivery: Delivery, delay: float) -> None:
        if not self._current(delivery):
            return
        self.retried += 1
        self._spawn(self._republish(delivery, delay))
        self.wake()

    async def _republish(self, delivery: Delivery, delay: float) -> None:
        generation, tag = delivery.handle
        sub, pub = self.sub, self.pub
        try:
            if pub is None:
                raise DriverError("not connected")
            await self._publish(pub, delivery.job, delay, self.queue_name)
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except BaseException as exc:
            self.log.error("amqp retry publish failed; the job goes back to the queue as it was",
                           pipeline=self.pipe.name, id=delivery.job.id, error=error_text(exc),
                           backoff=RETRY_PUBLISH_BACKOFF)
            await asyncio.sleep(RETRY_PUBLISH_BACKOFF)  # not a hot loop if publishing keeps failing
            if generation == self.generation and sub is not None and not sub.is_closed:
                self.settle.nack(tag)
            return
        if generation == self.generation and sub is not None and not sub.is_closed:
            self.settle.ack(tag)
        else:  # the copy is queued; the original comes back too: a duplicate, not a loss
            self.lost_acks += 1

    def release(self, delivery: Delivery) -> None:
        if delivery.handle not in self.reserved:  # still held: never offered
            try:
                self.held.remove(delivery)
            except ValueError:
                pass
        if not self._current(delivery):
            return
        self.settle.nack(delivery.handle[1])

    async def close(self) -> None:
        self.want_consume = False
        if self.running and self.sub is not None and not self.sub.is_closed:
            try:
                await self.sub.basic_cancel(self.consumer_tag)
            except (aiormq.exceptions.AMQPError, RuntimeError):
                pass
        self.running = False
        while self.held:
            self.held.popleft().release()
        self.closed = True
        if self._redial is not None:
            self._redial.cancel()
        if self._tasks:  # acks and nacks in flight reach the broker before the connection closes
            await asyncio.wait(list(self._tasks), timeout=5)
        conn = self.conn
        if conn is not None and not conn.is_closed:
            if self.opts["delete_queue_on_stop"] and self.queue_name and self.pub is not None:
                try:
                    await self.pub.queue_delete(self.queue_name)
                except aiormq.exceptions.AMQPError as exc:
                    self.log.warn("amqp delete_queue_on_stop failed", pipeline=self.pipe.name,
                                  error=error_text(exc))
            # unacked deliveries go back to the queue with the connection
            await conn.close()
        self.conn = self.pub = self.sub = None

    # -- counts ---------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        now = time.time()
        if self.delayed_until:
            self.delayed_until = [t for t in self.delayed_until if t > now]
        if (self.queue_name and self.pub is not None and time.monotonic() - self._stat_at > STAT_EVERY
                and (self._stat_task is None or self._stat_task.done())):
            self._stat_task = asyncio.ensure_future(self._refresh_stat())
        return {"active": self.broker_ready + len(self.held), "delayed": len(self.delayed_until),
                "reserved": len(self.reserved)}

    async def _refresh_stat(self) -> None:
        """The queue's ready count, by a passive declare on a channel of its own (a
        missing queue closes that channel: then the count is 0, never an error)."""
        self._stat_at = time.monotonic()
        conn = self.conn
        if conn is None or conn.is_closed:
            return
        try:
            channel = await conn.channel(publisher_confirms=False)
            try:
                ok = await channel.queue_declare(self.queue_name, passive=True)
                self.broker_ready = int(getattr(ok, "message_count", 0) or 0)
            finally:
                if not channel.is_closed:
                    await channel.close()
        except (aiormq.exceptions.AMQPError, RuntimeError, OSError):
            self.broker_ready = 0

    def state(self) -> dict[str, Any]:
        return {**self.counts(), "ready": self.running, "error": self.error}


def _confirmed(confirm: Any) -> DriverError | None:
    """None for a broker ack; else the DriverError that push reports for that job."""
    if isinstance(confirm, spec.Basic.Ack):
        return None
    if isinstance(confirm, aiormq.exceptions.PublishError):
        frame = confirm.frame
        return DriverError(f"unroutable: no queue is bound to exchange {getattr(frame, 'exchange', '')!r} with "
                           f"routing key {getattr(frame, 'routing_key', '')!r}")
    if isinstance(confirm, BaseException):
        return DriverError(error_text(confirm))
    return DriverError(f"the broker refused the message ({type(confirm).__name__})")


DRIVER = AmqpDriver
