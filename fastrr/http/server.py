"""The HTTP plugin: listener, connection registry, deadlines, graceful drain."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime
from typing import Any

from fastrr.config import HttpConfig
from fastrr.http.connection import HttpConnection
from fastrr.http.middleware import RequestInfo, build_pipeline
from fastrr.http.middleware.proxy_ip import ProxyIpMiddleware
from fastrr.http.request_metrics import RequestMetrics
from fastrr.http.request_metrics import enabled as metrics_enabled
from fastrr.http.tls import build_ssl_context
from fastrr.http.uploads import UploadPolicy
from fastrr.log import Logger
from fastrr.pool.pool import WorkerPool

TICK = 0.5


class HttpServer:

    def parses_form(self, method: str, multipart: bool) -> bool:
        """Whether a form body (urlencoded, or multipart when `multipart`) reaches the worker
        parsed: as RoadRunner does, for any method but HEAD and OPTIONS unless http.raw_body.
        Workers that asked for raw forms in their handshake (SuperglobalsWorker) get what PHP's
        own SAPIs see: urlencoded bodies as sent, multipart parsed only for POST."""
        if self.cfg.raw_body or method in ("HEAD", "OPTIONS"):
            return False
        if self.pool.raw_forms:
            return multipart and method == "POST"
        return True

    def __init__(self, cfg: HttpConfig, pool: WorkerPool, log: Logger):
        self.cfg = cfg
        self.pool = pool
        self.log = log
        self.loop = asyncio.get_running_loop()
        self.scheme = "http"
        self.upload_policy = UploadPolicy.from_config(cfg.uploads)
        self.pipeline = build_pipeline(cfg, log)
        # proxy_ip_parser, for the connections the websockets gateway takes before the pipeline
        self.proxy_ip = next((mw for mw in self.pipeline.chain if isinstance(mw, ProxyIpMiddleware)), None) \
            if self.pipeline is not None else None
        # http_metrics: None unless listed, so the connections' finish path costs one test
        self.metrics = RequestMetrics() if metrics_enabled(cfg.middleware) else None
        self.connections: set[HttpConnection] = set()
        # The websockets plugin's Gateway (fastrr/websockets/gateway.py), set by the http
        # plugin when it is on: GETs on its paths are handed to it.
        self.gateway: Any = None
        self.in_flight = 0
        self.stopping = False
        self.server: asyncio.AbstractServer | None = None
        self.tls_server: asyncio.AbstractServer | None = None
        # `http.ssl.redirect`: plain requests are answered with a 308 to this port.
        self.redirect_port: int | None = None
        if cfg.ssl is not None and cfg.ssl.redirect:
            self.redirect_port = int(cfg.ssl.address.rpartition(":")[2])
        self._ticker: asyncio.TimerHandle | None = None
        self._idle: asyncio.Event | None = None
        # RoadRunner logs every request at info level; skip the work when info is off.
        self.access_log: Logger | None = log if log.enabled(20) else None

    @staticmethod
    def _bind(address: str) -> socket.socket:
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
        return sock

    def client_address(self, req: Any, remote: str, scheme: str, protocol: str) -> str:
        """The address PHP sees for a request taken before the middleware (websockets, SSE):
        proxy_ip_parser's answer when it is configured, as for any request, else the peer."""
        if self.proxy_ip is None:
            return remote
        info = RequestInfo(req, remote, scheme, protocol)
        self.proxy_ip.request(info)
        return info.remote

    async def start(self) -> None:
        ssl_cfg = self.cfg.ssl
        tls_sock = self._bind(ssl_cfg.address) if ssl_cfg is not None else None
        sock = self._bind(self.cfg.address)
        # TLS first: once the plain port answers (what readiness checks probe),
        # the https one must already listen too
        if ssl_cfg is not None:
            context = build_ssl_context(ssl_cfg)
            self.tls_server = await self.loop.create_server(lambda: HttpConnection(self, "https"), sock=tls_sock,
                                                            backlog=4096, ssl=context)
            self.log.info("https server listening", address=ssl_cfg.address)
        self.server = await self.loop.create_server(lambda: HttpConnection(self), sock=sock, backlog=4096)
        self._ticker = self.loop.call_later(TICK, self._tick)
        self.log.info("http server listening", address=self.cfg.address)

    def _tick(self) -> None:
        self._ticker = self.loop.call_later(TICK, self._tick)
        now = self.loop.time()
        for conn in list(self.connections):
            conn.check_deadline(now)

    def log_access(self, conn: HttpConnection) -> None:
        """RoadRunner's per-request line: info "http log", or "http access log"
        with more fields when `http.access_logs` is on (Octane reads these)."""
        req = conn.req
        if req is None or self.access_log is None:
            return
        target = req.target
        fields = {
            "status": conn.status, "method": req.method, "URI": target,
            "URL": target if "://" in target else f"{conn.scheme}://{req.host or ''}{target}",
            "remote_address": conn.peer,
            "start": datetime.fromtimestamp(conn.started_wall, UTC).isoformat(timespec="microseconds"),
            "elapsed": int((self.loop.time() - conn.started_at) * 1000),
        }
        if not self.cfg.access_logs:
            self.access_log.info("http log", **fields)
            return
        query = target.partition("?")[2]
        fields.update({
            "query": query, "content_len": req.content_length, "host": req.host or "",
            "user_agent": (req.get_header(b"user-agent") or b"").decode("latin-1"),
            "referer": (req.get_header(b"referer") or b"").decode("latin-1"),
            "time_local": time.strftime("%d/%b/%y:%H:%M:%S %z", time.localtime(conn.started_wall)),
        })
        self.access_log.info("http access log", **fields)

    def on_connection_idle(self) -> None:
        if self._idle is not None and self.in_flight <= 0:
            self._idle.set()

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (bounded), close the rest."""
        self.stopping = True
        for listener in (self.server, self.tls_server):
            if listener is not None:
                listener.close()
        for conn in list(self.connections):
            shutdown = getattr(conn, "shutdown", None)
            if shutdown is not None:
                shutdown()  # HTTP/2: GOAWAY, close when its streams are done
            elif not conn.busy and conn.transport is not None:
                conn.closed = True
                conn.transport.close()
        self._idle = asyncio.Event()
        started = time.monotonic()
        while self.in_flight > 0 and time.monotonic() - started < self.cfg.shutdown_timeout:
            self._idle.clear()
            try:
                await asyncio.wait_for(self._idle.wait(), 0.2)
            except TimeoutError:
                pass
        if self.in_flight > 0:
            self.log.warn("shutdown timeout reached with requests in flight", in_flight=self.in_flight)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        if self._ticker is not None:
            self._ticker.cancel()
