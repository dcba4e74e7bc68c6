"""Scalar conversions for config values, accepting what viper/mapstructure accept.

Values reach us either typed (from YAML) or as strings (from `-o key=value` and
`${VAR}` interpolation), so every converter takes both.
"""

from __future__ import annotations

import re
from typing import Any


class ConfigError(Exception):
    """A config problem, always naming the key path and what was expected."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(path: str, value: Any) -> float:
    """Go duration syntax (`500ms`, `1m30s`, `1h`) → seconds.

    A bare number means seconds (Go would read an integer as nanoseconds, which
    no one ever means in a config file).
    """
    if isinstance(value, bool):
        raise ConfigError(path, f"expected a duration like 60s or 500ms, got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ConfigError(path, f"expected a non-negative duration, got {value!r}")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return float(text)
        pos, total = 0, 0.0
        for m in _DURATION_PART.finditer(text):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
            pos = m.end()
        if pos == len(text) and text:
            return total
    raise ConfigError(path, f"expected a duration like 60s, 1m or 500ms, got {value!r}")


def parse_int(path: str, value: Any, minimum: int | None = 0) -> int:
    if isinstance(value, bool):
        raise ConfigError(path, f"expected an integer, got {value!r}")
    if isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        result = int(value)
    else:
        raise ConfigError(path, f"expected an integer, got {value!r}")
    if minimum is not None and result < minimum:
        raise ConfigError(path, f"expected an integer >= {minimum}, got {result}")
    return result


_TRUE = {"true", "1", "yes", "on", "t"}
_FALSE = {"false", "0", "no", "off", "f", ""}


def parse_bool(path: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(path, f"expected true or false, got {value!r}")


def parse_str(path: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(path, f"expected a string, got {type(value).__name__} {value!r}")


def parse_str_list(path: str, value: Any) -> list[str]:
    """A YAML list, or a comma-separated string (how `-o` passes lists)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [parse_str(f"{path}[{i}]", item) for i, item in enumerate(value)]
    raise ConfigError(path, f"expected a list of strings, got {type(value).__name__} {value!r}")


def parse_command(path: str, value: Any) -> list[str]:
    """`server.command`: a string is split on whitespace (Go strings.Fields, no
    shell quoting) unless it has commas (the `-o server.command=php,worker.php`
    form Octane uses); a list is taken as it is."""
    if isinstance(value, str):
        parts = value.split(",") if "," in value else value.split()
        parts = [p.strip() for p in parts if p.strip()]
        if len(parts) == 1 and " " in parts[0]:
            parts = parts[0].split()
    elif isinstance(value, list):
        parts = [parse_str(f"{path}[{i}]", item) for i, item in enumerate(value)]
    else:
        raise ConfigError(path, f"expected a command string or list, got {type(value).__name__}")
    if not parts:
        raise ConfigError(path, "expected a non-empty command, e.g. \"php worker.php\"")
    return parts


def parse_str_map(path: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(path, f"expected a map of names to strings, got {type(value).__name__}")
    return {str(k): parse_str(f"{path}.{k}", v) for k, v in value.items()}
