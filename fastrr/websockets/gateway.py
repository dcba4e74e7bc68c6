"""From an HTTP request on websockets.path / websockets.sse.path to an open connection.

Both HTTP fronts hand such a GET over once its head is parsed: the Python front gives
its transport (connection.py, as it does for h2c), the C engine gives the socket
(EnginePool.on_detach: fd, the parsed request, the bytes read after its head). From
there one `Upgrade` protocol owns the connection:

  ① checks that need no PHP: Origin (405, as RoadRunner), a WebSocket upgrade at all
     (400 with a clear text: a plain GET here is not a PHP request), version 13 (426),
     no request body, SSE topics present;
  ② asks PHP (auth.py): `ws:joinServer` for an upgrade, `ws:joinTopics` for SSE;
  ③ 2xx → 101 Switching Protocols with PHP's headers (Set-Cookie, ...) and
     Sec-WebSocket-Accept, then protocol.WsConnection; or 200 text/event-stream and
     sse.SseStream. Anything else → PHP's answer as it is, and the connection closes.

After ③ no PHP worker is held: joins borrow one for their authorization only.
Input that arrives during ② is kept (bounded) and given to the new protocol.

HTTP/2 (the Python front's h2.py, over TLS by ALPN or h2c): a complete GET on sse.path
is not a connection but one stream of it; `event_stream_h2` gives that stream to
sse_h2.H2EventStream, which runs the same ①-③ for SSE on it. WebSockets over HTTP/2
(RFC 8441) are not offered: browsers open them on HTTP/1.1.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import socket
from typing import TYPE_CHECKING, Any

from wsproto.extensions import PerMessageDeflate

from fastrr.websockets.auth import auth_frame, authorize, http_answer, php_headers
from fastrr.websockets.fanout import Fanout
from fastrr.websockets.frames import WINDOW_BITS
from fastrr.websockets.protocol import WsConnection
from fastrr.websockets.sse import Refused, SseStream, authorize_stream, origin_ok, read_request
from fastrr.websockets.sse_h2 import H2EventStream

if TYPE_CHECKING:
    from fastrr import _core
    from fastrr.broadcast.hub import Hub
    from fastrr.http.h2 import H2Connection, H2Stream
    from fastrr.log import Logger
    from fastrr.pool.pool import WorkerPool
    from fastrr.websockets.config import WebsocketsConfig

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_EARLY_INPUT = 64 * 1024  # bytes a client may send before its upgrade is answered


def accept_key(key: bytes) -> bytes:
    """RFC 6455 §4.2.2: base64(SHA-1(key + GUID))."""
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def _tokens(value: bytes | None) -> set[bytes]:
    return {t.strip().lower() for t in (value or b"").split(b",")}


def negotiate_deflate(req: _core.Request) -> tuple[PerMessageDeflate | None, bytes]:
    """The first permessage-deflate offer we can take (the server compresses each message
    from an empty window, so server_no_context_takeover; a smaller server window than
    ours is declined): (the extension for wsproto, the response header value)."""
    for name, value in req.headers:
        if name.lower() != b"sec-websocket-extensions":
            continue
        for offer in value.decode("latin-1").split(","):
            if offer.split(";", 1)[0].strip() != "permessage-deflate":
                continue
            ext = PerMessageDeflate(server_no_context_takeover=True)
            try:
                params = ext.accept(offer.strip())
            except ValueError:
                continue
            if params is None or ext.server_max_window_bits != WINDOW_BITS:
                continue
            return ext, (f"permessage-deflate; {params}" if params else "permessage-deflate").encode()
    return None, b""


def _php_headers(headers: dict[str, list[str]]) -> bytes:
    return b"".join(b"%s: %s\r\n" % pair for pair in php_headers(headers))


class Gateway:
    """The websockets plugin's connections: hand-over entry points, the ticker, shutdown."""

    def __init__(self, cfg: WebsocketsConfig, pool: WorkerPool, hub: Hub, log: Logger):
        self.cfg = cfg
        self.pool = pool
        self.hub = hub
        self.log = log
        self.loop = asyncio.get_running_loop()
        self.fanout = Fanout(self.loop)  # deliveries go out once per loop turn, in C
        self.kinds: dict[str, str] = {cfg.path: "ws"}
        if cfg.sse.path:
            self.kinds[cfg.sse.path] = "sse"
        self.connections: set[Any] = set()  # WsConnection, SseStream, H2EventStream
        self.pending: set[Any] = set()  # Upgrade, H2EventStream: waiting for PHP's answer
        self.stopping = False
        self._ticker: asyncio.TimerHandle | None = None
        self._idle: asyncio.Event | None = None
        interval = cfg.ping_interval
        self.tick_every = max(0.05, min(1.0, interval / 4)) if interval else 1.0

    @property
    def detach_paths(self) -> list[bytes]:
        return [p.encode() for p in self.kinds]

    def kind_of(self, target: str) -> str | None:
        return self.kinds.get(target.partition("?")[0])

    # -- entry points ----------------------------------------------------------------

    def protocol_for(self, req: _core.Request, scheme: str, remote: str) -> Upgrade:
        """Python front: the protocol its transport is handed to (connection.py)."""
        kind = self.kind_of(req.target) or "ws"
        return Upgrade(self, kind, req, scheme, remote, b"")

    def event_stream_h2(self, conn: H2Connection, stream: H2Stream) -> None:
        """Python front, HTTP/2: a complete GET on sse.path became this stream's (h2.py)."""
        H2EventStream(self, conn, stream).begin()

    def on_detach(self, fd: int, req: _core.Request, leftover: bytes) -> None:
        """C engine: the socket of a GET on one of our paths is ours now (we close it)."""
        try:
            sock = socket.socket(fileno=fd)
        except OSError as exc:
            self.log.error("cannot take over a detached connection", error=str(exc))
            return
        try:
            sock.setblocking(False)
            peer = sock.getpeername()
            remote = peer[0] if isinstance(peer, tuple) else ""
        except OSError:
            sock.close()
            return
        proto = Upgrade(self, self.kind_of(req.target) or "ws", req, "http", remote, bytes(leftover))
        task = self.loop.create_task(self._attach(sock, proto))
        self.pending.add(proto)  # until connection_made (shutdown must see it)
        proto.attach_task = task

    async def _attach(self, sock: socket.socket, proto: Upgrade) -> None:
        try:
            await self.loop.connect_accepted_socket(lambda: proto, sock)
        except OSError as exc:
            self.pending.discard(proto)
            self.log.debug("detached connection lost before it was attached", error=str(exc))
            sock.close()

    # -- registry, ticker, shutdown --------------------------------------------------

    def start(self) -> None:
        self._ticker = self.loop.call_later(self.tick_every, self._tick)

    def _tick(self) -> None:
        self._ticker = self.loop.call_later(self.tick_every, self._tick)
        now = self.loop.time()
        for conn in list(self.connections):
            try:
                conn.tick(now)
            except Exception as exc:  # one connection must not stop the others' timers
                self.log.error("websocket timer failed", error=repr(exc))
                conn.abort()

    def forget(self, conn: Any) -> None:
        self.connections.discard(conn)
        if self._idle is not None and not self.connections and not self.pending:
            self._idle.set()

    def going_away(self) -> None:
        """Shutdown, first step: refuse new connections, close 1001 / end every stream."""
        if self.stopping:
            return
        self.stopping = True
        for up in list(self.pending):
            up.refuse()
        for conn in list(self.connections):
            conn.going_away()

    async def stop(self) -> None:
        """Wait (close_timeout at most) for the closing handshakes, then abort the rest."""
        self.going_away()
        if self.connections or self.pending:
            self._idle = asyncio.Event()
            try:
                await asyncio.wait_for(self._idle.wait(), self.cfg.close_timeout)
            except TimeoutError:
                self.log.debug("websocket clients still open after close_timeout, aborting",
                               open=len(self.connections))
        for conn in list(self.connections):
            conn.abort()
        for up in list(self.pending):
            up.abort()
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None


