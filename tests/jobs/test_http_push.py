"""Push from an HTTP request handler: the http and jobs plugins in one server,
each with its own pool (jobs.pool.command runs the consumers)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx

from tests.conftest import ROOT, free_port, worker_cmd
from tests.jobs.conftest import JobsFactory, jobs_config


def test_http_handler_pushes_and_consumers_run_the_jobs(jobs: JobsFactory) -> None:
    cfg = jobs_config({"emails": {"driver": "memory"}}, workers=2)
    http_port = free_port()
    cfg["server"]["command"] = worker_cmd("jobs_http.php")
    cfg["jobs"]["pool"]["command"] = worker_cmd("jobs_consumer.php")
    cfg["http"] = {"address": f"127.0.0.1:{http_port}", "pool": {"num_workers": 2}}
    srv = jobs.start(cfg)
    base = f"http://127.0.0.1:{http_port}"
    ids: list[str] = []
    for _ in range(5):
        answer = httpx.get(f"{base}/push", params={"pipeline": "emails", "n": 4}, timeout=10)
        assert answer.status_code == 200, answer.text
        ids += answer.json()["ids"]
    rows = srv.wait_received(20)
    assert sorted(r["id"] for r in rows) == sorted(ids)
    assert {r["payload"] for r in rows} == {f"http-{i}" for i in range(1, 5)}
    bad = httpx.get(f"{base}/push", params={"pipeline": "nope"}, timeout=10)
    assert bad.status_code == 500 and "no such pipeline, requested: nope" in bad.json()["error"]
    with srv.client() as c:
        assert sorted(c.call("informer.List", True)) == ["http", "jobs"]
        assert sorted(c.call("resetter.List", True)) == ["http", "jobs"]
    out = subprocess.run([sys.executable, "-m", "fastrr", "workers", "-o", f"rpc.listen={srv.rpc}"],
                         capture_output=True, text=True, timeout=30, cwd=str(ROOT))
    assert "Workers of [http]" in out.stdout and "Workers of [jobs]" in out.stdout
    assert "Jobs of [jobs]" in out.stdout and "emails" in out.stdout

    # SIGHUP: a rolling reset of every plugin's pool.
    before = srv.server.wait_workers(4)
    srv.server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (srv.server.worker_pids() & before or len(srv.server.worker_pids()) != 4):
        time.sleep(0.05)
    assert not srv.server.worker_pids() & before
    answer = httpx.get(f"{base}/push", params={"pipeline": "emails", "n": 1}, timeout=10)
    [jid] = answer.json()["ids"]
    srv.wait_received(1, where=lambda r: r["id"] == jid)
