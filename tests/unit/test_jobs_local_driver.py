"""The local durable driver against a real SQLite file: what survives a process
that never closed it, and what does not come back."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from fastrr.jobs.config import pipeline_from_values
from fastrr.jobs.drivers.local import LocalDriver
from fastrr.jobs.job import Delivery, Job
from fastrr.log import configure


class Sink:
    def __init__(self) -> None:
        self.got: list[Delivery] = []

    def offer(self, delivery: Delivery) -> None:
        self.got.append(delivery)

    def has_room(self) -> bool:
        return True


async def _open(db: Path, sink: Sink) -> LocalDriver:
    pipe = pipeline_from_values("p", {"driver": "boltdb", "file": str(db)}, "p", strict=True)
    driver = LocalDriver(pipe, sink, configure("error", "raw", None, ["stderr"]), str(db.parent))
    await driver.open()
    await driver.run()
    return driver


def test_unfinished_jobs_come_back_and_finished_ones_do_not(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"

    async def first() -> None:
        sink = Sink()
        driver = await _open(db, sink)
        await driver.push([Job(id=f"j{i}", name="n", payload=b"x", pipeline="p", priority=10 - i % 2)
                           for i in range(6)])
        by_id = {d.job.id: d for d in sink.got}
        by_id["j0"].ack()
        by_id["j1"].retry(0.0, {"h": ["1"]})
        by_id["j2"].release()
        by_id["j3"].drop()
        await asyncio.sleep(0)  # the batched write runs
        await driver.close()

    asyncio.run(first())

    async def second() -> list[Job]:
        sink = Sink()
        driver = await _open(db, sink)
        await driver.close()
        return [d.job for d in sink.got]

    jobs = asyncio.run(second())
    assert sorted(j.id for j in jobs) == ["j1", "j2", "j4", "j5"]
    j1 = next(j for j in jobs if j.id == "j1")
    assert (j1.attempts, j1.headers) == (1, {"h": ["1"]})
    assert [j.priority for j in jobs] == sorted(j.priority for j in jobs)  # lower first


def test_a_killed_process_loses_no_pushed_job(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    script = textwrap.dedent(f"""
        import asyncio, os, signal
        from tests.unit.test_jobs_local_driver import Sink, _open
        from fastrr.jobs.job import Job
        from pathlib import Path
        async def main():
            driver = await _open(Path({str(db)!r}), Sink())
            await driver.push([Job(id=str(i), name="n", payload=b"x", pipeline="p") for i in range(100)])
            os.kill(os.getpid(), signal.SIGKILL)
        asyncio.run(main())
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=str(Path(__file__).resolve().parents[2]),
                          env={**os.environ}, capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr

    async def reopen() -> int:
        sink = Sink()
        driver = await _open(db, sink)
        await driver.close()
        return len(sink.got)

    assert asyncio.run(reopen()) == 100
