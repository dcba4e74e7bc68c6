"""http.pool.active_limit on either front, end to end with real PHP workers:
a fixed cap serializes requests beyond it; `auto` caps the running workers at
one more than the server's cores while its processes saturate them (CPU-bound requests) and
lifts the cap as soon as they do not (requests waiting on I/O run side by
side again); `off` never caps."""

from __future__ import annotations

import concurrent.futures
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest


def sleep_all(server, n: int, ms: int) -> float:
    """n concurrent /sleep requests; the wall time until the last answer."""
    def one(_: int) -> int:
        return httpx.get(server.url(f"/sleep?ms={ms}"), timeout=30).status_code

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        assert list(pool.map(one, range(n))) == [200] * n
    return time.monotonic() - started


def test_fixed_limit_serializes_beyond_it(fastrr):
    server = fastrr.start({"http": {"pool": {"num_workers": 3, "active_limit": 1}}}, workers=3)
    server.wait_workers(3)
    assert sleep_all(server, 3, 300) >= 0.85  # one at a time: 3 x 300 ms
    pids = {httpx.get(server.url("/pid")).json()["pid"] for _ in range(6)}
    assert len(pids) == 1  # sequential requests keep going to the same (hot) worker


def test_off_runs_every_worker(fastrr):
    server = fastrr.start({"http": {"pool": {"num_workers": 3, "active_limit": "off"}}}, workers=3)
    server.wait_workers(3)
    assert sleep_all(server, 3, 400) < 1.0  # side by side


def test_bad_value_is_a_config_error(fastrr):
    with pytest.raises(AssertionError, match="http.pool.active_limit"):
        fastrr.start({"http": {"pool": {"active_limit": "sometimes"}}})


@contextmanager
def pinned(cpus: set[int]) -> Iterator[None]:
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def log_lines(server) -> list[dict]:
    out = []
    for line in server.output().splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def wait_log(server, msg: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in log_lines(server):
            if entry.get("msg") == msg:
                return entry
        time.sleep(0.05)
    raise AssertionError(f"no {msg!r} line within {timeout}s:\n{server.output()[-3000:]}")


def test_auto_caps_cpu_bound_load_at_the_cores_and_lifts_for_io(fastrr):
    cpus = sorted(os.sched_getaffinity(0))
    load_cpus = {cpus[-1]} if len(cpus) > 1 else {cpus[0]}  # the load beside the server where possible
    with pinned({cpus[0]}):  # the server and its workers inherit: one core
        server = fastrr.start({"http": {"pool": {"num_workers": 4}},
                               "logs": {"level": "debug", "encoding": "json"}}, workers=4)
        server.wait_workers(4)
    stop = threading.Event()

    def burn() -> int:
        n = 0
        with httpx.Client(base_url=server.base, timeout=30) as client:
            while not stop.is_set() and n < 5000:
                assert client.get("/burn?ms=3").status_code == 200
                n += 1
        return n

    with pinned(load_cpus), concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(burn) for _ in range(8)]
        try:
            capped = wait_log(server, "cores saturated: at most this many workers run requests at once", 15)
        finally:
            stop.set()
        served = sum(f.result() for f in futures)
    assert capped["active_limit"] == 2 and capped["cpu_share"] >= 0.9 and served > 0
    lifted = wait_log(server, "active worker limit lifted", 5)
    assert lifted["cpu_share"] < 0.75
    # waiting on I/O: the four requests run side by side (serialized they would take 2 s)
    assert sleep_all(server, 4, 500) < 1.5
    # nothing was lost or answered with an error meanwhile
    assert not [e for e in log_lines(server) if e.get("msg") == "http log" and e.get("status", 200) >= 500]
