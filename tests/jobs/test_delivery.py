"""Delivery semantics end to end: real fastrr, real PHP consumers, pushes over RPC."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.jobs.conftest import JobsFactory, jobs_config

DRIVERS = {
    "memory": lambda tmp: {"driver": "memory", "config": {"prefetch": 1000}},
    "boltdb": lambda tmp: {"driver": "boltdb", "config": {"file": str(tmp / "jobs.db")}},
}


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_every_job_consumed_exactly_once(jobs: JobsFactory, tmp_path: Path, driver: str) -> None:
    srv = jobs.start(jobs_config({"p": DRIVERS[driver](tmp_path)}, workers=2))
    ids = srv.push("p", "ack", count=300)
    rows = srv.wait_received(300)
    srv.wait_idle()
    time.sleep(0.3)  # nothing more arrives
    got = Counter(r["id"] for r in srv.received())
    assert set(got) == set(ids)
    assert max(got.values()) == 1
    first = rows[0]
    assert first["pipeline"] == "p" and first["name"] == "ack" and first["payload"].startswith("job-")
    stat = srv.stats()["p"]
    assert (stat.driver, stat.ready, stat.active, stat.reserved) == (driver, True, 0, 0)
    assert len({r["pid"] for r in rows}) == 2  # both consumers took jobs


def test_context_and_headers_reach_php(jobs: JobsFactory) -> None:
    srv = jobs.start(jobs_config({"p": {"driver": "memory"}}, workers=1))
    [jid] = srv.push("p", "ack", payloads=[b'{"x":1}'], headers={"tenant": ["a", "b"], "empty": []})
    [row] = srv.wait_received(1)
    assert row["id"] == jid and row["payload"] == '{"x":1}'
    assert row["headers"] == {"tenant": ["a", "b"]}  # empty lists are not headers (as RoadRunner)


def test_priority_lower_first_fifo_among_equals(jobs: JobsFactory) -> None:
    srv = jobs.start(jobs_config({"p": {"driver": "memory"}}, consume=[], workers=1))
    order = [5, 1, 3, 1, 5, 2]
    for i, prio in enumerate(order):
        srv.push("p", "ack", payloads=[f"{prio}-{i}".encode()], priority=prio)
    from fastrr.jobs import proto

    srv.call("jobs.Resume", proto.Pipelines(pipelines=["p"]))
    rows = srv.wait_received(len(order))
    assert [r["payload"] for r in rows] == ["1-1", "1-3", "2-5", "3-2", "5-0", "5-4"]


def test_pipeline_priority_is_the_default(jobs: JobsFactory) -> None:
    """Jobs of every pipeline share one queue: the pipeline's priority orders them."""
    srv = jobs.start(jobs_config({"low": {"driver": "memory", "priority": 1},
                                  "high": {"driver": "memory", "priority": 9}}, workers=1))
    srv.push("high", "sleep", payloads=[b'{"ms": 500}'])
    srv.wait_received(1)  # the only worker is busy: what follows waits in the shared queue
    srv.push("high", "ack", payloads=[b"h"])
    srv.push("low", "ack", payloads=[b"l"])
    rows = srv.wait_received(3)
    assert [r["payload"] for r in rows[1:]] == ["l", "h"]


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_push_delay(jobs: JobsFactory, tmp_path: Path, driver: str) -> None:
    srv = jobs.start(jobs_config({"p": DRIVERS[driver](tmp_path)}, workers=1))
    pushed = time.time()
    srv.push("p", "ack", payloads=[b"later"], delay=2)
    srv.push("p", "ack", payloads=[b"now"])
    assert srv.stats()["p"].delayed == 1
    rows = srv.wait_received(2, timeout=10)
    assert [r["payload"] for r in rows] == ["now", "later"]
    assert rows[1]["t"] - pushed >= 1.9


@pytest.mark.parametrize("delay", [0, 1])
@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_requeue_with_delay_and_new_headers(jobs: JobsFactory, tmp_path: Path, driver: str, delay: int) -> None:
    srv = jobs.start(jobs_config({"p": DRIVERS[driver](tmp_path)}, workers=1))
    [jid] = srv.push("p", "requeue", payloads=[json.dumps({"delay": delay}).encode()], headers={"keep": ["me"]})
    rows = srv.wait_received(2, timeout=10)
    srv.wait_idle()
    time.sleep(0.3)
    rows = srv.received()
    assert [r["id"] for r in rows] == [jid, jid]  # the second run saw the new header and acked
    assert "x-requeued" not in rows[0]["headers"]
    assert rows[1]["headers"]["x-requeued"] == ["1"] and rows[1]["headers"]["keep"] == ["me"]
    assert rows[1]["t"] - rows[0]["t"] >= delay - 0.1


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_nack_with_requeue_is_redelivered_and_counted(jobs: JobsFactory, tmp_path: Path, driver: str) -> None:
    srv = jobs.start(jobs_config({"p": {**DRIVERS[driver](tmp_path), "max_attempts": 3}}, workers=1))
    [jid] = srv.push("p", "nack-requeue")
    rows = srv.wait_received(2)
    assert [r["id"] for r in rows] == [jid, jid]
    srv.wait_idle()
    [poison] = srv.push("p", "nack-forever")
    srv.wait_output("failed 3 times (max_attempts 3)")
    srv.wait_idle()
    assert [r["id"] for r in srv.received()].count(poison) == 3  # exactly max_attempts runs


