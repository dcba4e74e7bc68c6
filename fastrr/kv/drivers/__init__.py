"""kv drivers, by the name `kv.<storage>.driver` gives (imported when used)."""

from __future__ import annotations

import importlib

from fastrr.kv.drivers.base import KvDriver

DRIVERS = {
    "memory": "fastrr.kv.drivers.memory:MemoryKv",
    "boltdb": "fastrr.kv.drivers.local:LocalKv",
    "redis": "fastrr.kv.drivers.redis:RedisKv",
    "memcached": "fastrr.kv.drivers.memcached:MemcachedKv",
}


def driver_class(name: str) -> type[KvDriver]:
    module, _, cls = DRIVERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]
