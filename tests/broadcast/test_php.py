"""fastrr's PHP library (Fastrr\\Broadcast, and the roadrunner-php/broadcast names) publishing
through a real fastrr: from the command line and from inside an HTTP worker (RR_RPC). Delivery
is read on the Redis channel by a plain SUBSCRIBE client."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from tests.broadcast.conftest import BroadcastFactory, php
from tests.kv.servers import REDIS_PORT, ServerProcess, private_redis

__all__ = ["private_redis"]


def redis_broker(options: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {"driver": "redis", "config": {**options, "prefix": prefix}}


def test_publish_from_php(bc: BroadcastFactory, shared_redis: dict[str, Any], prefix: str, listen: Any) -> None:
    srv = bc.start({"default": redis_broker(shared_redis, prefix)})
    sub = listen(REDIS_PORT, f"{prefix}a", f"{prefix}b")
    assert php("publish.php", srv.rpc, "a", "hello") == (0, {"ok": True})
    channel, ident, payload = sub.get()
    assert channel == f"{prefix}a" and payload == b"hello" and ident
    code, answer = php("publish.php", srv.rpc, "a,b", "m1", "m2")
    assert (code, answer) == (0, {"ok": True})
    got = [sub.get() for _ in range(4)]
    # one Message per payload naming every topic; the server publishes topic by topic
    assert [(ch[len(prefix):], payload) for ch, _, payload in got] == [("a", b"m1"), ("b", b"m1"), ("a", b"m2"),
                                                                      ("b", b"m2")]
    sub.none()


def test_join_then_publish(bc: BroadcastFactory, shared_redis: dict[str, Any], prefix: str, listen: Any) -> None:
    srv = bc.start({"default": redis_broker(shared_redis, prefix)})
    sub = listen(REDIS_PORT, f"{prefix}one", f"{prefix}g1", f"{prefix}g2")
    assert php("publish.php", srv.rpc, "--join", "one", "single") == (0, {"ok": True})
    assert sub.get()[0::2] == (f"{prefix}one", b"single")
    assert php("publish.php", srv.rpc, "--join", "g1,g2", "x", "y") == (0, {"ok": True})
    assert sorted((ch[len(prefix):], p) for ch, _, p in (sub.get() for _ in range(4))) == [
        ("g1", b"x"), ("g1", b"y"), ("g2", b"x"), ("g2", b"y")]


def test_roadrunner_names_run_unchanged(bc: BroadcastFactory, shared_redis: dict[str, Any], prefix: str,
                                       listen: Any) -> None:
    srv = bc.start({"default": redis_broker(shared_redis, prefix)})
    sub = listen(REDIS_PORT, f"{prefix}rr")
    assert php("publish.php", srv.rpc, "--rr", "rr", "from spiral code") == (0, {"ok": True})
    assert sub.get()[2] == b"from spiral code"


def test_no_topics_or_messages_is_invalid_argument(bc: BroadcastFactory) -> None:
    srv = bc.start({"default": {"driver": "memory"}})
    code, answer = php("publish.php", srv.rpc, "-", "m")
    assert code == 1 and answer == {"error": "Fastrr\\Broadcast\\Exception\\InvalidArgumentException",
                                    "message": "Unable to publish message to 0 topics"}
    code, answer = php("publish.php", srv.rpc, "t")
    assert code == 1 and answer["message"] == "Unable to publish 0 messages"
    code, answer = php("publish.php", srv.rpc, "--join", "-")
    assert code == 1 and answer["message"] == "Unable to connect to 0 topics"


def test_redis_down_is_a_broadcast_exception_with_the_servers_text(bc: BroadcastFactory,
                                                                   private_redis: ServerProcess,
                                                                   prefix: str) -> None:
    srv = bc.start({"default": redis_broker({"addrs": [f"127.0.0.1:{private_redis.port}"]}, prefix)})
    private_redis.stop()
    code, answer = php("publish.php", srv.rpc, "t", "lost")
    assert code == 1 and answer["error"] == "Fastrr\\Broadcast\\Exception\\BroadcastException"
    assert "broker default: topic t: redis 127.0.0.1:" in answer["message"]
    assert "is unreachable, message not published" in answer["message"]
    # the roadrunner-php name catches it too
    code, answer = php("publish.php", srv.rpc, "--rr", "t", "lost")
    assert code == 1 and answer["error"] == "Spiral\\RoadRunner\\Broadcast\\Exception\\BroadcastException"


def test_nothing_listens_on_the_rpc_address(bc: BroadcastFactory) -> None:
    from tests.conftest import free_port

    code, answer = php("publish.php", f"tcp://127.0.0.1:{free_port()}", "t", "m")
    assert code == 1 and answer["error"] in ("Fastrr\\Broadcast\\Exception\\BroadcastException",
                                             "Fastrr\\Relay\\RelayException"), answer


def test_publish_from_an_http_worker(bc: BroadcastFactory, shared_redis: dict[str, Any], prefix: str,
                                     listen: Any) -> None:
    srv = bc.start({"default": redis_broker(shared_redis, prefix)}, http=True, script="worker.php")
    sub = listen(REDIS_PORT, f"{prefix}orders")
    url = srv.server.url("/publish?topic=orders&msg=%7B%22id%22%3A7%7D")
    with urllib.request.urlopen(url, timeout=20) as resp:
        assert resp.status == 200 and resp.read() == b"published"
    channel, ident, payload = sub.get()
    assert channel == f"{prefix}orders" and payload == b'{"id":7}' and ident


def test_publish_from_an_http_worker_when_redis_is_down(bc: BroadcastFactory, private_redis: ServerProcess,
                                                        prefix: str) -> None:
    srv = bc.start({"default": redis_broker({"addrs": [f"127.0.0.1:{private_redis.port}"]}, prefix)},
                   http=True, script="worker.php")
    private_redis.stop()
    try:
        urllib.request.urlopen(srv.server.url("/publish?topic=t&msg=x"), timeout=20)
        raise AssertionError("published with Redis down")
    except urllib.error.HTTPError as exc:
        body = exc.read().decode()
        assert exc.code == 500 and "BroadcastException" in body and "unreachable" in body, body
