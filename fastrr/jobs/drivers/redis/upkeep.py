"""Keeping a consumer group healthy (a part of the redis jobs driver, driver.py).

Every third of `visibility_timeout` each instance
- touches its own pending entries (TOUCH: XCLAIM ... JUSTID of those it still
  owns), so a job that runs longer than the timeout is not reclaimed;
- reclaims, lane by lane, entries idle for longer than the timeout (XAUTOCLAIM:
  their consumer died or lost its connection) and runs them;
and every `visibility_timeout` it removes consumers idle that long with nothing
pending (XGROUP DELCONSUMER, checked and done in one script), so the group does
not collect one dead consumer per process that ever ran.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.exceptions import RedisError

from fastrr.jobs.job import Delivery
from fastrr.log import Logger

CONNECTION_ERRORS = (RedisError, OSError)
TOUCH_BATCH = 500  # entry ids per TOUCH script run
RECLAIM_SCANS = 20  # XAUTOCLAIM calls per lane and round at most (each scans COUNT x 10 pending entries)

Handle = tuple[str, bytes]  # a delivery's entry: (lane, entry id)


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class GroupUpkeep:
    """The driver's group upkeep; the attributes are the driver's (driver.py)."""

    client: Any
    scripts: dict[str, Any]
    group: str
    consumer: str
    visibility_ms: int
    lanes: dict[str, int]
    reserved: dict[Handle, Delivery]
    held: list[Delivery]
    closed: bool
    connected: asyncio.Event
    log: Logger
    _claim_cursor: dict[str, bytes | str]

    @property
    def pipeline_name(self) -> str:
        raise NotImplementedError

    def _room(self) -> int:
        raise NotImplementedError

    def _take(self, lane: str, entries: list[tuple[bytes, dict[bytes, bytes] | None]]) -> None:
        raise NotImplementedError

    def _lost(self, exc: BaseException) -> None:
        raise NotImplementedError

    async def _claim_loop(self) -> None:
        """Touch our running entries, reclaim dead consumers' ones, remove dead consumers."""
        every = self.visibility_ms / 3000
        last_cleanup = time.monotonic()
        while not self.closed:
            await asyncio.sleep(every)
            if not self.connected.is_set():
                continue
            try:
                await self._touch()
                for lane in list(self.lanes):
                    await self._reclaim(lane)
                if time.monotonic() - last_cleanup > self.visibility_ms / 1000:
                    last_cleanup = time.monotonic()
                    for lane in list(self.lanes):
                        await self._drop_dead_consumers(lane)
            except CONNECTION_ERRORS as exc:
                self._lost(exc)

    async def _touch(self) -> None:
        by_lane: dict[str, list[bytes]] = {}
        for lane, entry_id in [*self.reserved, *(d.handle for d in self.held)]:
            by_lane.setdefault(lane, []).append(entry_id)
        for lane, ids in by_lane.items():
            for i in range(0, len(ids), TOUCH_BATCH):
                lost = await self.scripts["touch"](keys=[lane], args=[self.group, self.consumer,
                                                                      *ids[i:i + TOUCH_BATCH]])
                held = {d.handle: d for d in self.held}
                for entry_id in lost or ():
                    # one finished (and acked) while the script was on its way is not lost
                    delivery = self.reserved.get((lane, entry_id)) or held.get((lane, entry_id))
                    if delivery is not None:
                        self.log.warn("a running job's entry was reclaimed by another consumer (this instance "
                                      "did not touch it within visibility_timeout): it may run twice",
                                      pipeline=self.pipeline_name, lane=lane, entry=text(entry_id),
                                      id=delivery.job.id)

    async def _reclaim(self, lane: str) -> None:
        """XAUTOCLAIM scans the group's pending entries from a cursor (COUNT x 10 a call): the
        cursor is kept across rounds so idle entries far down a long list are reached too."""
        for _ in range(RECLAIM_SCANS):
            room = self._room()
            if room <= 0 or self.closed:
                return
            answer = await self.client.xautoclaim(lane, self.group, self.consumer, self.visibility_ms,
                                                  start_id=self._claim_cursor.get(lane, "0-0"), count=room)
            cursor, entries = answer[0], answer[1]
            self._claim_cursor[lane] = cursor
            if entries:
                self.log.info("reclaimed jobs of a consumer gone for visibility_timeout", pipeline=self.pipeline_name,
                              lane=lane, jobs=len(entries))
                self._take(lane, entries)
            if text(cursor) == "0-0":
                return

    async def _drop_dead_consumers(self, lane: str) -> None:
        for info in await self.client.xinfo_consumers(lane, self.group):
            name = text(info["name"])
            if name == self.consumer or int(info["pending"]) or int(info["idle"]) < self.visibility_ms:
                continue
            if await self.scripts["drop"](keys=[lane], args=[self.group, name]):
                self.log.info("removed a consumer idle for visibility_timeout from the group",
                              pipeline=self.pipeline_name, lane=lane, consumer=name)
