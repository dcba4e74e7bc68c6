"""The whole chain on real servers: PHP (Fastrr\\Broadcast inside an HTTP worker of instance A)
→ broadcast.Publish → the redis broker → Redis → instance B's hub → a WebSocket client of B
(fastrr/websockets). Also: the subscriber count RPC sees the WebSocket clients."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from websockets.sync.client import connect

from tests.broadcast.conftest import BroadcastFactory


def ws_config() -> dict[str, Any]:
    return {"http": {"address": "127.0.0.1:{port}", "middleware": ["websockets"],
                     "pool": {"num_workers": 1}},
            "websockets": {"path": "/ws", "broker": "default", "allowed_origin": "*", "pool": {"num_workers": 1}}}


def start(bc: BroadcastFactory, redis: dict[str, Any], prefix: str) -> Any:
    broker = {"default": {"driver": "redis", "config": {**redis, "prefix": prefix, "unsubscribe_delay": 0}}}
    return bc.start(broker, extra=ws_config(), script="worker.php")


def join(ws: Any, *topics: str) -> None:
    ws.send(json.dumps({"command": "join", "topics": list(topics)}))
    answer = json.loads(ws.recv(timeout=10))
    assert answer == {"topic": "@join", "payload": list(topics)}, answer


def test_php_on_one_instance_reaches_websockets_on_another(bc: BroadcastFactory, shared_redis: dict[str, Any],
                                                           prefix: str) -> None:
    a, b = start(bc, shared_redis, prefix), start(bc, shared_redis, prefix)
    with connect(f"ws://127.0.0.1:{b.server.port}/ws", open_timeout=10) as on_b, \
            connect(f"ws://127.0.0.1:{a.server.port}/ws", open_timeout=10) as on_a:
        join(on_b, "orders")
        join(on_a, "orders", "other")
        assert b.topics() == {"default": {"orders": 1}}
        assert a.topics() == {"default": {"orders": 1, "other": 1}}
        url = a.server.url("/publish?topic=orders&msg=%7B%22id%22%3A42%7D")
        with urllib.request.urlopen(url, timeout=20) as resp:
            assert resp.read() == b"published"
        for ws in (on_b, on_a):
            assert json.loads(ws.recv(timeout=10)) == {"topic": "orders", "payload": '{"id":42}'}
    # the clients are gone: their topics are unsubscribed on both instances
    for srv in (a, b):
        deadline = time.monotonic() + 10
        while srv.topics() != {"default": {}} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.topics() == {"default": {}}
