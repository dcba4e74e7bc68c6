"""`kv.*` RPC (protobuf kv.v1, as spiral/roadrunner-kv calls it; rr-plugins.md §2.2).

| method     | request uses             | answer items                |
|------------|--------------------------|-----------------------------|
| kv.Has     | keys                     | the keys that exist         |
| kv.Set     | key, value, timeout      | none                        |
| kv.MGet    | keys                     | the keys found, with values |
| kv.MExpire | key + timeout (required) | none                        |
| kv.TTL     | keys                     | keys found, timeout (RFC 3339, "" = none) |
| kv.Delete  | keys                     | none                        |
| kv.Clear   | storage                  | none                        |

Timeouts are absolute RFC 3339 times (`2024-05-01T12:00:00+00:00` or `...Z`,
fractions allowed); "" means no expiry. A time already past makes Set and
MExpire delete the key (PSR-16: a TTL <= 0 expires the item; RoadRunner's
memory driver stores it without a TTL instead). Errors name the method, the
storage and the item: `no storage provided`, `no such storage: X` and
`..._plugin_ttl` are RoadRunner's texts, which roadrunner-kv maps to its
exceptions.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from google.protobuf.message import DecodeError

from fastrr.kv import proto
from fastrr.kv.drivers.base import KvDriver, KvError
from fastrr.rpc.codec import RpcError
from fastrr.rpc.services import Services

if TYPE_CHECKING:
    from fastrr.kv.plugin import KvPlugin

EMPTY = proto.Response().SerializeToString()
MAX_KEY = 64 << 10  # bytes; a longer key is refused (a cache key, not a payload)


def parse_timeout(text: str, where: str) -> float | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise RpcError(f"{where}: timeout {text!r} is not an RFC 3339 time (e.g. 2024-05-01T12:00:00+00:00)") \
            from None
    if when.tzinfo is None:
        raise RpcError(f"{where}: timeout {text!r} has no UTC offset (RFC 3339 needs one, e.g. +00:00 or Z)")
    return when.timestamp()


def format_timeout(expiry: float | None) -> str:
    if expiry is None:
        return ""
    return datetime.fromtimestamp(int(expiry), UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


class KvRpc:
    def __init__(self, plugin: KvPlugin):
        self.plugin = plugin

    def register(self, rpc: Services) -> None:
        for name in ("Has", "Set", "MGet", "MExpire", "TTL", "Delete", "Clear"):
            method = f"kv.{name}"
            plan = getattr(self, f"_plan_{name.lower()}")
            rpc.register(method, self._async_handler(method, plan), proto=True,
                         fast=self._fast_handler(method, plan))

    # Each method is a plan: validate the request, then the driver calls to make
    # [(op, args)] and how to answer from their results. The plan runs in place
    # for a `sync` driver (the RPC fast path), else awaited in a Task.

    def _async_handler(self, method: str, plan: Any) -> Any:
        async def handler(body: bytes) -> bytes:
            req, driver = self._request(body, method)
            calls, answer = plan(req, driver)
            results = []
            for op, args in calls:
                try:
                    results.append(await getattr(driver, op)(*args))
                except KvError as exc:
                    raise RpcError(f"{method}: storage {req.storage}: {exc}") from None
            return answer(results)  # type: ignore[no-any-return]

        return handler

    def _fast_handler(self, method: str, plan: Any) -> Any:
        def fast(body: bytes) -> bytes | None:
            req, driver = self._request(body, method)
            if not driver.sync:
                return None
            calls, answer = plan(req, driver)
            results = []
            for op, args in calls:
                try:
                    results.append(driver.run_now(op, *args))
                except KvError as exc:
                    raise RpcError(f"{method}: storage {req.storage}: {exc}") from None
            return answer(results)  # type: ignore[no-any-return]

        return fast

    def _request(self, body: bytes, method: str) -> tuple[Any, KvDriver]:
        req = proto.Request()
        try:
            req.ParseFromString(body)
        except DecodeError as exc:
            raise RpcError(f"{method}: malformed kv.v1.Request message: {exc}") from None
        if not req.storage:
            raise RpcError(f"{method}: no storage provided")
        driver = self.plugin.storages.get(req.storage)
        if driver is None:
            known = ", ".join(sorted(self.plugin.cfg.storages)) or "none"
            raise RpcError(f"{method}: no such storage: {req.storage} (storages: {known})")
        return req, driver

    def _keys(self, req: Any, method: str) -> list[str]:
        keys = []
        for i, item in enumerate(req.items):
            self._check_key(item.key, f"{method}: storage {req.storage}: items[{i}]")
            keys.append(item.key)
        if not keys:
            raise RpcError(f"{method}: storage {req.storage}: no keys given")
        return keys

    @staticmethod
    def _check_key(key: str, where: str) -> None:
        if not key:
            raise RpcError(f"{where}: empty key")
        if len(key) > MAX_KEY:
            raise RpcError(f"{where}: key is {len(key)} characters, over {MAX_KEY}")

    @staticmethod
    def _answer(items: list[tuple[str, bytes, str]]) -> bytes:
        resp = proto.Response()
        for key, value, timeout in items:
            resp.items.add(key=key, value=value, timeout=timeout)
        return resp.SerializeToString()

    def _plan_has(self, req: Any, driver: KvDriver) -> Any:
        keys = self._keys(req, "kv.Has")
        return [("has", (keys,))], lambda r: self._answer([(k, b"", "") for k in r[0]])

    def _plan_set(self, req: Any, driver: KvDriver) -> Any:
        if not req.items:
            raise RpcError(f"kv.Set: storage {req.storage}: no items given")
        limit = self.plugin.cfg.storages[req.storage].max_value_size
        now = time.time()
        keep: list[tuple[str, bytes, float | None]] = []
        expired: list[str] = []
        for i, item in enumerate(req.items):
            where = f"kv.Set: storage {req.storage}: items[{i}]"
            self._check_key(item.key, where)
            if len(item.value) > limit:
                raise RpcError(f"{where} (key {item.key}): value is {len(item.value)} bytes, over "
                               f"kv.{req.storage}.max_value_size ({limit >> 20} MB)")
            expiry = parse_timeout(item.timeout, f"{where} (key {item.key})")
            if expiry is not None and expiry <= now:
                expired.append(item.key)
            else:
                keep.append((item.key, item.value, expiry))
        calls = ([("set", (keep,))] if keep else []) + ([("delete", (expired,))] if expired else [])
        return calls, lambda r: EMPTY

    def _plan_mget(self, req: Any, driver: KvDriver) -> Any:
        keys = self._keys(req, "kv.MGet")
        return [("mget", (keys,))], lambda r: self._answer([(k, v, "") for k, v in r[0]])

    def _plan_mexpire(self, req: Any, driver: KvDriver) -> Any:
        if not req.items:
            raise RpcError(f"kv.MExpire: storage {req.storage}: should set timeout and at least one key")
        now = time.time()
        keep: list[tuple[str, float]] = []
        expired: list[str] = []
        for i, item in enumerate(req.items):
            where = f"kv.MExpire: storage {req.storage}: items[{i}]"
            self._check_key(item.key, where)
            expiry = parse_timeout(item.timeout, f"{where} (key {item.key})")
            if expiry is None:
                raise RpcError(f"{where} (key {item.key}): should set timeout and at least one key")
            if expiry <= now:
                expired.append(item.key)
            else:
                keep.append((item.key, expiry))
        calls = ([("mexpire", (keep,))] if keep else []) + ([("delete", (expired,))] if expired else [])
        return calls, lambda r: EMPTY

    def _plan_ttl(self, req: Any, driver: KvDriver) -> Any:
        keys = self._keys(req, "kv.TTL")
        return [("ttl", (keys,))], lambda r: self._answer([(k, b"", format_timeout(e)) for k, e in r[0]])

    def _plan_delete(self, req: Any, driver: KvDriver) -> Any:
        return [("delete", (self._keys(req, "kv.Delete"),))], lambda r: EMPTY

    def _plan_clear(self, req: Any, driver: KvDriver) -> Any:
        return [("clear", ())], lambda r: EMPTY
