"""The local durable driver: RoadRunner's `driver: boltdb` pipelines, kept in SQLite.

RoadRunner keeps these jobs in a BoltDB file; fastrr accepts the same
pipeline config (`file`, `priority`, `prefetch`, `permissions`) and keeps
them in an SQLite file through Python's sqlite3 (embedded, transactional,
WAL). The file format is not BoltDB's: a file written by RoadRunner is not
read (neither are Go's gob-encoded items), so point `file` at a new path.

What is on disk is exactly the jobs pushed and not yet finished:
- `push` inserts its jobs in one transaction and returns only after it
  committed, so a job whose Push answered OK survives a SIGKILL of fastrr.
- ack (and drop) deletes the row; retry updates attempts, headers and due
  time. Both are batched: every ack/retry of one loop iteration goes in one
  transaction, written before the loop polls again. A SIGKILL can therefore
  lose at most the acks of that iteration (at most one per worker): those
  jobs run once more after a restart, which at-least-once allows.
- Nothing is "reserved" on disk: after a restart every row is due again, so
  jobs that were running when fastrr died are delivered again (RoadRunner
  moves its `processing` bucket back to `push` at boot the same way).

`synchronous=NORMAL` in WAL mode survives a crash of the process (what the
tests do); an OS crash or power loss may lose the last transactions, as
with any database in that mode. Order: lower priority first, then push
order (RoadRunner is not FIFO among equal priorities). The file is locked
(flock) while open, so a second fastrr on the same file fails at start with
a clear error instead of running every job twice.
"""

from __future__ import annotations

import fcntl
import heapq
import json
import os
import sqlite3
import time
from typing import Any

from fastrr.jobs.drivers.base import Driver, DriverError
from fastrr.jobs.job import Delivery, Job

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq      INTEGER PRIMARY KEY,
    pipeline TEXT NOT NULL,
    id       TEXT NOT NULL,
    name     TEXT NOT NULL,
    payload  BLOB NOT NULL,
    headers  TEXT NOT NULL,
    priority INTEGER NOT NULL,
    auto_ack INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    due      REAL NOT NULL,
    pushed   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_pipeline ON jobs (pipeline);
