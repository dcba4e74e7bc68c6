"""`<plugin>.pool`: one worker pool's settings (RoadRunner's keys and defaults),
the same section for every plugin that has workers (http, jobs, ...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastrr.config.section import Section
from fastrr.config.units import ConfigError, parse_bool, parse_command, parse_duration, parse_int, parse_str_list

# fastrr's default hard limit per request: RoadRunner has none, so a hung worker
# holds its slot forever (its most reported pitfall). Override with
# `http.pool.supervisor.exec_ttl`; 0 disables it.
DEFAULT_EXEC_TTL = 60.0


@dataclass
class PoolConfig:
    command: list[str] | None = None
    num_workers: int = 0
    max_jobs: int = 0
    allocate_timeout: float = 60.0
    destroy_timeout: float = 60.0
    reset_timeout: float = 60.0
    stream_timeout: float = 60.0
    max_queue_size: int = 0
    debug: bool = False
    # fastrr: time a new worker has to answer the PID handshake, kept apart from
    # allocate_timeout so a slow framework boot does not eat request budgets.
    boot_timeout: float = 60.0
    # fastrr: time a worker has to exit after the stop frame before SIGKILL.
    stop_timeout: float = 10.0
    # pool.supervisor, RoadRunner's keys, units and meanings: ttl is a worker's
    # age, idle_ttl the time since its last request, max_worker_memory its RSS
    # in MB (soft limits: a busy worker is replaced after its request);
    # exec_ttl is a hard per-request limit (the worker is killed, the client
    # gets 504). fastrr checks memory after every request too, not only on the
    # tick, and ticks every second (RoadRunner: 5s); exec_ttl defaults to
    # DEFAULT_EXEC_TTL even without a supervisor section.
    watch_tick: float = 1.0
    ttl: float = 0.0
    idle_ttl: float = 0.0
    max_worker_memory: int = 0
    exec_ttl: float = DEFAULT_EXEC_TTL
    # fastrr: leak-trend recycling (fastrr/pool/leak.py). With max_worker_memory
    # set, each worker's RSS after every request is fitted over the last
    # leak_window requests; a steady climb (at least leak_min_climb MB over the
    # window, a straight line per LEAK_MIN_FIT) that would reach the limit within
    # leak_horizon requests has the worker replaced warm, one at a time per pool.
    leak_recycle: bool = False
    leak_window: int = 100
    leak_min_climb: int = 2
    leak_horizon: int = 1000
    # fastrr: the PHP workers report state that survives a request (globals,
    # static properties: php/src/Debug/StateWatch.php); off, they run no check at all.
    debug_state: bool = False
    # Namespace prefixes of the classes whose statics are watched; empty: every
    # user class whose file is not under vendor/ or the include path, fastrr's own excepted.
    debug_state_classes: list[str] = field(default_factory=list)
    # fastrr: how many workers may run a request at once (fastrr/pool/active_limit.py).
    # ACTIVE_LIMIT_AUTO: all, unless the server's processes saturate the cores it
    # may use, then one more than those cores; 0 ("off"): always all; N: at most N.
    active_limit: int = -1


ACTIVE_LIMIT_AUTO = -1


def parse_active_limit(path: str, value: Any) -> int:
    if isinstance(value, str) and value.strip().lower() in ("auto", "off"):
        return ACTIVE_LIMIT_AUTO if value.strip().lower() == "auto" else 0
    if isinstance(value, bool):  # YAML 1.1 reads a bare off / on as a boolean
        return ACTIVE_LIMIT_AUTO if value else 0
    try:
        limit = parse_int(path, value)
    except ConfigError:
        raise ConfigError(path, f"expected auto, off or a number of workers, got {value!r}") from None
    if limit < 0:
        raise ConfigError(path, f"expected auto, off or a number of workers, got {value!r}")
    return limit



def parse_pool(section: Section, cpu_count: int) -> PoolConfig:
    pool = PoolConfig()
    pool.command = section.get("command", parse_command)
    pool.num_workers = section.get("num_workers", parse_int, 0) or cpu_count
    if pool.num_workers > 2048:
        raise ConfigError(section.key("num_workers"), f"expected at most 2048 workers, got {pool.num_workers}")
    pool.max_jobs = section.get("max_jobs", parse_int, 0)
    for name in ("allocate_timeout", "destroy_timeout", "reset_timeout", "stream_timeout",
                 "boot_timeout", "stop_timeout"):
        setattr(pool, name, section.get(name, parse_duration, getattr(pool, name)))
    pool.max_queue_size = section.get("max_queue_size", parse_int, 0)
    pool.debug = section.get("debug", parse_bool, False)
    pool.active_limit = section.get("active_limit", parse_active_limit, ACTIVE_LIMIT_AUTO)
    sup = section.sub("supervisor")
    pool.watch_tick = sup.get("watch_tick", parse_duration, pool.watch_tick)
    pool.ttl = sup.get("ttl", parse_duration, 0.0)
    pool.idle_ttl = sup.get("idle_ttl", parse_duration, 0.0)
    pool.max_worker_memory = sup.get("max_worker_memory", parse_int, 0)
    pool.exec_ttl = sup.get("exec_ttl", parse_duration, DEFAULT_EXEC_TTL)
    pool.leak_recycle = sup.get("leak_recycle", parse_bool, pool.max_worker_memory > 0)
    if pool.leak_recycle and not pool.max_worker_memory:
        raise ConfigError(sup.key("leak_recycle"), "needs supervisor.max_worker_memory (the limit the memory "
                                                   "trend is projected to); set it, or leak_recycle: false")
    pool.leak_window = sup.get("leak_window", parse_int, pool.leak_window)
    if not 10 <= pool.leak_window <= 10000:
        raise ConfigError(sup.key("leak_window"), f"expected 10 to 10000 requests, got {pool.leak_window}")
    pool.leak_min_climb = sup.get("leak_min_climb", parse_int, pool.leak_min_climb)
    pool.leak_horizon = sup.get("leak_horizon", parse_int, pool.leak_horizon)
    sup.finish()
    pool.debug_state = section.get("debug_state", parse_bool, False)
    pool.debug_state_classes = section.get("debug_state_classes", parse_str_list, [])
    for i, prefix in enumerate(pool.debug_state_classes):
        if not prefix.strip("\\") or "," in prefix:
            raise ConfigError(f"{section.key('debug_state_classes')}[{i}]",
                              f"expected a namespace prefix like App\\, got {prefix!r}")
    section.finish()
    return pool

