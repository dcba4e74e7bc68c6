"""broadcast.Publish / PublishAsync / Topics on a real `fastrr serve`, with the memory and redis
brokers; what reaches Redis is read by a plain SUBSCRIBE client."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from fastrr.rpc.codec import RpcError
from tests.broadcast.conftest import BroadcastFactory, publish_request
from tests.conftest import free_port
from tests.kv.servers import REDIS_PORT, ServerProcess, _redis_argv, private_redis

__all__ = ["private_redis"]


def redis_broker(options: dict[str, Any], prefix: str, **extra: Any) -> dict[str, Any]:
    return {"driver": "redis", "config": {**options, "prefix": prefix, "unsubscribe_delay": 0}, **extra}


def test_memory_publish_answers_ok(bc: BroadcastFactory) -> None:
    srv = bc.start({"default": {"driver": "memory"}})
    assert srv.publish((["a", "b"], b"hello"), (["c"], b"\x00\xffbinary")) is True
    assert srv.publish(method="broadcast.PublishAsync") is True  # no messages: nothing to do
    assert srv.publish(([], b"no topics"), ([""], b"empty topic")) is True  # skipped, as RoadRunner
    assert srv.topics() == {"default": {}}
    assert srv.topics("default") == {"default": {}}


def test_topics_of_an_unknown_broker(bc: BroadcastFactory) -> None:
    srv = bc.start({"default": {"driver": "memory"}})
    with pytest.raises(RpcError, match=r"broadcast.Topics: no such broker: nope \(brokers: default\)"):
        srv.topics("nope")


@pytest.mark.parametrize("method", ["broadcast.Publish", "broadcast.PublishAsync"])
@pytest.mark.parametrize("driver", ["memory", "redis"])
def test_garbage_protobuf_is_a_clear_error_and_the_server_keeps_serving(
        bc: BroadcastFactory, shared_redis: dict[str, Any], prefix: str, method: str, driver: str) -> None:
    broker = {"driver": "memory"} if driver == "memory" else redis_broker(shared_redis, prefix)
    srv = bc.start({"default": broker})
    for garbage in (b"\xff\xff\xff", b"\x0a\x05ab", b"\x0a\x02\x12\xff"):
        with pytest.raises(RpcError, match=f"{method}: malformed broadcast.v1.Request message"):
            srv.client.call(method, garbage, flags=0x80)
    assert srv.publish((["t"], b"after"), method=method) is True
    assert srv.server.proc.poll() is None


def test_redis_publish_reaches_the_channel_with_the_envelope(bc: BroadcastFactory, shared_redis: dict[str, Any],
                                                             prefix: str, listen: Any) -> None:
    srv = bc.start({"default": redis_broker(shared_redis, prefix)})
    sub = listen(REDIS_PORT, f"{prefix}news", f"{prefix}sport")
    assert srv.publish((["news", "sport", ""], b"goal!"), (["news"], b"\x00bin\xff")) is True
    got = [sub.get() for _ in range(3)]
    assert [(ch, payload) for ch, _, payload in got] == [
        (f"{prefix}news", b"goal!"), (f"{prefix}sport", b"goal!"), (f"{prefix}news", b"\x00bin\xff")]
    ids = [ident for _, ident, _ in got]
    assert all(ident is not None for ident in ids) and len(set(ids)) == 3
    ms, seq, instance = ids[0].split("-")  # type: ignore[union-attr]
    assert abs(int(ms) / 1000 - time.time()) < 3600 and int(seq) > 0 and len(instance) == 8
    assert len({ident.split("-")[2] for ident in ids}) == 1  # type: ignore[union-attr]
    sub.none()


def test_publish_async_reaches_redis(bc: BroadcastFactory, shared_redis: dict[str, Any], prefix: str,
                                     listen: Any) -> None:
    srv = bc.start({"default": redis_broker(shared_redis, prefix)})
    sub = listen(REDIS_PORT, f"{prefix}t")
    assert srv.publish((["t"], b"later"), method="broadcast.PublishAsync") is True
    assert sub.get()[2] == b"later"


def test_every_message_goes_to_every_broker(bc: BroadcastFactory, shared_redis: dict[str, Any], prefix: str,
                                            listen: Any) -> None:
    srv = bc.start({"local": {"driver": "memory"}, "one": redis_broker(shared_redis, prefix + "one:"),
                    "two": redis_broker(shared_redis, prefix + "two:")})
    sub = listen(REDIS_PORT, f"{prefix}one:t", f"{prefix}two:t")
    assert srv.publish((["t"], b"everywhere")) is True
    assert sorted(sub.get()[0] for _ in range(2)) == [f"{prefix}one:t", f"{prefix}two:t"]
    assert set(srv.topics()) == {"local", "one", "two"}


def test_redis_down_publish_fails_clearly_then_works_again(bc: BroadcastFactory, private_redis: ServerProcess,
                                                           prefix: str, listen: Any) -> None:
    srv = bc.start({"default": redis_broker({"addrs": [f"127.0.0.1:{private_redis.port}"]}, prefix)})
    assert srv.publish((["t"], b"before")) is True
    private_redis.kill()
    with pytest.raises(RpcError, match=rf"broadcast.Publish: broker default: topic t: redis 127.0.0.1:"
                                       rf"{private_redis.port} is unreachable, message not published"):
        srv.publish((["t"], b"during"))
    # PublishAsync answers at once and logs the failure
    assert srv.publish((["t"], b"during-async"), method="broadcast.PublishAsync") is True
    deadline = time.monotonic() + 10
    while "broadcast.PublishAsync failed" not in srv.server.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "broadcast.PublishAsync failed" in srv.server.output()
    private_redis.start()
    sub = listen(private_redis.port, f"{prefix}t")
    assert srv.publish((["t"], b"after")) is True
    assert sub.get()[2] == b"after"
    out = srv.server.output()
    assert out.count("broadcast redis connection lost") == 1, out
    deadline = time.monotonic() + 15
    while "broadcast redis connection back" not in srv.server.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert srv.server.output().count("broadcast redis connection back") == 1


def test_redis_down_at_start_warns_and_connects_later(bc: BroadcastFactory, private_redis: ServerProcess,
                                                      prefix: str, listen: Any) -> None:
    private_redis.stop()
    srv = bc.start({"default": redis_broker({"addrs": [f"127.0.0.1:{private_redis.port}"]}, prefix)})
    assert "broadcast redis not reachable" in srv.server.output()
    with pytest.raises(RpcError, match="is unreachable, message not published"):
        srv.publish((["t"], b"x"))
    private_redis.start()
    sub = listen(private_redis.port, f"{prefix}t")
    assert srv.publish((["t"], b"now")) is True
    assert sub.get()[2] == b"now"


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def test_wrong_password_is_a_start_up_error(bc: BroadcastFactory, tmp_path: Path) -> None:
    port = free_port()
    # PING without AUTH answers NOAUTH, not +PONG: "started" is the port being open
    locked = ServerProcess("redis-server", _redis_argv(port, tmp_path, "--requirepass", "sesame"), port,
                           _port_open, tmp_path / "redis.log")
    locked.start()
    try:
        with pytest.raises(AssertionError, match="broadcast.default: redis 127.0.0.1:\\d+: AUTH failed"):
            bc.start({"default": {"driver": "redis", "config": {"addrs": [f"127.0.0.1:{port}"],
                                                                "password": "wrong"}}})
        with pytest.raises(AssertionError, match="broadcast.default: redis 127.0.0.1:\\d+: NOAUTH .*set password"):
            bc.start({"default": {"driver": "redis", "config": {"addrs": [f"127.0.0.1:{port}"]}}})
        srv = bc.start({"default": {"driver": "redis", "config": {"addrs": [f"127.0.0.1:{port}"],
                                                                  "password": "sesame"}}})
        assert srv.publish((["t"], b"x")) is True
    finally:
        locked.stop()


def test_large_request(bc: BroadcastFactory) -> None:
    srv = bc.start({"default": {"driver": "memory"}})
    body = publish_request(*[([f"t{i}" for i in range(20)], b"x" * 1000) for _ in range(100)])
    answer = srv.client.call("broadcast.Publish", body, flags=0x80)
    assert answer == b"\x08\x01"