"""
WAKE_BATCH = 256  # rows read per query when handing out jobs (SQLite's variable limit is far above)


class Store:
    """One SQLite file, shared by every pipeline of this process that names it."""

    _open: dict[str, Store] = {}

    @classmethod
    def acquire(cls, path: str, permissions: int) -> Store:
        key = os.path.realpath(path)
        store = cls._open.get(key)
        if store is None:
            store = cls(key, permissions)
            cls._open[key] = store
        store.users += 1
        return store

    def __init__(self, path: str, permissions: int):
        self.path = path
        self.users = 0
        directory = os.path.dirname(path)
        try:
            if directory:
                os.makedirs(directory, exist_ok=True)
            new = not os.path.exists(path)
            self.lock_fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise DriverError(f"cannot open {path}: {exc.strerror}") from None
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.lock_fd)
            raise DriverError(f"{path} is in use by another fastrr process (one process per jobs file)") from None
        try:
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            if new:
                os.chmod(path, permissions & 0o666 or 0o600)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
            row = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM jobs").fetchone()
        except sqlite3.Error as exc:
            os.close(self.lock_fd)
            raise DriverError(f"{path}: {exc}") from None
        self.next_seq = int(row[0]) + 1
        # Acks and retries of this loop iteration, written together by flush().
        self.deletes: list[tuple[int]] = []
        self.updates: list[tuple[int, str, float, int]] = []
        self.flush_scheduled = False

    def release(self) -> None:
        self.users -= 1
        if self.users > 0:
            return
        self.flush()
        Store._open.pop(self.path, None)
        self.db.close()
        os.close(self.lock_fd)

    def insert(self, rows: list[tuple[Any, ...]]) -> None:
        self.flush()  # a retried job's update must not land after a later push (seq order)
        db = self.db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
            db.execute("COMMIT")
        except sqlite3.Error:
            db.execute("ROLLBACK")
            raise

    def schedule_flush(self, loop: Any) -> None:
        if not self.flush_scheduled:
            self.flush_scheduled = True
            loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        if not (self.deletes or self.updates):
            return
        deletes, self.deletes = self.deletes, []
        updates, self.updates = self.updates, []
        db = self.db
        db.execute("BEGIN")
        try:
            if deletes:
                db.executemany("DELETE FROM jobs WHERE seq=?", deletes)
            if updates:
                db.executemany("UPDATE jobs SET attempts=?, headers=?, due=? WHERE seq=?",
                               [(a, h, d, s) for s, h, d, a in updates])
            db.execute("COMMIT")
        except sqlite3.Error:
            db.execute("ROLLBACK")
            raise

    def load(self, pipeline: str) -> list[tuple[int, int, float]]:
        return self.db.execute("SELECT seq, priority, due FROM jobs WHERE pipeline=?", (pipeline,)).fetchall()

    def rows(self, seqs: list[int]) -> dict[int, tuple[Any, ...]]:
        marks = ",".join("?" * len(seqs))
        cur = self.db.execute("SELECT seq, id, name, payload, headers, priority, auto_ack, attempts, pushed "
                              f"FROM jobs WHERE seq IN ({marks})", seqs)
        return {row[0]: row[1:] for row in cur}


class LocalDriver(Driver):
    name = "boltdb"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.store: Store | None = None
        self.ready: list[tuple[int, int]] = []  # (priority, seq): due now
        self.waiting: list[tuple[float, int, int]] = []  # (due wall time, priority, seq)
        self.reserved: dict[int, Delivery] = {}  # seq -> handed out, not finished
        self._timer: Any = None

    @property
    def path(self) -> str:
        file = str(self.pipe.options.get("file") or "rr.db")
        return file if os.path.isabs(file) else os.path.join(self.workdir, file)

    @property
    def queue_name(self) -> str:
        return str(self.pipe.options.get("file") or "rr.db")

    @property
    def context_queue(self) -> str:
        return ""  # RoadRunner's boltdb items carry no queue

    async def open(self) -> None:
        self.store = Store.acquire(self.path, int(self.pipe.options.get("permissions", 0o755)))
        now = time.time()
        rows = self.store.load(self.pipe.name)
        for seq, priority, due in rows:
            if due > now:
                self.waiting.append((due, priority, seq))
            else:
                self.ready.append((priority, seq))
        heapq.heapify(self.ready)
        heapq.heapify(self.waiting)
        if rows:
            self.log.info("jobs recovered from the local store", pipeline=self.pipe.name, jobs=len(rows),
                          file=self.store.path)
        self._arm_timer()

    async def push(self, jobs: list[Job]) -> None:
        store = self.store
        if store is None:
            raise DriverError(f"pipeline {self.pipe.name} is closed")
        now = time.time()
        rows = []
        entries = []
        seq = store.next_seq
        for job in jobs:
            due = now + job.delay if job.delay > 0 else 0.0
            rows.append((seq, self.pipe.name, job.id, job.name, job.payload, json.dumps(job.headers),
                         job.priority, int(job.auto_ack), job.attempts, due, job.pushed_at))
            entries.append((due, job.priority, seq))
            seq += 1
        try:
            store.insert(rows)
        except sqlite3.Error as exc:
            self.error = str(exc)
            raise DriverError(f"pipeline {self.pipe.name}: cannot store the jobs in {store.path}: {exc}") from None
        store.next_seq = seq
        self.pushed += len(jobs)
        for due, priority, s in entries:
            if due:
                heapq.heappush(self.waiting, (due, priority, s))
            else:
                heapq.heappush(self.ready, (priority, s))
        self._arm_timer()
        self.wake()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.waiting:
            delay = max(0.0, self.waiting[0][0] - time.time())
            self._timer = self.loop.call_later(delay, self._due)

    def _due(self) -> None:
        self._timer = None
        now = time.time()
        while self.waiting and self.waiting[0][0] <= now:
            _, priority, seq = heapq.heappop(self.waiting)
            heapq.heappush(self.ready, (priority, seq))
        self._arm_timer()
        self.wake()

    def wake(self) -> None:
        """Hand out due jobs, reading their rows WAKE_BATCH at a time (one query each)."""
        store = self.store
        sink = self.sink
        if store is not None and store.updates and self.ready:
            store.flush()  # a job retried at once must be read back with its new headers and attempts
        while self.running and store is not None and self.ready and sink.has_room():
            room = min(self.prefetch - len(self.reserved), WAKE_BATCH)
            if room <= 0:
                return
            picked = [heapq.heappop(self.ready) for _ in range(min(room, len(self.ready)))]
            rows = store.rows([seq for _, seq in picked])
            for i, (_, seq) in enumerate(picked):
                if not sink.has_room():
                    for entry in picked[i:]:
                        heapq.heappush(self.ready, entry)
                    return
                row = rows.get(seq)
                if row is None:  # cannot happen while the file is locked; skip rather than stall
                    continue
                jid, name, payload, headers, prio, auto_ack, attempts, pushed = row
                job = Job(id=jid, name=name, payload=bytes(payload), pipeline=self.pipe.name,
                          headers=json.loads(headers) if headers != "{}" else {}, priority=prio,
                          auto_ack=bool(auto_ack), attempts=attempts, pushed_at=pushed)
                delivery = Delivery(job, self, handle=seq)
                self.reserved[seq] = delivery
                sink.offer(delivery)

    def ack(self, delivery: Delivery) -> None:
        seq = delivery.handle
        self.reserved.pop(seq, None)
        self.acked += 1
        if self.store is not None:
            self.store.deletes.append((seq,))
            self.store.schedule_flush(self.loop)
        self.wake()

    def retry(self, delivery: Delivery, delay: float) -> None:
        seq = delivery.handle
        self.reserved.pop(seq, None)
        self.retried += 1
        job = delivery.job
        due = time.time() + delay if delay > 0 else 0.0
        if self.store is not None:
            self.store.updates.append((seq, json.dumps(job.headers), due, job.attempts))
            self.store.schedule_flush(self.loop)
        if due:
            heapq.heappush(self.waiting, (due, job.priority, seq))
            self._arm_timer()
        else:
            heapq.heappush(self.ready, (job.priority, seq))
        self.wake()

    def release(self, delivery: Delivery) -> None:
        seq = delivery.handle
        self.reserved.pop(seq, None)
        heapq.heappush(self.ready, (delivery.job.priority, seq))
        self.wake()

    async def close(self) -> None:
        self.running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.store is not None:
            # Deliveries still out keep their rows: they run again after a restart.
            self.store.release()
            self.store = None

    def counts(self) -> dict[str, int]:
        return {"active": len(self.ready), "delayed": len(self.waiting), "reserved": len(self.reserved)}
