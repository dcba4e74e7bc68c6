"""Reading `.rr.yaml`: YAML, `${VAR}` interpolation, `-o key=value` overrides, dotenv.

The order is RoadRunner's: dotenv first (it feeds interpolation), then the file,
then every string (also inside lists) expanded, then the overrides (expanded
too) written over the tree as strings; typing happens later in `schema`.
"""

from __future__ import annotations

import os
import re
from typing import Any

import yaml

from fastrr.config.units import ConfigError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def expand_env(text: str, env: dict[str, str] | os._Environ[str] | None = None) -> str:
    """`${VAR}`, `$VAR` and `${VAR:-default}`; unset variables become "" (as in Go's os.Expand)."""
    source = os.environ if env is None else env

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        value = source.get(name)
        if m.group(2) is not None and not value:
            return m.group(2)
        return value or ""

    return _VAR.sub(repl, text)


def _expand_tree(node: Any) -> Any:
    if isinstance(node, str):
        return expand_env(node)
    if isinstance(node, list):
        return [_expand_tree(item) for item in node]
    if isinstance(node, dict):
        return {key: _expand_tree(value) for key, value in node.items()}
    return node


def load_dotenv_file(path: str) -> None:
    from dotenv import dotenv_values

    if not os.path.isfile(path):
        raise ConfigError("--dotenv", f"file not found: {path}")
    for key, value in dotenv_values(path).items():
        if value is not None:
            os.environ.setdefault(key, value)


def read_yaml(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError("", f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError("", f"invalid YAML in {path}{where}: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("", f"{path}: the top level must be a mapping of sections")
    return data


def apply_override(tree: dict[str, Any], spec: str) -> None:
    """`-o http.pool.num_workers=4`: a dotted path set to a string value."""
    key, sep, value = spec.partition("=")
    key = key.strip()
    value = value.strip()
    if not sep or not key or not value:
        raise ConfigError("-o", f"expected key=value with a non-empty key and value, got {spec!r}")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'`":
        value = value[1:-1]
    parts = key.split(".")
    node = tree
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if not isinstance(child, dict):
            if child is not None:
                raise ConfigError(".".join(parts[: i + 1]), f"cannot override inside a {type(child).__name__}")
            child = node[part] = {}
        node = child
    node[parts[-1]] = expand_env(value)


def load_raw(path: str, overrides: list[str]) -> dict[str, Any]:
    tree = _expand_tree(read_yaml(path))
    for spec in overrides:
        apply_override(tree, spec)
    return tree
