"""fastrr's own series (rr-plugins.md §3.2), read from the other plugins at scrape time.

Nothing here runs between scrapes: the pools, the jobs counters and the http
front's request counts already exist for their own reasons, and are only
read when Prometheus asks.

- every worker pool (its informer.Workers rows): rr_<pool>_total_workers,
  _workers_memory_bytes, _worker_state{state,pid}, _worker_memory_bytes{pid},
  _workers_ready, _workers_working, _workers_invalid (rr_http_*, rr_jobs_*);
- the jobs plugin's counters: rr_jobs_push_ok, push_err, jobs_ok, jobs_err,
  jobs_requeue; and fastrr's per pipeline, from the jobs.Stat rows:
  fastrr_jobs_pipeline_{pushed,acked,retried,failed}_total and _{active,delayed,
  reserved,ready}{driver,pipeline};
- the http plugin's metrics_snapshot(), with `http_metrics` in
  http.middleware: rr_http_request_total{status},
  rr_http_request_duration_seconds{status}, rr_http_requests_queue,
  rr_http_no_free_workers_total, rr_http_uptime_seconds;
- the grpc plugin's metrics_snapshot(): rr_grpc_request_total{grpc_method,
  status_code}, rr_grpc_request_duration_seconds{grpc_method},
  rr_grpc_requests_queue (RoadRunner's grpc metrics.go names);
- this process: process_* (client_golang's process collector's names).

RoadRunner exports the jobs counters with TYPE gauge; fastrr says counter
(they only grow), which PromQL treats the same.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterable
from typing import Any

from fastrr.metrics.exposition import family, histogram, labels_text, sample

WORKER_SERIES = ("total_workers", "workers_memory_bytes", "worker_state", "worker_memory_bytes",
                 "workers_ready", "workers_working", "workers_invalid")
JOBS_COUNTERS = (
    ("push_ok", "Jobs pushed."),
    ("push_err", "Jobs whose push failed."),
    ("jobs_ok", "Jobs a worker answered with ack."),
    ("jobs_err", "Job runs that failed: worker error, crash, timeout, nack or fail."),
    ("jobs_requeue", "Jobs a worker answered with requeue."),
)
PIPELINE_COUNTERS = (("pushed", "Jobs pushed to the pipeline."),
                     ("acked", "Jobs acked (or dropped for good) in the pipeline."),
                     ("retried", "Jobs put back in the pipeline to run again."),
                     ("failed", "Job runs that failed (worker error, crash, timeout, nack or fail), retried or not."))
PIPELINE_GAUGES = (("active", "Jobs waiting to run."), ("delayed", "Jobs not due yet."),
                   ("reserved", "Jobs running now (in flight)."), ("ready", "1 while the pipeline consumes."))
HTTP_SERIES = ("request_total", "request_duration_seconds", "requests_queue", "no_free_workers_total",
               "uptime_seconds")
GRPC_SERIES = ("request_total", "request_duration_seconds", "requests_queue")
PROCESS_SERIES = ("process_cpu_seconds_total", "process_open_fds", "process_max_fds", "process_virtual_memory_bytes",
                  "process_resident_memory_bytes", "process_start_time_seconds")
READY, WORKING = 1, 2
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def reserved_names() -> frozenset[str]:
    """Names no application collector may take (the bundled plugins' series)."""
    names = {f"rr_{pool}_{s}" for pool in ("http", "jobs", "grpc", "tcp", "temporal") for s in WORKER_SERIES}
    names |= {f"rr_jobs_{name}" for name, _ in JOBS_COUNTERS}
    names |= {f"fastrr_jobs_pipeline_{name}_total" for name, _ in PIPELINE_COUNTERS}
    names |= {f"fastrr_jobs_pipeline_{name}" for name, _ in PIPELINE_GAUGES}
    names |= {f"rr_http_{s}" for s in HTTP_SERIES}
    names |= {f"rr_grpc_{s}" for s in GRPC_SERIES}
    return frozenset(names | set(PROCESS_SERIES))


def metric_prefix(pool: str) -> str:
    """rr_http for the http pool; a pool name with other characters is made a valid name."""
    return "rr_" + "".join(c if c.isalnum() or c == "_" else "_" for c in pool)


def worker_rows(pool: Any) -> list[dict[str, Any]]:
    """informer.Workers rows without what the series do not use: CPUPercent alone
    reads /proc/<pid>/stat, ~13 µs a worker, more than the rest of a row. The same
    `status` and `rss()` informer uses; an engine pool first refreshes who is busy."""
    sync = getattr(pool, "sync_from_engine", None)
    if sync is not None:
        sync()
    rows = []
    for pid in sorted(pool.workers):
        worker = pool.workers[pid]
        status = worker.status
        rows.append({"pid": pid, "status": int(status), "statusStr": status.label, "memoryUsage": worker.rss()})
    return rows


def write_pool(out: list[str], prefix: str, rows: Iterable[dict[str, Any]]) -> None:
    """The seven worker series of one pool, from its informer.Workers rows: every
    state but ready and working counts as invalid (booting, stopping, ...), as in RoadRunner."""
    rows = list(rows)
    memory = ready = working = 0
    family(out, f"{prefix}_worker_memory_bytes", "gauge", "Resident memory of one worker.")
    for row in rows:
        sample(out, f"{prefix}_worker_memory_bytes", row["memoryUsage"], f'{{pid="{row["pid"]}"}}')
        memory += row["memoryUsage"]
        status = row["status"]
        if status == READY:
            ready += 1
        elif status == WORKING:
            working += 1
    family(out, f"{prefix}_worker_state", "gauge", "One series per worker; its state is the state label.")
    for row in rows:
        sample(out, f"{prefix}_worker_state", 0, f'{{pid="{row["pid"]}",state="{row["statusStr"]}"}}')
    for name, value, text in (("total_workers", len(rows), "Worker processes of the pool, in any state."),
                              ("workers_invalid", len(rows) - ready - working,
                               "Workers neither ready nor working (booting, stopping, recycled)."),
                              ("workers_memory_bytes", memory, "Resident memory of all the pool's workers."),
                              ("workers_ready", ready, "Workers waiting for work."),
                              ("workers_working", working, "Workers busy with a request or job.")):
        family(out, f"{prefix}_{name}", "gauge", text)
        sample(out, f"{prefix}_{name}", value)


def write_jobs(out: list[str], jobs: Any) -> None:
    """rr_jobs_* counters and the per-pipeline series, from the jobs plugin."""
    dispatcher = jobs.dispatcher
    values = {"push_ok": jobs.push_ok, "push_err": jobs.push_err,
              "jobs_ok": dispatcher.jobs_ok if dispatcher else 0,
              "jobs_err": dispatcher.jobs_err if dispatcher else 0,
              "jobs_requeue": dispatcher.jobs_requeue if dispatcher else 0}
    for name, text in JOBS_COUNTERS:
        family(out, f"rr_jobs_{name}", "counter", text)
        sample(out, f"rr_jobs_{name}", values[name])
    rows = jobs.states()
    if not rows:
        return
    for key, text in PIPELINE_COUNTERS:
        family(out, f"fastrr_jobs_pipeline_{key}_total", "counter", text)
        for row in rows:
            sample(out, f"fastrr_jobs_pipeline_{key}_total", row[key], _pipeline(row))
    for key, text in PIPELINE_GAUGES:
        family(out, f"fastrr_jobs_pipeline_{key}", "gauge", text)
        for row in rows:
            sample(out, f"fastrr_jobs_pipeline_{key}", int(row[key]), _pipeline(row))


def _pipeline(row: dict[str, Any]) -> str:
    return labels_text(("driver", "pipeline"), (row["driver"], row["pipeline"]))


def write_http(out: list[str], snap: dict[str, Any]) -> None:
    """The http_metrics series from the http plugin's metrics_snapshot():
    {"requests": {status: {"count", "sum", "buckets"}}, "bounds", "queue", "no_free_workers", "uptime"};
    `buckets` are per-bucket counts (not cumulative), len(bounds) + 1 with +Inf last."""
    family(out, "rr_http_no_free_workers_total", "counter", "Requests that found no free worker in time.")
    sample(out, "rr_http_no_free_workers_total", snap.get("no_free_workers", 0))
    requests = snap.get("requests") or {}
    statuses = sorted(requests)
    if statuses:
        bounds = snap["bounds"]
        family(out, "rr_http_request_duration_seconds", "histogram", "HTTP request duration, by status.")
        for status in statuses:
            entry = requests[status]
            histogram(out, "rr_http_request_duration_seconds", bounds, entry["buckets"], entry["sum"],
                      ("status",), (str(status),))
        family(out, "rr_http_request_total", "counter", "HTTP requests handled, by status.")
        for status in statuses:
            sample(out, "rr_http_request_total", requests[status]["count"], f'{{status="{status}"}}')
    family(out, "rr_http_requests_queue", "gauge", "Requests waiting for a free worker.")
    sample(out, "rr_http_requests_queue", snap.get("queue", 0))
    family(out, "rr_http_uptime_seconds", "counter", "Seconds since the http plugin started.")
    sample(out, "rr_http_uptime_seconds", float(snap.get("uptime", 0.0)))


def write_grpc(out: list[str], snap: dict[str, Any]) -> None:
    """The grpc request series from the grpc plugin's metrics_snapshot():
    {"queue", "total": {(grpc_method, status_code): count}, "bounds",
    "durations": {grpc_method: (per-bucket counts, +Inf last; sum)}}."""
    family(out, "rr_grpc_requests_queue", "gauge", "gRPC calls in flight.")
    sample(out, "rr_grpc_requests_queue", snap.get("queue", 0))
    total = snap.get("total") or {}
    if total:
        family(out, "rr_grpc_request_total", "counter", "gRPC calls handled, by method and status code.")
        for (method, code), count in sorted(total.items()):
            sample(out, "rr_grpc_request_total", count, labels_text(("grpc_method", "status_code"), (method, code)))
    durations = snap.get("durations") or {}
    if durations:
        family(out, "rr_grpc_request_duration_seconds", "histogram", "gRPC call duration, by method.")
        for method, (counts, seconds) in sorted(durations.items()):
            histogram(out, "rr_grpc_request_duration_seconds", snap["bounds"], counts, seconds,
                      ("grpc_method",), (method,))


class ProcessStats:
    """process_* series of this fastrr process (client_golang's process collector's names)."""

    def __init__(self) -> None:
        try:
            import psutil

            self.started = psutil.Process().create_time()
        except Exception:  # a start time is a nicety, never a reason to fail
            self.started = time.time()

    def write(self, out: list[str]) -> None:
        times = os.times()
        try:
            with open("/proc/self/statm", "rb") as fh:
                vms, rss = (int(x) * _PAGE_SIZE for x in fh.read().split()[:2])
        except (OSError, ValueError):
            vms = rss = 0
        try:
            fds = len(os.listdir("/proc/self/fd"))
        except OSError:
            fds = 0
        for name, kind, value, text in (
                ("process_cpu_seconds_total", "counter", times.user + times.system, "User and system CPU seconds."),
                ("process_max_fds", "gauge", resource.getrlimit(resource.RLIMIT_NOFILE)[0],
                 "Open file descriptor limit."),
                ("process_open_fds", "gauge", fds, "Open file descriptors."),
                ("process_resident_memory_bytes", "gauge", rss, "Resident memory."),
                ("process_start_time_seconds", "gauge", self.started, "Start time, seconds since the epoch."),
                ("process_virtual_memory_bytes", "gauge", vms, "Virtual memory.")):
            family(out, name, kind, text)
            sample(out, name, value)
