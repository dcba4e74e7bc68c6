"""The active-worker limit's policy and its CPU sampling (fastrr/pool/active_limit.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from fastrr.pool.active_limit import ActiveLimit, ActiveLimitController, process_run_seconds


def test_no_limit_while_the_cap_would_let_every_worker_run():
    policy = ActiveLimit(cores=4)
    for workers in (4, 5):  # the cap is cores + 1
        for _ in range(5):
            assert policy.update(busy_seconds=1.0, period=0.25, workers=workers) is False
    assert policy.limit == 0


def test_saturation_must_last_before_the_limit_drops_to_one_more_than_the_cores():
    policy = ActiveLimit(cores=1, confirm=2)
    assert policy.update(0.25, 0.25, workers=4) is False and policy.limit == 0  # one saturated period
    assert policy.update(0.24, 0.25, workers=4) is True and policy.limit == 2   # the second: limited
    assert policy.update(0.25, 0.25, workers=4) is False and policy.limit == 2  # stays


def test_a_dip_between_saturated_periods_restarts_the_count():
    policy = ActiveLimit(cores=2, confirm=2)
    policy.update(0.5, 0.25, workers=8)
    policy.update(0.4, 0.25, workers=8)   # 80 %: neither saturated nor relaxed
    assert policy.update(0.5, 0.25, workers=8) is False and policy.limit == 0
    assert policy.update(0.5, 0.25, workers=8) is True and policy.limit == 3


def test_one_relaxed_period_lifts_the_limit():
    policy = ActiveLimit(cores=1, confirm=1)
    assert policy.update(0.25, 0.25, workers=4) and policy.limit == 2
    assert policy.update(0.2, 0.25, workers=4) is False and policy.limit == 2   # 80 %: hold
    assert policy.update(0.1, 0.25, workers=4) is True and policy.limit == 0    # 40 %: workers wait on I/O


def test_scaling_the_workers_down_to_the_cap_lifts_the_limit():
    policy = ActiveLimit(cores=2, confirm=1)
    assert policy.update(0.5, 0.25, workers=4) and policy.limit == 3
    assert policy.update(0.5, 0.25, workers=3) and policy.limit == 0


def test_process_run_seconds_reads_a_busy_child():
    # the child burns 0.3 s of CPU (its own clock, whatever the machine's load), then sleeps
    code = "import time\nwhile time.process_time() < 0.3: pass\nprint(time.process_time(), flush=True)\ntime.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        own = float(child.stdout.readline())
        used = process_run_seconds(child.pid)
        assert used is not None and own - 0.01 <= used < own + 0.2
    finally:
        child.kill()
        child.wait()
    assert process_run_seconds(child.pid) is None  # gone


def test_controller_applies_what_the_policy_decides():
    """The controller's loop on a scripted clock: three workers, one core; each period the
    workers use what the script says; saturated twice → limit 2, then idle → lifted."""
    applied: list[int] = []
    changes: list[tuple[int, float]] = []
    per_period = [0.04, 0.04, 0.04, 0.0]  # CPU seconds each worker uses per 0.1 s period
    state = {"wall": 0.0, "step": 0, "cpu": 0.0}

    def run_seconds(pid: int) -> float:
        return state["cpu"]

    def clock() -> float:
        return state["wall"]

    async def scenario() -> None:
        ctl = ActiveLimitController(lambda: [1, 2, 3], applied.append, lambda n, share: changes.append((n, share)),
                                    cores=1, period=0.001, run_seconds=run_seconds, front_seconds=lambda: 0.0,
                                    clock=clock)
        original = ctl._sample_workers

        def sample() -> tuple[float, int]:
            # advance the script by one period before each sample after the first
            if ctl._last:
                state["cpu"] += per_period[min(state["step"], len(per_period) - 1)]
                state["wall"] += 0.1
                state["step"] += 1
            return original()
        ctl._sample_workers = sample
        ctl.start()
        for _ in range(200):
            await asyncio.sleep(0.001)
            if len(applied) >= 2:
                break
        await ctl.stop()

    asyncio.run(scenario())
    assert applied == [2, 0]
    assert changes[0][0] == 2 and changes[0][1] == pytest.approx(1.2)
    assert changes[1] == (0, 0.0)


def test_config_key():
    from fastrr.config.schema import ACTIVE_LIMIT_AUTO, parse_active_limit
    from fastrr.config.units import ConfigError

    assert parse_active_limit("k", "auto") == ACTIVE_LIMIT_AUTO
    assert parse_active_limit("k", " Off ") == 0 and parse_active_limit("k", False) == 0
    assert parse_active_limit("k", True) == ACTIVE_LIMIT_AUTO
    assert parse_active_limit("k", 3) == 3 and parse_active_limit("k", "2") == 2
    for bad in ("fast", -1, 1.5, [1]):
        try:
            parse_active_limit("http.pool.active_limit", bad)
        except ConfigError as exc:
            assert "http.pool.active_limit" in str(exc) and "auto, off or a number" in str(exc)
        else:
            raise AssertionError(f"{bad!r} accepted")
