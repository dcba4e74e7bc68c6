"""Jobs drivers: where a pipeline's jobs live (drivers/base.py says what a driver does).

`memory` and `boltdb` are modules here. Each broker driver is a package of its
own, `fastrr/jobs/drivers/<name>/`, with the same faces:

- `config.py` (imported when a config is read, so it must not import the
  broker's client library): `OPTIONS`, the pipeline keys with RoadRunner's
  YAML defaults, {key: (reader, default)}; `DECLARE_DEFAULTS`, the keys whose
  default differs for pipelines made by `jobs.Declare`; `GLOBAL_SECTION`, the
  top-level section with the connection settings (`amqp:`, `nats:`, ...) or
  None, read by `parse_global(section)` into what the driver gets as `broker`;
  and `check(pipe, path)`, which raises ConfigError for options that do not
  fit together.
- `driver.py`: the Driver subclass, named in `DRIVER`.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # base imports jobs.config, which imports this
    from fastrr.jobs.drivers.base import Driver

BROKERS = ("amqp", "redis", "nats", "kafka", "sqs", "beanstalk")
# RoadRunner's drivers fastrr has no version of.
NOT_BUILT = ("google_pub_sub", "nsq", "gcp")


def broker_config(name: str) -> ModuleType:
    """The config face of broker driver `name` (KeyError if it is none)."""
    if name not in BROKERS:
        raise KeyError(name)
    return importlib.import_module(f"fastrr.jobs.drivers.{name}.config")


def driver_class(name: str) -> type[Driver]:
    if name == "memory":
        from fastrr.jobs.drivers.memory import MemoryDriver
        return MemoryDriver
    if name == "boltdb":
        from fastrr.jobs.drivers.local import LocalDriver
        return LocalDriver
    if name in BROKERS:
        module = importlib.import_module(f"fastrr.jobs.drivers.{name}.driver")
        return module.DRIVER  # type: ignore[no-any-return]
    raise KeyError(name)
