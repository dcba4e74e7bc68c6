"""What every broker driver's tests share: counting what was pushed against
what the consumers received, a producer that keeps pushing through a broker
outage, broker servers started on free ports, and restarts of the machine's
own brokers that always leave them running.

The counting rule of the fault tests (issue: "count pushed = count acked,
duplicates counted and reported, never a loss"): a job counts as pushed when
its push call returned without an error; every pushed id must have reached a
consumer at least once (a consumer logs each task on receipt, before acking);
a second receipt of an id is a duplicate (at-least-once delivery after a
fault), counted and printed, not a failure.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests import services  # how the machine's own brokers are probed and started
from tests.jobs.conftest import JobsServer


@dataclass
class Tally:
    pushed: int
    received: int  # deliveries seen by consumers, duplicates included
    unique: int  # pushed ids that arrived at least once
    duplicates: int  # deliveries beyond the first of an id
    lost: list[str]  # pushed ids that never arrived
    unknown: int  # received ids nobody pushed (a push that errored but reached the broker)

    def __str__(self) -> str:
        return (f"pushed={self.pushed} received={self.received} unique={self.unique} "
                f"duplicates={self.duplicates} lost={len(self.lost)} extra={self.unknown}")


def tally(pushed: Iterable[str], rows: Sequence[dict[str, Any]]) -> Tally:
    ids = list(pushed)
    seen = Counter(r["id"] for r in rows)
    want = set(ids)
    return Tally(pushed=len(ids), received=len(rows), unique=len(want & set(seen)),
                 duplicates=sum(n - 1 for n in seen.values() if n > 1),
                 lost=[i for i in ids if i not in seen], unknown=sum(1 for i in seen if i not in want))


def wait_all_received(servers: Sequence[JobsServer], pushed: Sequence[str], timeout: float = 60.0) -> Tally:
    """Until every pushed id reached one of `servers`' consumers (or timeout); the tally."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [r for s in servers for r in s.received()]
        result = tally(pushed, rows)
        if not result.lost or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def spread(servers: Sequence[JobsServer]) -> list[int]:
    """Deliveries per server (the load split of a shared pipeline)."""
    return [len(s.received()) for s in servers]


@dataclass
class Producer:
    """Pushes `batch` jobs every `interval` s from a thread until stopped; a
    push that fails (broker down, fastrr redialing) is retried with new ids
    and counted in `errors`: only pushes that returned are `pushed`."""

    server: JobsServer
    pipeline: str
    name: str = "ack"
    batch: int = 5
    interval: float = 0.02
    limit: int = 100_000
    pushed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Producer:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.pushed) < self.limit:
            try:
                self.pushed.extend(self.server.push(self.pipeline, self.name, count=self.batch))
            except Exception as exc:  # the RPC error text, for the test's output
                self.errors.append(str(exc)[:200])
                time.sleep(0.1)
            time.sleep(self.interval)

    def stop(self) -> list[str]:
        self._stop.set()
        if self._thread:
            self._thread.join(30)
        return self.pushed


def wait_port(port: int, timeout: float = 20.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {host}:{port} after {timeout}s")


class Daemon:
    """A broker server this test run starts on a free port (beanstalkd, moto,
    Tansu, a Redis with its own AOF): started, probed, always stopped."""

    def __init__(self, argv: list[str], port: int, log: Path, env: dict[str, str] | None = None):
        self.argv, self.port, self.log, self.env = argv, port, log, env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> Daemon:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(self.env or {})}, start_new_session=True)
        out.close()
        try:
            wait_port(self.port, timeout)
        except AssertionError:
            self.stop()
            raise AssertionError(f"{self.argv[0]} did not start: {self.output()[-2000:]}") from None
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def restart(self, down: float = 1.0) -> None:
        """Stop (SIGTERM), stay down `down` s, start again on the same port."""
        self.stop()
        time.sleep(down)
        self.start()


def require(binary: str) -> str:
    path = shutil.which(binary)
    assert path, f"{binary} is not installed (make setup installs it)"
    return path


def ensure_service(name: str) -> None:
    """The machine's broker `name` (tests/services.py) answers, started if it did not."""
    assert services.ensure(services.SERVICES[name]), f"{name}: not answering and could not be started"


@contextlib.contextmanager
def broker_lock(name: str, exclusive: bool = False) -> Iterator[None]:
    """Across test processes (pytest -n): a test that needs the machine's broker `name` up for
    its whole run holds it shared; a restart of that broker holds it exclusive."""
    path = Path(tempfile.gettempdir()) / f"fastrr-tests-{name}.lock"
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def restart_rabbitmq(down: float = 2.0, during: Callable[[], None] | None = None) -> None:
    """`rabbitmqctl stop_app` / `start_app`: every connection drops, queues (durable) stay."""
    with broker_lock("rabbitmq", exclusive=True):
        subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, timeout=60, capture_output=True)
        try:
            if during:
                during()
            time.sleep(down)
        finally:
            subprocess.run(["rabbitmqctl", "-q", "start_app"], check=False, timeout=120, capture_output=True)
            ensure_service("rabbitmq")


def restart_nats(down: float = 1.0, during: Callable[[], None] | None = None) -> None:
    """Stop the machine's nats-server process (SIGTERM; JetStream keeps its file
    store in -sd) and start it again with the same command."""
    subprocess.run(["pkill", "-TERM", "-x", "nats-server"], check=False)
    deadline = time.monotonic() + 15
    while services.SERVICES["nats"].answers() and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        if during:
            during()
        time.sleep(down)
    finally:
        ensure_service("nats")
