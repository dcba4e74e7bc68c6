"""The Prometheus text format, version 0.0.4, written by hand.

Why not prometheus-client's registry and generate_latest: measured on the
project machine for the same 201 series (app collectors of each type, two
pools of 8 workers, the jobs counters and per-pipeline series, the
http_metrics histogram for 4 statuses), one scrape took 0.20 ms written here
and 1.1-1.2 ms through prometheus-client (a custom collector for the
scrape-time series plus its Counter/Gauge/Histogram/Summary classes), 5.5x;
a labelled counter add (what each metrics.Add does) took 0.25 µs as a dict
add against 1.2 µs for `.labels(v).inc()` (its locks and child objects).
Its Summary also has no quantiles, which RoadRunner's `objectives` need.
Tests parse every scrape with prometheus_client.parser, an independent reader.

Writers append lines to a list of str; `family` starts a metric family (its
HELP and TYPE lines), `sample` adds one line. Label values are escaped
(backslash, double quote, newline), help text too (backslash, newline).
Values are printed as Go's strconv.FormatFloat(v, 'g', -1, 64) prints them
(client_golang's output): 3, 0.25, 1e+06, +Inf, NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from fastrr.metrics.registry import Collector, Histogram, HistogramSeries, Registry, Summary, SummarySeries

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def escape_label(text: str) -> str:
    if "\\" in text or '"' in text or "\n" in text:
        return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return text


def fmt(value: float) -> str:
    """Go's 'g' with the shortest precision: exponent form below 1e-4 and from 1e+06 on (fast paths first)."""
    if value.__class__ is int:
        if -1000000 < value < 1000000:
            return str(value)
        value = float(value)
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "+Inf" if value > 0 else "-Inf"
    mag = abs(value)
    if value.is_integer() and mag < 1e6:
        return str(int(value))
    if 1e-4 <= mag < 1e6:
        return repr(value)  # Python's shortest digits, positional in this range
    return _go_exponent(value)


def _go_exponent(value: float) -> str:
    """The exponent form from Python's shortest digits (repr), e.g. 1.234567e+06, 1e-05."""
    if value == 0:
        return "0"
    mant, _, e = repr(abs(value)).partition("e")
    exp = int(e) if e else 0
    int_part, _, frac = mant.partition(".")
    if int_part.strip("0"):
        exp += len(int_part.lstrip("0")) - 1
    else:
        exp -= len(frac) - len(frac.lstrip("0")) + 1
    digits = (int_part + frac).strip("0") or "0"
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{'-' if value < 0 else ''}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def labels_text(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    """`{a="x",b="y"}` (with `extra`, already formatted, last); "" without labels."""
    parts = [f'{n}="{escape_label(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def family(out: list[str], name: str, kind: str, help_text: str) -> None:
    if help_text:
        out.append(f"# HELP {name} {escape_help(help_text)}")
    out.append(f"# TYPE {name} {kind}")


def sample(out: list[str], name: str, value: float, labels: str = "") -> None:
    out.append(f"{name}{labels} {fmt(value)}")


def histogram(out: list[str], name: str, bounds: Sequence[float], counts: Sequence[int], total: float,
              names: Sequence[str] = (), values: Sequence[str] = ()) -> None:
    """One histogram series from per-bucket (not cumulative) counts, +Inf last."""
    tail = labels_text(names, values)
    head = f"{name}_bucket{tail[:-1]}," if tail else f"{name}_bucket{{"
    cumulative = 0
    for bound, count in zip(bounds, counts, strict=False):
        cumulative += count
        out.append(f'{head}le="{fmt(bound)}"}} {cumulative}')
    cumulative += counts[len(bounds)]
    out.append(f'{head}le="+Inf"}} {cumulative}')
    out.append(f"{name}_sum{tail} {fmt(total)}")
    out.append(f"{name}_count{tail} {cumulative}")


def write_collector(out: list[str], col: Collector) -> None:
    """One application collector (nothing for a vector with no series yet, as client_golang)."""
    if not col.series:
        return
    name, names, spec = col.fqname, col.spec.labels, col.spec
    family(out, name, col.kind, spec.help)
    items: Any = sorted(col.series.items()) if len(col.series) > 1 else col.series.items()
    if isinstance(col, Histogram):
        for values, hs in items:
            assert isinstance(hs, HistogramSeries)
            histogram(out, name, col.bounds, hs.counts, hs.sum, names, values)
    elif isinstance(col, Summary):
        for values, ss in items:
            assert isinstance(ss, SummarySeries)
            for q, v in zip(col.quantiles, ss.quantiles(col.quantiles), strict=True):
                quantile = 'quantile="' + fmt(q) + '"'
                out.append(f"{name}{labels_text(names, values, quantile)} {fmt(v)}")
            tail = labels_text(names, values)
            out.append(f"{name}_sum{tail} {fmt(ss.sum)}")
            out.append(f"{name}_count{tail} {ss.count}")
    else:
        for values, v in items:
            out.append(f"{name}{labels_text(names, values)} {fmt(v)}")


def write_registry(out: list[str], registry: Registry) -> None:
    for fq in sorted(registry.by_fqname):
        write_collector(out, registry.collectors[registry.by_fqname[fq]])
