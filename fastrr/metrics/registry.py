"""Application collectors: what `metrics.collect` and `metrics.Declare` create
(RoadRunner builds them with client_golang; rr-plugins.md §3.1, §3.3).

Rules of this file:
- A collector is known by its RPC name (the `collect` key, Declare's `name`);
  it is exported as `namespace_subsystem_name` (client_golang's BuildFQName).
- With `labels` it is a vector: every call names one series by its label
  *values*, in the declared order; without, it has one series, exported at 0
  from the start (as client_golang does).
- Values are plain floats in dicts keyed by the label values: a call costs a
  dict lookup and an add. Nothing here is read by anything but the scrape.
- Error texts are RoadRunner's (`undefined collector: n`, ...), so PHP code
  that matches them keeps working; fastrr adds the details after them.
"""

from __future__ import annotations

import bisect
import math
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

TYPES = ("counter", "gauge", "histogram", "summary")
# client_golang's prometheus.DefBuckets, used when `buckets` is empty.
DEFAULT_BUCKETS = (.005, .01, .025, .05, .1, .25, .5, 1.0, 2.5, 5.0, 10.0)
NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
# A summary's quantiles cover the last MAX_AGE seconds, in AGE_BUCKETS slices
# (client_golang's DefMaxAge and DefAgeBuckets): older observations drop out a
# slice at a time. Each slice keeps at most SLICE_SAMPLES observations (a
# uniform reservoir beyond that), so memory stays bounded under any rate.
MAX_AGE = 600.0
AGE_BUCKETS = 5
SLICE_SAMPLES = 1024


class MetricError(Exception):
    """A bad call on a collector; the text goes back to the caller."""


class SpecError(Exception):
    """A bad collector declaration: `field` is the key at fault ("" = the name)."""

    def __init__(self, field: str, problem: str):
        super().__init__(problem)
        self.field = field
        self.problem = problem


@dataclass
class Spec:
    """One collector's declaration, as `metrics.collect.<name>` or Declare's `collector`."""

    type: str
    help: str = ""
    namespace: str = ""
    subsystem: str = ""
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    objectives: dict[float, float] = field(default_factory=dict)


def fq_name(namespace: str, subsystem: str, name: str) -> str:
    """client_golang's BuildFQName: the non-empty parts joined by "_"."""
    return "_".join(part for part in (namespace, subsystem, name) if part) if name else ""


def check_spec(name: str, spec: Spec) -> str:
    """The exported name of a valid declaration; raises SpecError naming the field otherwise."""
    if spec.type not in TYPES:
        raise SpecError("type", f"invalid metric type `{spec.type}` for `{name}` (expected one of {', '.join(TYPES)})")
    fq = fq_name(spec.namespace, spec.subsystem, name)
    if not NAME_RE.match(fq):
        where = "" if NAME_RE.match(name) else "name"
        where = where or ("namespace" if spec.namespace and not NAME_RE.match(spec.namespace) else "subsystem")
        raise SpecError(where, f"{fq!r} is not a valid metric name (letters, digits, _ and :, not starting "
                               f"with a digit)")
    reserved = {"histogram": "le", "summary": "quantile"}.get(spec.type)
    for i, label in enumerate(spec.labels):
        if not LABEL_RE.match(label) or label.startswith("__"):
            raise SpecError(f"labels[{i}]", f"{label!r} is not a valid label name (letters, digits and _, not "
                                            f"starting with a digit or __)")
        if label == reserved:
            raise SpecError(f"labels[{i}]", f"{spec.type} collectors cannot have a label named {label!r}")
        if label in spec.labels[:i]:
            raise SpecError(f"labels[{i}]", f"label {label!r} is given twice")
    for i, bound in enumerate(spec.buckets):
        if math.isnan(bound):
            raise SpecError(f"buckets[{i}]", "a bucket bound cannot be NaN")
        if i and bound <= spec.buckets[i - 1]:
            raise SpecError(f"buckets[{i}]", f"buckets must be in increasing order, got {bound:g} after "
                                             f"{spec.buckets[i - 1]:g}")
    for quantile, error in spec.objectives.items():
        if not 0.0 <= quantile <= 1.0:
            raise SpecError("objectives", f"quantile {quantile:g} is not between 0 and 1")
        if not 0.0 <= error <= 1.0:
            raise SpecError("objectives", f"the allowed error of quantile {quantile:g} is {error:g}, not between "
                                          f"0 and 1")
    return fq


