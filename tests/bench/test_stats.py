"""Medians, min–max, paired ratios and the agreement rule used by --compare."""

from __future__ import annotations

import math

import pytest

from fastrr.benchmark import stats


def test_median_odd_even_empty():
    assert stats.median([3, 1, 2]) == 2
    assert stats.median([4, 1, 3, 2]) == 2.5
    assert math.isnan(stats.median([]))


def test_spread_ignores_nan_and_none():
    s = stats.spread([10.0, float("nan"), 12.0, None, 11.0])
    assert (s.median, s.min, s.max, s.n) == (11.0, 10.0, 12.0, 3)
    assert s.rel_spread == pytest.approx(2 / 11)
    assert stats.spread([]).n == 0


def test_single_value_has_no_spread():
    s = stats.spread([5.0])
    assert s.rel_spread == 0.0 and s.min == s.max == s.median == 5.0


def test_paired_ratios_pair_by_repeat():
    # repeat-wise: 20/10, 33/11, 24/12 → 2.0, 3.0, 2.0
    s = stats.paired_ratios([20, 33, 24], [10, 11, 12])
    assert (s.median, s.min, s.max, s.n) == (2.0, 2.0, 3.0, 3)


def test_ratio_guards():
    assert math.isnan(stats.ratio(1.0, 0.0))
    assert math.isnan(stats.ratio(float("nan"), 1.0))
    assert stats.paired_ratios([1.0], [0.0]).n == 0


def test_summarize_and_round_trip():
    rows = [{"rps": 100.0, "p99": 5.0}, {"rps": 120.0, "p99": 4.0}, {"rps": 110.0}]
    out = stats.summarize(rows, ["rps", "p99", "missing"])
    assert out["rps"].median == 110.0 and out["p99"].n == 2 and out["missing"].n == 0
    assert stats.Spread.from_dict(out["rps"].to_dict()) == out["rps"]


def test_agreement_rule():
    a = stats.Spread(100.0, 95.0, 105.0, 3)
    assert stats.agrees(a, stats.Spread(103.0, 101.0, 110.0, 3))       # ranges overlap
    assert stats.agrees(a, stats.Spread(109.0, 108.0, 110.0, 3))       # no overlap, but 8 % apart ≤ a's 10 % spread
    assert not stats.agrees(a, stats.Spread(150.0, 149.0, 151.0, 3))   # far outside both
    tight = stats.Spread(100.0, 100.0, 100.0, 3)
    assert stats.agrees(tight, stats.Spread(104.0, 104.0, 104.0, 3))   # the 5 % floor
    assert not stats.agrees(tight, stats.Spread(110.0, 110.0, 110.0, 3))
    assert not stats.agrees(stats.NAN_SPREAD, a)
