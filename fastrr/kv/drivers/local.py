"""The local kv driver: RoadRunner's `driver: boltdb` storages, kept in SQLite.

Options as RoadRunner's boltdb kv: `file` (default rr.db, relative to the
working directory), `permissions` (0755), `interval` (seconds between sweeps
of expired keys, default 60). Unlike RoadRunner, an expired key is never
readable (every read checks it; the sweep only frees space), and the file
survives a SIGKILL: each Set/Delete commits before it answers (WAL,
synchronous=NORMAL, like the jobs driver). Several storages, and the jobs
plugin, may share one file: this one keeps its rows in table `kv`, by storage
name. Several fastrr processes may open it too (SQLite's own locking, with a
busy timeout). It is not a BoltDB file: RoadRunner's files are not read.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from typing import Any

from fastrr.config.units import parse_duration, parse_str
from fastrr.jobs.config import LOCAL_OPTIONS
from fastrr.kv.drivers.base import KvDriver, KvError

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    storage TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   BLOB NOT NULL,
    expiry  REAL,
    PRIMARY KEY (storage, key)
);
CREATE INDEX IF NOT EXISTS kv_by_expiry ON kv (expiry) WHERE expiry IS NOT NULL;
"""
BUSY_TIMEOUT_MS = 5000


def _chunks(keys: list[str], size: int = 500) -> list[list[str]]:
    return [keys[i:i + size] for i in range(0, len(keys), size)]


class LocalKv(KvDriver):
    sync = True
    name = "boltdb"
    OPTIONS = {
        "file": (parse_str, "rr.db"),
        "permissions": LOCAL_OPTIONS["boltdb"]["permissions"],
        "interval": (parse_duration, 60.0),
    }

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.db: sqlite3.Connection | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    @property
    def path(self) -> str:
        file = str(self.options["file"])
        return file if os.path.isabs(file) else os.path.join(self.workdir, file)

    async def open(self) -> None:
        path = self.path
        try:
            if os.path.dirname(path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
            new = not os.path.exists(path)
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                      timeout=BUSY_TIMEOUT_MS / 1000)
            if new:
                os.chmod(path, int(self.options["permissions"]) & 0o666 or 0o600)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise KvError(f"kv storage {self.storage}: cannot open {path}: {exc}") from None
        self._sweeper = asyncio.get_running_loop().call_later(float(self.options["interval"]), self._sweep)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.db is not None:
            self.db.close()
            self.db = None

    def _sweep(self) -> None:
        try:
            self._conn().execute("DELETE FROM kv WHERE storage=? AND expiry IS NOT NULL AND expiry<=?",
                                 (self.storage, time.time()))
        except (KvError, sqlite3.Error) as exc:
            self.log.warn("kv sweep of expired keys failed", storage=self.storage, error=str(exc))
        if self.db is not None:
            self._sweeper = asyncio.get_running_loop().call_later(float(self.options["interval"]), self._sweep)

    def _conn(self) -> sqlite3.Connection:
        if self.db is None:
            raise KvError(f"kv storage {self.storage} is closed")
        return self.db

    def _rows(self, sql: str, keys: list[str]) -> dict[str, tuple[Any, ...]]:
        """{key: row} of the live keys among `keys` (`sql` selects key first, has a {} for the list)."""
        db, now, out = self._conn(), time.time(), {}
        try:
            for part in _chunks(keys):
                marks = ",".join("?" * len(part))
                for row in db.execute(sql.format(marks), (self.storage, now, *part)):
                    out[row[0]] = row
        except sqlite3.Error as exc:
            raise KvError(f"kv storage {self.storage}: {exc}") from None
        return out

    def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        db = self._conn()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(sql, rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise KvError(f"kv storage {self.storage}: {exc}") from None

    _LIVE = "storage=? AND (expiry IS NULL OR expiry>?) AND key IN ({})"

    async def has(self, keys: list[str]) -> list[str]:
        found = self._rows("SELECT key FROM kv WHERE " + self._LIVE, keys)
        return [k for k in keys if k in found]

    async def set(self, items: list[tuple[str, bytes, float | None]]) -> None:
        self._write("INSERT OR REPLACE INTO kv (storage, key, value, expiry) VALUES (?,?,?,?)",
                    [(self.storage, k, v, e) for k, v, e in items])

    async def mget(self, keys: list[str]) -> list[tuple[str, bytes]]:
        found = self._rows("SELECT key, value FROM kv WHERE " + self._LIVE, keys)
        return [(k, bytes(found[k][1])) for k in keys if k in found]

    async def mexpire(self, items: list[tuple[str, float]]) -> None:
        now = time.time()
        self._write("UPDATE kv SET expiry=? WHERE storage=? AND key=? AND (expiry IS NULL OR expiry>?)",
                    [(e, self.storage, k, now) for k, e in items])

    async def ttl(self, keys: list[str]) -> list[tuple[str, float | None]]:
        found = self._rows("SELECT key, expiry FROM kv WHERE " + self._LIVE, keys)
        return [(k, found[k][1]) for k in keys if k in found]

    async def delete(self, keys: list[str]) -> None:
        self._write("DELETE FROM kv WHERE storage=? AND key=?", [(self.storage, k) for k in keys])

    async def clear(self) -> None:
        self._write("DELETE FROM kv WHERE storage=?", [(self.storage,)])
