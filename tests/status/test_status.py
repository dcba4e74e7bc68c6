"""The status plugin through a pool's life, with real PHP workers: booting, serving, workers
killed and respawned, a graceful stop with a request in flight; query selection, /jobs, the RPC."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
import urllib.request
import uuid
from typing import Any

import psutil
import pytest

from fastrr.jobs import proto as jobs_proto
from fastrr.rpc.client import RpcClient
from fastrr.rpc.codec import FLAG_JSON, FLAG_PROTO, RpcError
from tests.conftest import worker_cmd
from tests.status.conftest import Probe, StatusFactory, StatusServer, status_config

OK = {"plugin_name": "http", "error_message": "", "status_code": 200}
DOWN = {"plugin_name": "http", "error_message": "internal server error, see logs", "status_code": 503}


def entries(probe: Probe) -> list[dict[str, Any]]:
    assert probe.headers["content-type"] == "application/json"
    return probe.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("engine", ["python", "c"])
def test_ready_only_once_the_workers_have_booted(status: StatusFactory, engine: str) -> None:
    # slowboot.php sleeps before its loop: the status listener (started before http) answers meanwhile.
    st = status.start(status_config("slowboot.php", engine=engine), env={"BOOT_MS": "2500"}, wait=False)
    booting = st.wait_probe("/ready", lambda p: True)
    assert booting.status == 503 and entries(booting) == [DOWN]
    health = st.probe("/health")
    assert health.status == 503 and entries(health) == [DOWN]
    assert "fastrr started" not in st.server.output()  # still booting: the answers above were not luck

    ready = st.wait_probe("/ready", lambda p: p.status == 200)
    assert entries(ready) == [OK]
    assert entries(st.probe("/health")) == [OK]
    with urllib.request.urlopen(st.server.url("/hello"), timeout=10) as resp:
        assert json.loads(resp.read()) == {"hello": "world"}
    assert "status: http is not ready" in st.server.output()


def test_unhealthy_while_every_worker_is_dead_then_healthy_again(status: StatusFactory) -> None:
    st = status.start(status_config("slowboot.php", status={"unavailable_status_code": 500}),
                      env={"BOOT_MS": "1500"})
    assert entries(st.probe("/health")) == [OK]
    for pid in st.server.wait_workers(2):
        psutil.Process(pid).kill()
    # The replacements boot for 1.5 s: the pool has no live worker meanwhile.
    down = st.wait_probe("/health", lambda p: p.status == 500, timeout=10)
    assert entries(down) == [{**DOWN, "status_code": 500}]
    assert st.probe("/ready").status == 500
    st.wait_probe("/health", lambda p: p.status == 200, timeout=20)
    st.wait_probe("/ready", lambda p: p.status == 200, timeout=20)
    out = st.server.output()
    assert "status: http is not healthy" in out and "status: http is healthy again" in out


@pytest.mark.parametrize("engine", ["python", "c"])
def test_graceful_stop_answers_not_ready_at_once_while_the_request_completes(status: StatusFactory,
                                                                             engine: str) -> None:
    st = status.start(status_config(engine=engine, workers=1))
    result: dict[str, Any] = {}

    def slow_request() -> None:
        with urllib.request.urlopen(st.server.url("/sleep?ms=3000"), timeout=30) as resp:
            result["status"], result["body"] = resp.status, json.loads(resp.read())

    client = threading.Thread(target=slow_request)
    client.start()
    st.wait_probe("/ready", lambda p: p.status == 503, timeout=5)  # the one worker is busy: not ready
    assert entries(st.probe("/health")) == [OK]  # busy is alive
    st.server.proc.send_signal(signal.SIGTERM)

    ready = st.wait_probe("/ready", lambda p: p.text == "service is shutting down\n", timeout=5)
    assert client.is_alive(), "the slow request ended before the probe saw the stop"
    assert ready.status == 503 and ready.headers["content-type"].startswith("text/plain")
    health = st.probe("/health")
    assert (health.status, health.text) == (200, "service is shutting down\n")
    jobs = st.probe("/jobs")
    assert (jobs.status, jobs.text) == (503, "service is shutting down\n")

    client.join(30)
    assert result == {"status": 200, "body": {"slept": 3000, "pid": result["body"]["pid"]}}
    assert st.server.proc.wait(30) == 0


def start_http_and_jobs(status: StatusFactory, tmp_path: Any) -> StatusServer:
    cfg = status_config(jobs={"consume": ["test-1"], "pool": {"num_workers": 1, "command": worker_cmd(
        "jobs_consumer.php")}, "pipelines": {"test-1": {"driver": "memory", "config": {"priority": 13}}}})
    return status.start(cfg, env={"JOBS_LOG": str(tmp_path / "jobs.log")})


def test_plugin_selection(status: StatusFactory, tmp_path: Any) -> None:
    st = start_http_and_jobs(status, tmp_path)
    jobs_ok = {"plugin_name": "jobs", "error_message": "", "status_code": 200}
    for route in ("/health", "/ready"):
        assert entries(st.probe(route)) == [jobs_ok, OK]  # no query: every plugin with checks, in start order
        assert entries(st.probe(f"{route}?plugin=http")) == [OK]
        assert entries(st.probe(f"{route}?plugin=http&plugin=jobs")) == [OK, jobs_ok]
        # Unknown names (and plugins without checks) are skipped: [] is an answer, with 200.
        for query in ("plugin=nope", "plugin=", "plugin=rpc&plugin=status", "plugin=nope&plugin=jobs"):
            probe = st.probe(f"{route}?{query}")
            assert probe.status == 200
            assert entries(probe) == ([jobs_ok] if "jobs" in query else [])
        assert entries(st.probe(f"{route}?other=1")) == [jobs_ok, OK]  # not a plugin query
    head = st.probe("/health", method="HEAD")
    assert head.status == 200 and head.body == b"" and int(head.headers["content-length"]) > 0
    missing = st.probe("/health/")
    assert (missing.status, missing.text) == (404, "404 page not found\n")


def test_jobs_lists_the_pipelines(status: StatusFactory, tmp_path: Any) -> None:
    st = start_http_and_jobs(status, tmp_path)
    req = jobs_proto.PushRequest()
    req.job.job, req.job.id, req.job.payload = "ack", str(uuid.uuid4()), b"later"
    req.job.options.pipeline, req.job.options.delay = "test-1", 600
    with RpcClient(st.rpc, 10.0) as client:
        client.call("jobs.Push", req.SerializeToString(), flags=FLAG_PROTO)
    probe = st.probe("/jobs")
    assert probe.status == 200 and probe.headers["content-type"] == "application/json"
    assert probe.json() == [{"pipeline": "test-1", "priority": 13, "ready": True, "queue": "", "active": 0,
                             "delayed": 1, "reserved": 0, "driver": "memory", "error_message": ""}]


def test_jobs_without_the_jobs_plugin(status: StatusFactory) -> None:
    st = status.start(status_config())
    probe = st.probe("/jobs")
    assert (probe.status, probe.text) == (503, "jobs plugin not found\n")


def test_rpc_status_and_ready(status: StatusFactory) -> None:
    st = status.start(status_config(workers=1))
    assert st.rpc_call("status.Status", "http").code == 200
    assert st.rpc_call("status.Ready", "http").code == 200
    for method, op in (("status.Status", "checker_rpc_status"), ("status.Ready", "checker_rpc_ready")):
        for name in ("nope", "rpc", ""):
            with pytest.raises(RpcError, match=f"{op}: no such plugin: {name}$"):
                st.rpc_call(method, name)
    with RpcClient(st.rpc, 10.0) as client:
        with pytest.raises(RpcError, match="checker_rpc_status: malformed status.v1.Request"):
            client.call("status.Status", b"\xff\xff\xff", flags=FLAG_PROTO)
        with pytest.raises(RpcError, match="status.Ready takes a protobuf message"):
            client.call("status.Ready", {"plugin": "http"}, flags=FLAG_JSON)
    # A busy pool: alive but not ready, with why.
    threading.Thread(target=lambda: urllib.request.urlopen(st.server.url("/sleep?ms=1500"), timeout=30).read(),
                     daemon=True).start()
    st.wait_probe("/ready", lambda p: p.status == 503, timeout=5)
    busy = st.rpc_call("status.Ready", "http")
    assert (busy.code, busy.message) == (503, "no http worker is ready")
    assert st.rpc_call("status.Status", "http").code == 200
    st.wait_probe("/ready", lambda p: p.status == 200, timeout=10)
    assert entries(st.probe("/health")) == [OK]


def raw(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_the_listener_bounds_what_clients_send(status: StatusFactory) -> None:
    st = status.start(status_config(status={"check_timeout": 1}))
    port = st.status_port
    # Two requests on one connection (keep-alive), the second closing it.
    both = raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /ready?plugin=http HTTP/1.1\r\nHost: x\r\n"
                     b"Connection: close\r\n\r\n")
    assert both.count(b"HTTP/1.1 200 OK") == 2 and both.endswith(json.dumps([OK]).replace(" ", "").encode())
    assert raw(port, b"GET /health HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200 OK")  # 1.0: answered, closed
    assert raw(port, b"NOT A REQUEST\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(port, b"GET /health HTTP/2.0\r\n\r\n").startswith(b"HTTP/1.1 505 ")
    assert raw(port, b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n").startswith(b"HTTP/1.1 431 ")
    assert raw(port, b"POST /health HTTP/1.1\r\nContent-Length: 999999\r\n\r\n").startswith(b"HTTP/1.1 413 ")
    chunked = raw(port, b"POST /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                        b"5\r\nhello\r\n0\r\n\r\n")
    assert chunked.startswith(b"HTTP/1.1 200 OK")
    assert raw(port, b"GET http://example/health HTTP/1.1\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 200")
    # A client that sends half a request is dropped after check_timeout (1 s), unanswered.
    started = time.monotonic()
    assert raw(port, b"GET /health HTTP/1.1\r\n") == b""
    assert time.monotonic() - started < 8
    # Nothing of that broke the server.
    assert entries(st.probe("/health")) == [OK]
    with urllib.request.urlopen(st.server.url("/hello"), timeout=10) as resp:
        assert resp.status == 200