class Collector:
    """One declared collector and its series (by label values)."""

    kind: ClassVar[str]
    __slots__ = ("name", "spec", "fqname", "series")

    def __init__(self, name: str, spec: Spec, fqname: str):
        self.name = name
        self.spec = spec
        self.fqname = fqname
        self.series: dict[tuple[str, ...], Any] = {}
        if not spec.labels:
            self.series[()] = self.new_series()

    def new_series(self) -> Any:
        return 0.0

    def key(self, labels: Sequence[str]) -> tuple[str, ...]:
        """The series a call names. A scalar collector ignores labels (as RoadRunner does)."""
        want = len(self.spec.labels)
        if not want:
            return ()
        if len(labels) != want:
            got = "none" if not labels else f"{len(labels)} value{'s' if len(labels) > 1 else ''} {list(labels)}"
            raise MetricError(f"required labels for collector: {self.name} (it has {want} label"
                              f"{'s' if want > 1 else ''} {list(self.spec.labels)}, got {got})")
        return tuple(labels)

    def unsupported(self, op: str) -> MetricError:
        return MetricError(f"collector does not support the requested operation: {self.name} does not support "
                           f"{op} (it is a {self.kind})")

    def add(self, value: float, labels: Sequence[str]) -> None:
        raise self.unsupported("Add")

    def sub(self, value: float, labels: Sequence[str]) -> None:
        raise self.unsupported("Sub")

    def set(self, value: float, labels: Sequence[str]) -> None:
        raise self.unsupported("Set")

    def observe(self, value: float, labels: Sequence[str]) -> None:
        raise self.unsupported("Observe")


class Counter(Collector):
    kind = "counter"
    __slots__ = ()

    def add(self, value: float, labels: Sequence[str]) -> None:
        if value < 0:
            raise MetricError(f"counter cannot decrease in value: {self.name} (Add got {value:g})")
        key = self.key(labels)
        series = self.series
        series[key] = series.get(key, 0.0) + value


class Gauge(Collector):
    kind = "gauge"
    __slots__ = ()

    def add(self, value: float, labels: Sequence[str]) -> None:
        key = self.key(labels)
        series = self.series
        series[key] = series.get(key, 0.0) + value

    def sub(self, value: float, labels: Sequence[str]) -> None:
        key = self.key(labels)
        series = self.series
        series[key] = series.get(key, 0.0) - value

    def set(self, value: float, labels: Sequence[str]) -> None:
        self.series[self.key(labels)] = value


class HistogramSeries:
    __slots__ = ("counts", "sum")

    def __init__(self, buckets: int):
        self.counts = [0] * (buckets + 1)  # per bucket, not cumulative; +Inf last
        self.sum = 0.0


class Histogram(Collector):
    kind = "histogram"
    __slots__ = ("bounds",)

    def __init__(self, name: str, spec: Spec, fqname: str):
        bounds = spec.buckets or DEFAULT_BUCKETS
        if bounds and math.isinf(bounds[-1]) and bounds[-1] > 0:
            bounds = bounds[:-1]  # +Inf is always there (client_golang drops a given one too)
        self.bounds = tuple(bounds)
        super().__init__(name, spec, fqname)

    def new_series(self) -> HistogramSeries:
        return HistogramSeries(len(self.bounds))

    def observe(self, value: float, labels: Sequence[str]) -> None:
        key = self.key(labels)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = HistogramSeries(len(self.bounds))
        # bisect_left: a value equal to a bound belongs to that bucket (le = "less or equal")
        series.counts[bisect.bisect_left(self.bounds, value)] += 1
        series.sum += value


