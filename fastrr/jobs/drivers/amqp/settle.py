"""Acks and nacks of one consuming channel, sent once per event-loop turn.

The acks of a turn go out as one multiple ack for those older than every delivery still
unsettled (running, held, being retried), one by one for the rest: the broker ends up
exactly where one ack each would have left it, with fewer frames. Nacks (a release, a
retry whose copy could not be published) are written first: a multiple ack written before
the nack of a tag it covers would make that nack an unknown tag, which closes the channel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from aiormq.abc import AbstractChannel


class Settler:
    def __init__(self, loop: asyncio.AbstractEventLoop, spawn: Callable[[Coroutine[Any, Any, None]], None]):
        self.loop, self.spawn = loop, spawn
        self.channel: AbstractChannel | None = None
        self.acks: list[int] = []
        self.nacks: list[int] = []
        self.unsettled: set[int] = set()  # tags on `channel` neither acked nor nacked yet
        self.scheduled = False

    def reset(self, channel: AbstractChannel | None) -> None:
        """A new consuming channel (or none): what the old one had is void (the broker redelivers it)."""
        self.channel = channel
        self.acks.clear()
        self.nacks.clear()
        self.unsettled.clear()

    def received(self, tag: int) -> None:
        self.unsettled.add(tag)

    def ack(self, tag: int) -> None:
        self.acks.append(tag)
        self._soon()

    def nack(self, tag: int) -> None:
        """Back to the queue as it was (basic.nack, requeue)."""
        self.nacks.append(tag)
        self._soon()

    def _soon(self) -> None:
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        tags, self.acks = sorted(self.acks), []
        nacks, self.nacks = self.nacks, []
        channel = self.channel
        if not (tags or nacks) or channel is None or channel.is_closed:
            return
        self.unsettled.difference_update(nacks)
        self.unsettled.difference_update(tags)
        floor = min(self.unsettled, default=None)
        covered = len(tags) if floor is None else next((i for i, t in enumerate(tags) if t > floor), len(tags))
        frames = [(tags[covered - 1], True)] if covered > 1 else []
        frames += [(t, False) for t in tags[(covered if covered > 1 else 0):]]
        self.spawn(self._send(channel, nacks, frames))

    @staticmethod
    async def _send(channel: AbstractChannel, nacks: list[int], acks: list[tuple[int, bool]]) -> None:
        for tag in nacks:
            await channel.basic_nack(tag, requeue=True, wait=False)
        for tag, multiple in acks:
            await channel.basic_ack(tag, multiple=multiple, wait=False)
