"""The `kv:` section (rr-plugins.md §2.1): named storages, each with a driver.

    kv:
      cache:    {driver: memory}
      sessions: {driver: boltdb, config: {file: var/kv.db, interval: 60}}
      shared:   {driver: redis, config: {addrs: ["127.0.0.1:6379"], db: 2}}

Options come from `kv.<name>.config`, else from a top-level section named
like the storage (RoadRunner's fallback). fastrr adds `max_value_size` per
storage (MB, default 10; next to `driver`): a larger value is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastrr.config.section import Section
from fastrr.config.units import ConfigError, parse_int, parse_str
from fastrr.kv.drivers import DRIVERS, driver_class


@dataclass
class StorageConfig:
    name: str
    driver: str
    options: dict[str, Any] = field(default_factory=dict)
    max_value_size: int = 10 << 20  # bytes


@dataclass
class KvConfig:
    storages: dict[str, StorageConfig] = field(default_factory=dict)
    # top-level sections a storage took its options from (RoadRunner's fallback:
    # storage `cache` without `config` reads a top-level `cache:`), marked used
    top_sections: list[str] = field(default_factory=list)


def storage_options(driver: str, values: dict[str, Any], path: str, warnings: list[str]) -> dict[str, Any]:
    known = driver_class(driver).OPTIONS
    for key in values:
        if key not in known:
            warnings.append(f"{path}.{key}: unknown option for the {driver} kv driver "
                            f"(known: {', '.join(sorted(known)) or 'none'}), ignored")
    options = {}
    for key, (reader, default) in known.items():
        value = values.get(key)
        options[key] = default if value is None else reader(f"{path}.{key}", value)
    return options


def parse_kv(section: Section, raw_top: dict[str, Any]) -> KvConfig:
    cfg = KvConfig()
    for name, raw in section.raw.items():
        path = section.key(str(name))
        if not isinstance(raw, dict):
            raise ConfigError(path, f"expected a mapping with a driver, got {raw!r}")
        for key in raw:
            if key not in ("driver", "config", "max_value_size"):
                section.warnings.append(f"{path}.{key}: unknown key, ignored (driver options go under config)")
        driver = raw.get("driver")
        if not driver:
            raise ConfigError(f"{path}.driver", f"required key is missing: one of {', '.join(DRIVERS)}")
        driver = parse_str(f"{path}.driver", driver).strip().lower()
        if driver not in DRIVERS:
            raise ConfigError(f"{path}.driver", f"unknown driver {driver!r}; available: {', '.join(DRIVERS)}")
        values = raw.get("config")
        where = f"{path}.config"
        if values is None and isinstance(raw_top.get(name), dict):
            values, where = raw_top[name], str(name)
            cfg.top_sections.append(str(name))
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise ConfigError(where, f"expected a mapping, got {values!r}")
        mb = parse_int(f"{path}.max_value_size", raw.get("max_value_size", 10))
        if mb < 1:
            raise ConfigError(f"{path}.max_value_size", f"expected at least 1 (MB), got {mb}")
        cfg.storages[str(name)] = StorageConfig(str(name), driver, storage_options(driver, values, where,
                                                                                   section.warnings), mb << 20)
    section.used.update(section.raw)
    return cfg
