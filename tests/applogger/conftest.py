"""A real `fastrr serve` with rpc (so the app-logger plugin is on) and an HTTP
pool of one worker, and readers for the log lines it writes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from fastrr.applogger.rpc import LogEntry
from fastrr.rpc.client import RpcClient
from fastrr.rpc.codec import FLAG_PROTO
from tests.conftest import Server, ServerFactory, free_port, worker_cmd


@dataclass
class Line:
    """One console log line: time, LEVEL, logger, message, fields."""

    level: str
    logger: str
    msg: str
    fields: dict[str, Any]


def parse_console(text: str) -> list[Line]:
    lines = []
    for raw in text.splitlines():
        parts = raw.split("\t")
        if len(parts) < 4 or not parts[0][:4].isdigit():
            continue  # a raw line (app.Log, a worker's own output)
        fields = json.loads(parts[4]) if len(parts) > 4 else {}
        lines.append(Line(parts[1], parts[2], parts[3], fields))
    return lines


def wait_for(read: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Poll `read` until it gives something truthy (log lines are written after the RPC answer)."""
    deadline = time.monotonic() + timeout
    while True:
        got = read()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class AppServer:
    def __init__(self, server: Server, rpc: str):
        self.server = server
        self.rpc = rpc
        self.client = RpcClient(rpc, 10.0)

    def call(self, method: str, payload: Any, flags: int | None = None) -> Any:
        if flags is None:
            return self.client.call(method, payload)
        return self.client.call(method, payload, flags=flags)

    def log(self, level: str, msg: str, /, **context: str) -> Any:
        """One app.<level> call, as roadrunner-php/app-logger makes it."""
        if not context:
            return self.client.call(f"app.{level}", msg)
        entry = LogEntry(message=msg)
        for key, value in context.items():
            entry.log_attrs.add(key=key, value=value)
        return self.client.call(f"app.{level}WithContext", entry.SerializeToString(), flags=FLAG_PROTO)

    def stderr(self) -> str:
        return self.server.err_path.read_text(errors="replace")

    def lines(self, logger: str | None = None) -> list[Line]:
        return [ln for ln in parse_console(self.server.output()) if logger is None or ln.logger == logger]

    def wait_line(self, msg: str, logger: str = "app") -> Line:
        return wait_for(lambda: next((ln for ln in self.lines(logger) if ln.msg == msg), None), f"log line {msg!r}")

    def close(self) -> None:
        self.client.close()


class AppFactory:
    def __init__(self, factory: ServerFactory):
        self.factory = factory
        self.opened: list[AppServer] = []

    def config(self, logs: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        rpc_port = free_port()
        cfg: dict[str, Any] = {
            "version": "3", "server": {"command": worker_cmd("app.php")},
            "http": {"address": "127.0.0.1:{port}", "pool": {"num_workers": 1}},
            "rpc": {"listen": f"tcp://127.0.0.1:{rpc_port}"},
            "logs": {"level": "debug"} if logs is None else logs,
        }
        cfg.update(extra)
        return cfg

    def start(self, logs: dict[str, Any] | None = None, **extra: Any) -> AppServer:
        cfg = self.config(logs, **extra)
        server = self.factory.start(raw_config=yaml.safe_dump(cfg))
        app = AppServer(server, cfg["rpc"]["listen"])
        self.opened.append(app)
        return app

    def close(self) -> None:
        for app in self.opened:
            app.close()


@pytest.fixture
def app(fastrr: ServerFactory) -> Any:
    factory = AppFactory(fastrr)
    yield factory
    factory.close()