class SummarySeries:
    """count and sum since the start; with objectives, the recent observations
    in AGE_BUCKETS slices of MAX_AGE / AGE_BUCKETS seconds each."""

    __slots__ = ("count", "sum", "slices", "slice_started", "slice_seen")

    def __init__(self, keep_samples: bool):
        self.count = 0
        self.sum = 0.0
        self.slices: list[list[float]] | None = [[]] if keep_samples else None
        self.slice_started = time.monotonic()
        self.slice_seen = 0  # observations offered to the current slice (for the reservoir)

    def observe(self, value: float) -> None:
        self.count += 1
        self.sum += value
        slices = self.slices
        if slices is None:
            return
        now = time.monotonic()
        if now - self.slice_started >= MAX_AGE / AGE_BUCKETS:
            self.rotate(now)
        current = slices[-1]
        self.slice_seen += 1
        if len(current) < SLICE_SAMPLES:
            current.append(value)
        else:
            j = random.randrange(self.slice_seen)
            if j < SLICE_SAMPLES:
                current[j] = value

    def rotate(self, now: float) -> None:
        assert self.slices is not None
        width = MAX_AGE / AGE_BUCKETS
        elapsed = int((now - self.slice_started) // width)
        for _ in range(min(elapsed, AGE_BUCKETS)):
            self.slices.append([])
        del self.slices[:-AGE_BUCKETS]
        self.slice_started += elapsed * width
        self.slice_seen = 0

    def quantiles(self, wanted: Sequence[float]) -> list[float]:
        """Nearest-rank quantiles over the window (NaN when it is empty, as client_golang)."""
        if self.slices is None:
            return []
        now = time.monotonic()
        if now - self.slice_started >= MAX_AGE / AGE_BUCKETS:
            self.rotate(now)
        samples = sorted(v for part in self.slices for v in part)
        n = len(samples)
        if not n:
            return [math.nan] * len(wanted)
        return [samples[min(n - 1, max(0, math.ceil(q * n) - 1))] for q in wanted]


class Summary(Collector):
    kind = "summary"
    __slots__ = ("quantiles",)

    def __init__(self, name: str, spec: Spec, fqname: str):
        self.quantiles = tuple(sorted(spec.objectives))
        super().__init__(name, spec, fqname)

    def new_series(self) -> SummarySeries:
        return SummarySeries(bool(self.quantiles))

    def observe(self, value: float, labels: Sequence[str]) -> None:
        key = self.key(labels)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = SummarySeries(bool(self.quantiles))
        series.observe(value)


KINDS: dict[str, type[Collector]] = {"counter": Counter, "gauge": Gauge, "histogram": Histogram,
                                     "summary": Summary}


class Registry:
    """The application collectors, by RPC name. `reserved`: exported names that
    belong to fastrr's own series (rr_http_*, ...), which no collector may take."""

    def __init__(self, reserved: frozenset[str] = frozenset()):
        self.collectors: dict[str, Collector] = {}
        self.by_fqname: dict[str, str] = {}
        self.reserved = reserved

    def get(self, name: str) -> Collector:
        collector = self.collectors.get(name)
        if collector is None:
            raise MetricError(f"undefined collector: {name}")
        return collector

    def declare(self, name: str, spec: Spec) -> bool:
        """Add a collector; False (and nothing changes) when `name` already exists:
        RoadRunner answers such a Declare with true and keeps the first one."""
        if name in self.collectors:
            return False
        fq = check_spec(name, spec)
        if fq in self.reserved:
            raise SpecError("", f"{fq!r} is the name of one of fastrr's own metrics")
        other = self.by_fqname.get(fq)
        if other is not None:
            raise SpecError("", f"collector {other!r} is already exported as {fq!r} (namespace_subsystem_name "
                                f"must differ)")
        self.collectors[name] = KINDS[spec.type](name, spec, fq)
        self.by_fqname[fq] = name
        return True

    def unregister(self, name: str) -> None:
        collector = self.get(name)
        del self.collectors[name]
        del self.by_fqname[collector.fqname]
