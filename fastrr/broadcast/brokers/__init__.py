"""The broadcast brokers by driver name. The redis one is imported only when used (redis-py)."""

from __future__ import annotations

from typing import Any

DRIVERS = ("memory", "redis")


def broker_class(driver: str) -> Any:
    if driver == "memory":
        from fastrr.broadcast.brokers.memory import MemoryBroker

        return MemoryBroker
    if driver == "redis":
        from fastrr.broadcast.brokers.redis import RedisBroker

        return RedisBroker
    raise KeyError(driver)
