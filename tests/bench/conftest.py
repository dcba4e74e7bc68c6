"""A synthetic results document, shaped like runner.run's, for report/plot/compare tests."""

from __future__ import annotations

import pytest

from fastrr.benchmark import runner
from fastrr.benchmark.apps import APPS
from fastrr.benchmark.env import Layout


def sample(rps: float, p99: float = 10.0, cpu: float = 50.0, front: float = 30.0) -> dict[str, float]:
    return {"rps": rps, "p50": p99 / 3, "p75": p99 / 2, "p90": p99 / 1.5, "p99": p99, "p99.9": p99 * 1.2,
            "mean_ms": p99 / 3, "cpu_us": cpu, "front_us": front, "php_us": cpu - front, "server_cores": 0.9,
            "rss_mib": 80.0, "pss_mib": 40.0, "non_2xx": 0.0, "socket_errors": 0.0, "requests": rps,
            "other_load_cores": 0.1, "wrk_cpu_us": 5.0, "ctx_switches": 4.0}


def make_doc(scale: float = 1.0) -> dict:
    layout = Layout("pinned", "0", "1")
    points = []
    for name, fpm_rps, fastrr_rps in (("hello", 10000, 31000), ("slim", 1600, 5000)):
        for conns in (8, 64):
            samples = {
                "fpm": [sample(fpm_rps * scale * f, p99=12.0) for f in (0.97, 1.0, 1.03)],
                "fastrr": [sample(fastrr_rps * scale * f, p99=3.5, cpu=30, front=4) for f in (0.98, 1.0, 1.02)],
            }
            points.append(runner.point_record(layout, APPS[name], conns, samples))
    return {
        "schema": runner.SCHEMA, "started": "2026-01-01T10:00:00+00:00",
        "options": {"quick": False, "repeats": 3, "duration": 5, "warmup": 1, "workers": 4, "threads": 1,
                    "connections": [8, 64]},
        "environment": {"date": "2026-01-01T10:00:00+00:00", "cpu": "Test CPU", "cpus": 2, "memory_gib": 4.0,
                        "os": "Debian", "kernel": "6.1", "python": "3.11", "php": "PHP 8.2.0", "nginx": "1.22.1",
                        "wrk": "4.1.0", "fastrr": "abc123", "loadavg_start": [0.1, 0, 0], "loadavg_end": [0.5, 0, 0]},
        "layouts": [{"mode": "pinned", "description": layout.describe()}],
        "points": points, "checks": [], "failures": [], "profiles": [],
        "targets": runner.evaluate_targets(points),
    }


@pytest.fixture
def doc() -> dict:
    return make_doc()
