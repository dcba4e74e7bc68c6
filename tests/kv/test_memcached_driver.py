"""MemcachedKv against real memcached servers started by the tests (tests/kv/servers.py). No mocks."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
import zlib
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from fastrr.config.units import ConfigError
from fastrr.kv.config import storage_options
from fastrr.kv.drivers import driver_class
from fastrr.kv.drivers import memcached as mc
from fastrr.kv.drivers.base import KvError
from fastrr.kv.drivers.memcached import MemcachedKv, exptime
from fastrr.log import Logger, LogSink
from tests.kv import servers
from tests.kv.servers import ServerProcess, async_test, memcached_process

memcached = servers.memcached  # the fixture (tests/kv/conftest.py is the end-to-end tests')

BINARY = bytes(range(256)) * 4
TTL_TEXT = "memcached_plugin_ttl: not valid request for memcached, see https://github.com/memcached/memcached/issues/239"


@asynccontextmanager
async def opened(*ports: int) -> Any:
    opts = storage_options("memcached", {"addr": [f"127.0.0.1:{p}" for p in ports]}, "kv.test.config", [])
    driver = MemcachedKv("test", opts, Logger(LogSink("error"), "test"), "/")
    await driver.open()
    try:
        yield driver
    finally:
        await driver.close()


def ask(port: int, request: bytes, end: bytes = b"\r\n") -> bytes:
    """One request straight to a server; its reply, read until it ends with `end`."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(request)
        reply = b""
        while not reply.endswith(end):
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            reply += chunk
        return reply


def server_ttl(port: int, key: str) -> int:
    """The remaining TTL memcached itself reports (meta get, flag t): -1 for none."""
    reply = ask(port, b"mg " + key.encode() + b" t\r\n")
    assert reply.startswith(b"HD t"), reply
    return int(reply.split()[1][1:])


def test_registry_and_flags() -> None:
    assert driver_class("memcached") is MemcachedKv
    assert MemcachedKv.has_ttl is False
    assert storage_options("memcached", {}, "kv.m.config", [])["addr"] == ["127.0.0.1:11211"]
    assert storage_options("memcached", {"addr": "a:1,b:2"}, "kv.m.config", [])["addr"] == ["a:1", "b:2"]
    for bad in (["nope:port"], [], 5):
        with pytest.raises(ConfigError, match=r"^kv.m.config.addr"):
            storage_options("memcached", {"addr": bad}, "kv.m.config", [])


def test_exptime_follows_memcacheds_rule() -> None:
    now = 1_800_000_000.0
    assert exptime(now + 1.2, now) == 2  # relative, rounded up: never 0 (= no expiry)
    assert exptime(now + 0.001, now) == 1
    assert exptime(now + 30 * 86400, now) == 30 * 86400
    assert exptime(now + 30 * 86400 + 1, now) == int(now) + 30 * 86400 + 1  # absolute Unix time
    assert exptime(now, now) is None and exptime(now - 5, now) is None


@async_test
async def test_every_method(memcached: ServerProcess) -> None:
    async with opened(memcached.port) as kv:
        await kv.set([("a", b"1", None), ("bin", BINARY, None), ("empty", b"", None)])
        assert await kv.has(["a", "missing", "bin", "empty"]) == ["a", "bin", "empty"]
        assert await kv.mget(["missing", "bin", "a", "empty", "a"]) == [("bin", BINARY), ("a", b"1"), ("empty", b""),
                                                                      ("a", b"1")]
        assert await kv.mget(["missing", "other"]) == []
        assert await kv.has([]) == [] and await kv.mget([]) == []
        await kv.set([("a", b"2", None), ("a", b"3", None)])  # in order: the last one wins
        assert await kv.mget(["a"]) == [("a", b"3")]
        await kv.delete(["a", "missing", "a"])
        assert await kv.has(["a", "bin"]) == ["bin"]
        await kv.delete([])
        await kv.clear()
        assert await kv.has(["bin", "empty"]) == []
        with pytest.raises(KvError) as info:
            await kv.ttl(["bin"])
        assert str(info.value) == TTL_TEXT


@async_test
async def test_many_keys_in_one_call(memcached: ServerProcess) -> None:
    many = {f"key:{i}": os.urandom(i % 300) for i in range(3000)}
    async with opened(memcached.port) as kv:
        await kv.set([(k, v, None) for k, v in many.items()])
        assert dict(await kv.mget(list(many) + ["nope"])) == many
        assert len(await kv.has(list(many))) == 3000
        await kv.mexpire([(k, time.time() + 100) for k in many])
        await kv.delete(list(many)[:1500])
        assert len(await kv.has(list(many))) == 1500


