"""Fixtures for the kv and lock plugins: a real `fastrr serve` with kv storages,
and RPC helpers speaking kv.v1 / lock.v1beta1 as the PHP libraries do."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from fastrr.kv import proto
from fastrr.lock import proto as lock_proto
from fastrr.rpc.client import RpcClient
from fastrr.rpc.codec import FLAG_PROTO
from tests.conftest import Server, ServerFactory, worker_cmd


def rfc3339(seconds_from_now: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds_from_now)).strftime("%Y-%m-%dT%H:%M:%S+00:00")


class KvServer:
    def __init__(self, server: Server):
        self.server = server
        self.rpc = f"tcp://127.0.0.1:{server.port}"
        self.client = RpcClient(self.rpc, 10.0)

    def call(self, method: str, storage: str, items: list[tuple[str, bytes, str]] | list[str] = ()) -> Any:
        req = proto.Request(storage=storage)
        for item in items:
            key, value, timeout = (item, b"", "") if isinstance(item, str) else item
            req.items.add(key=key, value=value, timeout=timeout)
        answer = proto.Response()
        answer.ParseFromString(self.client.call(method, req.SerializeToString(), flags=FLAG_PROTO))
        return answer

    def set(self, storage: str, items: dict[str, bytes], ttl: float | None = None) -> None:
        timeout = "" if ttl is None else rfc3339(ttl)
        self.call("kv.Set", storage, [(k, v, timeout) for k, v in items.items()])

    def mget(self, storage: str, *keys: str) -> dict[str, bytes]:
        return {i.key: i.value for i in self.call("kv.MGet", storage, list(keys)).items}

    def has(self, storage: str, *keys: str) -> list[str]:
        return [i.key for i in self.call("kv.Has", storage, list(keys)).items]

    def ttl(self, storage: str, *keys: str) -> dict[str, str]:
        return {i.key: i.timeout for i in self.call("kv.TTL", storage, list(keys)).items}

    def lock(self, method: str, resource: str, id: str = "", ttl: float = 0, wait: float = 0) -> bool:
        req = lock_proto.Request(resource=resource, id=id, ttl=round(ttl * 1e6), wait=round(wait * 1e6))
        answer = lock_proto.Response()
        answer.ParseFromString(self.client.call(method, req.SerializeToString(), flags=FLAG_PROTO))
        return bool(answer.ok)

    def close(self) -> None:
        self.client.close()


class KvFactory:
    def __init__(self, factory: ServerFactory):
        self.factory = factory
        self.opened: list[KvServer] = []

    def start(self, storages: dict[str, Any], extra: dict[str, Any] | None = None) -> KvServer:
        cfg = {"version": "3", "server": {"command": worker_cmd("app.php")},
               "rpc": {"listen": "tcp://127.0.0.1:{port}"}, "logs": {"level": "debug"}, "kv": storages,
               **(extra or {})}
        server = self.factory.start(raw_config=yaml.safe_dump(cfg))
        deadline = time.monotonic() + 15
        while "fastrr started" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        kv = KvServer(server)
        self.opened.append(kv)
        return kv

    def close(self) -> None:
        for kv in self.opened:
            kv.close()


@pytest.fixture
def kv(fastrr: ServerFactory) -> Any:
    factory = KvFactory(fastrr)
    yield factory
    factory.close()


@pytest.fixture
def kv_file(tmp_path: Path) -> Path:
    return tmp_path / "kv.db"
