"""The `jobs:` section, RoadRunner's keys and defaults (rr-jobs.md §1):

    jobs:
      num_pollers: 10          # accepted; fastrr hands jobs to free workers directly
      pipeline_size: 1000000   # jobs prefetched from all pipelines and not yet started
      timeout: 60              # seconds for a driver's push / pause / resume / stop
      consume: [emails]        # pipelines that start consuming at boot
      pool: {num_workers: 4}   # the consumers, RR_MODE=jobs
      pipelines:
        emails: {driver: memory, config: {priority: 10, prefetch: 100000}}

Pipeline options are looked up at the pipeline's top level first, then under
`config`, as RoadRunner does. fastrr adds two per pipeline (any driver):
`max_attempts` (default 10: a job whose worker crashed, timed out or answered
garbage that many times is not redelivered again) and `dead_letter` (a
pipeline that receives such jobs, and explicitly nacked ones; without it they
are dropped with an error log naming the job). And one for the section:
`max_payload_size` (MB, default 10): a pushed job over it is refused.

The same option readers serve `jobs.Declare`, whose map carries every value as
a string; there an unknown option is an error, in YAML a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastrr.config.section import Section
from fastrr.config.units import ConfigError, parse_duration, parse_int, parse_str, parse_str_list
from fastrr.jobs.drivers import BROKERS, NOT_BUILT, broker_config
from fastrr.pool.config import PoolConfig, parse_pool

DEFAULT_PRIORITY = 10
DEFAULT_MAX_ATTEMPTS = 10
# Drivers this build has, and the options each takes: name -> (reader, default).
Reader = Callable[[str, Any], Any]


def _permissions(path: str, value: Any) -> int:
    """boltdb `permissions`: YAML's 0755 is already the int 493, and PHP's
    BoltdbCreateInfo sends `(string)0755`, the decimal "493" (Go parses it in
    base 10). A string with a leading zero ("0644") is read as octal."""
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text, 8) if len(text) > 1 and text.startswith("0") else int(text, 10)
        except ValueError:
            raise ConfigError(path, f"expected file permissions such as 0644, got {value!r}") from None
    return parse_int(path, value)


def _prefetch(path: str, value: Any) -> int:
    n = parse_int(path, value)
    if n < 1:
        raise ConfigError(path, f"expected at least 1 job, got {n}")
    return n


COMMON_OPTIONS: dict[str, tuple[Reader, Any]] = {
    "priority": (lambda p, v: parse_int(p, v, minimum=None), DEFAULT_PRIORITY),
    "max_attempts": (parse_int, DEFAULT_MAX_ATTEMPTS),
    "dead_letter": (parse_str, ""),
}
LOCAL_OPTIONS: dict[str, dict[str, tuple[Reader, Any]]] = {
    "memory": {"prefetch": (_prefetch, 100_000)},
    "boltdb": {"prefetch": (_prefetch, 1000), "file": (parse_str, "rr.db"), "permissions": (_permissions, 0o755)},
}
DRIVER_NAMES = (*LOCAL_OPTIONS, *BROKERS)


def driver_options(driver: str, declare: bool = False) -> dict[str, tuple[Reader, Any]]:
    """The pipeline keys of `driver` and their defaults (Declare's where they differ)."""
    if driver in LOCAL_OPTIONS:
        return LOCAL_OPTIONS[driver]
    spec = broker_config(driver)
    options: dict[str, tuple[Reader, Any]] = dict(spec.OPTIONS)
    if declare:
        for key, default in getattr(spec, "DECLARE_DEFAULTS", {}).items():
            options[key] = (options[key][0], default)
    return options


@dataclass
class PipelineConfig:
    name: str
    driver: str
    priority: int = DEFAULT_PRIORITY
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    dead_letter: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # the driver's own, defaults filled in
    declared: bool = False  # made by jobs.Declare rather than the config file


@dataclass
class JobsConfig:
    num_pollers: int = 0
    pipeline_size: int = 1_000_000
    timeout: float = 60.0
    consume: list[str] = field(default_factory=list)
    max_payload_size: int = 10 << 20  # bytes (`max_payload_size` is in MB, as http.max_request_size)
    pool: PoolConfig = field(default_factory=PoolConfig)
    pipelines: dict[str, PipelineConfig] = field(default_factory=dict)
    # the brokers' top-level sections (`amqp:`, `nats:`, ...), as each driver's
    # config.parse_global read them; every present section is read, used or not
    brokers: dict[str, Any] = field(default_factory=dict)


def _driver_name(path: str, value: Any) -> str:
    name = parse_str(path, value).strip().lower()
    if name in DRIVER_NAMES:
        return name
    if name in NOT_BUILT:
        raise ConfigError(path, f"fastrr has no {name} driver; available: {', '.join(DRIVER_NAMES)}")
    raise ConfigError(path, f"unknown driver {name!r}; available: {', '.join(DRIVER_NAMES)}")


def pipeline_from_values(name: str, values: dict[str, Any], path: str, strict: bool,
                         warnings: list[str] | None = None) -> PipelineConfig:
    """One pipeline from flat `values` (YAML top level + `config`, or a Declare map).
    `strict`: an unknown option is an error (Declare), else a warning."""
    if "driver" not in values or values["driver"] in (None, ""):
        raise ConfigError(f"{path}.driver", f"required key is missing: one of {', '.join(DRIVER_NAMES)}")
    driver = _driver_name(f"{path}.driver", values["driver"])
    known = {**COMMON_OPTIONS, **driver_options(driver, declare=strict)}
    pipe = PipelineConfig(name=name, driver=driver)
    for key in values:
        if key in ("driver", "name", "queue", "pool"):
            continue
        if key not in known:
            text = f"unknown option for the {driver} driver (known: {', '.join(sorted(known))})"
            if strict:
                raise ConfigError(f"{path}.{key}", text)
            if warnings is not None:
                warnings.append(f"{path}.{key}: {text}, ignored")
    for key, (reader, default) in known.items():
        value = values.get(key)
        parsed = default if value is None or value == "" else reader(f"{path}.{key}", value)
        if key in COMMON_OPTIONS:
            setattr(pipe, key, parsed)
        else:
            pipe.options[key] = parsed
    if pipe.max_attempts < 1:
        raise ConfigError(f"{path}.max_attempts", f"expected at least 1, got {pipe.max_attempts}")
    if pipe.dead_letter == name:
        raise ConfigError(f"{path}.dead_letter", "a pipeline cannot be its own dead letter target")
    if driver in BROKERS:
        broker_config(driver).check(pipe, path)
    return pipe


def parse_brokers(top: Section) -> dict[str, Any]:
    """Every broker's top-level section (`amqp:`, ...), its defaults when absent;
    one no pipeline uses is read too, so a typo in it is still reported."""
    brokers: dict[str, Any] = {}
    for name in BROKERS:
        spec = broker_config(name)
        if spec.GLOBAL_SECTION:
            sub = top.sub(spec.GLOBAL_SECTION)
            brokers[name] = spec.parse_global(sub)
            sub.finish()
    return brokers


def parse_jobs(section: Section, cpu_count: int, top: Section | None = None) -> JobsConfig:
    cfg = JobsConfig()
    if top is not None:
        cfg.brokers = parse_brokers(top)
    cfg.num_pollers = section.get("num_pollers", parse_int, 0)
    cfg.pipeline_size = section.get("pipeline_size", parse_int, cfg.pipeline_size)
    if cfg.pipeline_size < 1:
        raise ConfigError(section.key("pipeline_size"), f"expected at least 1, got {cfg.pipeline_size}")
    cfg.timeout = section.get("timeout", parse_duration, cfg.timeout)
    cfg.consume = section.get("consume", parse_str_list, [])
    mb = section.get("max_payload_size", parse_int, 10)
    if mb < 1:
        raise ConfigError(section.key("max_payload_size"), f"expected at least 1 (MB), got {mb}")
    cfg.max_payload_size = mb << 20
    if section.raw.get("pools"):
        raise ConfigError(section.key("pools"), "several jobs pools (RoadRunner v6 beta) are not supported; "
                                                "use jobs.pool")
    section.used.add("pools")
    cfg.pool = parse_pool(section.sub("pool"), cpu_count)
    pipes = section.sub("pipelines")
    for name, raw in pipes.raw.items():
        path = pipes.key(str(name))
        if not isinstance(raw, dict):
            raise ConfigError(path, f"expected a mapping with a driver, got {raw!r}")
        nested = raw.get("config") or {}
        if not isinstance(nested, dict):
            raise ConfigError(f"{path}.config", f"expected a mapping, got {nested!r}")
        values = {**nested, **{k: v for k, v in raw.items() if k != "config"}}
        cfg.pipelines[str(name)] = pipeline_from_values(str(name), values, path, strict=False,
                                                        warnings=section.warnings)
    pipes.used.update(pipes.raw)
    for i, name in enumerate(cfg.consume):
        if name not in cfg.pipelines:
            raise ConfigError(f"{section.key('consume')}[{i}]",
                              f"no pipeline named {name!r} (pipelines: {', '.join(sorted(cfg.pipelines)) or 'none'})")
    for name, pipe in cfg.pipelines.items():
        if pipe.dead_letter and pipe.dead_letter not in cfg.pipelines:
            raise ConfigError(f"{pipes.key(name)}.dead_letter", f"no pipeline named {pipe.dead_letter!r}")
    section.finish()
    return cfg
