"""`metrics.*` RPC, JSON as roadrunner-php/metrics sends it (rr-plugins.md §3.3).
Every method answers true (JSON), or an error whose text names the collector.

| method             | payload                                              | applies to        |
|--------------------|------------------------------------------------------|-------------------|
| metrics.Add        | {"name": "n", "value": 1.0, "labels": ["a", "b"]}    | counter, gauge    |
| metrics.Sub        | same                                                 | gauge             |
| metrics.Set        | same                                                 | gauge             |
| metrics.Observe    | same                                                 | histogram, summary|
| metrics.Declare    | {"name": "n", "collector": {"type": ..., ...}}       | a new collector   |
| metrics.Unregister | "n" (a bare JSON string)                             | removes it        |

Declare's collector has type, help, namespace, subsystem, labels, buckets and
objectives, as `metrics.collect.<name>`. `labels` are label values in the
declared order (a vector collector needs exactly as many; a scalar one
ignores them, as RoadRunner does). Declare of a name that exists answers
true and keeps the first collector (RoadRunner since 76c13ce). A bad call
changes nothing.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from fastrr.config.units import ConfigError
from fastrr.metrics.config import parse_objectives
from fastrr.metrics.registry import TYPES, MetricError, Spec, SpecError
from fastrr.rpc.codec import RpcError
from fastrr.rpc.services import Services

if TYPE_CHECKING:
    from fastrr.metrics.plugin import MetricsPlugin


class MetricsRpc:
    def __init__(self, plugin: MetricsPlugin):
        self.plugin = plugin
        self.registry = plugin.registry

    def register(self, rpc: Services) -> None:
        for op in ("Add", "Sub", "Set", "Observe"):
            rpc.register(f"metrics.{op}", self._value_method(op))
        rpc.register("metrics.Declare", self.declare)
        rpc.register("metrics.Unregister", self.unregister)

    def _value_method(self, op: str) -> Any:
        attr = op.lower()
        get = self.registry.get

        async def method(arg: Any) -> bool:
            name, value, labels = _metric(arg, op)
            try:
                getattr(get(name), attr)(value, labels)
            except MetricError as exc:
                raise RpcError(str(exc)) from None
            return True

        method.__name__ = attr
        return method

    async def declare(self, arg: Any) -> bool:
        if not isinstance(arg, dict):
            raise RpcError(f"metrics.Declare: expected {{\"name\": ..., \"collector\": {{...}}}}, got {_kind(arg)}")
        name = arg.get("name")
        if not isinstance(name, str) or not name:
            raise RpcError(f"metrics.Declare: \"name\" must be a non-empty string, got {name!r}")
        if name in self.registry.collectors:
            self.plugin.log.warn("metrics.Declare: a collector with this name exists, kept as it is", name=name)
            return True
        spec = _spec(name, arg.get("collector"))
        try:
            self.registry.declare(name, spec)
        except SpecError as exc:
            where = f"collector.{exc.field}: " if exc.field else ""
            raise RpcError(f"metrics.Declare: {name}: {where}{exc.problem}") from None
        self.plugin.log.debug("collector declared", name=name, type=spec.type, labels=list(spec.labels))
        return True

    async def unregister(self, arg: Any) -> bool:
        if isinstance(arg, bytes):  # the raw codec
            arg = arg.decode("utf-8", "replace")
        if not isinstance(arg, str):
            raise RpcError(f"metrics.Unregister: expected the collector name (a JSON string), got {_kind(arg)}")
        try:
            self.registry.unregister(arg)
        except MetricError as exc:
            raise RpcError(str(exc)) from None
        return True


def _kind(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:80]}{'...' if len(text) > 80 else ''}"


def _metric(arg: Any, op: str) -> tuple[str, float, list[str]]:
    """name, value, label values of an Add/Sub/Set/Observe payload."""
    if not isinstance(arg, dict):
        raise RpcError(f"metrics.{op}: expected {{\"name\": ..., \"value\": ..., \"labels\": [...]}}, got {_kind(arg)}")
    name = arg.get("name")
    if not isinstance(name, str):
        raise RpcError(f"metrics.{op}: \"name\" must be a string, got {_kind(name)}")
    value = arg.get("value", 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RpcError(f"metrics.{op}: {name}: \"value\" must be a number, got {_kind(value)}")
    if math.isnan(value):
        raise RpcError(f"metrics.{op}: {name}: \"value\" is NaN")
    labels = arg.get("labels")
    if labels is None:
        labels = []
    elif not isinstance(labels, list) or not all(isinstance(v, str) for v in labels):
        raise RpcError(f"metrics.{op}: {name}: \"labels\" must be a list of label values (strings), got "
                       f"{_kind(labels)}")
    return name, float(value), labels


def _spec(name: str, raw: Any) -> Spec:
    where = f"metrics.Declare: {name}: collector"
    if not isinstance(raw, dict):
        raise RpcError(f"{where}: expected a mapping with a type, got {_kind(raw)}")
    kind = raw.get("type")
    if kind not in TYPES:
        shown = kind if isinstance(kind, str) else "" if kind is None else _kind(kind)
        raise RpcError(f"unknown collector type: {shown} (collector {name}; expected one of {', '.join(TYPES)})")

    def text(key: str) -> str:
        value = raw.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise RpcError(f"{where}.{key}: expected a string, got {_kind(value)}")
        return value

    def strings(key: str) -> tuple[str, ...]:
        value = raw.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RpcError(f"{where}.{key}: expected a list of strings, got {_kind(value)}")
        return tuple(value)

    buckets = raw.get("buckets") or []
    if not isinstance(buckets, list) or not all(isinstance(b, int | float) and not isinstance(b, bool)
                                                for b in buckets):
        raise RpcError(f"{where}.buckets: expected a list of numbers, got {_kind(buckets)}")
    objectives: dict[float, float] = {}
    if raw.get("objectives"):
        try:
            objectives = parse_objectives(f"{where}.objectives", raw["objectives"])
        except ConfigError as exc:
            raise RpcError(str(exc)) from None
    return Spec(type=kind, help=text("help"), namespace=text("namespace"), subsystem=text("subsystem"),
                labels=strings("labels"), buckets=tuple(float(b) for b in buckets) if kind == "histogram" else (),
                objectives=objectives if kind == "summary" else {})
