"""The memory broker: this process only. A publish is delivered to the local subscribers
before `publish` returns (RoadRunner's memory driver, without its goroutine hop)."""

from __future__ import annotations

from typing import Any

from fastrr.broadcast.hub import Broker, Message

OPTIONS: dict[str, Any] = {}  # the driver has no `config` keys


class MemoryBroker(Broker):
    kind = "memory"
    sync = True

    def __init__(self, name: str, options: dict[str, Any], log: Any, workdir: str = "."):
        self.name = name

    async def publish(self, msg: Message) -> None:
        self.hub.dispatch(msg)

    def publish_now(self, msg: Message) -> None:
        self.hub.dispatch(msg)
