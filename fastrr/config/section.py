"""Reading one `.rr.yaml` section: typed getters that name the key path in
every error, and warnings for the keys nobody read (printed once at start-up).

Every plugin's config.py reads its section through `Section`; keys RoadRunner
has and fastrr does not implement yet are listed in `KNOWN_UNSUPPORTED` so users
get a precise "ignored" warning instead of "unknown".
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from fastrr.config.units import ConfigError, parse_str

KNOWN_UNSUPPORTED = {
    "server.user", "server.group", "server.on_init", "server.relay_timeout",
    "http.ssl.acme", "http.http3", "http.fcgi", "http.pool.dynamic_allocator", "http.pool.command",
    "endure", "include",
    "temporal", "tcp", "centrifuge", "otel", "informer",
    "resetter", "fileserver", "redis", "boltdb",
    "memcached", "memory", "rpc.listen_timeout",
}




class Section:
    """Reads one mapping, remembering which keys were used so the rest can be warned about."""

    def __init__(self, path: str, raw: Any, warnings: list[str]):
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(path, f"expected a mapping, got {type(raw).__name__} {raw!r}")
        self.path = path
        self.raw = raw
        self.used: set[str] = set()
        self.warnings = warnings

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, conv: Callable[[str, Any], Any], default: Any = None,
            required: bool = False, expected: str = "") -> Any:
        self.used.add(name)
        if name not in self.raw or self.raw[name] is None:
            if required:
                raise ConfigError(self.key(name), f"required key is missing{': ' + expected if expected else ''}")
            return default
        return conv(self.key(name), self.raw[name])

    def sub(self, name: str) -> Section:
        self.used.add(name)
        return Section(self.key(name), self.raw.get(name), self.warnings)

    def finish(self) -> None:
        for name in self.raw:
            if name in self.used:
                continue
            path = self.key(str(name))
            if path in KNOWN_UNSUPPORTED:
                self.warnings.append(f"{path}: not supported by fastrr yet, ignored")
            else:
                self.warnings.append(f"{path}: unknown key, ignored")


def choice(options: set[str]) -> Callable[[str, Any], str]:
    def conv(path: str, value: Any) -> str:
        text = parse_str(path, value).strip().lower()
        if text not in options:
            raise ConfigError(path, f"expected one of {', '.join(sorted(options))}, got {value!r}")
        return text
    return conv


def relay(path: str, value: Any) -> str:
    text = parse_str(path, value).strip()
    if text in ("pipes", "shm") or text.startswith("unix://") and len(text) > 7:
        return text
    if text.startswith("tcp://"):
        host, _, port = text[6:].rpartition(":")
        if host and port.isdigit():
            return text
        raise ConfigError(path, f"expected tcp://host:port with a non-empty host (PHP needs one), got {text!r}")
    raise ConfigError(path, f"expected pipes, shm, tcp://host:port or unix:///path, got {text!r}")


def listen(path: str, value: Any) -> str:
    text = relay(path, value)
    if text in ("pipes", "shm"):
        raise ConfigError(path, f"expected tcp://host:port or unix:///path, got {text!r}")
    return text


def address(path: str, value: Any) -> str:
    text = parse_str(path, value).strip()
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(path, f"expected host:port, got {text!r}")
    return text



def readable_file(path: str, value: Any) -> str:
    text = parse_str(path, value)
    if not os.path.isfile(text):
        raise ConfigError(path, f"expected a readable file, got {text!r}")
    return text


