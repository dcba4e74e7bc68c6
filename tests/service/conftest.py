"""Fixtures for the service plugin: a real `fastrr serve` whose config has only
`rpc` and `service` sections (no http, no server.command), JSON logs to read
back, and RPC helpers speaking service.v1 as roadrunner-php/services does."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from fastrr.rpc.client import RpcClient
from fastrr.rpc.codec import FLAG_PROTO
from fastrr.service import proto
from tests.conftest import ROOT, Server, ServerFactory

PY = sys.executable


def py_command(code: str) -> list[str]:
    """A python one-liner as an argv list (no shell quoting to get wrong)."""
    return [PY, "-c", code]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for(check: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class ServiceServer:
    def __init__(self, server: Server, config_path: Path):
        self.server = server
        self.config_path = config_path
        self.rpc = f"tcp://127.0.0.1:{server.port}"
        self.client = RpcClient(self.rpc, 20.0)

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.server.output().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def logged(self, msg: str, **fields: Any) -> list[dict[str, Any]]:
        return [r for r in self.records()
                if r.get("msg") == msg and all(r.get(k) == v for k, v in fields.items())]

    def wait_logged(self, msg: str, count: int = 1, timeout: float = 15.0, **fields: Any) -> list[dict[str, Any]]:
        def enough() -> list[dict[str, Any]]:
            found = self.logged(msg, **fields)
            return found if len(found) >= count else []
        try:
            return wait_for(enough, timeout, f"{count}x {msg!r} {fields}")  # type: ignore[no-any-return]
        except AssertionError:
            raise AssertionError(f"expected {count}x {msg!r} {fields} in the log:\n{self.server.output()}") from None

    def call(self, method: str, message: Any, answer_cls: Any) -> Any:
        body = message if isinstance(message, bytes) else message.SerializeToString()
        answer = answer_cls()
        answer.ParseFromString(self.client.call(method, body, flags=FLAG_PROTO))
        return answer

    def statuses(self, name: str) -> list[Any]:
        return list(self.call("service.Statuses", proto.Service(name=name), proto.Statuses).status)

    def pids(self, name: str) -> list[int]:
        return sorted(s.pid for s in self.statuses(name) if not s.HasField("status"))

    def names(self) -> list[str]:
        return list(self.call("service.List", proto.Service(), proto.List).services)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PY, "-m", "fastrr", *args, "-c", str(self.config_path)], capture_output=True,
                              text=True, timeout=30, cwd=str(ROOT))

    def close(self) -> None:
        self.client.close()


class ServiceFactory:
    def __init__(self, factory: ServerFactory):
        self.factory = factory
        self.opened: list[ServiceServer] = []

    def start(self, services: dict[str, Any], extra: dict[str, Any] | None = None) -> ServiceServer:
        cfg = {"version": "3", "rpc": {"listen": "tcp://127.0.0.1:{port}"},
               "logs": {"level": "debug", "mode": "production"}, "service": services, **(extra or {})}
        server = self.factory.start(raw_config=yaml.safe_dump(cfg))
        wait_for(lambda: "fastrr started" in server.output(), 15, "fastrr started")
        svc = ServiceServer(server, server.workdir / ".rr.yaml")
        self.opened.append(svc)
        return svc

    def close(self) -> None:
        for svc in self.opened:
            svc.close()


@pytest.fixture
def services(fastrr: ServerFactory) -> Any:
    factory = ServiceFactory(fastrr)
    yield factory
    factory.close()