class Upgrade(asyncio.Protocol):
    """A connection between its request head and PHP's answer (see the module doc)."""

    def __init__(self, gateway: Gateway, kind: str, req: _core.Request, scheme: str, remote: str,
                 early: bytes):
        self.gateway = gateway
        self.kind = kind
        self.req = req
        self.scheme = scheme
        self.remote = remote
        self.early = bytearray(early)
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.attach_task: asyncio.Task[None] | None = None
        self.done = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.gateway.pending.add(self)
        if not self.remote:
            peer = transport.get_extra_info("peername")
            self.remote = peer[0] if isinstance(peer, tuple) else ""
        if self.gateway.stopping:
            self.refuse()
            return
        self.task = self.gateway.loop.create_task(self._run())

    def data_received(self, data: bytes) -> None:
        if self.done:
            return
        self.early += data
        if len(self.early) > MAX_EARLY_INPUT:
            self.gateway.log.debug("client sent too much before its upgrade was answered", remote=self.remote)
            self.abort()

    def eof_received(self) -> bool | None:
        return True  # keep the write side: the answer may still go out

    def connection_lost(self, exc: Exception | None) -> None:
        self.done = True
        if self.task is not None and not self.task.done():
            self.task.cancel()  # a queued authorization is skipped
        self._leave()

    def _leave(self) -> None:
        self.gateway.pending.discard(self)
        self.gateway.forget(None)

    # -- the steps -------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            if self.kind == "ws":
                await self._websocket()
            else:
                await self._event_stream()
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            self.gateway.log.error("websocket upgrade failed", error=repr(exc))
            self._answer(http_answer(500, "internal error\n"))

    def _answer(self, data: bytes) -> None:
        """A final HTTP answer (a denial, an error): write it and close."""
        if self.done:
            return
        self.done = True
        self._leave()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)
            transport.close()

    def refuse(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
        self._answer(http_answer(503, "server is shutting down\n", "Retry-After: 1\r\n"))

    def abort(self) -> None:
        self.done = True
        self._leave()
        if self.transport is not None:
            self.transport.abort()

    def _origin_ok(self, required: bool) -> bool:
        return origin_ok(self.gateway.cfg, self.req, required)

    def _bad_request(self, text: str, status: int = 400, extra: str = "") -> None:
        self.gateway.log.debug("websocket request refused", remote=self.remote, status=status, reason=text)
        self._answer(http_answer(status, text + "\n", extra))

    async def _websocket(self) -> None:
        req = self.req
        cfg = self.gateway.cfg
        if not self._origin_ok(required=True):
            self._bad_request(f"origin not allowed (websockets.allowed_origin is {cfg.allowed_origin})", 405)
            return
        if b"websocket" not in _tokens(req.get_header(b"upgrade")) \
                or b"upgrade" not in _tokens(req.get_header(b"connection")):
            self._bad_request(f"{cfg.path} serves WebSocket connections: expected a GET with "
                              "Connection: Upgrade and Upgrade: websocket")
            return
        if req.http_minor != 1 or req.content_length > 0 or req.chunked:
            self._bad_request("a WebSocket upgrade is an HTTP/1.1 GET without a body")
            return
        version = (req.get_header(b"sec-websocket-version") or b"").strip()
        if version != b"13":
            self._bad_request("unsupported Sec-WebSocket-Version: expected 13", 426,
                              "Sec-WebSocket-Version: 13\r\n")
            return
        key = (req.get_header(b"sec-websocket-key") or b"").strip()
        try:
            valid_key = len(base64.b64decode(key, validate=True)) == 16
        except (binascii.Error, ValueError):
            valid_key = False
        if not valid_key:
            self._bad_request("Sec-WebSocket-Key: expected 16 bytes in base64")
            return
        answer = await authorize(self.gateway.pool, auth_frame(req, self.remote, self.scheme,
                                                               {"ws:joinServer": True}))
        if self.done:
            return
        if not answer.allowed:
            if answer.reason:
                self.gateway.log.warn("websocket upgrade not authorized", status=answer.status,
                                      reason=answer.reason)
            self._answer(answer.raw)
            return
        ext, ext_header = negotiate_deflate(req) if cfg.compression else (None, b"")
        head = [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
                b"Sec-WebSocket-Accept: " + accept_key(key) + b"\r\n"]
        if ext is not None:
            head.append(b"Sec-WebSocket-Extensions: " + ext_header + b"\r\n")
        head.append(_php_headers(answer.headers))
        head.append(b"\r\n")
        conn = WsConnection(self.gateway, req, self.remote, self.scheme, [ext] if ext else [], ext is not None)
        self.gateway.log.debug("websocket connected", remote=self.remote, deflate=ext is not None)
        self._switch(conn, b"".join(head))

    async def _event_stream(self) -> None:
        try:
            topics, last_id = read_request(self.gateway.cfg, self.req)
        except Refused as exc:
            self._bad_request(exc.text, exc.status)
            return
        answer = await authorize_stream(self.gateway, self.req, self.remote, self.scheme, topics)
        if self.done:
            return
        if not answer.allowed:
            self._answer(answer.raw)
            return
        stream = SseStream(self.gateway, topics, self.remote)
        self._switch(stream, b"")
        if stream.transport is not None:
            stream.open(answer, last_id)

    def _switch(self, proto: asyncio.Protocol, head: bytes) -> None:
        """Hand the transport to the open connection's protocol, with what arrived meanwhile."""
        transport = self.transport
        self.done = True
        self._leave()
        if transport is None or transport.is_closing():
            return
        if head:
            transport.write(head)
        transport.set_protocol(proto)
        proto.connection_made(transport)
        if self.early:
            proto.data_received(bytes(self.early))
            self.early.clear()
