"""Jobs drivers: where a pipeline's jobs live (drivers/base.py says what a driver does)."""

from __future__ import annotations

from fastrr.jobs.drivers.base import Driver


def driver_class(name: str) -> type[Driver]:
    if name == "memory":
        from fastrr.jobs.drivers.memory import MemoryDriver
        return MemoryDriver
    if name == "boltdb":
        from fastrr.jobs.drivers.local import LocalDriver
        return LocalDriver
    raise KeyError(name)
