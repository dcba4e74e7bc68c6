"""The hub: one per broker of the `broadcast:` section; what websockets and SSE subscribe to.

The contract the websockets and SSE code is written against, in short:

    hub.subscribe(sub, ["t1", "t2"])     sub.deliver(msg) is then called for every message of t1/t2
    hub.unsubscribe(sub)                 every topic of sub (or the topics given)
    await hub.publish("t1", b"payload")  memory: delivered before it returns; redis: PUBLISHed and
                                         delivered here when Redis sends it back
    hub.history("t1", last_event_id)     the retained messages after that id, None if it is not retained
    hub.retained("t1")                   (beyond the contract) every retained message of t1

Rules of this file:
- Everything runs on the event loop thread; nothing here blocks.
- A `Message` is made once per publish and shared by every subscriber; its `cache` is where
  encoders keep the frame bytes they build, so a fan-out to 10k encodes once.
- The fan-out never breaks: a subscriber raising in `deliver` is logged and dropped from
  every topic, and the others still get the message.
- The broker (brokers/memory.py, brokers/redis.py) only moves messages; the hub owns
  subscriptions, fan-out and history. It tells the broker when a topic gets its first local
  subscriber (`watch`) and loses its last (`unwatch`), so the redis broker SUBSCRIBEs to
  exactly the topics someone here listens to.
- History is every message this instance dispatched (memory: every publish, subscribed or
  not; redis: what came back on the topics it is SUBSCRIBEd to), bounded per topic by
  `history_size` and `history_ttl`. When the broker may have missed messages (redis: a
  topic unsubscribed, a lost connection) it calls `forget`, so `history` answers None
  (too far behind) rather than a list with a hole.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from fastrr.log import Logger

# One per process: the third part of every message id this instance makes. Random, not the pid,
# so two hosts (or a restarted process) never make the same ids.
INSTANCE = os.urandom(4).hex()
# Topics with retained messages, at most: past it the topic retained longest ago is dropped
# (a flood of one-off topics must not grow memory until history_ttl sweeps them).
MAX_HISTORY_TOPICS = 100_000
_SEQ = itertools.count(1)  # per process, not per hub: ids stay unique across the brokers of a process


class BroadcastError(Exception):
    """A publish failed (the broker is down, ...); the text says why."""


class Message:
    """One published (topic, payload); immutable once made (only `cache` is filled in)."""

    __slots__ = ("topic", "payload", "id", "cache", "at")

    def __init__(self, topic: str, payload: bytes, id: str, at: float | None = None):
        self.topic = topic
        self.payload = payload
        self.id = id
        self.cache: dict[str, bytes] = {}
        self.at = time.monotonic() if at is None else at  # when this instance got it (history_ttl)

    def __repr__(self) -> str:
        return f"Message({self.topic!r}, {len(self.payload)} bytes, id={self.id!r})"


class Subscriber(Protocol):
    """Hashed by identity (kept in dicts): a subscriber class must not define __eq__ without __hash__."""

    def deliver(self, msg: Message) -> None: ...


class Broker:
    """How messages move between publishers and hubs. `attach` is called once, before `start`."""

    kind = "?"
    sync = False  # True: publish_now() delivers without awaiting (the RPC fast path)

    def attach(self, hub: Hub) -> None:
        self.hub = hub

    async def start(self) -> None:
        """Connect; raise BroadcastError when it cannot (a start-up error)."""

    async def stop(self) -> None:
        """Disconnect; never raises."""

    async def publish(self, msg: Message) -> None:
        raise NotImplementedError

    def publish_now(self, msg: Message) -> None:
        """For a `sync` broker: publish without awaiting."""
        raise NotImplementedError

    def watch(self, topic: str) -> None:
        """The topic has its first local subscriber."""

    def unwatch(self, topic: str) -> None:
        """The topic lost its last local subscriber."""

    def status(self) -> tuple[bool, str]:
        """(connected, why not) for the status plugin."""
        return True, ""


class Hub:
    """Subscriptions, fan-out and history of one broker (contract: module docstring)."""

    def __init__(self, name: str, broker: Broker, log: Logger, history_size: int = 100,
                 history_ttl: float = 0.0):
        self.name = name
        self.broker = broker
        self.log = log
        self.history_size = history_size
        self.history_ttl = history_ttl  # seconds; 0: kept until pushed out by history_size
        # topic -> its subscribers; a dict, not a set, so the fan-out order is the join order
        self._subs: dict[str, dict[Subscriber, None]] = {}
        self._topics: dict[Subscriber, set[str]] = {}
        self._history: dict[str, deque[Message]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self.published = 0
        self.delivered = 0
        broker.attach(self)

    # -- lifecycle (the broadcast plugin calls these)

    async def start(self) -> None:
        await self.broker.start()
        if self.history_ttl > 0:
            self._schedule_sweep()

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        await self.broker.stop()

    # -- subscriptions

    def subscribe(self, sub: Subscriber, topics: Iterable[str]) -> None:
        mine = self._topics.get(sub)
        for topic in topics:
            if not topic:
                continue
            if mine is None:
                mine = self._topics[sub] = set()
            if topic in mine:
                continue
            mine.add(topic)
            subs = self._subs.get(topic)
            if subs is None:
                subs = self._subs[topic] = {}
                self.broker.watch(topic)
            subs[sub] = None

    def unsubscribe(self, sub: Subscriber, topics: Iterable[str] | None = None) -> None:
        mine = self._topics.get(sub)
        if mine is None:
            return
        for topic in list(mine) if topics is None else topics:
            if topic not in mine:
                continue
            mine.discard(topic)
            subs = self._subs.get(topic)
            if subs is None:
                continue
            subs.pop(sub, None)
            if not subs:
                del self._subs[topic]
                self.broker.unwatch(topic)
        if not mine:
            del self._topics[sub]

    def topics_of(self, sub: Subscriber) -> frozenset[str]:
        return frozenset(self._topics.get(sub, ()))

    def subscribers(self, topic: str) -> int:
        subs = self._subs.get(topic)
        return 0 if subs is None else len(subs)

    def topics(self) -> dict[str, int]:
        """{topic: local subscribers} for every topic someone here listens to."""
        return {topic: len(subs) for topic, subs in self._subs.items()}

    # -- publishing

    def new_id(self) -> str:
        return f"{int(time.time() * 1000)}-{next(_SEQ)}-{INSTANCE}"

    async def publish(self, topic: str, payload: bytes) -> None:
        if not topic:
            raise BroadcastError("empty topic")
        msg = Message(topic, bytes(payload), self.new_id())
        await self.broker.publish(msg)
        self.published += 1

    def publish_now(self, topic: str, payload: bytes) -> None:
        """`publish` for a hub whose broker is `sync` (memory), without a coroutine."""
        if not topic:
            raise BroadcastError("empty topic")
        self.broker.publish_now(Message(topic, bytes(payload), self.new_id()))
        self.published += 1

    def dispatch(self, msg: Message) -> None:
        """Deliver `msg` to the local subscribers of its topic and retain it (brokers call this)."""
        self._retain(msg)
        subs = self._subs.get(msg.topic)
        if not subs:
            return
        failed = None
        # A snapshot: a subscriber may unsubscribe itself (or another) while being delivered to.
        for sub in tuple(subs):
            try:
                sub.deliver(msg)
            except Exception as exc:
                if failed is None:
                    failed = []
                failed.append((sub, exc))
        self.delivered += len(subs)
        if failed:
            for sub, exc in failed:
                self.log.error("broadcast subscriber failed in deliver; dropped from its topics",
                               broker=self.name, topic=msg.topic, subscriber=type(sub).__name__,
                               error=repr(exc))
                self.unsubscribe(sub)

    # -- history (SSE Last-Event-ID)

    def _retain(self, msg: Message) -> None:
        if self.history_size <= 0:
            return
        kept = self._history.get(msg.topic)
        if kept is None:
            if len(self._history) >= MAX_HISTORY_TOPICS:
                del self._history[next(iter(self._history))]
            kept = self._history[msg.topic] = deque(maxlen=self.history_size)
        kept.append(msg)

    def history(self, topic: str, after_id: str) -> list[Message] | None:
        kept = self._history.get(topic)
        if not kept:
            return None
        self._expire(topic, kept, time.monotonic())
        # Scan from the newest: a resuming client is usually only a few messages behind.
        for i in range(len(kept) - 1, -1, -1):
            if kept[i].id == after_id:
                return list(itertools.islice(kept, i + 1, None))
        return None

    def retained(self, topic: str) -> list[Message]:
        """Every retained message of `topic`, oldest first (beyond the contract: an SSE stream
        of several topics reads the others by time, since the id is in only one of them)."""
        kept = self._history.get(topic)
        if not kept:
            return []
        self._expire(topic, kept, time.monotonic())
        return list(kept)

    def forget(self, topic: str | None = None) -> None:
        """Drop the history of `topic` (None: of every topic): messages may have been missed."""
        if topic is None:
            self._history.clear()
        else:
            self._history.pop(topic, None)

    def _expire(self, topic: str, kept: deque[Message], now: float) -> None:
        if self.history_ttl <= 0:
            return
        limit = now - self.history_ttl
        while kept and kept[0].at < limit:
            kept.popleft()
        if not kept:
            self._history.pop(topic, None)

    def _schedule_sweep(self) -> None:
        # Topics nobody reads again would otherwise keep their last messages forever.
        loop = asyncio.get_running_loop()
        self._sweeper = loop.call_later(min(self.history_ttl, 60.0), self._sweep)

    def _sweep(self) -> None:
        now = time.monotonic()
        for topic, kept in list(self._history.items()):
            self._expire(topic, kept, now)
        self._schedule_sweep()
