"""Fixtures for the broadcast plugin: a real `fastrr serve` with brokers, the RPC PHP calls,
a raw Redis SUBSCRIBE client to see what reaches Redis, and a unique channel prefix per test.

Pub/sub channels are not per Redis database, so tests on the machine's Redis keep apart by
`prefix` (one per test), not by db; they hold the machine's Redis shared (broker_lock) so a
test restarting it elsewhere waits. Tests that restart Redis use a private redis-server.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from fastrr.broadcast import proto
from fastrr.broadcast.brokers.redis import decode
from fastrr.rpc.client import RpcClient
from fastrr.rpc.codec import FLAG_PROTO
from tests.conftest import Server, ServerFactory, worker_cmd
from tests.jobs.brokers.common import broker_lock
from tests.kv.servers import REDIS_HOST, REDIS_PORT, redis_answers

HERE = Path(__file__).resolve().parent
PHP = HERE / "php"


def publish_request(*messages: tuple[list[str], bytes]) -> bytes:
    req = proto.Request()
    for topics, payload in messages:
        req.messages.add(topics=topics, payload=payload)
    return req.SerializeToString()


class BroadcastServer:
    def __init__(self, server: Server):
        self.server = server
        self.rpc = f"tcp://127.0.0.1:{server.extra['rpc_port']}"
        self.client = RpcClient(self.rpc, 10.0)

    def publish(self, *messages: tuple[list[str], bytes], method: str = "broadcast.Publish") -> bool:
        answer = proto.Response()
        answer.ParseFromString(self.client.call(method, publish_request(*messages), flags=FLAG_PROTO))
        return bool(answer.ok)

    def topics(self, broker: str = "") -> Any:
        return self.client.call("broadcast.Topics", broker)

    def close(self) -> None:
        self.client.close()


class BroadcastFactory:
    def __init__(self, factory: ServerFactory):
        self.factory = factory
        self.opened: list[BroadcastServer] = []

    def start(self, brokers: dict[str, Any], extra: dict[str, Any] | None = None, http: bool = False,
              script: str = "app.php") -> BroadcastServer:
        """`http`: an HTTP section on {port} (one worker); `extra` top-level sections (may hold one)."""
        from tests.conftest import free_port

        rpc_port = free_port()
        cfg: dict[str, Any] = {"version": "3", "server": {"command": worker_cmd(script) if script == "app.php"
                                                          else f"php {PHP / script}"},
                               "rpc": {"listen": f"tcp://127.0.0.1:{rpc_port}"}, "logs": {"level": "debug"},
                               "broadcast": brokers, **(extra or {})}
        if http:
            cfg["http"] = {"address": "127.0.0.1:{port}", "pool": {"num_workers": 1}}
        server = self.factory.start(raw_config=yaml.safe_dump(cfg), wait="http" in cfg)
        server.extra["rpc_port"] = rpc_port
        deadline = time.monotonic() + 20
        while "fastrr started" not in server.output():
            if server.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"fastrr did not start:\n{server.output()}")
            time.sleep(0.05)
        srv = BroadcastServer(server)
        self.opened.append(srv)
        return srv

    def close(self) -> None:
        for srv in self.opened:
            srv.close()


@pytest.fixture
def bc(fastrr: ServerFactory) -> Iterator[BroadcastFactory]:
    factory = BroadcastFactory(fastrr)
    yield factory
    factory.close()


@pytest.fixture
def prefix() -> str:
    return f"test-{os.getpid()}-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def shared_redis() -> Iterator[dict[str, Any]]:
    """Connection options for the machine's Redis, held shared against restarts elsewhere."""
    if not redis_answers(REDIS_PORT):
        pytest.fail(f"redis: not answering on {REDIS_HOST}:{REDIS_PORT} (`make test` starts it)")
    with broker_lock("redis"):
        yield {"addrs": [f"{REDIS_HOST}:{REDIS_PORT}"]}


class Listener:
    """A plain redis-py SUBSCRIBE client: what other programs on the same Redis see."""

    def __init__(self, port: int, channels: list[str]):
        self.client = redis.Redis(host="127.0.0.1", port=port)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(*channels)

    def get(self, timeout: float = 10.0) -> tuple[str, str | None, bytes]:
        """(channel, id, payload) of the next message."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.pubsub.get_message(timeout=0.2)
            if msg is not None and msg["type"] == "message":
                ident, payload = decode(msg["data"])
                return msg["channel"].decode(), ident, payload
        raise AssertionError(f"no message within {timeout}s")

    def none(self, wait: float = 0.5) -> None:
        msg = self.pubsub.get_message(timeout=wait)
        while msg is not None and msg["type"] != "message":
            msg = self.pubsub.get_message(timeout=wait)
        assert msg is None, f"unexpected message {msg!r}"

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()


@pytest.fixture
def listen() -> Iterator[Any]:
    opened: list[Listener] = []

    def make(port: int, *channels: str) -> Listener:
        listener = Listener(port, list(channels))
        opened.append(listener)
        return listener

    yield make
    for listener in opened:
        listener.close()


def php(script: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, Any]:
    out = subprocess.run(["php", str(PHP / script), *args], capture_output=True, text=True, timeout=60,
                         env={**os.environ, **(env or {})})
    try:
        return out.returncode, json.loads(out.stdout)
    except ValueError:
        raise AssertionError(f"{script} {args}: {out.returncode}\n{out.stdout}\n{out.stderr}") from None
