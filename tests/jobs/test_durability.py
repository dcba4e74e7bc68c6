"""The durable local driver (`driver: boltdb`, SQLite) and shutdown: what was
sent, what arrived, after a SIGKILL of fastrr and after a graceful stop."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

from tests.jobs.conftest import JobsFactory, jobs_config


def _disk(tmp: Path, **extra: object) -> dict[str, object]:
    return {"driver": "boltdb", "config": {"file": str(tmp / "jobs.db"), **extra}}


def _rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]


def test_sigkill_of_fastrr_loses_nothing_and_acks_stay_acked(jobs: JobsFactory, tmp_path: Path) -> None:
    log = tmp_path / "consumed.log"
    cfg = jobs_config({"p": _disk(tmp_path)}, workers=2)
    first = jobs.start(cfg, log=log)
    ids = first.push("p", "sleep", payloads=[b'{"ms": 20}'] * 300)
    first.wait_received(60)
    first.server.kill()  # SIGKILL: fastrr and its workers, no chance to flush anything
    before = Counter(r["id"] for r in first.received())
    assert 0 < len(before) < 300

    second = jobs.start(cfg, log=log)
    second.wait_output("jobs recovered from the local store")
    second.wait_received(300, timeout=60)
    second.wait_idle(timeout=30)
    got = Counter(r["id"] for r in second.received())  # both runs: they share the log
    assert set(got) == set(ids)  # every job pushed ran
    again = [i for i, n in got.items() if n > 1]
    # Only jobs that were running (or acked in the very last loop turn) when
    # fastrr died may run twice: at most two per worker.
    assert len(again) <= 4, again
    assert second.server.stop() == 0
    assert _rows(tmp_path / "jobs.db") == 0

    third = jobs.start(cfg, log=log)  # acked jobs never come back
    time.sleep(1.0)
    assert Counter(r["id"] for r in third.received()) == got
    assert third.stats()["p"].active == 0


def test_graceful_stop_finishes_running_jobs_and_keeps_the_rest(jobs: JobsFactory, tmp_path: Path) -> None:
    log = tmp_path / "consumed.log"
    cfg = jobs_config({"p": _disk(tmp_path)}, workers=2)
    first = jobs.start(cfg, log=log)
    ids = first.push("p", "sleep", payloads=[b'{"ms": 300}'] * 40)
    first.wait_received(4)
    assert first.server.stop(signal.SIGTERM) == 0
    out = first.server.output()
    assert "waiting for running ones" in out and "exit forced" not in out
    ran = Counter(r["id"] for r in first.received())
    left = _rows(tmp_path / "jobs.db")
    assert left == 40 - len(ran)  # every started job finished and was acked before exit

    second = jobs.start(cfg, log=log)
    got = Counter(r["id"] for r in second.wait_received(40, timeout=60))
    second.wait_idle()
    assert set(got) == set(ids) and max(got.values()) == 1  # none lost, none run twice


def test_graceful_stop_with_memory_driver_finishes_in_flight(jobs: JobsFactory, tmp_path: Path) -> None:
    srv = jobs.start(jobs_config({"p": {"driver": "memory"}}, workers=1))
    srv.push("p", "sleep", payloads=[b'{"ms": 1000}', b'{"ms": 1000}'])
    srv.wait_received(1)
    assert srv.server.stop(signal.SIGTERM) == 0
    out = srv.server.output()
    # The running job finished (no worker killed), the queued one was returned and
    # the memory pipeline says it is gone with the process.
    assert "returned" in out and "jobs still running after destroy_timeout" not in out
    assert "memory pipeline closed with jobs not run" in out


def test_a_second_fastrr_on_the_same_file_is_refused(jobs: JobsFactory, tmp_path: Path) -> None:
    cfg = jobs_config({"p": _disk(tmp_path)}, workers=1)
    jobs.start(cfg)
    other = jobs.start(cfg, wait=False)
    assert other.server.proc.wait(30) == 1
    assert "is in use by another fastrr process" in other.server.output()
    errors = [line for line in other.server.err_path.read_text().splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "jobs.pipelines.p" in errors[0]  # one line, naming the plugin's key


def test_delay_survives_a_restart(jobs: JobsFactory, tmp_path: Path) -> None:
    log = tmp_path / "consumed.log"
    cfg = jobs_config({"p": _disk(tmp_path)}, workers=1)
    first = jobs.start(cfg, log=log)
    pushed = time.time()
    [jid] = first.push("p", "ack", delay=3)
    first.server.kill()
    second = jobs.start(cfg, log=log)
    assert second.stats()["p"].delayed == 1
    [row] = second.wait_received(1, timeout=15)
    assert row["id"] == jid and row["t"] - pushed >= 2.9
