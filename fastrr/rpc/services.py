"""The RPC methods fastrr serves, with RoadRunner's names and shapes (§4).

| method                 | argument    | answer                                   |
|------------------------|-------------|------------------------------------------|
| informer.List          | (ignored)   | plugin names with workers                |
| informer.Workers       | plugin name | {"workers": [RoadRunner worker rows]}    |
| informer.AddWorker     | plugin name | true (pool grows by one)                 |
| informer.RemoveWorker  | plugin name | true (pool shrinks by one, never below 1)|
| informer.Stats         | plugin name | fastrr: pool size, queue, recycles       |
| resetter.List          | (ignored)   | plugin names that can be reset          |
| resetter.Reset         | plugin name | true, once the rolling reset is done     |
| rpc.Version            | (ignored)   | the RoadRunner version fastrr speaks     |
| rpc.Config             | (ignored)   | the effective config as YAML bytes       |

Plugins add their own methods with `register` (jobs.*, informer.Jobs, ...);
`proto=True` marks a method that takes and returns protobuf bytes (FLAGS 0x80).
`pools` is filled by the plugins' pool factory (server/plugin.py Host.new_pool).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import yaml

from fastrr import RR_COMPAT_VERSION
from fastrr.pool.pool import PoolError, WorkerPool
from fastrr.rpc.codec import RpcError

Handler = Callable[[Any], Awaitable[Any]]


class Services:
    def __init__(self, pools: dict[str, WorkerPool], raw_config: dict[str, Any]):
        self.pools = pools
        self.raw_config = raw_config
        self.proto: set[str] = set()
        self.fast: dict[str, Callable[[bytes], bytes | None]] = {}
        # Around resetter.Reset: sd_notify RELOADING=1 ... READY=1 (the arbiter sets it, server/notify.py).
        self.reloading: Callable[[], AbstractContextManager[Any]] = nullcontext
        # Plugins whose processes are not a WorkerPool (service) answer informer/resetter with the
        # same faces: workers_info, stats, add_worker, remove_worker, reset.
        self.processes: dict[str, Any] = {}
        self.methods: dict[str, Handler] = {
            "informer.List": self.plugins,
            "informer.Workers": self.workers,
            "informer.AddWorker": self.add_worker,
            "informer.RemoveWorker": self.remove_worker,
            "informer.Stats": self.stats,
            "resetter.List": self.plugins,
            "resetter.Reset": self.reset,
            "rpc.Version": self.version,
            "rpc.Config": self.config,
        }

    def register(self, method: str, handler: Handler, proto: bool = False,
                 fast: Callable[[bytes], bytes | None] | None = None) -> None:
        """`fast`: for a proto method, a synchronous form tried first, in the
        connection's callback; it returns None when the call has to wait (then
        `handler` runs in a Task), and may raise RpcError like the handler."""
        if method in self.methods:
            raise ValueError(f"RPC method {method} is registered twice")
        self.methods[method] = handler
        if proto:
            self.proto.add(method)
        if fast is not None:
            assert proto, "only protobuf methods have a fast path"
            self.fast[method] = fast

    def _pool(self, arg: Any) -> WorkerPool:
        name = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else arg
        if not isinstance(name, str):
            raise RpcError(f"expected a plugin name (string), got {type(name).__name__}")
        pool = self.pools.get(name) or self.processes.get(name)
        if pool is None:
            raise RpcError(f"no such plugin: {name!r} (plugins with workers: {sorted([*self.pools, *self.processes])})")
        return pool

    async def plugins(self, _: Any) -> list[str]:
        return sorted([*self.pools, *self.processes])

    async def workers(self, arg: Any) -> dict[str, Any]:
        return {"workers": self._pool(arg).workers_info()}

    async def stats(self, arg: Any) -> dict[str, Any]:
        return self._pool(arg).stats()

    async def add_worker(self, arg: Any) -> bool:
        try:
            self._pool(arg).add_worker()
        except PoolError as exc:
            raise RpcError(str(exc)) from None
        return True

    async def remove_worker(self, arg: Any) -> bool:
        try:
            self._pool(arg).remove_worker()
        except PoolError as exc:
            raise RpcError(str(exc)) from None
        return True

    async def reset(self, arg: Any) -> bool:
        pool = self._pool(arg)
        try:
            with self.reloading():
                await pool.reset()
        except PoolError as exc:
            raise RpcError(str(exc)) from None
        return True

    async def version(self, _: Any) -> str:
        return RR_COMPAT_VERSION

    async def config(self, _: Any) -> bytes:
        return yaml.safe_dump(self.raw_config, sort_keys=False).encode()
