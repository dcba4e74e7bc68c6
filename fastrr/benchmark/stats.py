"""Medians, min–max and ratios over repeated measurements.

A point (app × connections × server) is measured `repeats` times; fpm and
fastrr alternate within a repeat, so repeat i of one server and repeat i of the
other ran back to back under the same background load. Ratios are therefore
taken per repeat (paired), and reported as their median with min–max.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    median: float
    min: float
    max: float
    n: int

    @property
    def rel_spread(self) -> float:
        """(max − min) / median: the noise the repeats show, 0.1 = 10 %."""
        if self.n < 2 or not self.median:
            return 0.0
        return (self.max - self.min) / abs(self.median)

    def to_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": self.min, "max": self.max, "n": self.n}

    @classmethod
    def from_dict(cls, doc: Mapping[str, float]) -> Spread:
        return cls(float(doc["median"]), float(doc["min"]), float(doc["max"]), int(doc.get("n", 1)))


NAN_SPREAD = Spread(math.nan, math.nan, math.nan, 0)


def median(values: Sequence[float]) -> float:
    xs = sorted(values)
    if not xs:
        return math.nan
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def spread(values: Iterable[float]) -> Spread:
    xs = [float(x) for x in values if x is not None and not math.isnan(float(x))]
    if not xs:
        return NAN_SPREAD
    return Spread(median(xs), min(xs), max(xs), len(xs))


def ratio(a: float, b: float) -> float:
    if b == 0 or math.isnan(a) or math.isnan(b):
        return math.nan
    return a / b


def paired_ratios(a: Sequence[float], b: Sequence[float]) -> Spread:
    """Spread of a[i] / b[i] over the repeats both have."""
    return spread(ratio(x, y) for x, y in zip(a, b, strict=False))


def summarize(samples: Sequence[Mapping[str, float]], keys: Iterable[str]) -> dict[str, Spread]:
    return {key: spread(s[key] for s in samples if key in s) for key in keys}


def overlaps(a: Spread, b: Spread) -> bool:
    return not (a.max < b.min or b.max < a.min)


def agrees(a: Spread, b: Spread, floor: float = 0.05) -> bool:
    """Two runs of the same point agree within the noise they report: their min–max
    ranges overlap, or their medians differ by no more than the larger relative
    spread of the two (at least `floor`, since two repeats can happen to match)."""
    if math.isnan(a.median) or math.isnan(b.median):
        return False
    if overlaps(a, b):
        return True
    tolerance = max(a.rel_spread, b.rel_spread, floor)
    return abs(a.median - b.median) <= tolerance * max(abs(a.median), abs(b.median))
