"""The memcached kv driver (RoadRunner's `driver: memcached`), with a small client of our own.

The client: memcached's text protocol (get, set, delete, touch, flush_all)
over asyncio streams, a pool of up to POOL_SIZE connections per server, and
CALL_TIMEOUT seconds for each call (connect included). It is ours because
the asyncio client on PyPI, aiomcache (0.8.2, May 2024, the newest the index
offers), spins the event loop forever when memcached closes a connection in
the middle of a command (aio-libs/aiomcache#502, whose fix #503 is not
released) — exactly what a memcached restart does — and returns a connection
interrupted by a cancelled call to its pool with the reply still unread. Here
a connection goes back to the pool only after a reply read in full; any
error, timeout or cancellation closes it, and the next call dials again. A
call that fails on a pooled connection the server has since closed is sent
once more on a new one (every command this driver sends is idempotent), so
the first call after a restart of memcached works.

Options: `addr`, a list of "host:port" (default ["127.0.0.1:11211"]). With
several servers each key lives on one of them, chosen as gomemcache (and so
RoadRunner) chooses it: crc32 (IEEE) of the key modulo the number of
servers. The choice is stable for a given list, but adding or removing a server
moves most keys; a server that is down makes calls on its keys fail (it is
not taken out of the ring). Clear flushes every server.

Semantics: values are opaque bytes (flags 0, as RoadRunner's gomemcache). Set
sends the expiry as memcached wants it: seconds from now when that is at
most 30 days, else the absolute Unix time (memcached reads any larger number
as one); never 0 (which would mean no expiry) — an item whose expiry is
already past is deleted instead. Several commands to one server are
pipelined: one write, then the replies. MExpire is `touch`; Has and MGet are
`get` (Has fetches the values too, as RoadRunner does); Delete is `delete`;
Clear is `flush_all`, which empties the whole server, not just this
storage's keys. memcached cannot tell an item's expiry, so TTL raises
RoadRunner's `memcached_plugin_ttl` text (`has_ttl` False), which
roadrunner-kv maps to NotImplementedException.

Keys: memcached takes 1 to 250 bytes (UTF-8) without spaces or control
characters; another key raises KvError naming it (it is not hashed into a
legal one). Values: the server's item size limit (`-I`, 1 MB by default,
key and item header included) bounds them; a larger one raises KvError with
memcached's own text ("SERVER_ERROR object too large for cache").
"""

from __future__ import annotations

import asyncio
import math
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastrr.config.units import ConfigError, parse_str_list
from fastrr.kv.drivers.base import KvDriver, KvError

T = TypeVar("T")
DEFAULT_PORT = 11211
POOL_SIZE = 8
CALL_TIMEOUT = 5.0
GET_BATCH = 100  # keys per `get` line
MAX_RELATIVE = 30 * 24 * 3600  # memcached reads a larger exptime as a Unix time
TTL_ERROR = "memcached_plugin_ttl: not valid request for memcached, see https://github.com/memcached/memcached/issues/239"


class _ServerError(Exception):
    """memcached answered with an error line (its text is the message)."""


def split_addr(path: str, addr: str) -> tuple[str, int]:
    text = addr.strip()
    host, _, port = text.rpartition(":") if ":" in text else (text, "", str(DEFAULT_PORT))
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(path, f"expected an address like 127.0.0.1:11211, got {addr!r}")
    return host, int(port)


def parse_addrs(path: str, value: Any) -> list[str]:
    addrs = parse_str_list(path, value)
    if not addrs:
        raise ConfigError(path, "expected at least one address like 127.0.0.1:11211")
    for i, addr in enumerate(addrs):
        split_addr(f"{path}[{i}]", addr)
    return addrs


