"""The `service:` section (rr-plugins.md §6.1): named commands fastrr keeps running.

    service:
      mailer:
        command: "php bin/mailer.php --queue=mail"
        process_num: 2             # copies of the command (default 1)
        exec_timeout: 0s           # kill a run after this long (0: unlimited)
        remain_after_exit: true    # restart it whenever it exits (default false)
        restart_sec: 30            # seconds between an exit and the restart (0: 30)
        timeout_stop_sec: 5        # SIGINT, then SIGKILL after this long (0: 5)
        service_name_in_log: true  # log its output as `service.mailer` instead of `service`
        env: {QUEUE: mail}
        user: www-data             # run as this user (fastrr must run as root)

RoadRunner's keys, defaults and zero-means-default rules. Where RoadRunner
takes whole seconds, fastrr also takes fractions and Go durations ("500ms").
`command` is split like a shell would (quotes group words), or given as a
list; RoadRunner splits on single spaces, which is the same for any command
without quotes.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from fastrr.config.section import Section
from fastrr.config.units import ConfigError, parse_bool, parse_duration, parse_int, parse_str, parse_str_map

DEFAULT_RESTART_SEC = 30.0
DEFAULT_TIMEOUT_STOP_SEC = 5.0
NAME = re.compile(r"[A-Za-z0-9._-]+")  # RoadRunner's schema.json pattern for service names


@dataclass
class ServiceConfig:
    name: str
    command: list[str]
    process_num: int = 1
    exec_timeout: float = 0.0  # seconds, 0: unlimited
    remain_after_exit: bool = False
    restart_sec: float = DEFAULT_RESTART_SEC
    timeout_stop_sec: float = DEFAULT_TIMEOUT_STOP_SEC
    service_name_in_log: bool = False
    env: dict[str, str] = field(default_factory=dict)
    user: str = ""


def check_name(path: str, name: str) -> str:
    if not NAME.fullmatch(name):
        raise ConfigError(path, f"service name {name!r} may use only letters, digits, '.', '_' and '-'")
    return name


def parse_service_command(path: str, value: Any) -> list[str]:
    if isinstance(value, list):
        argv = [parse_str(f"{path}[{i}]", item) for i, item in enumerate(value)]
    else:
        text = parse_str(path, value)
        try:
            argv = shlex.split(text)
        except ValueError as exc:
            raise ConfigError(path, f"cannot split {text!r} into words: {exc}") from None
    if not argv or not argv[0]:
        raise ConfigError(path, 'expected a non-empty command, e.g. "php bin/consumer.php"')
    return argv


def check_user(path: str, value: Any) -> str:
    name = parse_str(path, value).strip()
    if name:
        try:
            pwd.getpwnam(name)
        except KeyError:
            raise ConfigError(path, f"no such user on this system: {name!r}") from None
    return name


def env_map(path: str, value: Any) -> dict[str, str]:
    # RoadRunner upper-cases the names (process.go setEnv), as it does for server.env.
    return {k.upper(): v for k, v in parse_str_map(path, value).items()}


def parse_one(section: Section, name: str) -> ServiceConfig:
    process_num = section.get("process_num", parse_int, 0)
    restart_sec = section.get("restart_sec", parse_duration, 0.0)
    timeout_stop = section.get("timeout_stop_sec", parse_duration, 0.0)
    cfg = ServiceConfig(
        name=name,
        command=section.get("command", parse_service_command, required=True,
                            expected='the program to run, e.g. "php bin/consumer.php"'),
        process_num=process_num or 1,  # 0 is Go's unset: RoadRunner's InitDefault makes it 1
        exec_timeout=section.get("exec_timeout", parse_duration, 0.0),
        remain_after_exit=section.get("remain_after_exit", parse_bool, False),
        restart_sec=restart_sec or DEFAULT_RESTART_SEC,
        timeout_stop_sec=timeout_stop or DEFAULT_TIMEOUT_STOP_SEC,
        service_name_in_log=section.get("service_name_in_log", parse_bool, False),
        env=section.get("env", env_map, {}),
        user=section.get("user", check_user, ""),
    )
    if "timeout_stop" in section.raw:  # a likely slip: say which key RoadRunner reads
        section.used.add("timeout_stop")
        section.warnings.append(f"{section.key('timeout_stop')}: unknown key, ignored (the key is timeout_stop_sec)")
    section.finish()
    return cfg


def parse_services(section: Section) -> dict[str, ServiceConfig]:
    """`service: {}` is allowed: the plugin runs with no service, for service.Create."""
    services = {}
    for raw_name in section.raw:
        name = check_name(section.key(str(raw_name)), str(raw_name))
        services[name] = parse_one(section.sub(raw_name), name)
    return services


def process_env(cfg: ServiceConfig) -> dict[str, str]:
    """fastrr's environment plus the service's `env`, `$VAR`s in it expanded (as RoadRunner's os.ExpandEnv)."""
    from fastrr.config.loader import expand_env

    env = dict(os.environ)
    for key, value in cfg.env.items():
        env[key] = expand_env(value)
    return env
