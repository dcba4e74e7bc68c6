"""Leak-trend arithmetic (fastrr/pool/leak.py) and the pool keys of issue 17:
the O(1) sliding fit equals a direct least-squares fit, a line is reported, a
single step or noise is not, and the config keys parse under every pool section."""

from __future__ import annotations

import random

import pytest

from fastrr.config import ConfigError
from fastrr.config.schema import build_config
from fastrr.pool.leak import LEAK_MIN_FIT, LeakTrend, leaking

BASE = {"version": "3", "server": {"command": "php w.php"}, "http": {"address": "127.0.0.1:8080"}}
PAGE = 4096
MB = 1 << 20


def direct_fit(ys: list[int]) -> tuple[float, float]:
    """Slope and r² computed the textbook way, for comparison."""
    n = len(ys)
    mx, my = (n - 1) / 2, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in enumerate(ys))
    sxx = sum((x - mx) ** 2 for x in range(n))
    syy = sum((y - my) ** 2 for y in ys)
    return sxy / sxx, (sxy * sxy / (sxx * syy) if syy and sxy > 0 else 0.0)


def test_sliding_sums_match_a_direct_fit():
    rng = random.Random(17)
    trend = LeakTrend(50)
    samples = []
    for i in range(400):
        pages = 5000 + i * 3 + rng.randint(-40, 40) + (2000 if i > 200 else 0)
        samples.append(pages)
        full = trend.add(pages)
        assert full == (i >= 49)
        if full:
            window = [p - samples[0] for p in samples[-50:]]
            slope, fit = direct_fit(window)
            assert trend.slope() == pytest.approx(slope, rel=1e-9, abs=1e-9)
            assert trend.fit() == pytest.approx(fit, rel=1e-9, abs=1e-9)


def test_a_steady_climb_is_reported_with_its_rate_and_the_window_starts_over():
    trend = LeakTrend(50)
    limit = 512 * MB
    found = None
    for i in range(50):
        found = leaking(trend, (30 * MB + i * 100 * 1024) // PAGE, PAGE, limit, 2 * MB, 10_000)
    assert found is not None
    rate, left = found
    assert rate == pytest.approx(100 * 1024, rel=0.05)
    assert left == pytest.approx((limit - 30 * MB - 49 * 100 * 1024) / rate, rel=0.01)
    assert trend.n == 0  # reported at most once per window


def test_far_from_the_limit_a_climb_waits_for_the_horizon():
    trend = LeakTrend(50)
    found = [leaking(trend, (30 * MB + i * 100 * 1024) // PAGE, PAGE, 1024 * MB, 2 * MB, 1000) for i in range(200)]
    assert not any(found)  # ~9000 requests to go
    for i in range(200, 20000):
        hit = leaking(trend, (30 * MB + i * 100 * 1024) // PAGE, PAGE, 1024 * MB, 2 * MB, 1000)
        if hit:
            assert hit[1] <= 1000
            break
    else:
        raise AssertionError("never reported")


@pytest.mark.parametrize("where", range(0, 50, 5))
def test_one_spike_held_flat_is_not_a_trend(where):
    """A request that allocates 20 MB and keeps it: a step anywhere in the window
    fits a line with r² <= 0.75 (< LEAK_MIN_FIT)."""
    rng = random.Random(where)
    trend = LeakTrend(50)
    for i in range(150):
        pages = (30 * MB + (20 * MB if i >= 50 + where else 0)) // PAGE + rng.randint(0, 3)
        assert leaking(trend, pages, PAGE, 64 * MB, 2 * MB, 10_000) is None
        if trend.n == 50:
            assert trend.fit() < LEAK_MIN_FIT


def test_noise_and_slow_growth_below_the_minimum_climb_are_not_reported():
    rng = random.Random(3)
    trend = LeakTrend(100)
    for i in range(1000):
        # 8 KB a request: 0.8 MB over the window, under a 2 MB minimum climb
        pages = (30 * MB + i * 8 * 1024) // PAGE + rng.randint(-64, 64)
        assert leaking(trend, pages, PAGE, 64 * MB, 2 * MB, 10_000) is None


def pool_of(raw: dict) -> object:
    return build_config(raw, "/tmp").http.pool


def test_leak_recycle_defaults_on_with_max_worker_memory_only():
    assert not pool_of(BASE).leak_recycle
    on = pool_of({**BASE, "http": {**BASE["http"], "pool": {"supervisor": {"max_worker_memory": 128}}}})
    assert on.leak_recycle and on.leak_window == 100 and on.leak_min_climb == 2 and on.leak_horizon == 1000
    off = pool_of({**BASE, "http": {**BASE["http"], "pool": {"supervisor": {"max_worker_memory": 128,
                                                                          "leak_recycle": False}}}})
    assert not off.leak_recycle
    tuned = pool_of({**BASE, "http": {**BASE["http"], "pool": {"supervisor": {
        "max_worker_memory": 128, "leak_window": "50", "leak_min_climb": 4, "leak_horizon": 200}}}})
    assert (tuned.leak_window, tuned.leak_min_climb, tuned.leak_horizon) == (50, 4, 200)


@pytest.mark.parametrize("sup, message", [
    ({"leak_recycle": True}, "http.pool.supervisor.leak_recycle: needs supervisor.max_worker_memory"),
    ({"max_worker_memory": 64, "leak_window": 5}, "http.pool.supervisor.leak_window: expected 10 to 10000"),
    ({"max_worker_memory": 64, "leak_min_climb": -1}, "http.pool.supervisor.leak_min_climb: expected an integer"),
])
def test_leak_keys_errors_name_the_key(sup, message):
    with pytest.raises(ConfigError, match="^" + message.replace(".", r"\.")):
        pool_of({**BASE, "http": {**BASE["http"], "pool": {"supervisor": sup}}})


def test_debug_state_is_read_under_every_pool_section():
    raw = {**BASE, "http": {**BASE["http"], "pool": {"debug_state": True, "debug_state_classes": "App\\,Domain\\"}},
           "jobs": {"pool": {"debug_state": "true"}}}
    cfg = build_config(raw, "/tmp")
    assert cfg.http.pool.debug_state and cfg.http.pool.debug_state_classes == ["App\\", "Domain\\"]
    assert cfg.sections["jobs"].pool.debug_state and cfg.sections["jobs"].pool.debug_state_classes == []
    assert not build_config(BASE, "/tmp").http.pool.debug_state