def test_nack_and_fail_go_to_dead_letter(jobs: JobsFactory) -> None:
    srv = jobs.start(jobs_config({"p": {"driver": "memory", "dead_letter": "dead"},
                                  "dead": {"driver": "memory"}}, consume=["p"], workers=1))
    nacked, failed = srv.push("p", ["nack", "fail"])
    srv.wait_received(2)
    srv.wait_output("job moved to its dead letter pipeline")
    deadline = time.monotonic() + 10
    while srv.stats()["dead"].active < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.stats()["dead"].active == 2
    from fastrr.jobs import proto

    srv.call("jobs.Resume", proto.Pipelines(pipelines=["dead"]))
    rows = srv.wait_received(4)
    dead = [r for r in rows if r["pipeline"] == "dead"]
    assert {r["id"] for r in dead} == {nacked, failed}
    assert all(r["headers"]["x-dead-letter-pipeline"] == ["p"] for r in dead)


def test_nack_without_dead_letter_is_dropped_and_logged(jobs: JobsFactory) -> None:
    srv = jobs.start(jobs_config({"p": {"driver": "memory"}}, workers=1))
    [jid] = srv.push("p", "nack")
    srv.wait_received(1)
    out = srv.wait_output("job dropped")
    line = next(x for x in out.splitlines() if "job dropped" in x)
    assert jid in line and '"pipeline": "p"' in line
    srv.wait_idle()
    time.sleep(0.3)
    assert len(srv.received()) == 1


def test_worker_crash_mid_job_is_redelivered(jobs: JobsFactory) -> None:
    srv = jobs.start(jobs_config({"p": {"driver": "memory"}}, workers=2))
    [jid] = srv.push("p", "crash")
    rows = srv.wait_received(2)
    assert [r["id"] for r in rows] == [jid, jid]
    assert rows[0]["pid"] != rows[1]["pid"]
    out = srv.wait_output("job failed, will retry")
    assert jid in next(x for x in out.splitlines() if "job failed, will retry" in x)
    srv.wait_idle()
    srv.server.wait_workers(2)


def test_sigkill_of_a_consumer_mid_job(jobs: JobsFactory) -> None:
    srv = jobs.start(jobs_config({"p": {"driver": "memory"}}, workers=2))
    [slow] = srv.push("p", "sleep", payloads=[b'{"ms": 3000}'])
    quick = srv.push("p", "ack", count=20)
    [first] = srv.wait_received(1, where=lambda r: r["id"] == slow)
    os.kill(first["pid"], signal.SIGKILL)
    rows = srv.wait_received(2, where=lambda r: r["id"] == slow)
    assert rows[1]["pid"] != first["pid"]
    got = Counter(r["id"] for r in srv.wait_received(22))
    assert set(quick) <= set(got) and max(got[q] for q in quick) == 1


def test_exec_ttl_then_max_attempts_drop_a_poison_job(jobs: JobsFactory) -> None:
    cfg = jobs_config({"p": {"driver": "memory", "max_attempts": 2}}, workers=1)
    cfg["jobs"]["pool"]["supervisor"] = {"exec_ttl": "1s"}
    srv = jobs.start(cfg)
    [jid] = srv.push("p", "sleep", payloads=[b'{"ms": 5000}'])
    [ok] = srv.push("p", "ack")
    rows = srv.wait_received(3, timeout=15)
    assert [r["id"] for r in rows].count(jid) == 2
    out = srv.wait_output("job dropped", timeout=10)
    assert "failed 2 times (max_attempts 2)" in out and "exec_ttl" in out
    assert ok in [r["id"] for r in rows]
    srv.wait_idle()


@pytest.mark.parametrize("name,error", [("garbage", "is not a jobs reply"), ("badtype", "unknown reply type 99"),
                                        ("error", "worker error")])
def test_bad_worker_answers_are_retried(jobs: JobsFactory, name: str, error: str) -> None:
    srv = jobs.start(jobs_config({"p": {"driver": "memory"}}, workers=1))
    pids = srv.server.wait_workers(1)
    [jid] = srv.push("p", name)
    rows = srv.wait_received(2)
    assert [r["id"] for r in rows] == [jid, jid]
    out = srv.wait_output(error)
    line = next(x for x in out.splitlines() if error in x)
    assert jid in line and '"pipeline": "p"' in line
    srv.wait_idle()
    assert srv.server.worker_pids() == pids  # the worker was not harmed


def test_auto_ack_is_acked_before_it_runs(jobs: JobsFactory) -> None:
    srv = jobs.start(jobs_config({"p": {"driver": "memory"}}, workers=1))
    [jid] = srv.push("p", "crash", auto_ack=True)
    srv.wait_received(1)
    srv.server.wait_workers(1)
    srv.wait_idle()
    time.sleep(0.5)
    assert [r["id"] for r in srv.received()] == [jid]  # RoadRunner's auto_ack: not redelivered


def test_pause_keeps_in_flight_and_holds_the_rest(jobs: JobsFactory) -> None:
    from fastrr.jobs import proto

    srv = jobs.start(jobs_config({"p": {"driver": "memory"}}, workers=1))
    [slow] = srv.push("p", "sleep", payloads=[b'{"ms": 800}'])
    srv.wait_received(1)
    rest = srv.push("p", "ack", count=10)
    srv.call("jobs.Pause", proto.Pipelines(pipelines=["p"]))
    time.sleep(1.2)
    assert [r["id"] for r in srv.received()] == [slow]  # the running one finished, nothing new
    stat = srv.stats()["p"]
    assert (stat.ready, stat.active, stat.reserved) == (False, 10, 0)
    srv.call("jobs.Resume", proto.Pipelines(pipelines=["p"]))
    rows = srv.wait_received(11)
    assert Counter(r["id"] for r in rows) == Counter([slow, *rest])
