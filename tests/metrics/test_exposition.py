"""The text format fastrr writes, from synthetic inputs, read back with
prometheus-client's parser (an independent implementation)."""

from __future__ import annotations

import math

import pytest

from fastrr.metrics import registry as reg
from fastrr.metrics.builtin import write_http, write_pool
from fastrr.metrics.exposition import fmt, write_registry
from fastrr.metrics.registry import Registry, Spec
from tests.metrics.conftest import families, parse

BOUNDS = [.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60]


def text(out: list[str]) -> str:
    return "\n".join(out) + "\n"


@pytest.mark.parametrize(("value", "expected"), [
    (0, "0"), (3, "3"), (5.0, "5"), (-2.0, "-2"), (0.25, "0.25"), (0.1 + 0.2, "0.30000000000000004"),
    (123456.789, "123456.789"), (1e6, "1e+06"), (1234567.0, "1.234567e+06"), (10 ** 7, "1e+07"),
    (2 ** 53, "9.007199254740992e+15"), (1e-5, "1e-05"), (0.0001, "0.0001"), (1.5e16, "1.5e+16"),
    (1e21, "1e+21"), (-4.2e-7, "-4.2e-07"), (math.inf, "+Inf"), (-math.inf, "-Inf"), (math.nan, "NaN"),
])
def test_values_are_printed_as_go_prints_them(value: float, expected: str) -> None:
    # strconv.FormatFloat(v, 'g', -1, 64), what client_golang writes
    assert fmt(value) == expected


def test_http_snapshot_renders_rr_http_series() -> None:
    snap = {"requests": {200: {"count": 6, "sum": 0.75, "buckets": [1, 2, 0, 0, 3] + [0] * 10},
                         503: {"count": 2, "sum": 70.0, "buckets": [0] * 14 + [2]}},
            "bounds": BOUNDS, "queue": 3, "no_free_workers": 2, "uptime": 12.5}
    out: list[str] = []
    write_http(out, snap)
    samples = parse(text(out))
    fam = families(text(out))
    assert fam["rr_http_request_duration_seconds"].type == "histogram"
    assert fam["rr_http_requests_queue"].type == "gauge"

    def bucket(status: str, le: str) -> float:
        return samples[("rr_http_request_duration_seconds_bucket", frozenset({("status", status), ("le", le)}))]

    assert [bucket("200", le) for le in ("0.005", "0.01", "0.025", "0.05", "0.1", "60", "+Inf")] == \
        [1, 3, 3, 3, 6, 6, 6]
    assert bucket("503", "60") == 0 and bucket("503", "+Inf") == 2
    assert samples[("rr_http_request_duration_seconds_count", frozenset({("status", "200")}))] == 6
    assert samples[("rr_http_request_duration_seconds_sum", frozenset({("status", "503")}))] == 70.0
    assert samples[("rr_http_request_total", frozenset({("status", "200")}))] == 6
    assert samples[("rr_http_request_total", frozenset({("status", "503")}))] == 2
    assert samples[("rr_http_requests_queue", frozenset())] == 3
    assert samples[("rr_http_no_free_workers_total", frozenset())] == 2
    assert samples[("rr_http_uptime_seconds_total", frozenset())] == 12.5


def test_http_snapshot_without_requests_has_no_request_families() -> None:
    out: list[str] = []
    write_http(out, {"requests": {}, "bounds": BOUNDS, "queue": 0, "no_free_workers": 0, "uptime": 1.0})
    names = set(families(text(out)))
    assert names == {"rr_http_no_free_workers", "rr_http_requests_queue", "rr_http_uptime_seconds"}


def test_pool_series_count_states_like_roadrunner() -> None:
    rows = [{"pid": 10, "status": 1, "statusStr": "ready", "memoryUsage": 1000},
            {"pid": 11, "status": 2, "statusStr": "working", "memoryUsage": 2000},
            {"pid": 12, "status": 0, "statusStr": "inactive", "memoryUsage": 0},
            {"pid": 13, "status": 7, "statusStr": "maxJobsReached", "memoryUsage": 500}]
    out: list[str] = []
    write_pool(out, "rr_jobs", rows)
    s = parse(text(out))
    assert s[("rr_jobs_total_workers", frozenset())] == 4
    assert (s[("rr_jobs_workers_ready", frozenset())], s[("rr_jobs_workers_working", frozenset())],
            s[("rr_jobs_workers_invalid", frozenset())]) == (1, 1, 2)
    assert s[("rr_jobs_workers_memory_bytes", frozenset())] == 3500
    assert s[("rr_jobs_worker_memory_bytes", frozenset({("pid", "11")}))] == 2000
    assert s[("rr_jobs_worker_state", frozenset({("pid", "13"), ("state", "maxJobsReached")}))] == 0


