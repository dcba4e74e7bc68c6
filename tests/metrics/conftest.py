"""Fixtures for the metrics plugin: a real `fastrr serve` with an rpc listener,
a metrics endpoint and, unless told otherwise, an http pool of PHP workers
(tests/workers/metrics_worker.php) that run Fastrr\\Metrics calls posted to
them. Every scrape is parsed with prometheus-client's parser."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from fastrr.rpc.client import RpcClient
from tests.conftest import Server, ServerFactory, free_port, worker_cmd


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, by (sample name, labels). prometheus-client names a
    counter's sample `<name>_total` when the exposition writes it without the suffix."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, f"sample {key} appears twice"
            out[key] = s.value
    return out


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


class MetricsServer:
    def __init__(self, server: Server, metrics_port: int, http_port: int | None):
        self.server = server
        self.metrics_port = metrics_port
        self.http_port = http_port
        self.rpc_address = f"tcp://127.0.0.1:{server.port}"

    def scrape(self, path: str = "/metrics") -> str:
        resp = httpx.get(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=10)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        return resp.text

    def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        return parse(self.scrape())

    def value(self, name: str, **labels: str) -> float | None:
        samples = self.samples()
        key = frozenset(labels.items())
        for candidate in (name, name + "_total"):
            if (candidate, key) in samples:
                return samples[(candidate, key)]
        return None

    def php(self, *calls: list[Any]) -> list[Any]:
        """Run Fastrr\\Metrics calls in a PHP worker; one result per call ("ok" or {"error", "message"})."""
        assert self.http_port is not None
        resp = httpx.post(f"http://127.0.0.1:{self.http_port}/", json=list(calls), timeout=20)
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def rpc(self, method: str, payload: Any) -> Any:
        with RpcClient(self.rpc_address, 10.0) as client:
            return client.call(method, payload)

    def wait_output(self, text: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.server.output():
            if time.monotonic() > deadline or self.server.proc.poll() is not None:
                raise AssertionError(f"{text!r} not in the output:\n{self.server.output()[-4000:]}")
            time.sleep(0.05)


class MetricsFactory:
    def __init__(self, factory: ServerFactory):
        self.factory = factory

    def config(self, metrics: dict[str, Any] | None = None, http: bool = True, workers: int = 2,
               **extra: Any) -> tuple[dict[str, Any], int, int | None]:
        metrics_port = free_port()
        http_port = free_port() if http else None
        cfg: dict[str, Any] = {
            "version": "3",
            "server": {"command": worker_cmd("metrics_worker.php")},
            "rpc": {"listen": "tcp://127.0.0.1:{port}"},
            "logs": {"level": "debug"},
            "metrics": {"address": f"127.0.0.1:{metrics_port}", **(metrics or {})},
        }
        if http:
            cfg["http"] = {"address": f"127.0.0.1:{http_port}", "pool": {"num_workers": workers}}
        cfg.update(extra)
        return cfg, metrics_port, http_port

    def start(self, metrics: dict[str, Any] | None = None, http: bool = True, workers: int = 2,
              env: dict[str, str] | None = None, **extra: Any) -> MetricsServer:
        cfg, metrics_port, http_port = self.config(metrics, http, workers, **extra)
        server = self.factory.start(raw_config=yaml.safe_dump(cfg), env=env)
        ms = MetricsServer(server, metrics_port, http_port)
        ms.wait_output("fastrr started")
        return ms

    def fail(self, metrics: dict[str, Any], **extra: Any) -> tuple[int, str]:
        """Start with a config that must be refused: (exit code, output)."""
        cfg, _, _ = self.config(metrics, http=False, **extra)
        server = self.factory.start(raw_config=yaml.safe_dump(cfg), wait=False)
        try:
            code = server.proc.wait(20)
        except Exception:
            server.kill()
            raise AssertionError(f"fastrr kept running with a bad config:\n{server.output()}") from None
        return code, server.output()


@pytest.fixture
def metrics(fastrr: ServerFactory) -> MetricsFactory:
    return MetricsFactory(fastrr)
