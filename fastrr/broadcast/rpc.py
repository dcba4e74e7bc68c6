"""`broadcast.*` RPC, as roadrunner-php/broadcast calls it (rr-plugins.md §8.1).

| method                 | codec    | request                    | answer                                     |
|------------------------|----------|----------------------------|--------------------------------------------|
| broadcast.Publish      | protobuf | broadcast.v1.Request       | Response{ok: true} once all are published  |
| broadcast.PublishAsync | protobuf | broadcast.v1.Request       | Response{ok: true} at once; errors logged  |
| broadcast.Topics       | json     | broker name, or "" for all | fastrr: {broker: {topic: local subscribers}} |

As RoadRunner: every message goes to every topic it names, on every broker; empty topics
are skipped; `command` is not read. A publish that fails (redis down) answers an RPC error
naming the broker and the topic; the (topic, payload) pairs before it were published, the
ones after it were not (RoadRunner stops at the first error the same way). With only
memory brokers Publish runs in place, in the RPC connection's callback (no Task).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from google.protobuf.message import DecodeError

from fastrr.broadcast import proto
from fastrr.broadcast.hub import BroadcastError
from fastrr.rpc.codec import RpcError
from fastrr.rpc.services import Services

if TYPE_CHECKING:
    from fastrr.broadcast.plugin import BroadcastPlugin

OK = proto.Response(ok=True).SerializeToString()


class BroadcastRpc:
    def __init__(self, plugin: BroadcastPlugin):
        self.plugin = plugin
        self._background: set[asyncio.Task[None]] = set()

    def register(self, rpc: Services) -> None:
        rpc.register("broadcast.Publish", self.publish, proto=True, fast=self.publish_fast)
        rpc.register("broadcast.PublishAsync", self.publish_async, proto=True, fast=self.publish_async_fast)
        rpc.register("broadcast.Topics", self.topics)

    @staticmethod
    def _pairs(body: bytes, method: str) -> list[tuple[str, bytes]]:
        req = proto.Request()
        try:
            req.ParseFromString(body)
        except DecodeError as exc:
            raise RpcError(f"{method}: malformed broadcast.v1.Request message: {exc}") from None
        return [(topic, m.payload) for m in req.messages for topic in m.topics if topic]

    def _sync(self) -> bool:
        return all(hub.broker.sync for hub in self.plugin.hubs.values())

    async def _publish(self, pairs: list[tuple[str, bytes]], method: str) -> None:
        for topic, payload in pairs:
            for name, hub in self.plugin.hubs.items():
                try:
                    await hub.publish(topic, payload)
                except BroadcastError as exc:
                    raise RpcError(f"{method}: broker {name}: topic {topic}: {exc}") from None

    def _publish_now(self, pairs: list[tuple[str, bytes]], method: str) -> None:
        for topic, payload in pairs:
            for name, hub in self.plugin.hubs.items():
                try:
                    hub.publish_now(topic, payload)
                except BroadcastError as exc:
                    raise RpcError(f"{method}: broker {name}: topic {topic}: {exc}") from None

    async def publish(self, body: bytes) -> bytes:
        await self._publish(self._pairs(body, "broadcast.Publish"), "broadcast.Publish")
        return OK

    def publish_fast(self, body: bytes) -> bytes | None:
        if not self._sync():
            return None
        self._publish_now(self._pairs(body, "broadcast.Publish"), "broadcast.Publish")
        return OK

    async def publish_async(self, body: bytes) -> bytes:
        self._spawn(self._pairs(body, "broadcast.PublishAsync"))
        return OK

    def publish_async_fast(self, body: bytes) -> bytes | None:
        # A malformed request is still an error to the caller; only the publishing is detached.
        pairs = self._pairs(body, "broadcast.PublishAsync")
        if self._sync():
            try:
                self._publish_now(pairs, "broadcast.PublishAsync")
            except RpcError as exc:
                self.plugin.log.error("broadcast.PublishAsync failed", error=str(exc))
        else:
            self._spawn(pairs)
        return OK

    def _spawn(self, pairs: list[tuple[str, bytes]]) -> None:
        if not pairs:
            return
        task = asyncio.get_running_loop().create_task(self._detached(pairs))
        self._background.add(task)  # a strong reference until done (the loop keeps only weak ones)
        task.add_done_callback(self._background.discard)

    async def _detached(self, pairs: list[tuple[str, bytes]]) -> None:
        try:
            await self._publish(pairs, "broadcast.PublishAsync")
        except RpcError as exc:
            self.plugin.log.error("broadcast.PublishAsync failed", error=str(exc))

    async def topics(self, arg: Any) -> dict[str, dict[str, int]]:
        name = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else arg
        if name in (None, ""):
            return {n: hub.topics() for n, hub in self.plugin.hubs.items()}
        if not isinstance(name, str):
            raise RpcError(f"broadcast.Topics: expected a broker name (string), got {type(name).__name__}")
        hub = self.plugin.hubs.get(name)
        if hub is None:
            raise RpcError(f"broadcast.Topics: no such broker: {name} (brokers: {', '.join(self.plugin.hubs)})")
        return {name: hub.topics()}