def test_escaping_of_help_and_label_values() -> None:
    r = Registry()
    r.declare("g", Spec("gauge", help='line one\nback\\slash "q"', labels=("v",)))
    tricky = 'a "quoted" \\ back\nnew line é'
    r.get("g").set(1, [tricky])
    out: list[str] = []
    write_registry(out, r)
    fam = families(text(out))["g"]
    assert fam.documentation == 'line one\nback\\slash "q"'
    assert fam.samples[0].labels == {"v": tricky}


def test_every_collector_type() -> None:
    r = Registry()
    r.declare("c", Spec("counter", namespace="ns", subsystem="sub"))
    r.declare("h", Spec("histogram", buckets=(0.5, 1.0, math.inf), labels=("k",)))
    r.declare("d", Spec("histogram"))
    r.declare("s", Spec("summary", objectives={0.5: 0.05, 0.99: 0.001}))
    r.declare("plain", Spec("summary"))
    r.declare("vec", Spec("gauge", labels=("x",)))  # no series yet: not exported
    r.get("c").add(2.5, [])
    for v in (0.2, 0.5, 0.7, 3):
        r.get("h").observe(v, ["a"])
    for v in range(1, 101):
        r.get("s").observe(v, [])
    r.get("plain").observe(4, [])
    out: list[str] = []
    write_registry(out, r)
    s = parse(text(out))
    names = set(families(text(out)))
    assert "vec" not in names and "ns_sub_c" in names
    assert s[("ns_sub_c_total", frozenset())] == 2.5
    le = [s[("h_bucket", frozenset({("k", "a"), ("le", b)}))] for b in ("0.5", "1", "+Inf")]
    assert le == [2, 3, 4]  # 0.5 is in the le="0.5" bucket; the given +Inf is not doubled
    assert ("h_bucket", frozenset({("k", "a"), ("le", "+Inf")})) in s
    assert s[("h_sum", frozenset({("k", "a")}))] == pytest.approx(4.4)
    assert len([k for k in s if k[0] == "d_bucket"]) == len(reg.DEFAULT_BUCKETS) + 1
    assert s[("d_count", frozenset())] == 0  # a scalar collector is exported from the start
    assert s[("s", frozenset({("quantile", "0.5")}))] == 50
    assert s[("s", frozenset({("quantile", "0.99")}))] == 99
    assert (s[("s_count", frozenset())], s[("s_sum", frozenset())]) == (100, 5050)
    assert (s[("plain_count", frozenset())], s[("plain_sum", frozenset())]) == (1, 4)
    assert not [k for k in s if k[0] == "plain" and dict(k[1]).get("quantile")]


def test_summary_quantiles_forget_old_observations(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(reg.time, "monotonic", lambda: now[0])
    series = reg.SummarySeries(keep_samples=True)
    for v in range(100):
        series.observe(v)
    now[0] += reg.MAX_AGE / 2
    for _ in range(10):
        series.observe(1000)
    assert series.quantiles([0.5]) == [54]  # both batches are in the window: rank 55 of 110
    now[0] += reg.MAX_AGE / 2 + 1
    assert series.quantiles([0.5, 1.0]) == [1000, 1000]  # the first batch aged out
    now[0] += reg.MAX_AGE
    assert math.isnan(series.quantiles([0.5])[0])
    assert (series.count, series.sum) == (110, 4950 + 10000)  # count and sum never forget


def test_summary_memory_is_bounded() -> None:
    series = reg.SummarySeries(keep_samples=True)
    for v in range(reg.SLICE_SAMPLES * 5):
        series.observe(float(v))
    assert series.slices is not None and sum(len(s) for s in series.slices) == reg.SLICE_SAMPLES
    assert series.count == reg.SLICE_SAMPLES * 5
    q = series.quantiles([0.5])[0]
    assert reg.SLICE_SAMPLES * 1.5 < q < reg.SLICE_SAMPLES * 3.5  # a uniform sample of 0..5119
