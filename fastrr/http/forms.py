"""Form bodies → RoadRunner's JSON data tree (`parsed: true`).

RoadRunner parses `application/x-www-form-urlencoded` into a tree with PHP's
bracket syntax and sends the tree as the body:
- `a=1` → {"a": "1"}; a repeated scalar key keeps the **last** value;
- `a[]=1&a[]=2` → {"a": ["1", "2"]} (the whole list);
- `a[b][c]=1` → {"a": {"b": {"c": "1"}}}, at most 127 levels;
- a key that is both a leaf and a branch is an error (400 in RoadRunner).
An empty form is sent as `{}` so PHP's json_decode never sees an empty string.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

MAX_DEPTH = 127


class FormError(ValueError):
    pass


def split_key(key: str) -> tuple[list[str], bool]:
    """`a[b][]` → (["a", "b"], True): the path and whether it ends in `[]`."""
    head, sep, rest = key.partition("[")
    path = [head]
    if sep:
        rest = "[" + rest
        while rest.startswith("["):
            end = rest.find("]")
            if end < 0:
                break
            path.append(rest[1:end])
            rest = rest[end + 1:]
    is_list = len(path) > 1 and path[-1] == ""
    if is_list:
        path.pop()
    if len(path) > MAX_DEPTH:
        raise FormError(f"form key nests deeper than {MAX_DEPTH} levels")
    return path, is_list


def build_tree(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    tree: dict[str, Any] = {}
    for key, values in grouped.items():
        path, is_list = split_key(key)
        node = tree
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise FormError(f"invalid multiple values to key {key!r}")
            node = child
        leaf = path[-1]
        if leaf in node and isinstance(node[leaf], dict):
            raise FormError(f"invalid multiple values to key {key!r}")
        node[leaf] = list(values) if is_list else values[-1]
    return tree


def urlencoded_to_json(body: bytes) -> bytes:
    try:
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=10000)
    except ValueError as exc:
        raise FormError(str(exc)) from None
    return json.dumps(build_tree(pairs), ensure_ascii=False, separators=(",", ":")).encode()
