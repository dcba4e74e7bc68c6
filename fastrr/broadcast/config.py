"""The `broadcast:` section (RoadRunner 2.x, rr-plugins.md §8.1): named brokers, each with a driver.

    broadcast:
      default: {driver: memory}
      shared:
        driver: redis
        history_size: 100          # fastrr: messages kept per topic for SSE Last-Event-ID (0: none)
        history_ttl: 10m           # fastrr: and for at most this long (0: until pushed out)
        config:
          addrs: ["127.0.0.1:6379"]
          prefix: "app:"           # fastrr: Redis channel = prefix + topic (default: none)
          unsubscribe_delay: 10s   # fastrr: keep a topic SUBSCRIBEd this long after its last
                                   # local subscriber leaves (an SSE client reconnecting)

A broker's driver options come from `broadcast.<name>.config`, else from a top-level
section named like the broker (RoadRunner's fallback). The redis connection keys are the
kv redis storage's (fastrr/kv/drivers/redis.py: addrs, username, password, db, dial_timeout,
read_timeout, write_timeout, tls, ...), read by the same readers; a top-level `redis:`
section gives defaults for them, as for the redis jobs driver. The keys for a connection
pool, retries or cluster routing are accepted and ignored with a warning (a broker holds two
connections). Sentinel (`master_name`) and Cluster (several `addrs`) are refused.

Errors name the key: an unknown driver, a key no driver knows, a bad value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastrr.broadcast.brokers import DRIVERS
from fastrr.config.section import Section
from fastrr.config.units import ConfigError, parse_duration, parse_int, parse_str

DEFAULT_HISTORY_SIZE = 100
DEFAULT_HISTORY_TTL = 600.0  # seconds
DEFAULT_UNSUBSCRIBE_DELAY = 10.0
BROKER_KEYS = ("driver", "config", "history_size", "history_ttl")
# The kv redis keys the broker uses; the rest of that table is accepted and ignored.
REDIS_USED = ("addrs", "db", "username", "password", "master_name", "dial_timeout", "read_timeout",
              "write_timeout", "tls")
MAX_HISTORY = 100_000


@dataclass
class BrokerConfig:
    name: str
    driver: str
    options: dict[str, Any] = field(default_factory=dict)
    history_size: int = DEFAULT_HISTORY_SIZE
    history_ttl: float = DEFAULT_HISTORY_TTL


@dataclass
class BroadcastConfig:
    brokers: dict[str, BrokerConfig] = field(default_factory=dict)
    top_sections: list[str] = field(default_factory=list)  # top-level sections read (marked used)


def _prefix(path: str, value: Any) -> str:
    text = parse_str(path, value)
    if any(c.isspace() for c in text):
        raise ConfigError(path, f"expected a channel prefix without spaces, got {value!r}")
    return text


def redis_options(values: dict[str, Any], where: str, top_redis: dict[str, Any],
                  warnings: list[str]) -> dict[str, Any]:
    from fastrr.kv.drivers.redis import RedisKv  # imports redis-py: only for a redis broker

    conn = RedisKv.OPTIONS
    own = {"prefix": (_prefix, ""), "unsubscribe_delay": (parse_duration, DEFAULT_UNSUBSCRIBE_DELAY)}
    for key in values:
        if key not in conn and key not in own:
            raise ConfigError(f"{where}.{key}", "unknown option for the redis broadcast broker (known: "
                                                f"{', '.join(sorted([*REDIS_USED, *own]))})")
    options: dict[str, Any] = {}
    for key, (reader, default) in {**conn, **own}.items():
        if key in values and values[key] is not None:
            options[key] = reader(f"{where}.{key}", values[key])
        elif key in top_redis and top_redis[key] is not None:
            options[key] = reader(f"redis.{key}", top_redis[key])
        else:
            options[key] = default
        if key in conn and key not in REDIS_USED and key in values and options[key] != default:
            warnings.append(f"{where}.{key}: not used by the redis broadcast broker (one publish and one "
                            "subscribe connection), ignored")
    if options["master_name"]:
        raise ConfigError(f"{where}.master_name", "Redis Sentinel is not supported by the redis broadcast broker "
                                                  "(give the master's address in addrs)")
    if len(options["addrs"]) != 1:
        raise ConfigError(f"{where}.addrs", f"expected one address (Redis Cluster is not supported by the redis "
                                            f"broadcast broker), got {options['addrs']!r}")
    return options


def parse_broadcast(section: Section, raw_top: dict[str, Any]) -> BroadcastConfig:
    cfg = BroadcastConfig()
    if not section.raw:
        raise ConfigError(section.path, "no brokers: expected e.g. `default: {driver: memory}`")
    top_redis = raw_top.get("redis") if isinstance(raw_top.get("redis"), dict) else {}
    for name, raw in section.raw.items():
        path = section.key(str(name))
        if not isinstance(raw, dict):
            raise ConfigError(path, f"expected a mapping with a driver, got {raw!r}")
        for key in raw:
            if key not in BROKER_KEYS:
                raise ConfigError(f"{path}.{key}", f"unknown key (known: {', '.join(BROKER_KEYS)}; "
                                                   "driver options go under config)")
        if not raw.get("driver"):
            raise ConfigError(f"{path}.driver", f"required key is missing: one of {', '.join(DRIVERS)}")
        driver = parse_str(f"{path}.driver", raw["driver"]).strip().lower()
        if driver not in DRIVERS:
            raise ConfigError(f"{path}.driver", f"unknown driver {driver!r}; available: {', '.join(DRIVERS)}")
        values = raw.get("config")
        where = f"{path}.config"
        if values is None and isinstance(raw_top.get(name), dict) and name != "redis":
            values, where = raw_top[name], str(name)
            cfg.top_sections.append(str(name))
        values = {} if values is None else values
        if not isinstance(values, dict):
            raise ConfigError(where, f"expected a mapping, got {values!r}")
        if driver == "memory":
            if values:
                raise ConfigError(f"{where}.{next(iter(values))}", "the memory broadcast broker has no options")
            options: dict[str, Any] = {}
        else:
            options = redis_options(values, where, top_redis or {}, section.warnings)
            if top_redis:
                cfg.top_sections.append("redis")
        size = parse_int(f"{path}.history_size", raw.get("history_size", DEFAULT_HISTORY_SIZE))
        if size > MAX_HISTORY:
            raise ConfigError(f"{path}.history_size", f"expected at most {MAX_HISTORY} messages per topic, got {size}")
        ttl = parse_duration(f"{path}.history_ttl", raw.get("history_ttl", DEFAULT_HISTORY_TTL))
        cfg.brokers[str(name)] = BrokerConfig(str(name), driver, options, size, ttl)
    section.used.update(section.raw)
    return cfg
