"""The lock plugin and its RPC (protobuf lock.v1beta1, as roadrunner-php/lock calls it).

RoadRunner's lock plugin has no config and is always on; fastrr's is on
whenever the RPC is (an `rpc` section), or with an empty `lock:` section.
Locks live in this fastrr instance: two instances do not see each other's
locks (as in RoadRunner). `ttl` and `wait` arrive in microseconds.

| method            | answer ok                                        |
|-------------------|--------------------------------------------------|
| lock.Lock         | the write lock was taken within `wait`           |
| lock.LockRead     | a read lock was taken within `wait`              |
| lock.Release      | this id held a lock on the resource, now freed   |
| lock.ForceRelease | the resource had holders, now none (id ignored)  |
| lock.Exists       | this id (or, for "*", anyone) holds a lock       |
| lock.UpdateTTL    | this id's lock now expires `ttl` from now        |
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError

from fastrr.config.schema import ConfigContext
from fastrr.config.section import Section
from fastrr.lock import proto
from fastrr.lock.locker import Locker
from fastrr.rpc.codec import RpcError
from fastrr.rpc.services import Services
from fastrr.server.plugin import Plugin

MICRO = 1_000_000
OK = proto.Response(ok=True).SerializeToString()
NOT_OK = proto.Response(ok=False).SerializeToString()


class LockPlugin(Plugin):
    name = "lock"
    section = "lock"

    @classmethod
    def enabled(cls, raw: dict[str, Any]) -> bool:
        return "lock" in raw or "rpc" in raw

    @classmethod
    def parse_config(cls, section: Section, ctx: ConfigContext) -> Any:
        section.finish()  # no keys; any given is warned about
        return None

    def __init__(self, host: Any, cfg: Any):
        super().__init__(host, cfg)
        self.locker = Locker()

    def register(self, rpc: Services) -> None:
        # Every method has a fast form (answered in the RPC connection's callback);
        # only a lock that is taken and may be waited for goes on to a Task.
        for method, handler, fast in (
                ("Lock", self.lock, self.lock_now), ("LockRead", self.lock_read, self.lock_read_now),
                ("Release", self.release, None), ("ForceRelease", self.force_release, None),
                ("Exists", self.exists, None), ("UpdateTTL", self.update_ttl, None)):
            rpc.register(f"lock.{method}", handler, proto=True, fast=fast or self._sync(handler))

    @staticmethod
    def _sync(handler: Any) -> Any:
        def fast(body: bytes) -> bytes:
            coro = handler(body)
            try:
                coro.send(None)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            raise AssertionError("a lock method without waits waited")

        return fast

    def _now(self, body: bytes, method: str, write: bool) -> bytes | None:
        req = self._request(body, method)
        if self.locker.try_acquire(req.resource, req.id, req.ttl / MICRO, write):
            return OK
        return NOT_OK if req.wait <= 0 else None

    def lock_now(self, body: bytes) -> bytes | None:
        return self._now(body, "lock.Lock", write=True)

    def lock_read_now(self, body: bytes) -> bytes | None:
        return self._now(body, "lock.LockRead", write=False)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        for name in list(self.locker.resources):
            self.locker.force_release(name)

    @staticmethod
    def _request(body: bytes, method: str, need_id: bool = True) -> Any:
        req = proto.Request()
        try:
            req.ParseFromString(body)
        except DecodeError as exc:
            raise RpcError(f"{method}: malformed lock request message: {exc}") from None
        if not req.resource:
            raise RpcError(f"{method}: empty resource is not allowed")
        if need_id and not req.id:
            raise RpcError(f"{method}: empty ID is not allowed")
        if req.ttl < 0 or req.wait < 0:
            raise RpcError(f"{method}: resource {req.resource}: ttl and wait must not be negative "
                           f"(got ttl {req.ttl}, wait {req.wait} µs)")
        return req

    @staticmethod
    def _ok(value: bool) -> bytes:
        return OK if value else NOT_OK

    async def lock(self, body: bytes) -> bytes:
        req = self._request(body, "lock.Lock")
        return self._ok(await self.locker.lock(req.resource, req.id, req.ttl / MICRO, req.wait / MICRO))

    async def lock_read(self, body: bytes) -> bytes:
        req = self._request(body, "lock.LockRead")
        return self._ok(await self.locker.lock_read(req.resource, req.id, req.ttl / MICRO, req.wait / MICRO))

    async def release(self, body: bytes) -> bytes:
        req = self._request(body, "lock.Release")
        return self._ok(self.locker.release(req.resource, req.id))

    async def force_release(self, body: bytes) -> bytes:
        req = self._request(body, "lock.ForceRelease", need_id=False)
        return self._ok(self.locker.force_release(req.resource))

    async def exists(self, body: bytes) -> bytes:
        req = self._request(body, "lock.Exists")
        return self._ok(self.locker.exists(req.resource, req.id))

    async def update_ttl(self, body: bytes) -> bytes:
        req = self._request(body, "lock.UpdateTTL")
        return self._ok(self.locker.update_ttl(req.resource, req.id, req.ttl / MICRO))
