"""The `metrics:` section (rr-plugins.md §3.1), RoadRunner's keys and defaults:

    metrics:
      address: 127.0.0.1:2112       # any path serves the exposition, /metrics included
      collect:
        app_orders:
          type: counter             # counter | gauge | histogram | summary
          help: "Orders placed."
          namespace: shop           # exported as shop_checkout_app_orders
          subsystem: checkout
          labels: [method, status]  # a vector: every call gives the label values
        app_latency:
          type: histogram
          buckets: [0.01, 0.1, 1]   # empty: client_golang's defaults
        app_payload:
          type: summary
          objectives: {0.5: 0.05, 0.99: 0.001}   # quantile: allowed error

`objectives` may also be a list of one-entry maps (`- 0.5: 0.05`), the form
RoadRunner's sample config shows. Every problem names its key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from fastrr.config.section import Section, address
from fastrr.config.units import ConfigError, parse_str
from fastrr.metrics.builtin import reserved_names
from fastrr.metrics.registry import TYPES, Spec, SpecError, check_spec

DEFAULT_ADDRESS = "127.0.0.1:2112"
RESERVED = reserved_names()
COLLECTOR_KEYS = ("type", "help", "namespace", "subsystem", "labels", "buckets", "objectives")


@dataclass
class MetricsConfig:
    address: str = DEFAULT_ADDRESS
    collect: dict[str, Spec] = field(default_factory=dict)


def parse_number(path: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(path, f"expected a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise ConfigError(path, f"expected a number, got {type(value).__name__} {value!r}")


def parse_numbers(path: str, value: Any) -> tuple[float, ...]:
    if isinstance(value, str):  # `-o metrics.collect.x.buckets=0.1,1`
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        raise ConfigError(path, f"expected a list of numbers, got {type(value).__name__} {value!r}")
    return tuple(parse_number(f"{path}[{i}]", item) for i, item in enumerate(value))


def parse_objectives(path: str, value: Any) -> dict[float, float]:
    entries: list[tuple[str, Any, Any]] = []
    if isinstance(value, dict):
        entries = [(f"{path}.{k}", k, v) for k, v in value.items()]
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise ConfigError(f"{path}[{i}]", f"expected a map of quantile to allowed error, got {item!r}")
            entries += [(f"{path}[{i}].{k}", k, v) for k, v in item.items()]
    else:
        raise ConfigError(path, f"expected a map of quantile to allowed error (e.g. {{0.5: 0.05}}), got {value!r}")
    out: dict[float, float] = {}
    for where, quantile, error in entries:
        q = parse_number(where, quantile)
        e = parse_number(where, error)
        if not 0.0 <= q <= 1.0 or math.isnan(q):
            raise ConfigError(where, f"a quantile is between 0 and 1, got {quantile!r}")
        if not 0.0 <= e <= 1.0 or math.isnan(e):
            raise ConfigError(where, f"the allowed error is between 0 and 1, got {error!r}")
        out[q] = e
    return out


def parse_labels(path: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if not isinstance(value, list):
        raise ConfigError(path, f"expected a list of label names, got {type(value).__name__} {value!r}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ConfigError(f"{path}[{i}]", f"expected a label name (string), got {item!r}")
    return tuple(value)


def parse_collector(name: str, raw: Any, path: str, warnings: list[str]) -> Spec:
    if not isinstance(raw, dict):
        raise ConfigError(path, f"expected a mapping with a type ({', '.join(TYPES)}), got {raw!r}")
    for key in raw:
        if key not in COLLECTOR_KEYS:
            warnings.append(f"{path}.{key}: unknown key, ignored (known: {', '.join(COLLECTOR_KEYS)})")
    kind = raw.get("type")
    if kind is None:
        raise ConfigError(f"{path}.type", f"invalid metric type `` for `{name}`: required, one of {', '.join(TYPES)}")
    kind = parse_str(f"{path}.type", kind).strip()
    if kind not in TYPES:
        raise ConfigError(f"{path}.type", f"invalid metric type `{kind}` for `{name}` (expected one of "
                                          f"{', '.join(TYPES)})")

    def text(key: str) -> str:
        value = raw.get(key)
        return "" if value is None else parse_str(f"{path}.{key}", value)

    spec = Spec(type=kind, help=text("help"), namespace=text("namespace"), subsystem=text("subsystem"))
    if raw.get("labels") is not None:
        spec.labels = parse_labels(f"{path}.labels", raw["labels"])
    if raw.get("buckets") is not None:
        spec.buckets = parse_numbers(f"{path}.buckets", raw["buckets"])
        if kind != "histogram" and spec.buckets:
            warnings.append(f"{path}.buckets: only histograms have buckets; ignored for this {kind}")
            spec.buckets = ()
    if raw.get("objectives") is not None:
        spec.objectives = parse_objectives(f"{path}.objectives", raw["objectives"])
        if kind != "summary" and spec.objectives:
            warnings.append(f"{path}.objectives: only summaries have objectives; ignored for this {kind}")
            spec.objectives = {}
    try:
        check_spec(name, spec)
    except SpecError as exc:
        raise ConfigError(f"{path}.{exc.field}" if exc.field else path, exc.problem) from None
    return spec


def parse_metrics(section: Section) -> MetricsConfig:
    cfg = MetricsConfig(address=section.get("address", address, DEFAULT_ADDRESS))
    collect = section.sub("collect")
    exported: dict[str, str] = {}
    for name, raw in collect.raw.items():
        name = str(name)
        path = collect.key(name)
        spec = parse_collector(name, raw, path, section.warnings)
        fq = check_spec(name, spec)
        if fq in RESERVED:
            raise ConfigError(path, f"exported as {fq!r}, the name of one of fastrr's own metrics")
        if fq in exported:
            raise ConfigError(path, f"exported as {fq!r}, as {collect.key(exported[fq])} is (namespace, "
                                    f"subsystem and name must differ)")
        exported[fq] = name
        cfg.collect[name] = spec
    collect.used.update(collect.raw)
    section.finish()
    return cfg
