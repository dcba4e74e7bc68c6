"""The redis jobs driver's keys (RoadRunner has no such driver: these are fastrr's).

    redis:                      # the connection, shared by every redis pipeline (optional)
      addrs: ["127.0.0.1:6379"]
      password: secret
    jobs:
      pipelines:
        emails:
          driver: redis
          config:
            prefetch: 100
            visibility_timeout: 30s
            db: 2               # a connection key here overrides the `redis:` section

Connection keys are the kv plugin's redis storage keys (fastrr/kv/drivers/redis.py:
addrs, username, password, db, master_name, sentinel_password, dial_timeout,
read_timeout, tls, ...), read by the same readers. They may stand in the top-level
`redis:` section (GLOBAL_SECTION) and/or in a pipeline; a pipeline's own value wins.
The kv plugin also reads a top-level section named like a kv storage: a kv storage
named `redis` without its own `config` takes the same `redis:` section, which holds
only these connection keys, so neither plugin warns about the other's keys.

Pipeline keys and defaults:

    prefetch            100   entries read from the stream and not yet finished (this instance)
    prefix              "fastrr:jobs:{<pipeline>}"   keys: <prefix>:stream (the jobs of the
                              pipeline's priority; where other programs XADD), <prefix>:stream:N
                              (a lane per other job priority N), <prefix>:lanes (the lanes, by
                              priority), <prefix>:delayed and <prefix>:delayed:jobs (delayed
                              jobs); the {...} hash tag keeps them in one slot
    group               "fastrr"   the consumer group every instance of the app joins
    consumer            ""    this instance's consumer name; empty: <host>-<pid>-<random>,
                              so two processes never share pending entries (a name set
                              here must be unique per running process for the same reason)
    visibility_timeout  30s   a dead consumer's pending entries are reclaimed after this
                              (running jobs are kept alive at a third of it)
    block_timeout       1s    how long one XREADGROUP waits for new entries (at most a
                              third of visibility_timeout; bounds how late pause/stop is,
                              and how late the first job of a lane another instance made is)
    max_length          0     0: no cap (acked entries are deleted, so the stream holds
                              only unfinished jobs); N: XADD MAXLEN ~ N, which drops the
                              oldest entries EVEN IF NOT RUN: a memory cap, not a queue
    delete_on_stop      false delete the stream and the delayed jobs when the pipeline closes

No option has a different default for `jobs.Declare`. There every value is a string:
`addrs` a JSON list or "a:1,b:2", `tls` a JSON object.

This module must not import redis-py (it is read for every config): the kv driver's
option table, which does, is loaded only when a redis pipeline or a non-empty
`redis:` section is read (OPTIONS is a lazy module attribute, PEP 562).
"""

from __future__ import annotations

import json
from typing import Any

from fastrr.config.section import Section
from fastrr.config.units import ConfigError, parse_bool, parse_duration, parse_int, parse_str
from fastrr.jobs.config import PipelineConfig, Reader

GLOBAL_SECTION: str | None = "redis"
DECLARE_DEFAULTS: dict[str, Any] = {}

DEFAULT_PREFETCH = 100
DEFAULT_GROUP = "fastrr"
DEFAULT_VISIBILITY = 30.0
DEFAULT_BLOCK = 1.0


def default_prefix(pipeline: str) -> str:
    return f"fastrr:jobs:{{{pipeline}}}"


def _at_least_one(path: str, value: Any) -> int:
    n = parse_int(path, value)
    if n < 1:
        raise ConfigError(path, f"expected at least 1, got {n}")
    return n


def _positive_duration(path: str, value: Any) -> float:
    seconds = parse_duration(path, value)
    if seconds <= 0:
        raise ConfigError(path, f"expected a duration above zero like 30s, got {value!r}")
    return seconds


def _name(path: str, value: Any) -> str:
    text = parse_str(path, value).strip()
    if any(c.isspace() for c in text):
        raise ConfigError(path, f"expected a name without spaces, got {value!r}")
    return text


JOB_OPTIONS: dict[str, tuple[Reader, Any]] = {
    "prefetch": (_at_least_one, DEFAULT_PREFETCH),
    "prefix": (_name, ""),
    "group": (_name, DEFAULT_GROUP),
    "consumer": (_name, ""),
    "visibility_timeout": (_positive_duration, DEFAULT_VISIBILITY),
    "block_timeout": (_positive_duration, DEFAULT_BLOCK),
    "max_length": (parse_int, 0),
    "delete_on_stop": (parse_bool, False),
}


def _declared(reader: Reader) -> Reader:
    """Declare sends lists and maps as JSON strings (PHP's toStringMap): decode them first."""
    def read(path: str, value: Any) -> Any:
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise ConfigError(path, f"not valid JSON: {exc}") from None
        return reader(path, value)
    return read


def connection_options() -> dict[str, tuple[Reader, Any]]:
    """The kv redis storage's connection keys and readers (imports redis-py)."""
    from fastrr.kv.drivers.redis import RedisKv

    return {key: (_declared(reader), default) for key, (reader, default) in RedisKv.OPTIONS.items()}


def __getattr__(name: str) -> Any:
    if name == "OPTIONS":
        # A pipeline's connection keys default to None: "take the `redis:` section's".
        return {**JOB_OPTIONS, **{key: (reader, None) for key, (reader, _) in connection_options().items()}}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


OPTIONS: dict[str, tuple[Reader, Any]]  # built on first use by __getattr__ above


def parse_global(section: Section) -> dict[str, Any]:
    """The `redis:` section: the connection keys that are set (a pipeline's own win)."""
    if not section.raw:
        return {}
    out = {}
    for key, (reader, _) in connection_options().items():
        value = section.get(key, reader)
        if value is not None:
            out[key] = value
    return out


def check(pipe: PipelineConfig, path: str) -> None:
    opts = pipe.options
    where = path  # the readers name keys the same way, wherever in the pipeline they stood
    if opts["block_timeout"] * 3 > opts["visibility_timeout"]:
        raise ConfigError(f"{where}.block_timeout",
                          f"{opts['block_timeout']:g}s is more than a third of visibility_timeout "
                          f"({opts['visibility_timeout']:g}s): a consumer blocked that long would look dead")
    if 0 < opts["max_length"] < opts["prefetch"]:
        raise ConfigError(f"{where}.max_length",
                          f"{opts['max_length']} is below prefetch ({opts['prefetch']}): entries being "
                          "run would be trimmed away")
    prefix = opts["prefix"]
    if prefix and ("{" in prefix) != ("}" in prefix.partition("{")[2]):
        raise ConfigError(f"{where}.prefix", f"unbalanced hash tag braces in {prefix!r}")
