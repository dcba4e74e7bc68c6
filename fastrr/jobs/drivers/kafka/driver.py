"""The kafka jobs driver (aiokafka): a pipeline is a topic, its consumers a consumer group.

What maps to what:
- push: one record per job on the pipeline's first topic (records.py: key =
  job id, RoadRunner's rr_* headers, fastrr's attempt and due-time headers),
  `send` then wait for every broker ack before returning (acks=all by
  default; idempotent unless `disable_idempotent` or the broker refuses an
  idempotent producer, which is logged once: Tansu does). A push while the
  broker is down fails with DriverError when aiokafka's delivery timeout
  passes, or earlier when jobs.timeout does: never a silent loss.
- consume: with `group_options.group_id` the pipeline subscribes as a member
  of that consumer group (partitions are spread over every fastrr sharing
  it, and a dead member's partitions move to the others after the session
  timeout); without it, it reads fixed partitions (`consume_partitions`, or
  every partition of `topics`) and commits nothing, as RoadRunner does.
- ack: the offset is marked done and the longest done prefix of its
  partition is committed (offsets.py), batched. RoadRunner commits whatever
  PHP answered (#1325); fastrr never commits past a job that is running,
  was lost with a crashed worker, or waits for its delay.
- retry (nack with requeue, requeue, a crash): a copy with the new headers,
  attempt count and due time is produced, then the original is marked done;
  a failed produce is tried again every second, the original staying
  uncommitted meanwhile. release: the record goes back to the driver's
  buffer as it was.
- delays (Kafka has none): the record carries `fastrr_due`; the consumer
  holds a record that is not due in memory until it is. Held records count
  against `prefetch`, so memory stays bounded, and they hold back their
  partition's commit position (a restart re-reads what follows them:
  duplicates, never losses). When `prefetch` records are all held for
  their delays, reading stops until one is due: Kafka suits short delays.
- pause: the consumer pauses every assigned partition and keeps polling, so
  it stays in the group; running jobs finish. The same happens while
  `prefetch` records are out or the shared queue is full.
- rebalance: before giving up a partition the driver waits (bounded) for its
  running jobs, commits their prefix, and forgets its buffered records (the
  new owner reads them again); an ack that arrives later is stale and
  ignored: that job is run again elsewhere (a duplicate, counted as such).
- faults: aiokafka redials by itself; a probe asks the broker for metadata
  every second (backing off while it fails) and keeps `error` set, for Stat,
  while it cannot; the consume loop survives any error with a capped
  exponential backoff. Commits that fail are retried; the group's offsets
  live on the broker, so acks made before an outage are not lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from fastrr.jobs.drivers.base import Driver, DriverError
from fastrr.jobs.drivers.kafka import client, records
from fastrr.jobs.drivers.kafka.config import (
    ConsumerOptions,
    GroupOptions,
    KafkaBroker,
    Offset,
    ProducerOptions,
    push_topic,
)
from fastrr.jobs.drivers.kafka.offsets import PartitionState
from fastrr.jobs.job import Delivery, Job

PROBE_INTERVAL = 1.0  # seconds between broker probes while it answers
MAX_BACKOFF = 30.0  # seconds: the cap of every redial / retry backoff
POLL_MS = 300  # one getmany's wait for records
REQUEUE_RETRY = 1.0  # seconds before a failed requeue produce is tried again
CLOSE_WAIT = 5.0  # seconds close() gives requeues and the last commit


@dataclass(frozen=True)
class Handle:
    topic: str
    partition: int
    offset: int
    generation: int


class KafkaDriver(Driver):
    name = "kafka"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        opts = self.pipe.options
        self.producer_opts: ProducerOptions = opts["producer_options"]
        self.consumer_opts: ConsumerOptions = opts["consumer_options"]
        self.group: GroupOptions | None = opts["group_options"]
        self.topic = push_topic(self.consumer_opts)
        self.producer: Any = None
        self.consumer: Any = None
        self.parts: dict[Any, PartitionState] = {}  # TopicPartition -> what is handed out of it
        self.ready: deque[Delivery] = deque()  # read, waiting for room in the shared queue
        self.waiting: list[tuple[float, int, Delivery]] = []  # (due wall time, order, delivery): delayed
        self.out: dict[Handle, Delivery] = {}  # offered to the shared queue, not finished
        self._order = itertools.count()
        self._generation = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None
        self._woken = asyncio.Event()
        self._consume_task: asyncio.Task[None] | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self._commit_task: asyncio.Task[None] | None = None
        self._requeues: set[asyncio.Task[None]] = set()
        self._errors: dict[str, str] = {}  # source (probe, consume, commit) -> its error
        self.closed = False

    # -- names ------------------------------------------------------------------------

    @property
    def queue_name(self) -> str:
        return ",".join(self.consumer_opts.topics or self.consumer_opts.consume_partitions)

    @property
    def context_queue(self) -> str:
        return ""  # `queue` goes after `pipeline` with the topic keys, in RoadRunner's order

    def state(self) -> dict[str, Any]:
        # not consuming while the broker is unreachable, whatever pause/resume said
        return {**self.counts(), "ready": self.running and not self.error, "error": self.error}

    def context_extra(self, delivery: Delivery) -> dict[str, Any] | None:
        handle: Handle = delivery.handle
        return {"queue": handle.topic, "topic": handle.topic, "partition": handle.partition, "offset": handle.offset}

    @property
    def broker_cfg(self) -> KafkaBroker:
        broker = self.broker
        if not isinstance(broker, KafkaBroker) or not broker.brokers:
            raise DriverError("the kafka driver needs the top-level kafka section with brokers: "
                              "kafka: {brokers: [\"127.0.0.1:9092\"]}")
        return broker

    @property
    def where(self) -> str:
        return client.where(self.broker_cfg)

    # -- open: the producer, the topic check, the probe ---------------------------------------

    async def open(self) -> None:
        broker = self.broker_cfg
        self._warn_unsupported()
        self.producer = await client.start_producer(broker, self.producer_opts, self.log, self.pipe.name)
        try:
            created = await client.check_topics(self.producer, broker, self.consumer_opts,
                                                self.pipe.options["auto_create_topics_enable"])
        except DriverError:
            await self.producer.stop()
            self.producer = None
            raise
        if created:
            self.log.info("kafka topics created", pipeline=self.pipe.name, topics=created)
        if self.group is None:
            self.log.warn("kafka pipeline without group_options.group_id: offsets are not committed, a restart "
                          "reads again from consumer_offset", pipeline=self.pipe.name)
        self._probe_task = asyncio.ensure_future(self._probe())

    def _warn_unsupported(self) -> None:
        popts, group = self.producer_opts, self.group
        if popts.transaction_timeout:
            self.log.warn("kafka producer_options.transaction_timeout is ignored: fastrr does not use "
                          "transactions", pipeline=self.pipe.name)
        if popts.partitioning_strategy == "LeastBackup":
            self.log.warn("kafka partitioning_strategy LeastBackup is not available in aiokafka: Uniform "
                          "(by key) is used", pipeline=self.pipe.name)
        if group is not None and group.block_rebalance_on_poll:
            self.log.warn("kafka group_options.block_rebalance_on_poll is accepted and has no effect: fastrr "
                          "always lets a revoked partition's running jobs finish first", pipeline=self.pipe.name)
        declared = self.pipe.options["brokers"]
        if declared and declared != self.broker_cfg.brokers:
            self.log.warn("kafka brokers given to jobs.Declare are ignored: the kafka section's are used",
                          pipeline=self.pipe.name, declared=declared, used=self.broker_cfg.brokers)
        if self.pipe.options["sasl"]:
            self.log.warn("kafka sasl given to jobs.Declare is ignored: the kafka section's is used",
                          pipeline=self.pipe.name)
        if self.broker_cfg.tls.client_auth_type != "no_client_cert":
            self.log.warn("kafka tls.client_auth_type is a server setting and has no effect on a client",
                          pipeline=self.pipe.name)

    # -- errors for Stat ------------------------------------------------------------------

    def _set_error(self, source: str, text: str) -> None:
        self._errors[source] = text
        self.error = "; ".join(self._errors.values())

    def _clear_error(self, source: str) -> None:
        if self._errors.pop(source, None) is not None:
            self.error = "; ".join(self._errors.values())

    async def _probe(self) -> None:
        """Ask the broker for metadata every second; `error` says why it cannot, until it can."""
        failures = 0
        while not self.closed:
            try:
                await asyncio.wait_for(self.producer.client.fetch_all_metadata(), self.broker_cfg.ping_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure of the probe is the broker's state, reported the same way
                failures += 1
                text = f"kafka brokers {self.where} unreachable: {client.describe(exc)}"
                self._set_error("probe", text)
                self.log.warn("kafka broker unreachable, aiokafka redials", pipeline=self.pipe.name,
                              attempt=failures, error=client.describe(exc))
                await asyncio.sleep(min(MAX_BACKOFF, PROBE_INTERVAL * 2 ** min(failures - 1, 5)))
                continue
            if failures:
                self.log.info("kafka broker reachable again", pipeline=self.pipe.name, after_attempts=failures)
                failures = 0
                self._clear_error("probe")
                self._schedule_commit()
            await asyncio.sleep(PROBE_INTERVAL)

    # -- push -------------------------------------------------------------------------

    async def push(self, jobs: list[Job]) -> None:
        if self.producer is None or self.closed:
            raise DriverError(f"pipeline {self.pipe.name} is closed")
        await self._produce(jobs)
        self.pushed += len(jobs)

    async def _produce(self, jobs: Iterable[Job]) -> None:
        try:
            futures = []
            for job in jobs:
                key, headers = records.pack(job)
                # RoadRunner's Push options may name the topic; retries keep it
                futures.append(await self.producer.send(job.topic or self.topic, job.payload, key=key,
                                                        headers=headers))
            await asyncio.gather(*futures)
        except (KafkaError, OSError) as exc:
            raise DriverError(f"pipeline {self.pipe.name}: kafka push to topic {self.topic} at {self.where} "
                              f"failed: {client.describe(exc)}") from None

    # -- consume ----------------------------------------------------------------------

    async def run(self) -> None:
        self.running = True
        if self._consume_task is None:
            self._consume_task = asyncio.ensure_future(self._consume())
        self.wake()

    async def pause(self) -> None:
        self.running = False
        self._woken.set()  # the loop pauses the partitions on its next turn

    def _room(self) -> int:
        return self.prefetch - len(self.ready) - len(self.waiting) - len(self.out)

    async def _consume(self) -> None:
        failures = 0
        while not self.closed:
            try:
                if self.consumer is None:
                    await self._start_consumer()
                await self._poll()
                if failures:
                    self.log.info("kafka consumer working again", pipeline=self.pipe.name)
                    failures = 0
                self._clear_error("consume")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the loop must outlive any client error; each is logged and backed off
                failures += 1
                self._set_error("consume", f"kafka consumer: {client.describe(exc)}")
                self.log.warn("kafka consume failed, retrying", pipeline=self.pipe.name, attempt=failures,
                              error=client.describe(exc))
                if self.consumer is not None and not self.consumer.assignment() and failures > 3:
                    await self._drop_consumer()  # never got going: build it again
                await asyncio.sleep(min(MAX_BACKOFF, 0.5 * 2 ** min(failures - 1, 6)))

    async def _start_consumer(self) -> None:
        copts, group = self.consumer_opts, self.group
        consumer = AIOKafkaConsumer(**client.consumer_options(self.broker_cfg, copts, group, self.prefetch))
        try:
            await asyncio.wait_for(consumer.start(), self.broker_cfg.ping_timeout)
        except BaseException:
            await consumer.stop()
            raise
        self.consumer = consumer
        if group is not None:
            listener = _Rebalance(self)
            if copts.consume_regexp:
                consumer.subscribe(pattern="|".join(f"(?:{t})" for t in copts.topics), listener=listener)
            else:
                consumer.subscribe(copts.topics, listener=listener)
            return
        fixed: dict[Any, Offset] = {}
        for topic, by_partition in copts.consume_partitions.items():
            for number, spec in by_partition.items():
                fixed[TopicPartition(topic, number)] = spec
        if not fixed:
            await consumer.topics()  # loads the metadata partitions_for_topic reads
            for topic in copts.topics:
                for number in sorted(consumer.partitions_for_topic(topic) or ()):
                    fixed[TopicPartition(topic, number)] = copts.consumer_offset
        consumer.assign(list(fixed))
        for tp, spec in fixed.items():
            self.parts[tp] = PartitionState(next(self._generation))
            await client.seek(self.consumer, tp, spec)
        self.log.info("kafka partitions assigned", pipeline=self.pipe.name,
                      partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in fixed))

    async def _drop_consumer(self) -> None:
        consumer, self.consumer = self.consumer, None
        self._forget(list(self.parts))
        try:
            await consumer.stop()
        except Exception as exc:  # closing a broken client: nothing left to save
            self.log.debug("kafka consumer stop failed", pipeline=self.pipe.name, error=client.describe(exc))

    async def _poll(self) -> None:
        consumer = self.consumer
        assigned = consumer.assignment()
        fetch = self.running and self._room() > 0 and not self.ready and self.sink.has_room()
        paused = consumer.paused()
        if fetch:
            if paused:
                consumer.resume(*paused)
            self._woken.clear()
            batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=self._room())
            for tp, recs in batch.items():
                for record in recs:
                    self._take(tp, record)
            self.wake()
            return
        if assigned - paused:
            consumer.pause(*(assigned - paused))
        await consumer.getmany(timeout_ms=0)  # a poll keeps the member in its group (max_poll_interval)
        self._woken.clear()
        try:
            await asyncio.wait_for(self._woken.wait(), POLL_MS / 1000)
        except TimeoutError:
            pass

    def _take(self, tp: Any, record: Any) -> None:
        state = self.parts.get(tp)
        if state is None:  # not ours (any more): the owner reads it
            return
        unpacked = records.unpack(record, self.pipe.name, self.pipe.priority)
        if unpacked.foreign:
            self.log.debug("kafka record without rr_job: deduced_by_rr", pipeline=self.pipe.name,
                           topic=tp.topic, partition=tp.partition, offset=record.offset)
        state.take(record.offset)
        delivery = Delivery(unpacked.job, self, handle=Handle(tp.topic, tp.partition, record.offset, state.generation))
        if unpacked.due:
            heapq.heappush(self.waiting, (unpacked.due, next(self._order), delivery))
            self._arm_timer()
        else:
            self.ready.append(delivery)

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.waiting:
            self._timer = self.loop.call_later(max(0.0, self.waiting[0][0] - time.time()), self._due)

    def _due(self) -> None:
        self._timer = None
        now = time.time()
        while self.waiting and self.waiting[0][0] <= now:
            self.ready.append(heapq.heappop(self.waiting)[2])
        self._arm_timer()
        self.wake()

    def wake(self) -> None:
        sink = self.sink
        while self.running and self.ready and sink.has_room():
            delivery = self.ready.popleft()
            self.out[delivery.handle] = delivery
            sink.offer(delivery)
        self._woken.set()

    # -- rebalance ----------------------------------------------------------------------

    async def on_revoked(self, revoked: Iterable[Any]) -> None:
        """Let the revoked partitions' running jobs finish (bounded), commit them, forget the rest."""
        revoked = list(revoked)
        mine = {(tp.topic, tp.partition) for tp in revoked}
        limit = min(self.group.session_timeout if self.group else 10.0, 10.0)
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and any(
                (h.topic, h.partition) in mine and d.started for h, d in self.out.items()):
            await asyncio.sleep(0.05)
        await self._commit_now([tp for tp in revoked if tp in self.parts])
        self._forget(revoked)

    def _forget(self, partitions: list[Any]) -> None:
        gone = {(tp.topic, tp.partition) for tp in partitions}
        for tp in partitions:
            self.parts.pop(tp, None)
        self.ready = deque(d for d in self.ready if (d.handle.topic, d.handle.partition) not in gone)
        kept = [e for e in self.waiting if (e[2].handle.topic, e[2].handle.partition) not in gone]
        if len(kept) != len(self.waiting):
            heapq.heapify(kept)
            self.waiting = kept
            self._arm_timer()

    async def on_assigned(self, assigned: Iterable[Any]) -> None:
        spec = self.consumer_opts.consumer_offset
        assigned = list(assigned)
        for tp in assigned:
            self.parts[tp] = PartitionState(next(self._generation))
            if spec.type not in ("AtStart", "AtEnd") and await self.consumer.committed(tp) is None:
                await client.seek(self.consumer, tp, spec)
        self.log.info("kafka partitions assigned", pipeline=self.pipe.name,
                      partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in assigned))

    # -- finishing deliveries ------------------------------------------------------------

    def _state_of(self, handle: Handle) -> tuple[Any, PartitionState | None]:
        for tp, state in self.parts.items():
            if tp.topic == handle.topic and tp.partition == handle.partition:
                return tp, state if state.generation == handle.generation else None
        return None, None

    def _mark_done(self, handle: Handle) -> None:
        tp, state = self._state_of(handle)
        if state is None:
            self.log.debug("kafka ack of a record whose partition moved: its new owner runs it again",
                           pipeline=self.pipe.name, topic=handle.topic, partition=handle.partition,
                           offset=handle.offset)
            return
        if state.finish(handle.offset) and self.group is not None:
            self._schedule_commit()

    def ack(self, delivery: Delivery) -> None:
        self.out.pop(delivery.handle, None)
        self.acked += 1
        self._mark_done(delivery.handle)
        self.wake()

    def retry(self, delivery: Delivery, delay: float) -> None:
        self.out.pop(delivery.handle, None)
        self.retried += 1
        task = asyncio.ensure_future(self._requeue(delivery, delay))
        self._requeues.add(task)
        task.add_done_callback(self._requeues.discard)
        self.wake()

    async def _requeue(self, delivery: Delivery, delay: float) -> None:
        handle: Handle = delivery.handle
        copy = dataclasses.replace(delivery.job, delay=delay)
        failures = 0
        while True:
            if self._state_of(handle)[1] is None:
                return  # its partition moved: the original runs again at its new owner
            try:
                await self._produce([copy])
                break
            except DriverError as exc:
                failures += 1
                self.log.error("kafka requeue failed, the job stays uncommitted and is tried again",
                               id=copy.id, pipeline=self.pipe.name, attempt=failures, error=str(exc))
                if self.closed:
                    return
                await asyncio.sleep(min(MAX_BACKOFF, REQUEUE_RETRY * failures))
        self._mark_done(handle)
        self.wake()

    def release(self, delivery: Delivery) -> None:
        self.out.pop(delivery.handle, None)
        if self._state_of(delivery.handle)[1] is not None:  # the same record, offered again as it was
            self.ready.appendleft(Delivery(delivery.job, self, handle=delivery.handle))
        self.wake()

    # -- commits ------------------------------------------------------------------------

    def _schedule_commit(self) -> None:
        if self.group is not None and self._commit_task is None and not self.closed:
            self._commit_task = asyncio.ensure_future(self._commit_loop())

    async def _commit_loop(self) -> None:
        failures = 0
        try:
            while any(s.dirty for s in self.parts.values()) and self.consumer is not None:
                await asyncio.sleep(0)  # gather the acks of this loop turn into one commit
                if await self._commit_now(list(self.parts)):
                    failures = 0
                    continue
                failures += 1
                if self.closed:
                    return
                await asyncio.sleep(min(MAX_BACKOFF, 0.5 * 2 ** min(failures - 1, 6)))
        finally:
            self._commit_task = None

    async def _commit_now(self, partitions: list[Any]) -> bool:
        if self.group is None or self.consumer is None:
            return True
        offsets = {}
        for tp in partitions:
            state = self.parts.get(tp)
            if state is not None and state.dirty:
                offsets[tp] = state.position
        if not offsets:
            return True
        try:
            await self.consumer.commit(offsets)
        except (KafkaError, OSError, AssertionError) as exc:
            self._set_error("commit", f"kafka commit failed: {client.describe(exc)}")
            self.log.warn("kafka commit failed, retrying", pipeline=self.pipe.name, error=client.describe(exc))
            return False
        for tp, position in offsets.items():
            state = self.parts.get(tp)
            if state is not None:
                state.committed = position
        self._clear_error("commit")
        return True

    # -- close ------------------------------------------------------------------------

    async def close(self) -> None:
        self.running = False
        if self._requeues:
            await asyncio.wait(list(self._requeues), timeout=CLOSE_WAIT)
        self.closed = True
        for task in (self._probe_task, self._consume_task, *self._requeues):
            if task is not None:
                task.cancel()
        for task in (self._probe_task, self._consume_task):
            if task is not None:
                try:
                    await task
                except (asyncio.CancelledError, Exception):  # noqa: S110 - stopping: its error was logged
                    pass
        if self._timer is not None:
            self._timer.cancel()
        if self.consumer is not None:
            try:
                await asyncio.wait_for(self._commit_now(list(self.parts)), CLOSE_WAIT)
            except TimeoutError:
                self.log.warn("kafka last commit timed out: those jobs run again", pipeline=self.pipe.name)
            await self._drop_consumer()  # leaves the group: the others take its partitions at once
        if self.producer is not None:
            producer, self.producer = self.producer, None
            await producer.stop()

    def counts(self) -> dict[str, int]:
        return {"active": len(self.ready), "delayed": len(self.waiting), "reserved": len(self.out)}


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Forwards the group's rebalance callbacks to the driver."""

    def __init__(self, driver: KafkaDriver):
        self.driver = driver

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.driver.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.driver.on_assigned(assigned)


DRIVER = KafkaDriver
