"""Fixtures for the reload plugin: a PHP app under tmp_path whose answer comes from
an included file (version.php, read once when the worker boots), served by a real
`fastrr serve` with a `reload:` section, and a client that counts every answer."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Server, ServerFactory

# `version.php` is required at boot, so only a fresh worker sees an edit. `boot_ms` (not a
# .php file, so changing it reloads nothing) slows the boot down, to make a reset take long.
WORKER = """<?php
declare(strict_types=1);
require '{autoload}';
use Fastrr\\Http\\HttpWorker;
use Fastrr\\Worker;
$bootMs = (int)@file_get_contents(__DIR__ . '/boot_ms');
if ($bootMs > 0) {{
    usleep($bootMs * 1000);
}}
$version = require __DIR__ . '/version.php';
$http = new HttpWorker(Worker::create());
while ($request = $http->waitRequest()) {{
    $ms = (int)($request->query['ms'] ?? 0);
    if ($ms > 0) {{
        usleep($ms * 1000);
    }}
    $http->respond(200, json_encode(['version' => $version, 'pid' => getmypid()]),
                   ['Content-Type' => ['application/json']]);
}}
"""


def _readlink(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def write_version(app: Path, version: str) -> None:
    (app / "version.php").write_text(f"<?php\nreturn '{version}';\n")


@dataclass
class ReloadServer:
    server: Server
    app: Path

    def get(self, path: str = "/") -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=5)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200, (resp.status, body)
            return json.loads(body)  # type: ignore[no-any-return]
        finally:
            conn.close()

    def count(self, line: str) -> int:
        return self.server.output().count(line)

    def wait_for(self, line: str, times: int = 1, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.count(line) < times:
            if time.monotonic() > deadline:
                raise AssertionError(f"{line!r} not logged {times} times within {timeout}s:\n"
                                     f"{self.server.output()[-4000:]}")
            time.sleep(0.05)

    def inotify_fds(self) -> int:
        """How many inotify instances the server holds (the kernel-told watcher has one)."""
        fds = Path(f"/proc/{self.server.proc.pid}/fd")
        return sum(1 for fd in fds.iterdir() if "inotify" in _readlink(fd))

    def resets(self) -> int:
        return self.count("pool\tresetting workers")  # the pool's line, once per rolling reset


class ReloadFactory:
    def __init__(self, fastrr: ServerFactory, tmp_path: Path):
        self.fastrr = fastrr
        self.app = tmp_path / "app"
        self.app.mkdir()
        (self.app / "worker.php").write_text(WORKER.format(autoload=ROOT / "php" / "autoload.php"))
        write_version(self.app, "v1")

    def start(self, reload: dict[str, Any], workers: int = 2, engine: str | None = None,
              extra: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> ReloadServer:
        http_cfg: dict[str, Any] = {"pool": {"num_workers": workers}}
        if engine:
            http_cfg["engine"] = engine
        cfg = {"server": {"command": f"php {self.app / 'worker.php'}"}, "http": http_cfg, "reload": reload,
               **(extra or {})}
        server = self.fastrr.start(cfg, workers=workers, env=env)
        rs = ReloadServer(server, self.app)
        rs.wait_for("fastrr started")
        return rs


@pytest.fixture
def reload_app(fastrr: ServerFactory, tmp_path: Path) -> ReloadFactory:
    return ReloadFactory(fastrr, tmp_path)


@dataclass
class Client:
    """Threads sending requests back to back, each on its own keep-alive connection;
    every answer and every error is kept."""

    port: int
    path: str = "/"
    threads: int = 3
    sent: int = 0
    ok: int = 0
    errors: list[str] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _running: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Client:
        for _ in range(self.threads):
            thread = threading.Thread(target=self._loop, daemon=True)
            thread.start()
            self._running.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._running:
            thread.join(10)

    def versions(self) -> list[str]:
        with self._lock:
            return [a["version"] for a in self.answers]

    def _loop(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self._stop.is_set():
            with self._lock:
                self.sent += 1
            try:
                conn.request("GET", self.path)
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                with self._lock:
                    self.errors.append(f"transport: {exc!r}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                continue
            with self._lock:
                if resp.status == 200:
                    self.ok += 1
                    self.answers.append(json.loads(body))
                else:
                    self.errors.append(f"{resp.status}: {body[:200]!r}")
        conn.close()
