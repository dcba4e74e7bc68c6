"""The interface every kv storage implements (memory, boltdb on SQLite, redis, memcached).

Keys are str, values opaque bytes. Expiry is an absolute Unix time (float
seconds) or None for "never"; the RPC layer turns RFC 3339 timeouts into
it, and a time already past into a delete (PSR-16: a TTL <= 0 expires the
item). Every method may wait (network, disk) and raises `KvError` with a
text that names the storage and what failed; a storage whose server is down
raises on each call and works again once the server is back, without a
restart of fastrr.

`OPTIONS` is the driver's config: option name -> (reader, default), read
from `kv.<name>.config` (fastrr/kv/config.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from fastrr.log import Logger

Reader = Callable[[str, Any], Any]


class KvError(Exception):
    """A storage operation failed (the text says which storage and why)."""


class KvDriver(ABC):
    name: ClassVar[str] = ""
    OPTIONS: ClassVar[dict[str, tuple[Reader, Any]]] = {}
    # False: the storage cannot tell a key's expiry (memcached); its ttl() then
    # raises RoadRunner's "<driver>_plugin_ttl: ..." text, which PHP maps.
    has_ttl: ClassVar[bool] = True
    # True: every method finishes without waiting (memory, SQLite), so the RPC
    # fast path may run it in place with run_now() instead of a Task.
    sync: ClassVar[bool] = False

    def __init__(self, storage: str, options: dict[str, Any], log: Logger, workdir: str):
        self.storage = storage
        self.options = options
        self.log = log
        self.workdir = workdir

    def run_now(self, op: str, *args: Any) -> Any:
        """Run method `op` of a `sync` driver to its end, here and now."""
        coro = getattr(self, op)(*args)
        try:
            coro.send(None)
        except StopIteration as done:
            return done.value
        coro.close()
        raise RuntimeError(f"kv driver {self.name}: {op} waited although the driver is sync")

    async def open(self) -> None:
        """Connect / open the file. A broker that is down is not an error here:
        calls fail until it is back (the plugin logs it)."""
        return None

    async def close(self) -> None:
        """Let go of connections and files."""
        return None

    @abstractmethod
    async def has(self, keys: list[str]) -> list[str]:
        """The keys that exist (and have not expired), in request order."""

    @abstractmethod
    async def set(self, items: list[tuple[str, bytes, float | None]]) -> None:
        """Store (key, value, expiry) items, all or nothing where the storage allows."""

    @abstractmethod
    async def mget(self, keys: list[str]) -> list[tuple[str, bytes]]:
        """(key, value) of the keys found, in request order; missing keys are left out."""

    @abstractmethod
    async def mexpire(self, items: list[tuple[str, float]]) -> None:
        """Give existing keys a new expiry; missing keys are ignored."""

    @abstractmethod
    async def ttl(self, keys: list[str]) -> list[tuple[str, float | None]]:
        """(key, expiry or None) of the keys found; KvError when `has_ttl` is False."""

    @abstractmethod
    async def delete(self, keys: list[str]) -> None: ...

    @abstractmethod
    async def clear(self) -> None:
        """Remove every key of this storage."""
