"""The beanstalk driver's keys, RoadRunner's names and defaults (rr-jobs.md §1.2):

    beanstalk:
      addr: tcp://127.0.0.1:11300   # or unix:///path/to/beanstalkd.sock
      timeout: 30s                  # RoadRunner uses it as the TTR of every put; so does fastrr

    jobs:
      pipelines:
        mails:
          driver: beanstalk
          config:
            priority: 10            # the job priority (common key)
            tube: default
            tube_priority: 0        # Declare: 1; added to each job's priority to give its beanstalkd pri
            reserve_timeout: 1s     # Declare: 5 (seconds)
            prefetch: 10            # fastrr's own: jobs reserved and not finished at once

`consume_all` (sent by roadrunner-php's BeanstalkCreateInfo, read by no
RoadRunner version) is accepted and ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from fastrr.config.section import Section
from fastrr.config.units import ConfigError, parse_bool, parse_duration, parse_int, parse_str
from fastrr.jobs.config import PipelineConfig, Reader
from fastrr.jobs.drivers.beanstalk.protocol import MAX_PRIORITY, TUBE_NAME

GLOBAL_SECTION: str | None = "beanstalk"
DEFAULT_ADDR = "tcp://127.0.0.1:11300"
DEFAULT_TIMEOUT = 30.0
DEFAULT_PREFETCH = 10


@dataclass
class BeanstalkSettings:
    addr: str = DEFAULT_ADDR
    host: str = "127.0.0.1"
    port: int = 11300
    unix_path: str = ""
    ttr: int = 30  # whole seconds, >= 1 (`timeout`)


def _addr(path: str, value: Any) -> BeanstalkSettings:
    text = parse_str(path, value).strip()
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in ("tcp", "unix") or not rest:
        raise ConfigError(path, f"expected tcp://host:port or unix:///path, got {value!r}")
    if scheme == "unix":
        return BeanstalkSettings(addr=text, unix_path=rest)
    host, colon, port = rest.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(path, f"expected tcp://host:port, got {value!r}")
    return BeanstalkSettings(addr=text, host=host.strip("[]"), port=int(port))


def parse_global(section: Section) -> BeanstalkSettings:
    settings = section.get("addr", _addr, None) or _addr(section.key("addr"), DEFAULT_ADDR)
    timeout = section.get("timeout", parse_duration, DEFAULT_TIMEOUT)
    if timeout < 1:
        raise ConfigError(section.key("timeout"), f"expected at least 1s (it is the TTR of every job), "
                                                  f"got {timeout:g}s")
    settings.ttr = min(math.ceil(timeout), MAX_PRIORITY)
    return settings


def _tube(path: str, value: Any) -> str:
    text = parse_str(path, value)
    if not TUBE_NAME.fullmatch(text):
        raise ConfigError(path, "expected a beanstalkd tube name (up to 200 letters, digits and - + / ; . $ _ ( ), "
                                f"not starting with -), got {value!r}")
    return text


def _tube_priority(path: str, value: Any) -> int:
    n = parse_int(path, value)
    if n > MAX_PRIORITY:
        raise ConfigError(path, f"expected a beanstalkd priority 0..{MAX_PRIORITY}, got {n}")
    return n


def _prefetch(path: str, value: Any) -> int:
    n = parse_int(path, value)
    if n < 1:
        raise ConfigError(path, f"expected at least 1 job, got {n}")
    return n


OPTIONS: dict[str, tuple[Reader, Any]] = {
    "tube": (_tube, "default"),
    "tube_priority": (_tube_priority, 0),
    "reserve_timeout": (parse_duration, 1.0),
    "prefetch": (_prefetch, DEFAULT_PREFETCH),
    "consume_all": (parse_bool, False),
}
DECLARE_DEFAULTS: dict[str, Any] = {"tube_priority": 1, "reserve_timeout": 5.0}


def check(pipe: PipelineConfig, path: str) -> None:
    wait = pipe.options["reserve_timeout"]
    if wait > 3600:
        raise ConfigError(f"{path}.reserve_timeout", f"expected at most 1h, got {wait:g}s")
