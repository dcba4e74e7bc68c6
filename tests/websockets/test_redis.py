"""WebSockets on the redis broadcast broker: two fastrr instances sharing the machine's Redis
deliver each other's publishes to their own clients; after a Redis restart the instance
subscribes again and later publishes reach the clients (a private redis-server, so the
machine's is never restarted under another test)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.conftest import free_port
from tests.jobs.brokers.common import Daemon, broker_lock, require
from tests.kv.servers import REDIS_HOST, REDIS_PORT, redis_answers
from tests.websockets.conftest import AUTH, WsFactory, reply


def redis_broker(port: int, prefix: str) -> dict[str, object]:
    return {"driver": "redis", "config": {"addrs": [f"127.0.0.1:{port}"], "prefix": prefix}}


def join(ws, *topics: str) -> None:
    ws.send(json.dumps({"command": "join", "topics": list(topics)}))
    assert reply(ws.recv(timeout=10))["topic"] == "@join"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Daemon]:
    port = free_port()
    daemon = Daemon([require("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--dir", str(tmp_path)], port, tmp_path / "redis.log")
    daemon.start()
    yield daemon
    daemon.stop()


def test_two_instances_sharing_redis_deliver_across(wsf: WsFactory):
    if not redis_answers(REDIS_PORT):
        pytest.fail(f"redis: not answering on {REDIS_HOST}:{REDIS_PORT} (`make test` starts it)")
    prefix = f"wstest-{os.getpid()}-{uuid.uuid4().hex[:8]}:"
    with broker_lock("redis"):
        one = wsf.start(broker=redis_broker(REDIS_PORT, prefix))
        two = wsf.start(broker=redis_broker(REDIS_PORT, prefix))
        with connect(one.url(), additional_headers=AUTH, open_timeout=10) as on_one, \
                connect(two.url(), additional_headers=AUTH, open_timeout=10) as on_two:
            join(on_one, "room")
            join(on_two, "room", "other")
            two.publish("room", "from two")
            one.publish("other", "from one")
            assert reply(on_one.recv(timeout=10)) == {"topic": "room", "payload": "from two"}
            assert reply(on_two.recv(timeout=10)) == {"topic": "room", "payload": "from two"}
            assert reply(on_two.recv(timeout=10)) == {"topic": "other", "payload": "from one"}
            one.publish("room", "from one")
            assert reply(on_one.recv(timeout=10)) == {"topic": "room", "payload": "from one"}  # "other": not joined
            assert reply(on_two.recv(timeout=10)) == {"topic": "room", "payload": "from one"}


def test_redis_restart_resubscribes_and_later_publishes_arrive(wsf: WsFactory, own_redis: Daemon):
    srv = wsf.start(broker=redis_broker(own_redis.port, "ws:"))
    with connect(srv.url(), additional_headers=AUTH, open_timeout=10) as ws:
        join(ws, "t")
        srv.publish("t", "before")
        assert reply(ws.recv(timeout=10)) == {"topic": "t", "payload": "before"}
        own_redis.restart(down=0.5)
        srv.wait_output("broadcast redis connection back", timeout=30)
        srv.publish("t", "after")
        assert reply(ws.recv(timeout=10)) == {"topic": "t", "payload": "after"}
        # the connection itself stayed open all along
        join(ws, "u")
