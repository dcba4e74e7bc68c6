"""The metrics plugin: the Prometheus endpoint on `metrics.address`, the
application collectors (`metrics.collect`, the metrics.* RPC) and fastrr's
own series, read from the other plugins only when a scrape asks.

It adds nothing to a request's path: the http front counts requests only
with `http_metrics` in http.middleware (and did so before this plugin
existed), the pools and the jobs plugin keep their counters anyway, and
every number is read here at scrape time. It starts right after rpc, so it
stops late, and a scrape still answers while the others drain.
"""

from __future__ import annotations

import gzip
from typing import Any

from fastrr.config.schema import ConfigContext
from fastrr.config.section import Section
from fastrr.metrics.builtin import (
    ProcessStats,
    metric_prefix,
    reserved_names,
    worker_rows,
    write_grpc,
    write_http,
    write_jobs,
    write_pool,
)
from fastrr.metrics.config import MetricsConfig, parse_metrics
from fastrr.metrics.exposition import CONTENT_TYPE, write_registry
from fastrr.metrics.registry import Registry
from fastrr.rpc.services import Services
from fastrr.server.endpoint import TEXT, Answer, EndpointServer, Request
from fastrr.server.plugin import Plugin, PluginError

GZIP_OVER = 1024  # bytes: a smaller exposition is sent as it is


class MetricsPlugin(Plugin):
    name = "metrics"
    section = "metrics"
    cfg: MetricsConfig

    @classmethod
    def parse_config(cls, section: Section, ctx: ConfigContext) -> Any:
        return parse_metrics(section)

    def __init__(self, host: Any, cfg: MetricsConfig):
        super().__init__(host, cfg)
        self.registry = Registry(reserved_names())
        for name, spec in cfg.collect.items():
            self.registry.declare(name, spec)  # config.py checked them
        self.process = ProcessStats()
        self.server: EndpointServer | None = None

    def register(self, rpc: Services) -> None:
        from fastrr.metrics.rpc import MetricsRpc

        MetricsRpc(self).register(rpc)

    async def start(self) -> None:
        host, _, port = self.cfg.address.rpartition(":")
        # One scraper every few seconds: few connections, no request bodies; a slow scraper gets 10 s.
        self.server = EndpointServer(host.strip("[]"), int(port), self.answer, self.log, name="metrics",
                                     read_timeout=10.0, idle_timeout=120.0, max_body=0, max_connections=64)
        try:
            await self.server.start()
        except OSError as exc:
            raise PluginError(f"metrics.address: cannot listen on {self.cfg.address}: {exc.strerror or exc}") \
                from None
        self.log.debug("metrics listening", address=self.cfg.address, collectors=sorted(self.registry.collectors))

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()

    # -- the scrape ------------------------------------------------------------------

    def answer(self, request: Request) -> Answer:
        """Any path answers GET and HEAD with the exposition (as RoadRunner's promhttp root
        handler does); a scraper that accepts gzip gets it (Prometheus always does)."""
        if request.method not in ("GET", "HEAD"):
            return Answer(405, b"use GET\n", TEXT, (("Allow", "GET, HEAD"),))
        body = self.render()
        if len(body) > GZIP_OVER and "gzip" in request.headers.get("accept-encoding", ""):
            return Answer(200, gzip.compress(body, compresslevel=1, mtime=0), CONTENT_TYPE,
                          (("Content-Encoding", "gzip"),))
        return Answer(200, body, CONTENT_TYPE)

    def render(self) -> bytes:
        """The whole exposition. Each source is read on its own: one failing is
        logged and left out, the others are still served."""
        out: list[str] = []
        for source, write in (("app collectors", lambda: write_registry(out, self.registry)),
                              ("process", lambda: self.process.write(out))):
            self._read(source, out, write)
        for name, pool in sorted(self.host.services.pools.items()):
            self._read(f"{name} workers", out, lambda p=pool, n=name: write_pool(out, metric_prefix(n),
                                                                                    worker_rows(p)))
        jobs = self.host.plugins.get("jobs")
        if jobs is not None:
            self._read("jobs", out, lambda: write_jobs(out, jobs))
        http = self.host.plugins.get("http")
        snapshot = getattr(http, "metrics_snapshot", None)
        if snapshot is not None:
            self._read("http requests", out, lambda: self._write_http(out, snapshot))
        grpc = self.host.plugins.get("grpc")
        grpc_snapshot = getattr(grpc, "metrics_snapshot", None)
        if grpc_snapshot is not None:
            self._read("grpc calls", out, lambda: self._write_grpc(out, grpc_snapshot))
        out.append("")
        return "\n".join(out).encode()

    @staticmethod
    def _write_http(out: list[str], snapshot: Any) -> None:
        snap = snapshot()
        if snap is not None:
            write_http(out, snap)

    @staticmethod
    def _write_grpc(out: list[str], snapshot: Any) -> None:
        snap = snapshot()
        if snap is not None:
            write_grpc(out, snap)

    def _read(self, source: str, out: list[str], write: Any) -> None:
        mark = len(out)
        try:
            write()
        except Exception as exc:
            del out[mark:]  # no half-written family
            self.log.error("metrics: a source failed to read, left out of this scrape", source=source,
                           error=repr(exc))
