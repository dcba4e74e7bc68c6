"""kv storages on real servers (Redis, memcached) through a real fastrr: shared by
instances, and surviving a Redis restart without a restart of fastrr."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from fastrr.rpc.client import RpcError
from tests.kv.conftest import KvFactory, rfc3339
from tests.kv.servers import ServerProcess, memcached, private_redis, redis_db

__all__ = ["memcached", "private_redis", "redis_db"]  # fixtures used below


def test_redis_storage_every_call(kv: KvFactory, redis_db: dict[str, Any]) -> None:
    srv = kv.start({"r": {"driver": "redis", "config": redis_db}})
    big = os.urandom(1 << 20)
    srv.set("r", {"a": b"1", "bin": b"\x00\xff", "big": big})
    srv.set("r", {"t": b"x"}, ttl=1)
    assert srv.mget("r", "a", "missing", "bin", "big") == {"a": b"1", "bin": b"\x00\xff", "big": big}
    assert srv.has("r", "zz", "a", "t") == ["a", "t"]
    assert srv.ttl("r", "t")["t"] in (rfc3339(0), rfc3339(1))
    srv.call("kv.MExpire", "r", [("a", b"", rfc3339(1))])
    time.sleep(2.1)
    assert srv.mget("r", "a", "t") == {}
    srv.call("kv.Delete", "r", ["bin"])
    assert srv.mget("r", "bin", "big") == {"big": big}
    srv.call("kv.Clear", "r")
    assert srv.mget("r", "big") == {}


def test_two_instances_share_one_redis_storage(kv: KvFactory, redis_db: dict[str, Any]) -> None:
    storages = {"shared": {"driver": "redis", "config": redis_db}}
    one, two = kv.start(storages), kv.start(storages)
    one.set("shared", {"from-one": b"1"})
    two.set("shared", {"from-two": b"2"})
    assert one.mget("shared", "from-one", "from-two") == two.mget("shared", "from-one", "from-two") == {
        "from-one": b"1", "from-two": b"2"}
    two.call("kv.Delete", "shared", ["from-one"])
    assert one.has("shared", "from-one", "from-two") == ["from-two"]


def test_redis_restart_mid_use(kv: KvFactory, private_redis: ServerProcess) -> None:
    srv = kv.start({"r": {"driver": "redis", "config": {"addrs": [f"127.0.0.1:{private_redis.port}"],
                                                        "dial_timeout": "1s", "max_retries": -1}}})
    srv.set("r", {"k": b"before"})
    private_redis.kill()
    sent = failed = 0
    for _ in range(3):
        sent += 1
        with pytest.raises(RpcError) as info:
            srv.set("r", {"k": b"during"})
        failed += 1
        assert f"kv.Set: storage r: kv storage r (redis 127.0.0.1:{private_redis.port})" in str(info.value)
    assert (sent, failed) == (3, 3)
    private_redis.start()  # a fresh, empty server on the same port
    deadline = time.monotonic() + 15
    while True:
        try:
            srv.set("r", {"k": b"after"})
            break
        except RpcError:
            assert time.monotonic() < deadline, "redis storage did not recover"
            time.sleep(0.2)
    assert srv.mget("r", "k") == {"k": b"after"}
    assert srv.server.proc.poll() is None  # fastrr was not restarted


def test_memcached_storage(kv: KvFactory, memcached: ServerProcess) -> None:
    srv = kv.start({"m": {"driver": "memcached", "config": {"addr": [f"127.0.0.1:{memcached.port}"]}}})
    big = os.urandom(1 << 20)
    srv.set("m", {"a": b"1", "big": big})
    srv.set("m", {"t": b"x"}, ttl=1)
    assert srv.mget("m", "a", "big", "missing") == {"a": b"1", "big": big}
    assert srv.has("m", "a", "missing") == ["a"]
    with pytest.raises(RpcError) as info:
        srv.ttl("m", "a")
    assert "memcached_plugin_ttl" in str(info.value)  # roadrunner-kv maps it to NotImplementedException
    time.sleep(2.1)
    assert srv.mget("m", "t") == {}
    with pytest.raises(RpcError, match="key"):
        srv.set("m", {"has space": b"v"})
    assert srv.mget("m", "a") == {"a": b"1"}  # unharmed
    srv.call("kv.Clear", "m")
    assert srv.mget("m", "a", "big") == {}
