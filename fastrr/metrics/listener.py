"""The scrape endpoint: a small HTTP/1.1 server on `metrics.address`.

Any path answers GET and HEAD with the exposition (as RoadRunner's
promhttp root handler does); other methods get 405. It is built for one
client that scrapes every few seconds, and for anything else that connects
not to hurt: the request head is limited to MAX_HEAD bytes and must arrive
within HEAD_TIMEOUT, idle keep-alive connections close after IDLE_TIMEOUT,
request bodies are refused, and at most MAX_CONNECTIONS are open at once.
A scraper that accepts gzip gets it (Prometheus always does).
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Callable
from email.utils import formatdate

from fastrr.log import Logger
from fastrr.metrics.exposition import CONTENT_TYPE

MAX_HEAD = 16 << 10
HEAD_TIMEOUT = 10.0
IDLE_TIMEOUT = 120.0
MAX_CONNECTIONS = 64
GZIP_OVER = 1024  # bytes: smaller bodies are sent as they are


class ScrapeServer:
    def __init__(self, host: str, port: int, render: Callable[[], bytes], log: Logger):
        self.host = host
        self.port = port
        self.render = render
        self.log = log
        self.server: asyncio.Server | None = None
        self.connections: set[ScrapeConnection] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: ScrapeConnection(self), self.host or None, self.port,
                                               reuse_address=True)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.close()

    def body(self) -> bytes:
        try:
            return self.render()
        except Exception as exc:  # a bug in one reader must not take the endpoint down
            self.log.error("metrics: rendering the exposition failed", error=repr(exc))
            raise


class ScrapeConnection(asyncio.Protocol):
    def __init__(self, server: ScrapeServer):
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if len(self.server.connections) >= MAX_CONNECTIONS:
            self._respond(503, b"too many connections\n", keep_alive=False)
            return
        self.server.connections.add(self)
        self._arm(HEAD_TIMEOUT)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()

    def _arm(self, seconds: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(seconds, self.close)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if not self.buffer:
            self._arm(HEAD_TIMEOUT)  # a request has begun: its head must arrive in time
        self.buffer += data
        while not self.closed:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    self._respond(431, b"request head too large\n", keep_alive=False)
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
            self._handle(head)
        if not self.closed and not self.buffer:
            self._arm(IDLE_TIMEOUT)

    def _handle(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            self._respond(400, b"bad request line\n", keep_alive=False)
            return
        method, version = parts[0], parts[2]
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                self._respond(400, b"bad header line\n", keep_alive=False)
                return
            headers[name.lower()] = value.strip()
        connection = headers.get(b"connection", b"").lower()
        keep_alive = b"close" not in connection if version == b"HTTP/1.1" else b"keep-alive" in connection
        if headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers:
            self._respond(413, b"the metrics endpoint takes no request body\n", keep_alive=False)
            return
        if method not in (b"GET", b"HEAD"):
            self._respond(405, b"use GET\n", keep_alive=keep_alive, extra=b"Allow: GET, HEAD\r\n")
            return
        try:
            body = self.server.body()
        except Exception:
            self._respond(500, b"rendering the metrics failed (see the server log)\n", keep_alive=False)
            return
        extra = b""
        if len(body) > GZIP_OVER and b"gzip" in headers.get(b"accept-encoding", b""):
            body = gzip.compress(body, compresslevel=1, mtime=0)
            extra = b"Content-Encoding: gzip\r\n"
        self._respond(200, body, keep_alive, CONTENT_TYPE.encode(), extra, head_only=method == b"HEAD")

    def _respond(self, status: int, body: bytes, keep_alive: bool, content_type: bytes = b"text/plain; charset=utf-8",
                 extra: bytes = b"", head_only: bool = False) -> None:
        if self.transport is None or self.closed:
            return
        reason = {200: b"OK", 400: b"Bad Request", 405: b"Method Not Allowed", 413: b"Payload Too Large",
                  431: b"Request Header Fields Too Large", 500: b"Internal Server Error",
                  503: b"Service Unavailable"}[status]
        head = (b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nDate: %s\r\n%s%s\r\n"
                % (status, reason, content_type, len(body), formatdate(time.time(), usegmt=True).encode(), extra,
                   b"" if keep_alive else b"Connection: close\r\n"))
        self.transport.write(head if head_only else head + body)
        if not keep_alive:
            self.closed = True
            self.transport.close()
