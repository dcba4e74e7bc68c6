"""The redis broker in process (hubs with real subscribers) against a real Redis: two hubs are
two fastrr instances on the same Redis; the private redis-server is restarted under them."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import redis.asyncio as aioredis

from fastrr.broadcast.brokers.redis import MAGIC, RedisBroker, decode, encode
from fastrr.broadcast.config import redis_options
from fastrr.broadcast.hub import BroadcastError, Hub, Message
from fastrr.log import Logger, LogSink
from tests.broadcast.test_hub import Inbox
from tests.kv.servers import REDIS_PORT, ServerProcess, async_test, private_redis, redis_tls

__all__ = ["private_redis", "redis_tls"]


class Lines:
    def __init__(self) -> None:
        self.out = io.StringIO()
        sink = LogSink("debug", "production", "json")
        sink.streams = [self.out]
        self.log = Logger(sink, "broadcast")

    def msgs(self) -> list[str]:
        return [json.loads(line)["msg"] for line in self.out.getvalue().splitlines()]

    def count(self, text: str) -> int:
        return sum(text in m for m in self.msgs())


def redis_hub(port: int, prefix: str, lines: Lines | None = None, **config: Any) -> Hub:
    lines = lines or Lines()
    values = {"addrs": [f"127.0.0.1:{port}"], "prefix": prefix, "unsubscribe_delay": 0, **config}
    options = redis_options(values, "broadcast.x.config", {}, [])
    return Hub("x", RedisBroker("x", options, lines.log), lines.log, history_size=10)


async def until(cond: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.02)


async def channels(port: int, prefix: str) -> set[str]:
    client = aioredis.Redis(port=port)
    try:
        return {c.decode() for c in await client.pubsub_channels(f"{prefix}*")}
    finally:
        await client.aclose()


async def numsub(port: int, channel: str) -> int:
    client = aioredis.Redis(port=port)
    try:
        return int((await client.pubsub_numsub(channel))[0][1])
    finally:
        await client.aclose()


def test_envelope_round_trip() -> None:
    msg = Message("t", b"\x00payload\xff", "1700000000000-7-abcdef01")
    data = encode(msg)
    assert data.startswith(MAGIC) and data[4] == len(msg.id)
    assert decode(data) == (msg.id, msg.payload)
    assert decode(b'{"plain": "json"}') == (None, b'{"plain": "json"}')
    assert decode(MAGIC + b"\x50short") == (None, MAGIC + b"\x50short")  # a length past the end: not ours
    assert decode(MAGIC) == (None, MAGIC)


@async_test
async def test_two_instances_deliver_to_each_others_subscribers(private_redis: ServerProcess) -> None:
    port, prefix = private_redis.port, "two:"
    one, two = redis_hub(port, prefix), redis_hub(port, prefix)
    await one.start()
    await two.start()
    try:
        a, b, c = Inbox(), Inbox(), Inbox()
        one.subscribe(a, ["chat"])
        two.subscribe(b, ["chat"])
        two.subscribe(c, ["other"])
        await until_subscribed(port, f"{prefix}chat", 2)
        await one.publish("chat", b"from one")
        await two.publish("chat", b"from two")
        await until(lambda: len(a.got) == 2 and len(b.got) == 2, what="both messages on both instances")
        assert [m.payload for m in a.got] == [b"from one", b"from two"]
        assert [m.payload for m in b.got] == [b"from one", b"from two"]
        # the id is the publisher's, the same on both instances
        assert [m.id for m in a.got] == [m.id for m in b.got]
        assert c.got == []
        # history of what was delivered, with the publisher's ids
        assert [m.payload for m in two.history("chat", a.got[0].id) or []] == [b"from two"]
    finally:
        await one.stop()
        await two.stop()


async def until_subscribed(port: int, channel: str, n: int) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while await numsub(port, channel) != n:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{channel}: not {n} subscribers")
        await asyncio.sleep(0.02)


@async_test
async def test_subscribes_exactly_the_topics_with_local_subscribers(private_redis: ServerProcess) -> None:
    port, prefix = private_redis.port, "exact:"
    hub = redis_hub(port, prefix)
    await hub.start()
    try:
        assert await channels(port, prefix) == set()
        a, b = Inbox(), Inbox()
        hub.subscribe(a, ["t1", "t2"])
        hub.subscribe(b, ["t2", "t3"])
        await until_subscribed(port, f"{prefix}t3", 1)
        assert await channels(port, prefix) == {f"{prefix}t1", f"{prefix}t2", f"{prefix}t3"}
        assert await numsub(port, f"{prefix}t2") == 1  # one connection per hub, not per subscriber
        hub.unsubscribe(a)
        await until_subscribed(port, f"{prefix}t1", 0)
        assert await channels(port, prefix) == {f"{prefix}t2", f"{prefix}t3"}
        hub.unsubscribe(b, ["t2"])
        await until_subscribed(port, f"{prefix}t2", 0)
        assert await channels(port, prefix) == {f"{prefix}t3"}
    finally:
        await hub.stop()
    assert await channels(port, prefix) == set()


@async_test
async def test_unsubscribe_delay_keeps_the_topic_for_a_returning_subscriber(private_redis: ServerProcess) -> None:
    port, prefix = private_redis.port, "linger:"
    hub, other = redis_hub(port, prefix, unsubscribe_delay="1s"), redis_hub(port, prefix)
    await hub.start()
    await other.start()
    try:
        a = Inbox()
        hub.subscribe(a, ["t"])
        await until_subscribed(port, f"{prefix}t", 1)
        hub.unsubscribe(a)
        await other.publish("t", b"while away")  # still SUBSCRIBEd: retained for a resume
        await until(lambda: hub.history("t", "x") is None and len(hub._history.get("t", ())) == 1,
                    what="retained while lingering")
        back = Inbox()
        hub.subscribe(back, ["t"])  # within the delay: the subscription is kept, no gap
        await asyncio.sleep(1.2)
        assert await numsub(port, f"{prefix}t") == 1
        first = hub._history["t"][0]
        await other.publish("t", b"next")
        await until(lambda: len(back.got) == 1, what="delivery after the rejoin")
        assert [m.payload for m in hub.history("t", first.id) or []] == [b"next"]
        hub.unsubscribe(back)
        await until_subscribed(port, f"{prefix}t", 0)  # after the delay, UNSUBSCRIBEd
        assert hub.history("t", first.id) is None  # and its history dropped: it would have a hole
    finally:
        await hub.stop()
        await other.stop()


@async_test
async def test_redis_restart_resubscribes_every_topic(private_redis: ServerProcess) -> None:
    port, prefix = private_redis.port, "restart:"
    lines = Lines()
    hub, publisher = redis_hub(port, prefix, lines), redis_hub(port, prefix)
    await hub.start()
    await publisher.start()
    try:
        subs = [Inbox() for _ in range(3)]
        for i, sub in enumerate(subs):
            hub.subscribe(sub, [f"t{i}", "all"])
        await until_subscribed(port, f"{prefix}t2", 1)
        await publisher.publish("all", b"before")
        await until(lambda: all(len(s.got) == 1 for s in subs), what="delivery before the restart")
        before = subs[0].got[0].id
        private_redis.kill()
        await until(lambda: lines.count("broadcast redis connection lost") == 1, what="lost logged")
        with_error = None
        try:
            await publisher.publish("all", b"during")
        except BroadcastError as exc:
            with_error = str(exc)
        assert with_error is not None and "is unreachable, message not published" in with_error
        # a topic joined while Redis is down is subscribed when it is back
        late = Inbox()
        hub.subscribe(late, ["late"])
        await asyncio.sleep(0.6)  # a few reconnect attempts fail meanwhile: logged once, not per attempt
        private_redis.start()
        await until(lambda: lines.count("broadcast redis connection back") == 1, what="back logged")
        assert lines.count("broadcast redis connection lost") == 1
        assert await channels(port, prefix) == {f"{prefix}{t}" for t in ("t0", "t1", "t2", "all", "late")}
        await publisher.publish("all", b"after")
        await publisher.publish("late", b"late one")
        await until(lambda: all(len(s.got) == 2 for s in subs) and len(late.got) == 1, what="delivery after")
        assert [m.payload for m in subs[2].got] == [b"before", b"after"]
        # messages may have been missed meanwhile: a resume from before the outage is refused
        assert hub.history("all", before) is None
    finally:
        await hub.stop()
        await publisher.stop()


@async_test
async def test_messages_other_programs_publish_are_delivered(private_redis: ServerProcess) -> None:
    port, prefix = private_redis.port, "foreign:"
    hub = redis_hub(port, prefix)
    await hub.start()
    client = aioredis.Redis(port=port)
    try:
        a = Inbox()
        hub.subscribe(a, ["news"])
        await until_subscribed(port, f"{prefix}news", 1)
        await client.publish(f"{prefix}news", b'{"plain":"json"}')
        await until(lambda: len(a.got) == 1, what="foreign message")
        assert a.got[0].payload == b'{"plain":"json"}' and a.got[0].topic == "news" and a.got[0].id
    finally:
        await client.aclose()
        await hub.stop()


@async_test
async def test_prefixes_keep_brokers_apart_on_one_redis(private_redis: ServerProcess) -> None:
    port = private_redis.port
    one, two = redis_hub(port, "app1:"), redis_hub(port, "app2:")
    await one.start()
    await two.start()
    try:
        a, b = Inbox(), Inbox()
        one.subscribe(a, ["t"])
        two.subscribe(b, ["t"])
        await until_subscribed(port, "app2:t", 1)
        await one.publish("t", b"only app1")
        await until(lambda: len(a.got) == 1, what="app1 delivery")
        await two.publish("t", b"only app2")
        await until(lambda: len(b.got) == 1, what="app2 delivery")
        assert [m.payload for m in a.got] == [b"only app1"] and [m.payload for m in b.got] == [b"only app2"]
    finally:
        await one.stop()
        await two.stop()


@async_test
async def test_a_raising_subscriber_does_not_break_the_redis_fan_out(private_redis: ServerProcess) -> None:
    from tests.broadcast.test_hub import Exploding

    port, prefix = private_redis.port, "raise:"
    lines = Lines()
    hub = redis_hub(port, prefix, lines)
    await hub.start()
    try:
        a, bad, b = Inbox(), Exploding(), Inbox()
        for sub in (a, bad, b):
            hub.subscribe(sub, ["t"])
        await until_subscribed(port, f"{prefix}t", 1)
        await hub.publish("t", b"1")
        await until(lambda: len(a.got) == 1 and len(b.got) == 1, what="fan-out past the raising one")
        assert hub.subscribers("t") == 2 and lines.count("dropped from its topics") == 1
    finally:
        await hub.stop()


@async_test
async def test_the_machines_redis_too() -> None:
    from tests.jobs.brokers.common import broker_lock

    with broker_lock("redis"):
        prefix = f"machine-{id(object())}:"
        one, two = redis_hub(REDIS_PORT, prefix), redis_hub(REDIS_PORT, prefix)
        await one.start()
        await two.start()
        try:
            a = Inbox()
            two.subscribe(a, ["t"])
            await until_subscribed(REDIS_PORT, f"{prefix}t", 1)
            await one.publish("t", b"across")
            await until(lambda: len(a.got) == 1, what="delivery on the machine's Redis")
        finally:
            await one.stop()
            await two.stop()


@async_test
async def test_tls_with_a_client_certificate(redis_tls: dict[str, Any]) -> None:
    tls = {k: redis_tls[k] for k in ("root_ca", "cert", "key")}
    one, two = redis_hub(redis_tls["port"], "tls:", tls=tls), redis_hub(redis_tls["port"], "tls:", tls=tls)
    await one.start()
    await two.start()
    try:
        a = Inbox()
        two.subscribe(a, ["t"])
        await until(lambda: two.broker.sub is not None, what="subscribed")
        # no plain-text client can ask PUBSUB here: publish until the SUBSCRIBE has landed
        for _ in range(200):
            await one.publish("t", b"secret")
            if a.got:
                break
            await asyncio.sleep(0.05)
        assert a.got and a.got[0].payload == b"secret"
    finally:
        await one.stop()
        await two.stop()


@async_test
async def test_a_missing_tls_file_is_a_start_error(tmp_path: Any) -> None:
    hub = redis_hub(REDIS_PORT, "x:", tls={"root_ca": str(tmp_path / "nope.crt")})
    try:
        await hub.start()
    except BroadcastError as exc:
        assert "tls.root_ca: no such file" in str(exc)
    else:
        raise AssertionError("started without its CA file")
    finally:
        await hub.stop()
