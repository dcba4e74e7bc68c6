"""The hub contract (fastrr/broadcast/hub.py) with the memory broker, in process."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

from fastrr.broadcast.brokers.memory import MemoryBroker
from fastrr.broadcast.hub import INSTANCE, BroadcastError, Broker, Hub, Message
from fastrr.log import Logger, LogSink
from tests.kv.servers import async_test


def logger() -> tuple[Logger, io.StringIO]:
    out = io.StringIO()
    sink = LogSink("debug", "production", "json")
    sink.streams = [out]
    return Logger(sink, "broadcast"), out


def memory_hub(**kwargs: float) -> Hub:
    return Hub("default", MemoryBroker("default", {}, None), logger()[0], **kwargs)  # type: ignore[arg-type]


class Inbox:
    def __init__(self) -> None:
        self.got: list[Message] = []

    def deliver(self, msg: Message) -> None:
        self.got.append(msg)


class Exploding:
    def deliver(self, msg: Message) -> None:
        raise RuntimeError("boom")


class Leaving:
    """Unsubscribes itself (and a neighbour) while being delivered to."""

    def __init__(self, hub: Hub, other: Inbox | None = None):
        self.hub, self.other, self.got = hub, other, 0

    def deliver(self, msg: Message) -> None:
        self.got += 1
        self.hub.unsubscribe(self)
        if self.other is not None:
            self.hub.unsubscribe(self.other)


@async_test
async def test_publish_delivers_before_returning_to_every_subscriber_of_the_topic() -> None:
    hub = memory_hub()
    a, b, c = Inbox(), Inbox(), Inbox()
    hub.subscribe(a, ["news"])
    hub.subscribe(b, ["news", "sport"])
    hub.subscribe(c, ["sport"])
    await hub.publish("news", b"hello")
    assert [m.payload for m in a.got] == [b"hello"] and [m.payload for m in b.got] == [b"hello"]
    assert c.got == []
    # one Message object shared by every subscriber: encoders fill msg.cache once
    assert a.got[0] is b.got[0]
    assert a.got[0].topic == "news"
    ms, seq, inst = a.got[0].id.split("-")
    assert int(ms) > 0 and int(seq) > 0 and inst == INSTANCE
    await hub.publish("sport", b"goal")
    assert [m.payload for m in b.got] == [b"hello", b"goal"] and [m.payload for m in c.got] == [b"goal"]
    assert hub.subscribers("news") == 2 and hub.subscribers("sport") == 2 and hub.subscribers("x") == 0
    assert hub.topics_of(b) == frozenset({"news", "sport"}) and hub.topics_of(Inbox()) == frozenset()


@async_test
async def test_unsubscribe_some_topics_then_all() -> None:
    hub = memory_hub()
    a = Inbox()
    hub.subscribe(a, ["t1", "t2", "t3", ""])  # the empty topic is ignored
    assert hub.topics_of(a) == frozenset({"t1", "t2", "t3"})
    hub.unsubscribe(a, ["t1", "never-joined"])
    assert hub.topics_of(a) == frozenset({"t2", "t3"}) and hub.subscribers("t1") == 0
    await hub.publish("t1", b"x")
    assert a.got == []
    hub.unsubscribe(a)
    assert hub.topics_of(a) == frozenset() and hub.topics() == {}
    hub.unsubscribe(a)  # twice is fine
    await hub.publish("t2", b"x")
    assert a.got == []


@async_test
async def test_subscribing_twice_delivers_once() -> None:
    hub = memory_hub()
    a = Inbox()
    hub.subscribe(a, ["t", "t"])
    hub.subscribe(a, ["t"])
    await hub.publish("t", b"once")
    assert len(a.got) == 1 and hub.subscribers("t") == 1


@async_test
async def test_a_raising_subscriber_is_logged_and_dropped_and_the_others_still_get_it() -> None:
    log, out = logger()
    hub = Hub("default", MemoryBroker("default", {}, log), log)
    a, bad, b = Inbox(), Exploding(), Inbox()
    hub.subscribe(a, ["t"])
    hub.subscribe(bad, ["t", "u"])
    hub.subscribe(b, ["t"])
    await hub.publish("t", b"1")
    assert len(a.got) == 1 and len(b.got) == 1
    assert hub.topics_of(bad) == frozenset() and hub.subscribers("u") == 0
    line = json.loads(out.getvalue().splitlines()[-1])
    assert line["level"] == "error" and "dropped" in line["msg"] and "boom" in line["error"]
    assert line["topic"] == "t" and line["subscriber"] == "Exploding"
    await hub.publish("t", b"2")
    assert len(a.got) == 2 and len(b.got) == 2


@async_test
async def test_subscribers_may_unsubscribe_during_the_fan_out() -> None:
    hub = memory_hub()
    other = Inbox()
    leaving = Leaving(hub, other)
    hub.subscribe(leaving, ["t"])
    hub.subscribe(other, ["t"])
    await hub.publish("t", b"1")
    # the fan-out runs over a snapshot: `other` was in it, so it still gets this one
    assert leaving.got == 1 and len(other.got) == 1
    await hub.publish("t", b"2")
    assert leaving.got == 1 and len(other.got) == 1 and hub.subscribers("t") == 0


@async_test
async def test_empty_topic_is_refused() -> None:
    hub = memory_hub()
    try:
        await hub.publish("", b"x")
    except BroadcastError as exc:
        assert "empty topic" in str(exc)
    else:
        raise AssertionError("an empty topic was published")


@async_test
async def test_history_after_an_id() -> None:
    hub = memory_hub(history_size=5)
    a = Inbox()
    hub.subscribe(a, ["t"])
    for i in range(8):
        await hub.publish("t", b"%d" % i)
    ids = [m.id for m in a.got]
    assert len(set(ids)) == 8
    # the last 5 are retained: after the 4th retained one, the 5th
    assert [m.payload for m in hub.history("t", ids[6]) or []] == [b"7"]
    assert [m.payload for m in hub.history("t", ids[3]) or []] == [b"4", b"5", b"6", b"7"]
    assert hub.history("t", ids[7]) == []  # up to date
    assert hub.history("t", ids[2]) is None  # pushed out: too far behind
    assert hub.history("t", "garbage") is None
    assert hub.history("other", ids[7]) is None
    # the memory broker retains with no local subscriber too (an SSE client between reconnects)
    hub.unsubscribe(a)
    await hub.publish("t", b"8")
    assert [m.payload for m in hub.history("t", ids[7]) or []] == [b"8"]
    assert [m.payload for m in hub.retained("t")] == [b"4", b"5", b"6", b"7", b"8"]
    assert hub.retained("other") == []
    hub.forget("t")
    assert hub.history("t", ids[7]) is None and hub.retained("t") == []


@async_test
async def test_history_size_zero_keeps_nothing() -> None:
    hub = memory_hub(history_size=0)
    a = Inbox()
    hub.subscribe(a, ["t"])
    await hub.publish("t", b"1")
    await hub.publish("t", b"2")
    assert hub.history("t", a.got[0].id) is None


@async_test
async def test_history_ttl_drops_old_messages() -> None:
    hub = memory_hub(history_ttl=60.0)
    await hub.start()
    try:
        a = Inbox()
        hub.subscribe(a, ["t"])
        await hub.publish("t", b"old")
        await hub.publish("t", b"new")
        old, new = a.got
        # age the first message past the ttl instead of sleeping a minute
        object.__setattr__(old, "at", old.at - 61)
        assert hub.history("t", old.id) is None
        assert hub.history("t", new.id) == []
        object.__setattr__(new, "at", new.at - 61)
        hub._sweep()
        assert "t" not in hub._history
    finally:
        await hub.stop()


@async_test
async def test_the_broker_is_told_about_first_and_last_local_subscribers() -> None:
    calls: list[str] = []

    class Recording(Broker):
        async def publish(self, msg: Message) -> None:
            self.hub.dispatch(msg)

        def watch(self, topic: str) -> None:
            calls.append(f"+{topic}")

        def unwatch(self, topic: str) -> None:
            calls.append(f"-{topic}")

    hub = Hub("x", Recording(), logger()[0])
    a, b = Inbox(), Inbox()
    hub.subscribe(a, ["t", "u"])
    hub.subscribe(b, ["t"])
    hub.unsubscribe(a, ["t"])
    hub.unsubscribe(b)
    hub.unsubscribe(a)
    assert calls == ["+t", "+u", "-t", "-u"]
    await asyncio.sleep(0)


@async_test
async def test_the_number_of_topics_with_history_is_bounded(monkeypatch: Any) -> None:
    from fastrr.broadcast import hub as hub_module

    monkeypatch.setattr(hub_module, "MAX_HISTORY_TOPICS", 3)
    hub = memory_hub()
    a = Inbox()
    hub.subscribe(a, ["t0", "t1", "t2", "t3"])
    for i in range(4):
        await hub.publish(f"t{i}", b"x")
    assert hub.history("t0", a.got[0].id) is None  # the oldest topic's history went first
    assert [hub.history(f"t{i}", a.got[i].id) for i in (1, 2, 3)] == [[], [], []]
