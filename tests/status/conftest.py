"""Helpers for the status plugin tests: a real `fastrr serve` with a `status:` section, probes
over plain HTTP (http.client) and the status.v1 RPC."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from fastrr.rpc.client import RpcClient
from fastrr.rpc.codec import FLAG_PROTO
from fastrr.status import rpc as status_rpc
from tests.conftest import Server, ServerFactory, free_port, worker_cmd


@dataclass
class Probe:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


class StatusServer:
    def __init__(self, server: Server, status_port: int, rpc_port: int):
        self.server = server
        self.status_port = status_port
        self.rpc = f"tcp://127.0.0.1:{rpc_port}"

    def probe(self, path: str, method: str = "GET", timeout: float = 5.0) -> Probe:
        conn = http.client.HTTPConnection("127.0.0.1", self.status_port, timeout=timeout)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            return Probe(resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()})
        finally:
            conn.close()

    def wait_probe(self, path: str, until: Callable[[Probe], bool], timeout: float = 20.0) -> Probe:
        """Probe until `until` holds (connection errors while the listener is not up are retried)."""
        deadline = time.monotonic() + timeout
        last: Probe | str = "no answer"
        while time.monotonic() < deadline:
            try:
                last = self.probe(path, timeout=2.0)
                if until(last):
                    return last
            except OSError as exc:
                last = repr(exc)
            if self.server.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{path}: never as expected, last {last!r}\n{self.server.output()[-3000:]}")

    def rpc_call(self, method: str, plugin: str) -> Any:
        with RpcClient(self.rpc, 10.0) as client:
            answer = status_rpc.Response()
            answer.ParseFromString(client.call(method, status_rpc.Request(plugin=plugin).SerializeToString(),
                                               flags=FLAG_PROTO))
            return answer

    def wait_output(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.server.output():
            if time.monotonic() > deadline or self.server.proc.poll() is not None:
                raise AssertionError(f"{text!r} not in the output:\n{self.server.output()[-3000:]}")
            time.sleep(0.05)


def status_config(script: str = "app.php", workers: int = 2, engine: str = "python",
                  status: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A config with http on {port}; the status and rpc ports are filled in by StatusFactory."""
    cfg: dict[str, Any] = {
        "version": "3",
        "server": {"command": worker_cmd(script)},
        "http": {"address": "127.0.0.1:{port}", "engine": engine, "pool": {"num_workers": workers}},
        "status": dict(status or {}),
        "logs": {"level": "debug"},
    }
    cfg.update(extra)
    return cfg


class StatusFactory:
    def __init__(self, factory: ServerFactory):
        self.factory = factory

    def start(self, config: dict[str, Any], env: dict[str, str] | None = None, wait: bool = True) -> StatusServer:
        status_port, rpc_port = free_port(), free_port()
        config = dict(config)
        config["status"] = {"address": f"127.0.0.1:{status_port}", **config.get("status", {})}
        config["rpc"] = {"listen": f"tcp://127.0.0.1:{rpc_port}"}
        server = self.factory.start(raw_config=yaml.safe_dump(config), env=env, wait=False)
        st = StatusServer(server, status_port, rpc_port)
        if wait:
            st.wait_output("fastrr started")
        return st


@pytest.fixture
def status(fastrr: ServerFactory) -> StatusFactory:
    return StatusFactory(fastrr)