@async_test
async def test_expiry(memcached: ServerProcess) -> None:
    async with opened(memcached.port) as kv:
        now = time.time()
        await kv.set([("short", b"x", now + 1.5), ("days", b"y", now + 10 * 86400), ("month", b"z", now + 40 * 86400),
                      ("forever", b"f", None)])
        assert await kv.has(["short", "days", "month", "forever"]) == ["short", "days", "month", "forever"]
        assert server_ttl(memcached.port, "forever") == -1
        assert abs(server_ttl(memcached.port, "days") - 10 * 86400) <= 2  # sent relative
        assert abs(server_ttl(memcached.port, "month") - 40 * 86400) <= 2  # sent as a Unix time
        assert 0 <= server_ttl(memcached.port, "short") <= 2
        await asyncio.sleep(3.1)  # memcached's clock ticks in whole seconds
        assert await kv.has(["short", "days", "month", "forever"]) == ["days", "month", "forever"]
        assert await kv.mget(["short"]) == []


@async_test
async def test_set_with_a_past_expiry_deletes(memcached: ServerProcess) -> None:
    async with opened(memcached.port) as kv:
        await kv.set([("k", b"v", None), ("j", b"v", None)])
        await kv.set([("k", b"new", time.time() - 1), ("i", b"kept", None)])
        assert await kv.has(["k", "j", "i"]) == ["j", "i"]


@async_test
async def test_mexpire_is_touch(memcached: ServerProcess) -> None:
    async with opened(memcached.port) as kv:
        await kv.set([("a", b"1", None), ("b", b"2", time.time() + 3600), ("c", b"3", None)])
        await kv.mexpire([("a", time.time() + 1.2), ("b", time.time() + 1.2), ("missing", time.time() + 100)])
        assert await kv.has(["missing"]) == []  # touch does not create keys
        assert server_ttl(memcached.port, "a") <= 2 and server_ttl(memcached.port, "b") <= 2
        assert server_ttl(memcached.port, "c") == -1
        await kv.mexpire([("c", time.time() - 1)])  # a past expiry removes the key
        assert await kv.has(["c"]) == []
        await asyncio.sleep(3.1)
        assert await kv.has(["a", "b"]) == []
        await kv.mexpire([])


@async_test
async def test_value_sizes(memcached: ServerProcess) -> None:
    one_mb = os.urandom(1 << 20)
    async with opened(memcached.port) as kv:
        await kv.set([("1mb", one_mb, None), ("1mb-bis", one_mb[::-1], time.time() + 60)])
        assert await kv.mget(["1mb", "1mb-bis"]) == [("1mb", one_mb), ("1mb-bis", one_mb[::-1])]
        with pytest.raises(KvError) as info:  # the server runs with -I 2m
            await kv.set([("3mb", os.urandom(3 << 20), None)])
        assert str(info.value) == (f"kv storage test (memcached 127.0.0.1:{memcached.port}): set: "
                                   "SERVER_ERROR object too large for cache")
        assert await kv.mget(["3mb", "1mb"]) == [("1mb", one_mb)]  # the storage is unharmed


@async_test
async def test_keys(memcached: ServerProcess) -> None:
    async with opened(memcached.port) as kv:
        good = ["k" * 250, "é" * 125, "ключ:1/2", "a" + "😀" * 60]
        await kv.set([(k, k.encode(), None) for k in good])
        assert await kv.mget(good) == [(k, k.encode()) for k in good]
        for bad in ("k" * 251, "é" * 126, "with space", "new\nline", "tab\t", "nul\x00", "del\x7f", ""):
            for call in (kv.set([(bad, b"v", None)]), kv.mget(["ok", bad]), kv.has([bad]), kv.delete([bad]),
                         kv.mexpire([(bad, time.time() + 9)])):
                with pytest.raises(KvError) as info:
                    await call
                assert str(info.value).startswith(f"kv storage test (memcached): invalid key {bad!r}: "), info.value
        assert await kv.mget(good[:1]) == [(good[0], good[0].encode())]


