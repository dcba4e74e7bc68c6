"""The memory kv driver: a dict in this process, lost with it (RoadRunner's `memory`).

Expired keys are never visible: every read checks the expiry, and a heap of
expiries lets a sweep every `interval` (RoadRunner 2.x's GC option; here 1 s by
default) free their memory without scanning the dict.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from typing import Any

from fastrr.config.units import parse_duration
from fastrr.kv.drivers.base import KvDriver

SWEEP_SECONDS = 1.0


class MemoryKv(KvDriver):
    sync = True
    name = "memory"
    OPTIONS = {"interval": (parse_duration, SWEEP_SECONDS)}

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.data: dict[str, tuple[bytes, float | None]] = {}
        self.expiries: list[tuple[float, str]] = []  # may hold stale entries; checked against data
        self._sweeper: asyncio.TimerHandle | None = None
        self.interval = float(self.options.get("interval") or SWEEP_SECONDS)

    async def open(self) -> None:
        self._sweeper = asyncio.get_running_loop().call_later(self.interval, self._sweep)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.data.clear()

    def _sweep(self) -> None:
        now = time.time()
        heap, data = self.expiries, self.data
        while heap and heap[0][0] <= now:
            when, key = heapq.heappop(heap)
            entry = data.get(key)
            if entry is not None and entry[1] == when:
                del data[key]
        self._sweeper = asyncio.get_running_loop().call_later(self.interval, self._sweep)

    def _live(self, key: str, now: float) -> tuple[bytes, float | None] | None:
        entry = self.data.get(key)
        if entry is None:
            return None
        if entry[1] is not None and entry[1] <= now:
            del self.data[key]
            return None
        return entry

    async def has(self, keys: list[str]) -> list[str]:
        now = time.time()
        return [k for k in keys if self._live(k, now) is not None]

    async def set(self, items: list[tuple[str, bytes, float | None]]) -> None:
        for key, value, expiry in items:
            self.data[key] = (value, expiry)
            if expiry is not None:
                heapq.heappush(self.expiries, (expiry, key))
        if len(self.expiries) > 2 * len(self.data) + 1024:
            # Keys set again and again with a TTL leave stale entries: rebuild.
            self.expiries = [(e, k) for k, (_, e) in self.data.items() if e is not None]
            heapq.heapify(self.expiries)

    async def mget(self, keys: list[str]) -> list[tuple[str, bytes]]:
        now = time.time()
        out = []
        for key in keys:
            entry = self._live(key, now)
            if entry is not None:
                out.append((key, entry[0]))
        return out

    async def mexpire(self, items: list[tuple[str, float]]) -> None:
        now = time.time()
        for key, expiry in items:
            entry = self._live(key, now)
            if entry is not None:
                self.data[key] = (entry[0], expiry)
                heapq.heappush(self.expiries, (expiry, key))

    async def ttl(self, keys: list[str]) -> list[tuple[str, float | None]]:
        now = time.time()
        out = []
        for key in keys:
            entry = self._live(key, now)
            if entry is not None:
                out.append((key, entry[1]))
        return out

    async def delete(self, keys: list[str]) -> None:
        for key in keys:
            self.data.pop(key, None)

    async def clear(self) -> None:
        self.data.clear()
        self.expiries.clear()
