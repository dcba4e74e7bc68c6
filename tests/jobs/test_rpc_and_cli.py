"""Producer RPC (jobs.* in protobuf), bad input, the CLI and config errors."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from fastrr.jobs import proto
from fastrr.rpc.client import RpcError
from fastrr.rpc.codec import FLAG_JSON
from tests.conftest import ROOT, WORKERS, free_port
from tests.jobs.conftest import JobsFactory, JobsServer, jobs_config


def _job(pipeline: str, jid: str | None = None, payload: bytes = b"x", name: str = "ack") -> proto.Job:
    job = proto.Job(job=name, id=str(uuid.uuid4()) if jid is None else jid, payload=payload)
    job.options.pipeline = pipeline
    return job


def _error(srv: JobsServer, method: str, message: object) -> str:
    with pytest.raises(RpcError) as info:
        srv.call(method, message)  # type: ignore[arg-type]
    return str(info.value)


@pytest.fixture
def srv(jobs: JobsFactory) -> JobsServer:
    return jobs.start(jobs_config({"p": {"driver": "memory"}}, workers=1, max_payload_size=1))


def test_bad_pushes_are_refused_and_nothing_else_is_lost(srv: JobsServer) -> None:
    assert _error(srv, "jobs.Push", proto.PushRequest(job=_job("nope"))) == "no such pipeline, requested: nope"
    assert "empty ID field not allowed" in _error(srv, "jobs.Push", proto.PushRequest(job=_job("p", jid="")))
    assert "has no options.pipeline" in _error(srv, "jobs.Push", proto.PushRequest(job=proto.Job(id="a")))
    assert "the request has no job" in _error(srv, "jobs.Push", proto.PushRequest())
    text = _error(srv, "jobs.Push", b"\xff\xff\xff")
    assert text.startswith("jobs.Push: malformed jobs.v1.PushRequest message")
    big = _error(srv, "jobs.Push", proto.PushRequest(job=_job("p", jid="big", payload=b"x" * (3 << 19))))
    assert "job big payload is 1572864 bytes, over jobs.max_payload_size (1 MB); pipeline p" in big
    with srv.client() as c, pytest.raises(RpcError) as info:
        c.call("jobs.Push", {"job": "x"}, flags=FLAG_JSON)
    assert "takes a protobuf message" in str(info.value)
    # PushBatch stops at the first bad job and keeps the earlier ones (RoadRunner's behaviour).
    batch = proto.PushBatchRequest(jobs=[_job("p", "a1"), _job("p", "a2"), _job("nope", "b"), _job("p", "c")])
    assert _error(srv, "jobs.PushBatch", batch) == "no such pipeline, requested: nope"
    srv.call("jobs.Push", proto.PushRequest(job=_job("p", "ok")))
    rows = srv.wait_received(3)
    assert sorted(r["id"] for r in rows) == ["a1", "a2", "ok"]
    srv.wait_idle()


def test_list_declare_destroy(srv: JobsServer, tmp_path: Path) -> None:
    names = proto.Pipelines()
    names.ParseFromString(srv.call("jobs.List", b""))
    assert list(names.pipelines) == ["p"]
    srv.call("jobs.Declare", proto.DeclareRequest(pipeline={"name": "d", "driver": "memory", "priority": "3",
                                                             "prefetch": "10"}))
    assert _error(srv, "jobs.Declare", proto.DeclareRequest(pipeline={"name": "d", "driver": "memory"})) \
        == "pipeline already exists: d"
    stat = srv.stats()["d"]
    assert (stat.driver, stat.priority, stat.ready) == ("memory", 3, False)  # Declare does not resume
    [jid] = srv.push("d", "ack")
    srv.call("jobs.Resume", proto.Pipelines(pipelines=["d"]))
    assert srv.wait_received(1)[0]["id"] == jid
    assert "is already consuming" in _error(srv, "jobs.Resume", proto.Pipelines(pipelines=["d"]))
    assert _error(srv, "jobs.Destroy", proto.Pipelines(pipelines=["d", "nope"])) == \
        "no such pipeline, requested: nope"
    assert "d" in srv.stats()  # nothing destroyed when one name is wrong
    gone = proto.Pipelines()
    gone.ParseFromString(srv.call("jobs.Destroy", proto.Pipelines(pipelines=["d"])))
    assert list(gone.pipelines) == ["d"]
    names.ParseFromString(srv.call("jobs.List", b""))
    assert list(names.pipelines) == ["p"]
    assert _error(srv, "jobs.Pause", proto.Pipelines(pipelines=["d"])) == "no such pipeline, requested: d"


@pytest.mark.parametrize("pipeline,error", [
    ({"name": "x"}, "jobs.Declare[x].driver: required key is missing"),
    ({"name": "x", "driver": "memory", "prefetchh": "1"}, "jobs.Declare[x].prefetchh: unknown option for the "
                                                          "memory driver"),
    ({"name": "x", "driver": "kafkaa"}, "jobs.Declare[x].driver: unknown driver 'kafkaa'"),
    ({"name": "x", "driver": "memory", "priority": "high"}, "jobs.Declare[x].priority"),
    ({"driver": "memory"}, "needs a name"),
    ({"name": "x", "driver": "memory", "dead_letter": "nope"}, "dead_letter: no pipeline named 'nope'"),
])
def test_bad_declares(srv: JobsServer, pipeline: dict[str, str], error: str) -> None:
    assert error in _error(srv, "jobs.Declare", proto.DeclareRequest(pipeline=pipeline))
    names = proto.Pipelines()
    names.ParseFromString(srv.call("jobs.List", b""))
    assert list(names.pipelines) == ["p"]


def test_informer_lists_the_jobs_plugin(srv: JobsServer) -> None:
    with srv.client() as c:
        assert "jobs" in c.call("informer.List", True)
        [row] = c.call("informer.Jobs", "jobs")
        assert len(c.call("informer.Workers", "jobs")["workers"]) == 1
    assert {k: row[k] for k in ("Pipeline", "Driver", "Queue", "Active", "Delayed", "Reserved", "Ready",
                                "Priority", "ErrorMessage")} == {
        "Pipeline": "p", "Driver": "memory", "Queue": "", "Active": 0, "Delayed": 0, "Reserved": 0,
        "Ready": True, "Priority": 10, "ErrorMessage": ""}


def _cli(srv: JobsServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fastrr", *args, "-o", f"rpc.listen={srv.rpc}"],
                          capture_output=True, text=True, timeout=30, cwd=str(ROOT))


def test_cli_jobs(srv: JobsServer) -> None:
    out = _cli(srv, "jobs", "list")
    assert out.returncode == 0 and "Pipeline(s)" in out.stdout and "p" in out.stdout
    out = _cli(srv, "jobs", "pause", "p")
    assert out.returncode == 0 and "pipeline paused: [p]" in out.stdout
    out = _cli(srv, "jobs")
    assert "PAUSED/STOPPED" in out.stdout and "memory" in out.stdout
    out = _cli(srv, "jobs", "pause", "p")
    assert out.returncode == 1 and "is not consuming" in out.stderr
    out = _cli(srv, "jobs", "--resume", "p")  # rr's spelling
    assert out.returncode == 0 and "Pipeline(s)" in out.stdout
    out = _cli(srv, "jobs", "stat")
    assert "READY" in out.stdout
    out = _cli(srv, "jobs", "--list", "-s")
    assert out.returncode == 0 and out.stdout == ""
    out = _cli(srv, "jobs", "resume", "nope")
    assert out.returncode == 1 and "no such pipeline, requested: nope" in out.stderr
    out = _cli(srv, "workers")
    assert "Workers of [jobs]" in out.stdout and "Jobs of [jobs]" in out.stdout


def test_reset_covers_the_jobs_pool(srv: JobsServer) -> None:
    before = srv.server.wait_workers(1)
    out = _cli(srv, "reset", "jobs")
    assert out.returncode == 0, out.stderr
    after = srv.server.wait_workers(1)
    assert before != after
    [jid] = srv.push("p", "ack")
    assert srv.wait_received(1)[0]["id"] == jid


def test_php_producer_script(srv: JobsServer) -> None:
    out = subprocess.run(["php", str(WORKERS / "jobs_producer.php"), srv.rpc, "p", "5", "batch"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    ids = out.stdout.split()
    assert len(ids) == 5
    rows = srv.wait_received(5)
    assert sorted(r["id"] for r in rows) == sorted(ids)
    out = subprocess.run(["php", str(WORKERS / "jobs_producer.php"), srv.rpc, "nope", "1", "single"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "no such pipeline, requested: nope" in out.stderr


@pytest.mark.parametrize("jobs_section,error", [
    ({"pipelines": {"a": {"driver": "nope"}}}, "jobs.pipelines.a.driver: unknown driver 'nope'"),
    ({"pipelines": {"a": {"config": {}}}}, "jobs.pipelines.a.driver: required key is missing"),
    ({"pipelines": {"a": {"driver": "google_pub_sub"}}}, "fastrr has no google_pub_sub driver"),
    ({"consume": ["b"], "pipelines": {"a": {"driver": "memory"}}}, "jobs.consume[0]: no pipeline named 'b'"),
    ({"pipelines": {"a": {"driver": "memory", "dead_letter": "z"}}}, "jobs.pipelines.a.dead_letter"),
    ({"pipelines": {"a": {"driver": "memory", "config": {"prefetch": 0}}}}, "jobs.pipelines.a.prefetch"),
    ({"pipeline_size": 0}, "jobs.pipeline_size"),
    ({"max_payload_size": 0}, "jobs.max_payload_size"),
    ({"pools": {"x": {"num_workers": 1}}}, "jobs.pools"),
])
def test_config_errors(tmp_path: Path, jobs_section: dict[str, object], error: str) -> None:
    cfg = {"version": "3", "server": {"command": "php x.php"}, "rpc": {"listen": f"tcp://127.0.0.1:{free_port()}"},
           "jobs": jobs_section}
    path = tmp_path / ".rr.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = subprocess.run([sys.executable, "-m", "fastrr", "serve", "-c", str(path)], capture_output=True,
                         text=True, timeout=30, cwd=str(ROOT))
    assert out.returncode == 1
    assert error in out.stderr
