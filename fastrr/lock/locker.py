"""Read/write locks on named resources, in memory, with TTLs and bounded waits.

RoadRunner's semantics (rr-plugins.md §5.2):
- a write lock is granted when nobody holds the resource, or when its only
  holder is a reader with the same id (promotion); it is not re-entrant;
- read locks share, and are granted while there is no writer;
- `wait` bounds how long a request waits for its turn (0: try once);
- `ttl` releases a lock by itself (0: no expiry);
- release needs the holder's id; force release drops every holder.
Waiters are woken on every change of their resource and re-check; nothing
polls. Resources with no holder and no waiter are forgotten.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class Resource:
    writer: str | None = None
    readers: set[str] = field(default_factory=set)
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)  # holder id -> its TTL timer
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: int = 0

    def holders(self) -> set[str]:
        return self.readers | ({self.writer} if self.writer is not None else set())


class Locker:
    def __init__(self) -> None:
        self.resources: dict[str, Resource] = {}

    def _get(self, name: str) -> Resource:
        res = self.resources.get(name)
        if res is None:
            res = self.resources[name] = Resource()
        return res

    def _changed(self, name: str, res: Resource) -> None:
        res.changed.set()
        res.changed = asyncio.Event()
        if res.writer is None and not res.readers and not res.waiting:
            self.resources.pop(name, None)

    def _arm(self, name: str, res: Resource, holder: str, ttl: float) -> None:
        old = res.timers.pop(holder, None)
        if old is not None:
            old.cancel()
        if ttl > 0:
            res.timers[holder] = asyncio.get_running_loop().call_later(ttl, self._expire, name, holder)

    def _expire(self, name: str, holder: str) -> None:
        res = self.resources.get(name)
        if res is not None:
            res.timers.pop(holder, None)
            self._drop(name, res, holder)

    def _drop(self, name: str, res: Resource, holder: str) -> bool:
        found = False
        if res.writer == holder:
            res.writer = None
            found = True
        if holder in res.readers:
            res.readers.discard(holder)
            found = True
        if found:
            timer = res.timers.pop(holder, None)
            if timer is not None:
                timer.cancel()
            self._changed(name, res)
        return found

    def try_acquire(self, name: str, holder: str, ttl: float, write: bool) -> bool:
        """Take the lock now if it is free for this holder (no waiting)."""
        res = self._get(name)
        if write:
            free = res.writer is None and (not res.readers or res.readers == {holder})
        else:
            free = res.writer is None
        if free:
            if write:
                res.readers.discard(holder)
                res.writer = holder
            else:
                res.readers.add(holder)
            self._arm(name, res, holder, ttl)
        elif not res.holders() and not res.waiting:
            self.resources.pop(name, None)
        return free

    async def _acquire(self, name: str, holder: str, ttl: float, wait: float, write: bool) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            if self.try_acquire(name, holder, ttl, write):
                return True
            left = deadline - loop.time()
            if left <= 0:
                return False
            res = self._get(name)
            res.waiting += 1
            try:
                await asyncio.wait_for(res.changed.wait(), left)
            except TimeoutError:
                pass
            finally:
                res.waiting -= 1
                if not res.holders() and not res.waiting and self.resources.get(name) is res:
                    self.resources.pop(name, None)

    async def lock(self, name: str, holder: str, ttl: float, wait: float) -> bool:
        return await self._acquire(name, holder, ttl, wait, write=True)

    async def lock_read(self, name: str, holder: str, ttl: float, wait: float) -> bool:
        return await self._acquire(name, holder, ttl, wait, write=False)

    def release(self, name: str, holder: str) -> bool:
        res = self.resources.get(name)
        return res is not None and self._drop(name, res, holder)

    def force_release(self, name: str) -> bool:
        res = self.resources.get(name)
        if res is None or not res.holders():
            return False
        for timer in res.timers.values():
            timer.cancel()
        res.timers.clear()
        res.writer = None
        res.readers.clear()
        self._changed(name, res)
        return True

    def exists(self, name: str, holder: str) -> bool:
        res = self.resources.get(name)
        if res is None:
            return False
        return bool(res.holders()) if holder == "*" else holder in res.holders()

    def update_ttl(self, name: str, holder: str, ttl: float) -> bool:
        res = self.resources.get(name)
        if res is None or holder not in res.holders():
            return False
        self._arm(name, res, holder, ttl)
        return True
