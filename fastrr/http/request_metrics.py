"""RoadRunner's `http_metrics` middleware: requests counted by status, with a
fixed-bucket duration histogram, for the metrics plugin to read at scrape time.

On the C engine the counting happens in the engine thread (csrc/engine_loop.c
metrics_observe, read with Engine.metrics()); this class is the Python front's
equal, with the same buckets and the same snapshot shape. Neither exists unless
`http.middleware` lists `http_metrics`, so a config without it pays nothing.
"""

from __future__ import annotations

import bisect
import time
from typing import Any

NAME = "http_metrics"
# rr_http_request_duration_seconds's bounds (roadrunner-server/prometheus), seconds.
BOUNDS = (.005, .01, .025, .05, .1, .25, .5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)


def enabled(middleware: list[str]) -> bool:
    return NAME in middleware


def without(middleware: list[str]) -> list[str]:
    """The middleware list minus http_metrics, which counts rather than filters."""
    return [m for m in middleware if m != NAME]


class RequestMetrics:
    __slots__ = ("by_status", "no_free_workers")

    def __init__(self) -> None:
        # status → [count, sum of seconds, per-bucket counts (not cumulative, +Inf last)]
        self.by_status: dict[int, list[Any]] = {}
        self.no_free_workers = 0

    def observe(self, status: int, seconds: float) -> None:
        entry = self.by_status.get(status)
        if entry is None:
            entry = self.by_status[status] = [0, 0.0, [0] * (len(BOUNDS) + 1)]
        seconds = max(seconds, 0.0)
        entry[0] += 1
        entry[1] += seconds
        entry[2][bisect.bisect_left(BOUNDS, seconds)] += 1  # le: a value on a bound is in that bucket

    def snapshot(self) -> dict[str, Any]:
        """The shape Engine.metrics() returns."""
        return {"requests": {s: {"count": c, "sum": t, "buckets": list(b)} for s, (c, t, b) in self.by_status.items()},
                "bounds": list(BOUNDS), "no_free_workers": self.no_free_workers}


class Uptime:
    """rr_http_uptime_seconds: seconds since the http plugin started."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def seconds(self) -> float:
        return time.monotonic() - self.started
