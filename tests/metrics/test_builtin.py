"""fastrr's own series on a real server: worker gauges per pool (as
informer.Workers reports the pool), the jobs counters after real jobs ran,
and the http_metrics request series on both HTTP fronts."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import ServerFactory, free_port, worker_cmd
from tests.jobs.conftest import JobsServer, jobs_config
from tests.metrics.conftest import MetricsFactory, MetricsServer, families, parse

STATES = {1: "ready", 2: "working"}


def wait_for(check: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def pool_view(server: MetricsServer, prefix: str) -> dict[str, Any]:
    s = server.samples()
    states = {dict(k[1])["pid"]: dict(k[1])["state"] for k in s if k[0] == f"{prefix}_worker_state"}
    memory = {dict(k[1])["pid"]: v for k, v in s.items() if k[0] == f"{prefix}_worker_memory_bytes"}
    return {"states": states, "memory": memory, **{name: s[(f"{prefix}_{name}", frozenset())] for name in (
        "total_workers", "workers_memory_bytes", "workers_ready", "workers_working", "workers_invalid")}}


def informer(server: MetricsServer, plugin: str) -> dict[str, str]:
    return {str(w["pid"]): w["statusStr"] for w in server.rpc("informer.Workers", plugin)["workers"]}


def test_http_worker_gauges_match_informer_workers(metrics: MetricsFactory) -> None:
    server = metrics.start(workers=2)
    view = pool_view(server, "rr_http")
    workers = informer(server, "http")
    assert set(view["states"]) == set(workers) == {str(p) for p in server.server.worker_pids()}
    assert view["states"] == workers
    assert view["total_workers"] == 2 and view["workers_ready"] == 2
    assert view["workers_working"] == 0 and view["workers_invalid"] == 0
    assert all(m > 1_000_000 for m in view["memory"].values()), view["memory"]  # a PHP process's RSS
    assert view["workers_memory_bytes"] == pytest.approx(sum(view["memory"].values()), rel=0.2)
    assert families(server.scrape())["rr_http_worker_state"].type == "gauge"

    assert server.rpc("informer.AddWorker", "http") is True
    assert wait_for(lambda: pool_view(server, "rr_http")["workers_ready"] == 3)
    view = pool_view(server, "rr_http")
    assert view["total_workers"] == 3 and view["states"] == informer(server, "http")
    # no http_metrics in http.middleware: no request series (and no counting on the request path)
    assert not [k for k in server.samples() if k[0].startswith("rr_http_request")]


@pytest.mark.parametrize("engine", ["python", "c"])
def test_http_request_series_with_http_metrics(metrics: MetricsFactory, engine: str) -> None:
    cfg, metrics_port, http_port = metrics.config(workers=2)
    cfg["http"].update({"middleware": ["http_metrics"], "engine": engine})
    srv = metrics.factory.start(raw_config=yaml.safe_dump(cfg))
    server = MetricsServer(srv, metrics_port, http_port)
    server.wait_output("fastrr started")
    base = f"http://127.0.0.1:{http_port}"
    with httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(5):
            assert client.get("/pid").status_code == 200
        for _ in range(3):  # the worker answers the posted calls: 200 as well
            assert client.post("/", json=[["add", "nope", 1]]).status_code == 200
    s = server.samples()
    assert s[("rr_http_request_total", frozenset({("status", "200")}))] == 8
    assert s[("rr_http_request_duration_seconds_count", frozenset({("status", "200")}))] == 8
    assert s[("rr_http_request_duration_seconds_bucket", frozenset({("status", "200"), ("le", "+Inf")}))] == 8
    assert s[("rr_http_request_duration_seconds_bucket", frozenset({("status", "200"), ("le", "60")}))] == 8
    assert 0 < s[("rr_http_request_duration_seconds_sum", frozenset({("status", "200")}))] < 8 * 60
    les = sorted(float(dict(k[1])["le"]) for k in s if k[0] == "rr_http_request_duration_seconds_bucket")
    assert les == [.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60, float("inf")]
    assert s[("rr_http_requests_queue", frozenset())] == 0
    assert s[("rr_http_no_free_workers_total", frozenset())] == 0
    assert s[("rr_http_uptime_seconds_total", frozenset())] > 0
    assert httpx.get(base + "/pid", timeout=10).status_code == 200
    assert server.value("rr_http_request", status="200") == 9


def test_jobs_counters_after_real_jobs(fastrr: ServerFactory, tmp_path: Any) -> None:
    metrics_port = free_port()
    cfg = jobs_config({"a": {"driver": "memory"}, "b": {"driver": "memory"}}, consume=["a", "b"], workers=2)
    cfg["metrics"] = {"address": f"127.0.0.1:{metrics_port}"}
    log = tmp_path / "jobs.log"
    srv = fastrr.start(raw_config=yaml.safe_dump(cfg), env={"JOBS_LOG": str(log)})
    js = JobsServer(srv, log)
    js.wait_output("fastrr started")
    server = MetricsServer(srv, metrics_port, None)
    before = server.samples()
    assert all(before[(f"rr_jobs_{n}_total", frozenset())] == 0
               for n in ("push_ok", "push_err", "jobs_ok", "jobs_err", "jobs_requeue"))

    js.push("a", ["ack"] * 5 + ["requeue"] * 2)
    js.push("b", ["fail", "nack-requeue"])
    with pytest.raises(Exception, match="no such pipeline"):
        js.push("missing", ["ack"])
    js.wait_received(5 + 2 * 2 + 1 + 2)  # a requeue and a nack-requeue run twice
    js.wait_idle()

    def counters() -> dict[str, float]:
        s = server.samples()
        return {n: s[(f"rr_jobs_{n}_total", frozenset())]
                for n in ("push_ok", "push_err", "jobs_ok", "jobs_err", "jobs_requeue")}

    expected = {"push_ok": 9, "push_err": 1, "jobs_ok": 5 + 2 + 1, "jobs_err": 2, "jobs_requeue": 2}
    assert wait_for(lambda: counters() == expected), counters()
    s = server.samples()

    def pipe(name: str, pipeline: str) -> float:
        return s[(name, frozenset({("pipeline", pipeline), ("driver", "memory")}))]

    assert pipe("fastrr_jobs_pipeline_pushed_total", "a") == 7 and pipe("fastrr_jobs_pipeline_pushed_total", "b") == 2
    assert pipe("fastrr_jobs_pipeline_acked_total", "a") == 7
    assert pipe("fastrr_jobs_pipeline_acked_total", "b") == 2  # the failed one is dropped for good
    assert pipe("fastrr_jobs_pipeline_retried_total", "a") == 2 and pipe("fastrr_jobs_pipeline_retried_total", "b") == 1
    # b's fail and its first nack-requeue run failed; nothing in a did
    assert pipe("fastrr_jobs_pipeline_failed_total", "b") == 2 and pipe("fastrr_jobs_pipeline_failed_total", "a") == 0
    assert pipe("fastrr_jobs_pipeline_reserved", "a") == 0 and pipe("fastrr_jobs_pipeline_active", "b") == 0
    assert pipe("fastrr_jobs_pipeline_ready", "a") == 1
    # the consumers' pool has its worker series too, matching informer.Workers
    view = pool_view(server, "rr_jobs")
    assert view["total_workers"] == 2 and view["states"] == informer(server, "jobs")
    assert not [k for k in s if k[0].startswith("rr_http_")]  # no http plugin, no http series
    assert families(server.scrape())["rr_jobs_jobs_ok"].type == "counter"


def test_scrape_endpoint_resists_bad_clients(metrics: MetricsFactory) -> None:
    import socket

    server = metrics.start(http=False)

    def raw(data: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", server.metrics_port), timeout=5) as sock:
            sock.sendall(data)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)

    assert raw(b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(b"GET / HTTP/1.1\r\nX-Big: " + b"x" * 20000).startswith(b"HTTP/1.1 431 ")
    assert raw(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc").startswith(b"HTTP/1.1 413 ")
    http10 = raw(b"GET /metrics HTTP/1.0\r\n\r\n")  # HTTP/1.0 without keep-alive: answered, then closed
    assert http10.startswith(b"HTTP/1.1 200 OK") and b"process_open_fds" in http10
    pipelined = raw(b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert pipelined.count(b"HTTP/1.1 200 OK") == 2
    # a client that sends half a head and stalls does not block others
    with socket.create_connection(("127.0.0.1", server.metrics_port), timeout=5) as stalled:
        stalled.sendall(b"GET / HTTP/1.1\r\nHost: x")
        assert "process_start_time_seconds" in server.scrape()
    assert parse(server.scrape())[("process_resident_memory_bytes", frozenset())] > 0


def test_without_a_metrics_section_the_plugin_is_off(fastrr: ServerFactory) -> None:
    from fastrr.rpc.client import RpcClient, RpcError

    cfg = {"version": "3", "server": {"command": "php tests/workers/metrics_worker.php"},
           "rpc": {"listen": "tcp://127.0.0.1:{port}"}, "logs": {"level": "debug"}, "kv": {"c": {"driver": "memory"}}}
    srv = fastrr.start(raw_config=yaml.safe_dump(cfg))
    with RpcClient(f"tcp://127.0.0.1:{srv.port}") as client, pytest.raises(RpcError, match="can't find method"):
        client.call("metrics.Add", {"name": "x", "value": 1})
    assert "metrics listening" not in srv.output()


@pytest.mark.parametrize("engine", ["python", "c"])
def test_request_counters_equal_what_was_sent_while_scraped_under_load(metrics: MetricsFactory, engine: str) -> None:
    """4 client threads send a known mix of statuses while a fifth scrapes without pause; at the end
    the counters equal what was sent, by status, and each histogram's count equals its counter.
    Scrapes taken during the load never go backwards."""
    import threading

    cfg, metrics_port, http_port = metrics.config(workers=2)
    cfg["http"].update({"middleware": ["http_metrics"], "engine": engine})
    cfg["server"]["command"] = worker_cmd("app.php")  # its /status?code=N answers N
    srv = metrics.factory.start(raw_config=yaml.safe_dump(cfg))
    server = MetricsServer(srv, metrics_port, http_port)
    server.wait_output("fastrr started")
    base = f"http://127.0.0.1:{http_port}"
    mix = {200: 60, 404: 20, 500: 10, 201: 10}
    sent: dict[int, int] = {}
    lock = threading.Lock()
    done = threading.Event()
    seen: list[float] = []

    def client() -> None:
        with httpx.Client(base_url=base, timeout=10) as c:
            for code, n in mix.items():
                for _ in range(n):
                    got = c.get(f"/status?code={code}").status_code
                    with lock:
                        sent[got] = sent.get(got, 0) + 1

    def scraper() -> None:
        while not done.is_set():
            total = sum(v for k, v in server.samples().items() if k[0] == "rr_http_request_total")
            seen.append(total)

    threads = [threading.Thread(target=client) for _ in range(4)]
    scrape = threading.Thread(target=scraper)
    scrape.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    done.set()
    scrape.join(30)
    assert sent == {code: 4 * n for code, n in mix.items()}
    s = server.samples()
    for code, n in sent.items():
        labels = frozenset({("status", str(code))})
        assert s[("rr_http_request_total", labels)] == n, code
        assert s[("rr_http_request_duration_seconds_count", labels)] == n, code
        assert s[("rr_http_request_duration_seconds_bucket", labels | {("le", "+Inf")})] == n, code
    assert len(seen) >= 2 and seen == sorted(seen)
