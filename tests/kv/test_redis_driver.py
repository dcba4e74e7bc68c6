"""RedisKv against real Redis: the machine's (db 13) and private redis-servers (restart, auth,
TLS, cluster, sentinel). No mocks."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis

from fastrr.config.units import ConfigError
from fastrr.kv.config import storage_options
from fastrr.kv.drivers import driver_class
from fastrr.kv.drivers.base import KvError
from fastrr.kv.drivers.redis import RedisKv
from fastrr.log import Logger, LogSink
from tests.kv import servers
from tests.kv.servers import ServerProcess, async_test

# The fixtures this module uses (tests/kv/conftest.py is the end-to-end tests').
redis_db, private_redis = servers.redis_db, servers.private_redis
redis_tls, redis_cluster, redis_sentinel = servers.redis_tls, servers.redis_cluster, servers.redis_sentinel

BINARY = bytes(range(256)) * 4


class Recorder(Logger):
    """A Logger that keeps what it is given."""

    __slots__ = ("records",)

    def __init__(self) -> None:
        super().__init__(LogSink("error"), "test")
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def warn(self, msg: str, **fields: Any) -> None:
        self.records.append(("warn", msg, fields))


def options(**values: Any) -> dict[str, Any]:
    return storage_options("redis", values, "kv.test.config", [])


@asynccontextmanager
async def opened(values: dict[str, Any], log: Logger | None = None, workdir: str = "/") -> Any:
    driver = RedisKv("test", options(**values), log or Recorder(), workdir)
    await driver.open()
    try:
        yield driver
    finally:
        await driver.close()


def test_registry_names_the_class() -> None:
    assert driver_class("redis") is RedisKv


@async_test
async def test_every_method(redis_db: dict[str, Any]) -> None:
    async with opened(redis_db) as kv:
        await kv.set([("a", b"1", None), ("bin", BINARY, None), ("empty", b"", None)])
        assert await kv.has(["a", "missing", "bin", "empty"]) == ["a", "bin", "empty"]
        assert await kv.mget(["missing", "bin", "a", "empty"]) == [("bin", BINARY), ("a", b"1"), ("empty", b"")]
        assert await kv.mget(["missing", "other"]) == []
        assert await kv.has([]) == [] and await kv.mget([]) == [] and await kv.ttl([]) == []
        assert await kv.ttl(["a", "missing"]) == [("a", None)]
        await kv.set([("a", b"2", None)])
        assert await kv.mget(["a"]) == [("a", b"2")]
        await kv.delete(["a", "missing"])
        assert await kv.has(["a", "bin"]) == ["bin"]
        await kv.clear()
        assert await kv.has(["bin", "empty"]) == []


@async_test
async def test_keys_are_unicode_text(redis_db: dict[str, Any]) -> None:
    async with opened(redis_db) as kv:
        keys = ["ключ", "with space", "a:b/c", "😀"]
        await kv.set([(k, k.encode(), None) for k in keys])
        assert await kv.mget(keys) == [(k, k.encode()) for k in keys]


@async_test
async def test_ttl_and_expiry(redis_db: dict[str, Any]) -> None:
    async with opened(redis_db) as kv:
        expiry = time.time() + 1.5
        await kv.set([("short", b"x", expiry), ("long", b"y", time.time() + 3600), ("forever", b"z", None)])
        ttls = dict(await kv.ttl(["short", "long", "forever", "missing"]))
        assert set(ttls) == {"short", "long", "forever"}
        assert ttls["forever"] is None
        assert abs(ttls["short"] - expiry) < 0.2
        assert abs(ttls["long"] - (time.time() + 3600)) < 1
        assert await kv.has(["short"]) == ["short"]
        await asyncio.sleep(1.8)
        assert await kv.has(["short", "long", "forever"]) == ["long", "forever"]
        assert await kv.mget(["short"]) == []
        assert dict(await kv.ttl(["short"])) == {}


@async_test
async def test_set_with_a_past_expiry_deletes(redis_db: dict[str, Any]) -> None:
    async with opened(redis_db) as kv:
        await kv.set([("k", b"v", None), ("j", b"v", None)])
        await kv.set([("k", b"new", time.time() - 1)])
        await kv.set([("j", b"new", time.time() - 1), ("i", b"kept", None)])
        assert await kv.has(["k", "j", "i"]) == ["i"]


@async_test
async def test_mexpire(redis_db: dict[str, Any]) -> None:
    async with opened(redis_db) as kv:
        await kv.set([("a", b"1", None), ("b", b"2", time.time() + 3600), ("c", b"3", None)])
        expiry = time.time() + 1.2
        await kv.mexpire([("a", expiry), ("b", expiry), ("missing", expiry)])
        ttls = dict(await kv.ttl(["a", "b", "c", "missing"]))
        assert set(ttls) == {"a", "b", "c"} and ttls["c"] is None
        assert abs(ttls["a"] - expiry) < 0.2 and abs(ttls["b"] - expiry) < 0.2
        assert await kv.has(["missing"]) == []  # mexpire does not create keys
        await kv.mexpire([("c", time.time() - 1)])  # a past expiry removes the key
        assert await kv.has(["c"]) == []
        await asyncio.sleep(1.5)
        assert await kv.has(["a", "b"]) == []
        await kv.mexpire([])


@async_test
async def test_large_values(redis_db: dict[str, Any]) -> None:
    one_mb, five_mb = os.urandom(1 << 20), os.urandom(5 << 20)
    async with opened(redis_db) as kv:
        await kv.set([("1mb", one_mb, None), ("5mb", five_mb, time.time() + 60)])
        assert await kv.mget(["1mb", "5mb"]) == [("1mb", one_mb), ("5mb", five_mb)]
        many = {f"k{i}": os.urandom(1000) for i in range(2000)}
        await kv.set([(k, v, None) for k, v in many.items()])
        assert dict(await kv.mget(list(many))) == many
        assert len(await kv.has(list(many))) == 2000
        await kv.delete(list(many))
        assert await kv.has(list(many)) == []


@async_test
async def test_clear_empties_only_its_db(private_redis: ServerProcess) -> None:
    addr = [f"127.0.0.1:{private_redis.port}"]
    async with opened({"addrs": addr, "db": 1}) as one, opened({"addrs": addr, "db": 2}) as two:
        await one.set([("k", b"one", None)])
        await two.set([("k", b"two", None)])
        await one.clear()
        assert await one.mget(["k"]) == []
        assert await two.mget(["k"]) == [("k", b"two")]


@async_test
async def test_restart_of_redis_mid_use(private_redis: ServerProcess) -> None:
    """Calls fail with a clear error while Redis is down and work again, on the same driver object,
    once it is back on the same port."""
    port = private_redis.port
    async with opened({"addrs": [f"127.0.0.1:{port}"], "pool_size": 4}) as kv:
        # Fill the pool with several connections, all of which go stale when Redis dies.
        await asyncio.gather(*(kv.set([(f"k{i}", b"v", None)]) for i in range(20)))
        assert len(await kv.has([f"k{i}" for i in range(20)])) == 20
        private_redis.kill()
        for call in (kv.mget(["k1"]), kv.set([("k", b"v", None)]), kv.has(["k1"]), kv.ttl(["k1"]),
                     kv.mexpire([("k1", time.time() + 10)]), kv.delete(["k1"]), kv.clear()):
            started = time.monotonic()
            with pytest.raises(KvError) as info:
                await call
            assert time.monotonic() - started < 5
            text = str(info.value)
            assert text.startswith(f"kv storage test (redis 127.0.0.1:{port}): "), text
            assert "Connection refused" in text or "connecting to" in text or "Connection closed" in text, text
        private_redis.start()
        # No persistence: the data is gone, the storage works again.
        assert await kv.mget(["k1"]) == []
        await asyncio.gather(*(kv.set([(f"n{i}", b"w", None)]) for i in range(10)))
        assert await kv.mget(["n3"]) == [("n3", b"w")]


@async_test
async def test_down_at_open_then_up(private_redis: ServerProcess) -> None:
    private_redis.kill()
    log = Recorder()
    async with opened({"addrs": [f"127.0.0.1:{private_redis.port}"], "max_retries": -1}, log) as kv:
        assert any("not reachable" in msg for _, msg, _ in log.records)
        with pytest.raises(KvError, match="Connection refused|connecting to"):
            await kv.mget(["k"])
        private_redis.start()
        await kv.set([("k", b"v", None)])
        assert await kv.mget(["k"]) == [("k", b"v")]


@async_test
async def test_error_reply_is_a_kv_error(private_redis: ServerProcess) -> None:
    port = private_redis.port
    async with opened({"addrs": [f"127.0.0.1:{port}"]}) as kv:
        await kv.set([("a", b"1", None)])
        with redis.Redis(port=port) as client:
            client.config_set("maxmemory", 1)  # every write is refused now: OOM
        oom = "command not allowed when used memory > 'maxmemory'"
        with pytest.raises(KvError) as info:
            await kv.set([("k", b"v", None)])
        assert str(info.value) == f"kv storage test (redis 127.0.0.1:{port}): {oom}."
        with pytest.raises(KvError) as info:  # in a MULTI: names the command and key, not the value
            await kv.set([("k", b"secret", None), ("j", b"w", None)])
        assert str(info.value) == f"kv storage test (redis 127.0.0.1:{port}): SET k: {oom}."
        assert await kv.mget(["a", "k", "j"]) == [("a", b"1")]  # reads still work


@async_test
async def test_password_and_username(private_redis: ServerProcess) -> None:
    addr = [f"127.0.0.1:{private_redis.port}"]
    with redis.Redis(port=private_redis.port) as client:
        client.execute_command("ACL", "SETUSER", "alice", "on", ">alice-pw", "~*", "+@all")
        client.config_set("requirepass", "secret")
    async with opened({"addrs": addr, "password": "secret"}) as kv:
        await kv.set([("k", b"v", None)])
    async with opened({"addrs": addr, "username": "alice", "password": "alice-pw"}) as kv:
        assert await kv.mget(["k"]) == [("k", b"v")]
    async with opened({"addrs": addr, "max_retries": -1}) as kv:
        with pytest.raises(KvError, match="NOAUTH|Authentication required|client already authenticated"):
            await kv.mget(["k"])
    async with opened({"addrs": addr, "password": "wrong", "max_retries": -1}) as kv:
        with pytest.raises(KvError, match="invalid username-password|WRONGPASS"):
            await kv.mget(["k"])


@async_test
async def test_tls(redis_tls: dict[str, Any], tmp_path: Any) -> None:
    addr = [f"127.0.0.1:{redis_tls['port']}"]
    async with opened({"addrs": addr, "tls": {"root_ca": redis_tls["root_ca"]}}) as kv:
        await kv.set([("k", BINARY, None)])
        assert await kv.mget(["k"]) == [("k", BINARY)]
    tls = {"root_ca": redis_tls["root_ca"], "cert": redis_tls["cert"], "key": redis_tls["key"]}
    async with opened({"addrs": addr, "tls": tls}) as kv:
        assert await kv.has(["k"]) == ["k"]
    # Relative paths are taken from the working directory.
    workdir = os.path.dirname(redis_tls["root_ca"])
    async with opened({"addrs": addr, "tls": {"root_ca": "ca.crt"}}, workdir=workdir) as kv:
        assert await kv.has(["k"]) == ["k"]
    # Without the CA the server's certificate is refused.
    async with opened({"addrs": addr, "tls": {"cert": redis_tls["cert"], "key": redis_tls["key"]},
                       "max_retries": -1}) as kv:
        with pytest.raises(KvError, match="certificate verify failed|CERTIFICATE_VERIFY_FAILED"):
            await kv.has(["k"])
    with pytest.raises(KvError, match=r"tls.root_ca: no such file .*missing.crt"):
        async with opened({"addrs": addr, "tls": {"root_ca": "missing.crt"}}, workdir=str(tmp_path)):
            pass


@async_test
async def test_cluster(redis_cluster: list[int]) -> None:
    addrs = [f"127.0.0.1:{p}" for p in redis_cluster]
    keys = [f"key-{i}" for i in range(200)]  # spread over every slot range
    async with opened({"addrs": addrs}) as kv:
        assert kv.mode == "cluster"
        await kv.set([(k, k.encode(), None) for k in keys])
        assert dict(await kv.mget(keys + ["missing"])) == {k: k.encode() for k in keys}
        assert await kv.has(["missing", *keys[:50]]) == keys[:50]
        expiry = time.time() + 100
        await kv.mexpire([(k, expiry) for k in keys[:10]])
        ttls = dict(await kv.ttl(keys[:20]))
        assert all(abs(ttls[k] - expiry) < 1 for k in keys[:10]) and all(ttls[k] is None for k in keys[10:20])
        await kv.delete(keys[:100])
        assert await kv.has(keys[:100]) == []
        await kv.clear()  # FLUSHDB on every primary
        assert await kv.has(keys) == []
        for port in redis_cluster:
            with redis.Redis(port=port) as node:
                assert node.dbsize() == 0


@async_test
async def test_sentinel(redis_sentinel: tuple[int, ServerProcess]) -> None:
    sentinel_port, master = redis_sentinel
    async with opened({"addrs": [f"127.0.0.1:{sentinel_port}"], "master_name": "mymaster", "db": 3}) as kv:
        assert kv.mode == "sentinel"
        await kv.set([("k", b"v", time.time() + 60)])
        assert await kv.mget(["k"]) == [("k", b"v")]
        with redis.Redis(port=master.port, db=3) as client:
            assert client.get("k") == b"v"
    async with opened({"addrs": [f"127.0.0.1:{sentinel_port}"], "master_name": "nosuch", "max_retries": -1}) as kv:
        with pytest.raises(KvError, match=r"redis sentinel nosuch via 127.0.0.1:\d+\): No master found"):
            await kv.mget(["k"])


def test_option_defaults_and_readers() -> None:
    opts = options()
    assert opts["addrs"] == ["127.0.0.1:6379"] and opts["db"] == 0 and opts["tls"] == {}
    opts = options(addrs="10.0.0.1:7000, [::1]:7001", dial_timeout="250ms", max_retries=-1, read_only="true",
                   tls={"root_ca": "ca.pem"})
    assert opts["addrs"] == ["10.0.0.1:7000", "[::1]:7001"] and opts["dial_timeout"] == 0.25
    assert opts["max_retries"] == -1 and opts["read_only"] is True and opts["tls"] == {"root_ca": "ca.pem"}
    kv = RedisKv("s", opts, Recorder(), "/")
    assert kv.mode == "cluster" and kv.addrs == [("10.0.0.1", 7000), ("::1", 7001)]
    assert RedisKv("s", options(addrs=["a:1", "b:2"], master_name="m"), Recorder(), "/").mode == "sentinel"
    assert RedisKv("s", options(addrs=["redis.local"]), Recorder(), "/").addrs == [("redis.local", 6379)]
    for values, path in (({"addrs": ["host:port"]}, r"kv.test.config.addrs\[0\]"),
                         ({"addrs": []}, "kv.test.config.addrs"),
                         ({"db": "x"}, "kv.test.config.db"),
                         ({"max_retries": -2}, "kv.test.config.max_retries"),
                         ({"dial_timeout": "soon"}, "kv.test.config.dial_timeout"),
                         ({"tls": {"ca_file": "x"}}, r"kv.test.config.tls.ca_file"),
                         ({"tls": "yes"}, "kv.test.config.tls")):
        with pytest.raises(ConfigError, match=f"^{path}: "):
            options(**values)
    warnings: list[str] = []
    storage_options("redis", {"no_such": 1}, "kv.test.config", warnings)
    assert warnings and "no_such" in warnings[0]


@async_test
async def test_ignored_options_are_logged_once_at_open(redis_db: dict[str, Any]) -> None:
    log = Recorder()
    async with opened({**redis_db, "min_idle_conns": 2, "idle_timeout": "5m", "route_randomly": True}, log) as kv:
        await kv.set([("k", b"v", None)])
        await kv.mget(["k"])
    warned = [fields for level, msg, fields in log.records if "ignored" in msg]
    assert len(warned) == 1
    assert warned[0]["options"] == "min_idle_conns, idle_timeout, route_randomly"
    log = Recorder()
    async with opened(redis_db, log):
        pass
    assert log.records == []


@async_test
async def test_more_calls_than_connections_queue_for_one(private_redis: ServerProcess) -> None:
    """pool_size bounds the connections; calls beyond it wait for one instead of failing."""
    async with opened({"addrs": [f"127.0.0.1:{private_redis.port}"], "pool_size": 2}) as kv:
        await kv.set([(f"k{i}", str(i).encode(), None) for i in range(100)])
        answers = await asyncio.gather(*(kv.mget([f"k{i}"]) for i in range(100)))
        assert answers == [[(f"k{i}", str(i).encode())] for i in range(100)]
        assert len(kv._client.connection_pool._available_connections) <= 2


@async_test
async def test_a_call_waiting_for_a_busy_pool_gives_up_after_pool_timeout(private_redis: ServerProcess) -> None:
    """Redis frozen (SIGSTOP) with the only pooled connection in use by a write: the next write
    fails after pool_timeout naming the setting; once Redis runs again both complete."""
    async with opened({"addrs": [f"127.0.0.1:{private_redis.port}"], "pool_size": 1, "pool_timeout": "300ms",
                       "read_timeout": "3s"}) as kv:
        await kv.set([("k", b"v", None)])
        assert private_redis.proc is not None
        private_redis.proc.send_signal(signal.SIGSTOP)
        try:
            stuck = asyncio.ensure_future(kv.set([("k", b"w", None)]))
            while not kv._slots.locked():  # until the write holds the only connection
                await asyncio.sleep(0.005)
            started = time.monotonic()
            with pytest.raises(KvError) as info:
                await kv.set([("k2", b"v", None)])
            assert 0.25 < time.monotonic() - started < 2
            assert "all 1 connections stayed busy for 0.3 s (pool_size, pool_timeout)" in str(info.value)
        finally:
            private_redis.proc.send_signal(signal.SIGCONT)
        await stuck
        assert await kv.mget(["k", "k2"]) == [("k", b"w")]


@async_test
async def test_reads_time_out_on_a_frozen_redis_and_recover(private_redis: ServerProcess) -> None:
    """MGET and EXISTS go over the pipelined connection (resp.py): a reply later than read_timeout
    fails every call waiting on it with a timeout naming the server; the next call dials again."""
    async with opened({"addrs": [f"127.0.0.1:{private_redis.port}"], "read_timeout": "500ms"}) as kv:
        await kv.set([("k", b"v", None)])
        assert await asyncio.gather(*(kv.mget(["k"]) for _ in range(50))) == [[("k", b"v")]] * 50
        assert private_redis.proc is not None
        private_redis.proc.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            results = await asyncio.gather(kv.mget(["k"]), kv.has(["k"]), return_exceptions=True)
            assert time.monotonic() - started < 2.5
            for result in results:
                assert isinstance(result, KvError) and "Timeout reading from" in str(result), result
        finally:
            private_redis.proc.send_signal(signal.SIGCONT)
        assert await kv.mget(["k", "missing"]) == [("k", b"v")]
        assert await kv.has(["k", "missing"]) == ["k"]