@async_test
async def test_restart_of_memcached_mid_use(memcached: ServerProcess) -> None:
    port = memcached.port
    async with opened(port) as kv:
        await asyncio.gather(*(kv.set([(f"k{i}", b"v", None)]) for i in range(20)))  # several pooled connections
        memcached.kill()
        for call in (lambda: kv.mget(["k1"]), lambda: kv.set([("k", b"v", None)]), lambda: kv.has(["k1"]),
                     lambda: kv.mexpire([("k1", time.time() + 10)]), lambda: kv.delete(["k1"]), kv.clear):
            started = time.monotonic()
            with pytest.raises(KvError) as info:
                await call()
            assert time.monotonic() - started < 2
            text = str(info.value)
            assert text.startswith(f"kv storage test (memcached 127.0.0.1:{port}): "), text
            assert "Connect call failed" in text or "closed the connection" in text or "reset" in text, text
        memcached.start()
        assert await kv.mget(["k1"]) == []  # memcached keeps nothing over a restart
        await asyncio.gather(*(kv.set([(f"n{i}", b"w", None)]) for i in range(10)))
        assert await kv.mget(["n3"]) == [("n3", b"w")]


@async_test
async def test_restart_with_pooled_connections_is_invisible(memcached: ServerProcess) -> None:
    """The pooled connections die with the server; the first call after it is back must still work."""
    async with opened(memcached.port) as kv:
        await asyncio.gather(*(kv.set([(f"k{i}", b"v", None)]) for i in range(8)))
        memcached.kill()
        memcached.start()
        await kv.set([("after", b"restart", None)])
        assert await kv.mget(["after"]) == [("after", b"restart")]


@async_test
async def test_a_stopped_server_times_out_and_cancelled_calls_do_not_desync(
        memcached: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mc, "CALL_TIMEOUT", 0.5)
    assert memcached.proc is not None
    async with opened(memcached.port) as kv:
        await kv.set([("a", b"A", None), ("b", b"B", None)])
        os.kill(memcached.proc.pid, signal.SIGSTOP)
        try:
            with pytest.raises(KvError, match=r"\): get: no answer within 0.5s$"):
                await kv.mget(["a"])
            pending = asyncio.ensure_future(kv.mget(["a"]))
            await asyncio.sleep(0.1)
            pending.cancel()  # e.g. the RPC client went away mid-call
            with pytest.raises(asyncio.CancelledError):
                await pending
        finally:
            os.kill(memcached.proc.pid, signal.SIGCONT)
        # The replies to the abandoned calls must not be read as answers to these.
        for _ in range(5):
            assert await kv.mget(["b"]) == [("b", b"B")]
            assert await kv.mget(["a", "b"]) == [("a", b"A"), ("b", b"B")]


@async_test
async def test_a_server_closing_mid_command_does_not_block_the_loop() -> None:
    """aiomcache spins forever here (aio-libs/aiomcache#502): a real TCP peer that reads a
    command and hangs up must give a KvError while the event loop keeps running."""
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    tick = asyncio.ensure_future(ticker())
    try:
        async with opened(server.sockets[0].getsockname()[1]) as kv:
            for call in (lambda: kv.delete(["k"]), lambda: kv.set([("k", b"v", None)]), lambda: kv.mget(["k"]),
                         kv.clear):
                with pytest.raises(KvError, match="the server closed the connection"):
                    await asyncio.wait_for(call(), 3)
        await asyncio.sleep(0.05)
        assert ticks > 0
    finally:
        tick.cancel()
        server.close()


@async_test
async def test_keys_are_sharded_by_crc32_over_several_servers(memcached: ServerProcess, tmp_path: Path) -> None:
    other = memcached_process(tmp_path, name="other")
    other.start()
    try:
        ports = [memcached.port, other.port]
        keys = [f"user:{i}" for i in range(200)]
        async with opened(*ports) as kv:
            await kv.set([(k, k.encode(), None) for k in keys])
            assert dict(await kv.mget(keys)) == {k: k.encode() for k in keys}
            homes = {k: ports[zlib.crc32(k.encode()) % 2] for k in keys}
            assert set(homes.values()) == set(ports)  # both servers hold some
            for key in keys[:40]:
                for port in ports:
                    held = ask(port, b"get " + key.encode() + b"\r\n", b"END\r\n").startswith(b"VALUE")
                    assert held == (port == homes[key]), (key, port)
            other.kill()  # the keys on the other server now fail, the rest still work
            mine = [k for k in keys if homes[k] == memcached.port]
            assert await kv.mget(mine[:5]) == [(k, k.encode()) for k in mine[:5]]
            with pytest.raises(KvError, match=f"memcached 127.0.0.1:{other.port}"):
                await kv.mget(keys)
            other.start()
            await kv.clear()  # flushes every server
            assert await kv.has(keys) == []
    finally:
        other.stop()