def exptime(expiry: float, now: float) -> int | None:
    """memcached's exptime for an absolute expiry; None when it is already past."""
    seconds = math.ceil(expiry - now)
    if seconds <= 0:
        return None
    return seconds if seconds <= MAX_RELATIVE else math.ceil(expiry)


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class _Server:
    """One memcached server: a pool of connections, one request/reply exchange at a time on each."""

    def __init__(self, addr: str):
        self.addr = addr
        self.host, self.port = split_addr("addr", addr)
        self.idle: list[Conn] = []
        self.slots = asyncio.Semaphore(POOL_SIZE)

    async def call(self, request: bytes, replies: Callable[[asyncio.StreamReader], Awaitable[T]]) -> T:
        async with self.slots:
            for attempt in (1, 2):
                conn = self._pooled()
                reused, done = conn is not None, False
                try:
                    async with asyncio.timeout(CALL_TIMEOUT):
                        if conn is None:
                            conn = await asyncio.open_connection(self.host, self.port)
                        # No drain: the transport sends while we read, so a long pipeline
                        # cannot deadlock against a server blocked on its own replies.
                        conn[1].write(request)
                        result = await replies(conn[0])
                    done = True
                    return result
                except (ConnectionError, asyncio.IncompleteReadError):
                    if not reused or attempt == 2:
                        raise
                    self.close()  # the server went away since: every pooled connection is dead
                finally:
                    if conn is not None:
                        if done:
                            self.idle.append(conn)
                        else:
                            conn[1].transport.abort()
        raise AssertionError("unreachable")

    def _pooled(self) -> Conn | None:
        while self.idle:
            reader, writer = self.idle.pop()
            if not reader.at_eof() and reader.exception() is None and not writer.is_closing():
                return reader, writer
            writer.transport.abort()
        return None

    def close(self) -> None:
        for _, writer in self.idle:
            writer.transport.abort()
        self.idle.clear()


async def _line(reader: asyncio.StreamReader) -> bytes:
    line = await reader.readuntil(b"\r\n")
    if line.startswith((b"SERVER_ERROR", b"CLIENT_ERROR", b"ERROR")):
        raise _ServerError(line[:-2].decode(errors="replace"))
    return line[:-2]


def _expect(count: int, good: tuple[bytes, ...]) -> Callable[[asyncio.StreamReader], Awaitable[list[bytes]]]:
    """Read `count` one-line replies; raise on the first one not in `good`."""
    async def read(reader: asyncio.StreamReader) -> list[bytes]:
        out = [await _line(reader) for _ in range(count)]
        for line in out:
            if line not in good:
                raise _ServerError(line.decode(errors="replace"))
        return out
    return read


def _values(batches: int) -> Callable[[asyncio.StreamReader], Awaitable[dict[bytes, bytes]]]:
    """Read the replies to `batches` get commands: VALUE <key> <flags> <bytes> lines, each then END."""
    async def read(reader: asyncio.StreamReader) -> dict[bytes, bytes]:
        found: dict[bytes, bytes] = {}
        for _ in range(batches):
            while (line := await _line(reader)) != b"END":
                parts = line.split()
                if len(parts) < 4 or parts[0] != b"VALUE":
                    raise _ServerError(f"unexpected reply to get: {line[:100]!r}")
                data = await reader.readexactly(int(parts[3]) + 2)
                found[parts[1]] = data[:-2]
        return found
    return read


