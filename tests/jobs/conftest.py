"""Fixtures for the jobs plugin: a real `fastrr serve` with PHP consumers
(tests/workers/jobs_consumer.php), a producer over RPC, and the consumers' log.

The consumer writes one JSON line per task it receives, before acting on it,
to $JOBS_LOG; its behaviour comes from the task name (see the worker).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from fastrr.jobs import proto
from fastrr.rpc.client import RpcClient
from fastrr.rpc.codec import FLAG_PROTO
from tests.conftest import Server, ServerFactory, worker_cmd


def jobs_config(pipelines: dict[str, Any], consume: list[str] | None = None, workers: int = 2,
                **jobs: Any) -> dict[str, Any]:
    return {
        "version": "3",
        "server": {"command": worker_cmd("jobs_consumer.php")},
        "rpc": {"listen": "tcp://127.0.0.1:{port}"},
        "logs": {"level": "debug"},
        "jobs": {"consume": list(pipelines) if consume is None else consume,
                 "pool": {"num_workers": workers}, "pipelines": pipelines, **jobs},
    }


class JobsServer:
    """One fastrr serving jobs; `log` is its consumers' log."""

    def __init__(self, server: Server, log: Path):
        self.server = server
        self.log = log
        self.rpc = f"tcp://127.0.0.1:{server.port}"

    def client(self) -> RpcClient:
        return RpcClient(self.rpc, 10.0)

    def call(self, method: str, message: Any = b"") -> bytes:
        body = message if isinstance(message, bytes) else message.SerializeToString()
        with self.client() as c:
            return c.call(method, body, flags=FLAG_PROTO)

    def push(self, pipeline: str, names: list[str] | str, payloads: list[bytes] | None = None,
             priority: int = 0, delay: int = 0, auto_ack: bool = False,
             headers: dict[str, list[str]] | None = None, count: int = 1) -> list[str]:
        """PushBatch; `names` one per job, or one name for every payload (or `count` jobs).
        The ids, in order."""
        if isinstance(names, str):
            names = [names] * (len(payloads) if payloads else count)
        req = proto.PushBatchRequest()
        ids = []
        for i, name in enumerate(names):
            jid = str(uuid.uuid4())
            ids.append(jid)
            job = req.jobs.add(job=name, id=jid, payload=payloads[i] if payloads else f"job-{i}".encode())
            job.options.pipeline = pipeline
            job.options.priority = priority
            job.options.delay = delay
            job.options.auto_ack = auto_ack
            for key, values in (headers or {}).items():
                job.headers[key].value.extend(values)
        self.call("jobs.PushBatch", req)
        return ids

    def stats(self) -> dict[str, Any]:
        answer = proto.Stats()
        answer.ParseFromString(self.call("jobs.Stat", proto.Empty()))
        return {s.pipeline: s for s in answer.stats}

    def received(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def wait_received(self, count: int, timeout: float = 20.0,
                      where: Callable[[dict[str, Any]], bool] = lambda r: True) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            rows = [r for r in self.received() if where(r)]
            if len(rows) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(rows) >= count, f"expected {count} tasks, got {len(rows)}\n{self.server.output()[-4000:]}"
        return rows

    def wait_idle(self, timeout: float = 20.0) -> None:
        """Until no pipeline has jobs waiting, delayed or running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(s.active == 0 and s.delayed == 0 and s.reserved == 0 for s in self.stats().values()):
                return
            time.sleep(0.05)
        raise AssertionError(f"pipelines not idle: {self.stats()}\n{self.server.output()[-4000:]}")

    def wait_output(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.server.output()
            if text in out:
                return out
            if self.server.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in the output:\n{self.server.output()[-4000:]}")


class JobsFactory:
    def __init__(self, factory: ServerFactory, tmp_path: Path):
        self.factory = factory
        self.tmp_path = tmp_path
        self.runs = 0

    def start(self, config: dict[str, Any], log: Path | None = None, env: dict[str, str] | None = None,
              wait: bool = True) -> JobsServer:
        self.runs += 1
        log = log or self.tmp_path / f"jobs{self.runs}.log"
        run_env = {"JOBS_LOG": str(log), "JOBS_CRASH_MARKER": str(self.tmp_path / "crash.marker"),
                   **(env or {})}
        server = self.factory.start(raw_config=yaml.safe_dump(config), env=run_env, wait=wait)
        js = JobsServer(server, log)
        if wait:
            js.wait_output("fastrr started")
        return js


@pytest.fixture
def jobs(fastrr: ServerFactory, tmp_path: Path) -> JobsFactory:
    return JobsFactory(fastrr, tmp_path)
