"""The redis jobs driver: a pipeline is a set of Redis Streams read by one consumer group.

RoadRunner has no Redis jobs driver (Laravel and Symfony users queue on Redis);
this one is fastrr's own, built for at-least-once delivery (config.py: the keys).

What lives where (prefix default `fastrr:jobs:{<pipeline>}`):
- Lanes: `<prefix>:stream` holds the jobs due now that have the pipeline's
  priority (and what other programs write: entries.py says how an entry is
  read); a job of another priority N goes to the lane `<prefix>:stream:N`, made
  on first use and listed in the sorted set `<prefix>:lanes` (scored by N).
  Lanes are read lowest priority first (READ_LANES, one script run for all), so
  a priority orders the whole pipeline, as Laravel's `--queue=high,low` does,
  not only what was prefetched. Use a handful of priorities: each is a stream.
- Every fastrr instance of the app joins the consumer group `group` of each lane
  as a consumer of its own (host-pid-random), so two processes never share
  pending entries; at most `prefetch` entries are unfinished per instance. When
  no lane has new entries, XREADGROUP ... BLOCK waits on all of them.
- A push is one MULTI/EXEC of XADDs, answered after Redis applied it; with
  `appendonly yes` and `appendfsync always` (what a production Redis queue
  needs: without persistence a Redis restart loses every job) that is on disk.
- ack = XACK + XDEL of the entry in one MULTI, so a lane holds only jobs not
  finished and does not grow without bound; `max_length` can cap each lane
  further (XADD MAXLEN ~, which drops the oldest entries even if they never ran).
- retry = a copy with the new headers and attempt count (XADD, or into the
  delayed set) + XACK + XDEL of the original, in one MULTI. release = the entry
  stays pending on this consumer and is handed out again first ("as it was");
  what is still held so at close is copied back to the end of its lane.
- `<prefix>:delayed` (a sorted set scored by due time, ms) + `<prefix>:delayed:jobs`
  (a hash of the packed fields): delayed pushes and retries. Every instance runs
  the MOVE_DUE Lua script (EVALSHA, loaded again on NOSCRIPT by redis-py's Script)
  when the next job is due and at least once a second; it moves due jobs into
  their lanes atomically, so several instances never move one twice.
- Dead consumers: every instance runs XAUTOCLAIM (Redis >= 6.2) for entries
  pending longer than `visibility_timeout` and runs them; a live consumer resets
  the idle time of its own running entries (TOUCH: XCLAIM ... JUSTID of the ones
  it still owns) every third of the timeout, so a long job is not handed to a
  second instance while it runs. A consumer idle that long with nothing pending
  is removed from the group (XGROUP DELCONSUMER, checked and done in one script).
  A reclaimed entry counts no attempt (as a restarted local store): a job that
  kills fastrr itself every time is not stopped by max_attempts.

Faults: open() fails with the address and Redis's error when the first PING or
XGROUP CREATE fails. Afterwards a lost connection is redialed forever with
capped exponential backoff (each failure logged with its error, `error` set for
Stat until it is back), the groups re-declared and consuming resumed. A push
while Redis is down fails at once with a DriverError (the RPC caller sees it;
nothing is silently lost); acks and retries made while down are kept in order
and sent once it is back (if fastrr dies first, those entries are reclaimed
after visibility_timeout and run again: duplicates, never losses).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
import uuid
from typing import Any

from redis.exceptions import ResponseError

from fastrr.jobs.drivers.base import Driver, DriverError
from fastrr.jobs.drivers.redis.config import connection_options, default_prefix
from fastrr.jobs.drivers.redis.connect import make_clients
from fastrr.jobs.drivers.redis.entries import entry_job, job_fields, pack
from fastrr.jobs.drivers.redis.scripts import DROP_IDLE_CONSUMER, MOVE_DUE, READ_LANES, TOUCH
from fastrr.jobs.drivers.redis.upkeep import CONNECTION_ERRORS, GroupUpkeep, Handle, text
from fastrr.jobs.job import Delivery, Job
from fastrr.kv.drivers.redis import RedisKv

BACKOFF_FIRST, BACKOFF_CAP = 0.1, 5.0  # seconds between redials: doubles up to the cap
DELAY_POLL = 1.0  # seconds: the delayed set is looked at least this often (others push into it too)
STATS_EVERY = 0.5  # seconds between refreshes of the counts and lanes
MOVE_BATCH = 500  # delayed jobs moved per script run
FLUSH_WAIT = 10.0  # seconds close() waits for acks/retries to reach Redis
MIN_VERSION = (6, 2)  # XAUTOCLAIM

def _consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class RedisDriver(GroupUpkeep, Driver):
    name = "redis"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        o = self.pipe.options
        prefix = o["prefix"] or default_prefix(self.pipe.name)
        self.stream = f"{prefix}:stream"  # the lane of the pipeline's priority
        self.lanes_key = f"{prefix}:lanes"
        self.delayed_key = f"{prefix}:delayed"
        self.delayed_jobs = f"{prefix}:delayed:jobs"
        self.group: str = o["group"]
        self.consumer: str = o["consumer"] or _consumer_name()
        self.visibility_ms = int(o["visibility_timeout"] * 1000)
        self.block_ms = max(1, int(o["block_timeout"] * 1000))
        self.max_length: int = o["max_length"]
        # connection keys: the `redis:` section's, then the pipeline's own (not None) over them
        conn = dict(self.broker or {})
        conn.update({k: o[k] for k in connection_options() if o.get(k) is not None})
        self.conn = RedisKv(f"jobs pipeline {self.pipe.name}", conn, self.log, self.workdir)
        self.where = self.conn.where
        self.client: Any = None  # commands
        self.reader: Any = None  # the blocking XREADGROUP (holds its connection while it waits)
        self.scripts: dict[str, Any] = {}
        # lane -> its priority, lowest first (from the lanes zset, refreshed every STATS_EVERY)
        self.lanes: dict[str, int] = {self.stream: self.pipe.priority}
        self.declared: set[str] = set()  # lanes whose group this instance made sure of
        self.reserved: dict[Handle, Delivery] = {}  # handed out, not finished
        self.held: list[Delivery] = []  # released or read while paused: pending on us, handed out first
        self.ops: list[tuple[str, Delivery, float]] = []  # acks/retries not yet sent: (kind, delivery, delay)
        self.connected = asyncio.Event()
        self.closed = False
        self._wake = asyncio.Event()
        self._ops_ready = asyncio.Event()
        self._delay_ready = asyncio.Event()
        self._redial: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._active = self._delayed = 0  # from Redis, refreshed every STATS_EVERY
        self._claim_cursor: dict[str, bytes | str] = {}  # lane -> XAUTOCLAIM cursor

    # -- names and counts -------------------------------------------------------------

    @property
    def queue_name(self) -> str:
        return self.stream

    @property
    def pipeline_name(self) -> str:
        return self.pipe.name

    def lane(self, priority: int) -> str:
        return self.stream if priority == self.pipe.priority else f"{self.stream}:{priority}"

    def counts(self) -> dict[str, int]:
        return {"active": self._active + len(self.held), "delayed": self._delayed, "reserved": len(self.reserved)}

    def state(self) -> dict[str, Any]:
        # not consuming while the connection is down, whatever pause/resume said
        return {**self.counts(), "ready": self.running and self.connected.is_set(), "error": self.error}

    def _unfinished(self) -> int:
        return len(self.reserved) + len(self.held) + len(self.ops)

    # -- connection -------------------------------------------------------------------

    async def _declare(self, lane: str, priority: int) -> None:
        """The lane's group (and the stream with it; BUSYGROUP: there already) and its place
        in the lanes zset, so every instance reads it."""
        try:
            await self.client.xgroup_create(lane, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        await self.client.zadd(self.lanes_key, {lane: priority})
        self.declared.add(lane)
        if lane not in self.lanes:
            self.lanes = dict(sorted({**self.lanes, lane: priority}.items(), key=lambda item: item[1]))

    async def _declare_all(self) -> None:
        self.declared.clear()
        for lane, priority in list(self.lanes.items()):
            await self._declare(lane, priority)
        await self._refresh_counts()

    async def _declare_for(self, jobs: list[Job]) -> None:
        for job in jobs:
            lane = self.lane(job.priority)
            if lane not in self.declared:
                await self._declare(lane, job.priority)

    async def open(self) -> None:
        self.client, self.reader = make_clients(self.conn, self.block_ms / 1000)
        ignored = self.conn.ignored()
        if ignored:
            self.log.warn("redis options not supported by redis-py, ignored", pipeline=self.pipe.name,
                          options=", ".join(ignored))
        self.scripts = {name: self.client.register_script(text) for name, text in
                        (("read", READ_LANES), ("move", MOVE_DUE), ("touch", TOUCH), ("drop", DROP_IDLE_CONSUMER))}
        try:
            await self.client.ping()
            version = text((await self.client.info("server")).get("redis_version", "0"))
            if tuple(int(part) for part in version.split(".")[:2] if part.isdigit()) < MIN_VERSION:
                await self._close_clients()
                raise DriverError(f"{self.where}: Redis {version} has no XAUTOCLAIM; the redis jobs driver "
                                  f"needs Redis {'.'.join(map(str, MIN_VERSION))} or later")
            await self._declare_all()
        except CONNECTION_ERRORS as exc:
            await self._close_clients()
            raise DriverError(f"{self.where}: {exc or type(exc).__name__}") from None
        self.connected.set()
        self.log.debug("redis pipeline open", pipeline=self.pipe.name, stream=self.stream, group=self.group,
                       consumer=self.consumer, lanes=len(self.lanes))
        for loop in (self._read_loop, self._ops_loop, self._delay_loop, self._claim_loop, self._stats_loop):
            self._tasks.append(asyncio.create_task(loop(), name=f"redis {self.pipe.name} {loop.__name__}"))

    def _lost(self, exc: BaseException) -> None:
        """A command failed: redial (once, whoever notices first)."""
        if self.closed:
            return
        text = f"{self.where}: {exc or type(exc).__name__}"
        self.error = text
        if self.connected.is_set():
            self.connected.clear()
            self.log.error("redis connection lost, redialing", pipeline=self.pipe.name, error=text)
        if self._redial is None or self._redial.done():
            self._redial = asyncio.create_task(self._redial_loop(), name=f"redis {self.pipe.name} redial")

    async def _redial_loop(self) -> None:
        pause, attempt = BACKOFF_FIRST, 0
        while not self.closed:
            await asyncio.sleep(pause)
            attempt += 1
            try:
                await self.client.ping()
                await self._declare_all()
                # our running entries were not touched while down: before another instance reclaims them
                await self._touch()
            except CONNECTION_ERRORS as exc:
                self.error = f"{self.where}: {exc or type(exc).__name__}"
                self.log.warn("redis redial failed", pipeline=self.pipe.name, attempt=attempt, error=self.error,
                              retry_in=round(min(pause * 2, BACKOFF_CAP), 2))
                pause = min(pause * 2, BACKOFF_CAP)
                continue
            self.error = ""
            self.connected.set()
            self.log.info("redis connection back", pipeline=self.pipe.name, attempts=attempt)
            self._ops_ready.set()
            self._delay_ready.set()
            self.wake()
            return

    # -- push -------------------------------------------------------------------------

    async def push(self, jobs: list[Job]) -> None:
        if self.closed or self.client is None:
            raise DriverError(f"pipeline {self.pipe.name} is closed")
        if not self.connected.is_set():
            raise DriverError(f"pipeline {self.pipe.name}: {self.where} is not reachable, redialing "
                              f"({self.error}); the jobs were not pushed")
        try:
            await self._declare_for([job for job in jobs if job.delay <= 0])
            tx = self.client.pipeline(transaction=True)
            for job in jobs:
                self._add(tx, job, job.delay)
            await tx.execute()
        except CONNECTION_ERRORS as exc:
            self._lost(exc)
            raise DriverError(f"pipeline {self.pipe.name}: push to {self.where} failed: {exc}; the jobs may "
                              "not have been stored") from None
        self.pushed += len(jobs)
        delayed = sum(1 for job in jobs if job.delay > 0)
        if delayed:
            self._delayed += delayed  # for Stat before the next refresh
            self._delay_ready.set()

    def _add(self, tx: Any, job: Job, delay: float) -> None:
        """Queue on `tx` what stores `job`: an entry in its lane now (declared), or into the delayed set."""
        fields = job_fields(job, self.pipe.name)
        if delay > 0:
            token = f"{job.id}:{uuid.uuid4().hex}"
            tx.hset(self.delayed_jobs, token, pack(fields))
            tx.zadd(self.delayed_key, {token: int((time.time() + delay) * 1000)})
        else:
            tx.xadd(self.lane(job.priority), fields, maxlen=self.max_length or None, approximate=True)

    # -- consuming --------------------------------------------------------------------

    async def run(self) -> None:
        self.running = True
        self.wake()

    async def pause(self) -> None:
        # The read in flight ends within block_timeout; what it brings is held, not run.
        self.running = False

    def wake(self) -> None:
        sink = self.sink
        while self.held and self.running and sink.has_room():
            # a fresh delivery: the released one is finished (job.py: the first outcome wins)
            released = self.held.pop(0)
            delivery = Delivery(released.job, self, handle=released.handle)
            self.reserved[delivery.handle] = delivery
            sink.offer(delivery)
        self._wake.set()

    def _room(self) -> int:
        if not (self.running and self.sink.has_room()):
            return 0
        return self.pipe.options["prefetch"] - self._unfinished()

    def _take(self, lane: str, entries: list[tuple[bytes, dict[bytes, bytes] | None]]) -> None:
        """Entries read or claimed from `lane`: hand them out (or hold them while paused)."""
        held = {d.handle for d in self.held}
        priority = self.lanes.get(lane, self.pipe.priority)
        jobs = [(entry_job(fields, self.pipe.name, priority), (lane, entry_id)) for entry_id, fields in entries
                if fields is not None and (lane, entry_id) not in self.reserved and (lane, entry_id) not in held]
        # lower priority first within what one read brought (the shared queue orders the rest)
        jobs.sort(key=lambda pair: pair[0].priority)
        for job, handle in jobs:
            delivery = Delivery(job, self, handle=handle)
            if self.running and self.sink.has_room():
                self.reserved[handle] = delivery
                self.sink.offer(delivery)
            else:
                self.held.append(delivery)

    async def _read_loop(self) -> None:
        while not self.closed:
            self._wake.clear()
            room = self._room()
            if room <= 0:
                await self._wake.wait()
                continue
            if not self.connected.is_set():
                await self.connected.wait()
                continue
            lanes = list(self.lanes)
            try:
                got = await self.scripts["read"](keys=lanes, args=[self.group, self.consumer, room])
                if not got:
                    # Nothing new in any lane: wait on all of them. COUNT 1 per lane: after a
                    # wake-up the ordered read above takes the rest.
                    answer = await self.reader.xreadgroup(self.group, self.consumer, dict.fromkeys(lanes, ">"),
                                                          count=1, block=self.block_ms)
            except CONNECTION_ERRORS as exc:
                # An answer lost on the way stays pending on us: reclaimed after visibility_timeout.
                self._lost(exc)
                continue
            if got:
                by_lane: dict[str, list[tuple[bytes, dict[bytes, bytes] | None]]] = {}
                for i in range(0, len(got), 3):
                    flat = got[i + 2]
                    by_lane.setdefault(lanes[int(got[i]) - 1], []).append(
                        (got[i + 1], dict(zip(flat[::2], flat[1::2], strict=True))))
                for lane, entries in by_lane.items():
                    self._take(lane, entries)
            else:
                for lane, entries in answer or ():
                    self._take(text(lane), entries)

    async def _delay_loop(self) -> None:
        while not self.closed:
            wait = DELAY_POLL
            if self.connected.is_set():
                try:
                    moved, next_due = await self.scripts["move"](
                        keys=[self.delayed_key, self.delayed_jobs, self.stream, self.lanes_key],
                        args=[int(time.time() * 1000), MOVE_BATCH, self.max_length, self.pipe.priority,
                              self.group])
                    if moved >= MOVE_BATCH:
                        continue
                    if next_due is not None:
                        wait = min(wait, max(0.0, float(next_due) / 1000 - time.time()))
                except CONNECTION_ERRORS as exc:
                    self._lost(exc)
            self._delay_ready.clear()
            try:
                await asyncio.wait_for(self._delay_ready.wait(), wait)
            except TimeoutError:
                pass

    async def _stats_loop(self) -> None:
        while not self.closed:
            await asyncio.sleep(STATS_EVERY)
            if self.connected.is_set():
                try:
                    await self._refresh_counts()
                except CONNECTION_ERRORS as exc:
                    self._lost(exc)

    async def _refresh_counts(self) -> None:
        """The lanes (another instance may have made one) and the counts Stat shows."""
        lanes = await self.client.zrange(self.lanes_key, 0, -1, withscores=True)
        found = {text(lane): int(score) for lane, score in lanes}
        found.setdefault(self.stream, self.pipe.priority)
        self.lanes = dict(sorted(found.items(), key=lambda item: item[1]))
        tx = self.client.pipeline(transaction=False)
        for lane in self.lanes:
            tx.xinfo_groups(lane)
            tx.xlen(lane)
        tx.zcard(self.delayed_key)
        answers = await tx.execute(raise_on_error=False)
        active = 0
        for i in range(0, len(answers) - 1, 2):
            groups, length = answers[i], answers[i + 1]
            if isinstance(groups, Exception) or isinstance(length, Exception):
                continue  # a lane deleted meanwhile (delete_on_stop of another instance)
            for group in groups:
                if text(group["name"]) == self.group:
                    lag = group.get("lag")
                    # lag is unknown after some deletions: then entries not pending is close to it
                    active += int(lag) if lag is not None else max(0, int(length) - int(group["pending"]))
        self._active = active
        self._delayed = int(answers[-1]) if not isinstance(answers[-1], Exception) else self._delayed

    # -- acks, retries, releases --------------------------------------------------------

    def ack(self, delivery: Delivery) -> None:
        self.reserved.pop(delivery.handle, None)
        self.acked += 1
        self.ops.append(("ack", delivery, 0.0))
        self._ops_ready.set()
        self.wake()

    def retry(self, delivery: Delivery, delay: float) -> None:
        self.reserved.pop(delivery.handle, None)
        self.retried += 1
        self.ops.append(("retry", delivery, delay))
        self._ops_ready.set()
        self.wake()

    def release(self, delivery: Delivery) -> None:
        if self.reserved.pop(delivery.handle, None) is not None:
            self.held.insert(0, delivery)
        self.wake()

    async def _ops_loop(self) -> None:
        while not self.closed or self.ops:
            if not self.ops or not self.connected.is_set():
                self._ops_ready.clear()
                if self.closed:
                    return
                await self._ops_ready.wait()
                continue
            await self._send_ops()

    async def _send_ops(self) -> None:
        """Every ack/retry queued so far in one MULTI; kept in order for the redial if it fails."""
        batch = self.ops[:]
        try:
            await self._declare_for([d.job for kind, d, delay in batch if kind == "retry" and delay <= 0])
            tx = self.client.pipeline(transaction=True)
            for kind, delivery, delay in batch:
                if kind == "retry":
                    self._add(tx, delivery.job, delay)
                lane, entry_id = delivery.handle
                tx.xack(lane, self.group, entry_id)
                tx.xdel(lane, entry_id)
            await tx.execute()
        except CONNECTION_ERRORS as exc:
            self._lost(exc)
            return
        del self.ops[:len(batch)]
        if any(kind == "retry" and delay > 0 for kind, _, delay in batch):
            self._delay_ready.set()
        self.wake()

    # -- close ------------------------------------------------------------------------

    async def close(self) -> None:
        self.running = False
        self.closed = True
        self._wake.set()
        self._ops_ready.set()
        self._delay_ready.set()
        tasks = self._tasks
        ops_task = next((t for t in tasks if "_ops_loop" in t.get_name()), None)
        read_task = next((t for t in tasks if "_read_loop" in t.get_name()), None)
        if read_task is not None and self.connected.is_set():
            # Let the read in flight end (within block_timeout) rather than cancel it: an
            # answer cut off would leave entries pending on us until visibility_timeout.
            # What it brings is held, then given back below.
            await asyncio.wait([read_task], timeout=self.block_ms / 1000 + 2.0)
        for task in tasks:
            if task is not ops_task:
                task.cancel()
        if self._redial is not None:
            self._redial.cancel()
        if ops_task is not None and self.ops and self.connected.is_set():
            try:
                await asyncio.wait_for(asyncio.shield(ops_task), FLUSH_WAIT)
            except TimeoutError:
                pass
        if ops_task is not None:
            ops_task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.ops:
            self.log.warn("redis pipeline closed with acks/retries not sent; those jobs run again after "
                          "visibility_timeout", pipeline=self.pipe.name, jobs=len(self.ops))
        if self.client is not None:
            try:
                await self._give_back_held()
                await self._leave_group()
            except CONNECTION_ERRORS as exc:
                if self.held:
                    self.log.warn("redis pipeline closed without giving back its held jobs; they run again "
                                  "after visibility_timeout", pipeline=self.pipe.name, jobs=len(self.held),
                                  error=str(exc))
                else:
                    self.log.warn("redis pipeline closed without leaving its consumer group (another instance "
                                  "removes the consumer later)", pipeline=self.pipe.name, error=str(exc))
            if self.pipe.options["delete_on_stop"]:
                try:
                    await self.client.delete(*self.lanes, self.lanes_key, self.delayed_key, self.delayed_jobs)
                    self.log.info("redis pipeline deleted (delete_on_stop)", pipeline=self.pipe.name,
                                  stream=self.stream, lanes=len(self.lanes))
                except CONNECTION_ERRORS as exc:
                    self.log.error("redis pipeline not deleted (delete_on_stop)", pipeline=self.pipe.name,
                                   error=str(exc))
        await self._close_clients()

    async def _give_back_held(self) -> None:
        """Released jobs still pending on us go back to their lane (its end) for the others."""
        if not self.held:
            return
        await self._declare_for([d.job for d in self.held])
        tx = self.client.pipeline(transaction=True)
        for delivery in self.held:
            self._add(tx, delivery.job, 0.0)
            lane, entry_id = delivery.handle
            tx.xack(lane, self.group, entry_id)
            tx.xdel(lane, entry_id)
        await tx.execute()
        self.held.clear()

    async def _leave_group(self) -> None:
        if not self.reserved:
            for lane in self.lanes:
                await self.scripts["drop"](keys=[lane], args=[self.group, self.consumer])

    async def _close_clients(self) -> None:
        for client in (self.client, self.reader):
            if client is not None:
                try:
                    await client.aclose()
                except CONNECTION_ERRORS:
                    pass
        self.client = self.reader = None


DRIVER = RedisDriver