class MemcachedKv(KvDriver):
    name = "memcached"
    has_ttl = False
    OPTIONS = {"addr": (parse_addrs, ["127.0.0.1:11211"])}

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.servers: list[_Server] = []

    async def open(self) -> None:
        addrs = self.options.get("addr") or self.OPTIONS["addr"][1]
        self.servers = [_Server(a) for a in addrs]

    async def close(self) -> None:
        for server in self.servers:
            server.close()

    # -- helpers -------------------------------------------------------------

    def _key(self, key: str) -> bytes:
        raw = key.encode()
        if not 0 < len(raw) <= 250 or any(b <= 0x20 or b == 0x7F for b in raw):
            raise KvError(f"kv storage {self.storage} (memcached): invalid key {key!r}: memcached keys are "
                          f"1 to 250 bytes without spaces or control characters (this one: {len(raw)} bytes)")
        return raw

    def _server(self, raw: bytes) -> int:
        return zlib.crc32(raw) % len(self.servers) if len(self.servers) > 1 else 0

    def _by_server(self, keys: list[bytes]) -> dict[int, list[bytes]]:
        groups: dict[int, list[bytes]] = {}
        for raw in keys:
            groups.setdefault(self._server(raw), []).append(raw)
        return groups

    async def _on(self, index: int, request: bytes, replies: Callable[[asyncio.StreamReader], Awaitable[T]],
                  what: str) -> T:
        if not self.servers:
            raise KvError(f"kv storage {self.storage} (memcached): not open")
        server = self.servers[index]
        try:
            return await server.call(request, replies)
        except _ServerError as exc:
            raise KvError(f"kv storage {self.storage} (memcached {server.addr}): {what}: {exc}") from None
        except TimeoutError:
            raise KvError(f"kv storage {self.storage} (memcached {server.addr}): {what}: "
                          f"no answer within {CALL_TIMEOUT:g}s") from None
        except asyncio.IncompleteReadError:
            raise KvError(f"kv storage {self.storage} (memcached {server.addr}): {what}: "
                          "the server closed the connection") from None
        except (OSError, asyncio.LimitOverrunError, ValueError) as exc:
            raise KvError(f"kv storage {self.storage} (memcached {server.addr}): {what}: {exc}") from None

    async def _each(self, calls: list[Awaitable[Any]]) -> list[Any]:
        if len(calls) == 1:
            return [await calls[0]]
        results = await asyncio.gather(*calls, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results

    async def _get(self, keys: list[str]) -> dict[bytes, bytes]:
        raws = list(dict.fromkeys(self._key(k) for k in keys))
        calls = []
        for index, group in self._by_server(raws).items():
            batches = [group[i:i + GET_BATCH] for i in range(0, len(group), GET_BATCH)]
            request = b"".join(b"get " + b" ".join(batch) + b"\r\n" for batch in batches)
            calls.append(self._on(index, request, _values(len(batches)), "get"))
        found: dict[bytes, bytes] = {}
        for part in await self._each(calls):
            found.update(part)
        return found

    async def _simple(self, commands: list[tuple[bytes, bytes]], good: tuple[bytes, ...], what: str) -> None:
        """Send (key, command) pairs, pipelined per server, and check each one-line reply."""
        groups: dict[int, list[bytes]] = {}
        for raw, command in commands:
            groups.setdefault(self._server(raw), []).append(command)
        await self._each([self._on(index, b"".join(cmds), _expect(len(cmds), good), what)
                          for index, cmds in groups.items()])

    # -- the KvDriver interface ------------------------------------------------

    async def has(self, keys: list[str]) -> list[str]:
        if not keys:
            return []
        found = await self._get(keys)
        return [k for k in keys if k.encode() in found]

    async def mget(self, keys: list[str]) -> list[tuple[str, bytes]]:
        if not keys:
            return []
        found = await self._get(keys)
        return [(k, found[k.encode()]) for k in keys if k.encode() in found]

    async def set(self, items: list[tuple[str, bytes, float | None]]) -> None:
        now = time.time()
        sets, deletes = [], []
        for key, value, expiry in items:
            raw = self._key(key)
            exp = 0 if expiry is None else exptime(expiry, now)
            if exp is None:
                deletes.append((raw, b"delete " + raw + b"\r\n"))
            else:
                sets.append((raw, b"set %b 0 %d %d\r\n%b\r\n" % (raw, exp, len(value), value)))
        if sets:
            await self._simple(sets, (b"STORED",), "set")
        if deletes:
            await self._simple(deletes, (b"DELETED", b"NOT_FOUND"), "delete")

    async def mexpire(self, items: list[tuple[str, float]]) -> None:
        now = time.time()
        touches, deletes = [], []
        for key, expiry in items:
            raw = self._key(key)
            exp = exptime(expiry, now)
            if exp is None:
                deletes.append((raw, b"delete " + raw + b"\r\n"))
            else:
                touches.append((raw, b"touch %b %d\r\n" % (raw, exp)))
        if touches:
            await self._simple(touches, (b"TOUCHED", b"NOT_FOUND"), "touch")
        if deletes:
            await self._simple(deletes, (b"DELETED", b"NOT_FOUND"), "delete")

    async def ttl(self, keys: list[str]) -> list[tuple[str, float | None]]:
        raise KvError(TTL_ERROR)

    async def delete(self, keys: list[str]) -> None:
        commands = [(raw, b"delete " + raw + b"\r\n") for raw in dict.fromkeys(self._key(k) for k in keys)]
        if commands:
            await self._simple(commands, (b"DELETED", b"NOT_FOUND"), "delete")

    async def clear(self) -> None:
        if not self.servers:
            raise KvError(f"kv storage {self.storage} (memcached): not open")
        await self._each([self._on(i, b"flush_all\r\n", _expect(1, (b"OK",)), "flush_all")
                          for i in range(len(self.servers))])
