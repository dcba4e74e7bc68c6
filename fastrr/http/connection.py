"""One HTTP/1.1 client connection, and the pool job for its current request.

Data flow: data_received → ① parse_request (C) → body (Content-Length slice or
C chunked decoder) → ② encode_http_request (C: RR JSON context + goridge frame)
→ ③ pool.submit(self) → worker frames come back through on_worker_frame →
⑥ build_response (C) → one transport.write.

Rules of this file:
- At most one request per connection is in flight (`busy`); pipelined requests
  wait in `buf`, so responses leave in request order.
- The connection *is* the job the pool runs: no per-request objects besides
  the parsed request and its frame.
- A client that goes away never strands a worker: a queued job is marked
  cancelled (the pool skips it, and does not retry it after a worker's
  stop()); a job on a worker runs to its end and the response is dropped; a
  stream gets STOP and is drained.
- Deadlines are plain floats checked by the server's ticker (no per-request timers).
- A request counts in `server.in_flight` (graceful shutdown waits for it) from
  submit until its job is over — answered, dropped, or its worker's last frame
  arrived, also after an abort — and is uncounted exactly once (`counted`).
  While its worker still sends frames the connection takes no next request.
"""

from __future__ import annotations

import asyncio
import html
import time
from typing import TYPE_CHECKING

from fastrr import _core
from fastrr.http.errors import error_response
from fastrr.http.files import FileSender
from fastrr.http.forms import FormError, urlencoded_to_json
from fastrr.http.middleware import RequestInfo
from fastrr.http.response import Response
from fastrr.http.tls import https_location
from fastrr.http.uploads import MultipartError, MultipartReceiver, boundary_from_content_type
from fastrr.pool.worker import PONG, STREAM_STOP, Worker, WorkerProtocolError

if TYPE_CHECKING:
    from fastrr.http.server import HttpServer

parse_request = _core.parse_request
encode_http_request = _core.encode_http_request
encode_http_request_proto = _core.encode_http_request_proto
build_response = _core.build_response
encode_chunk = _core.encode_chunk
LAST_CHUNK = _core.LAST_CHUNK
HttpError = _core.HttpError
FLAG_ERROR = _core.FLAG_ERROR
STREAM = _core.STREAM
PING = _core.PING
BODY_URLENCODED = _core.BODY_URLENCODED
BODY_MULTIPART = _core.BODY_MULTIPART
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SWITCHING_TO_H2C = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
PIPELINE_BUFFER_LIMIT = 1 << 20
LINGER_SECONDS = 2.0


class HttpConnection(asyncio.Protocol):
    __slots__ = (
        "server", "loop", "transport", "remote", "buf", "busy", "closed", "req", "body_left",
        "decoder", "request_frame", "cancelled", "retries", "queued_at", "stream_started",
        "stop_sent", "deadline", "started_at", "started_perf", "paused_reading", "write_paused", "status",
        "lingering",
        "processing", "peer", "started_wall", "uploads", "scheme", "info", "local", "sender", "counted",
    )

    def __init__(self, server: HttpServer, scheme: str = "http"):
        self.server = server
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.remote = ""
        self.buf = bytearray()
        self.busy = False
        self.closed = False
        self.req: _core.Request | None = None
        self.body_left = -1  # Content-Length bytes still to come; -1: not reading a CL body
        self.decoder: _core.ChunkedDecoder | None = None
        self.request_frame = b""
        self.cancelled = False
        self.retries = 0
        self.queued_at = 0.0
        self.stream_started = False
        self.stop_sent = False
        self.deadline = 0.0
        self.started_at = 0.0
        self.started_perf = 0.0  # http_metrics: uvloop's loop.time() moves in whole milliseconds
        self.paused_reading = False
        self.write_paused = False
        self.status = 0
        self.lingering = False
        self.processing = False
        self.peer = ""
        self.started_wall = 0.0
        # The multipart body being received (files stream to temp files); kept
        # until the response is written, then its temp files are removed.
        self.uploads: MultipartReceiver | None = None
        self.scheme = scheme  # "https" on the TLS listener
        # Middleware only (server.pipeline set): the request as middleware saw
        # it, a local answer waiting to be sent, a file body being sent.
        self.info: RequestInfo | None = None
        self.local: tuple[Response, int] | None = None
        self.sender: FileSender | None = None
        # The current request is counted in server.in_flight (cleared by _job_done, once).
        self.counted = False

    # -- asyncio protocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.remote = peer[0]
            self.peer = f"[{peer[0]}]:{peer[1]}" if ":" in peer[0] else f"{peer[0]}:{peer[1]}"
        self.deadline = self.loop.time() + self.server.cfg.idle_timeout
        self.server.connections.add(self)
        if self.scheme == "https":
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
                self._switch_to_h2(b"")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.cancelled = True  # a queued job is skipped by the pool
        if not self.busy:
            self._drop_uploads()  # no worker can be reading the temp files
        if self.sender is not None:
            self.sender.cancel()
        self.server.connections.discard(self)
        self.server.on_connection_idle()

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return  # discard what a rejected client still sends
        if not self.buf and self.req is None:
            self.deadline = self.loop.time() + self.server.cfg.read_timeout
        self.buf += data
        if not self.busy:
            if self.req is not None:
                self.deadline = self.loop.time() + self.server.cfg.read_timeout
            self._process()
        elif len(self.buf) > PIPELINE_BUFFER_LIMIT and not self.paused_reading:
            self.paused_reading = True
            self.transport.pause_reading()  # type: ignore[union-attr]

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.sender is not None:
            self.sender.pause()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.sender is not None:
            self.sender.resume()
        if not self.busy and not self.closed:
            self._process()

    # -- reading requests --------------------------------------------------------

    def _process(self) -> None:
        # Answers can come back synchronously (queue full, shutting down); the
        # flag turns that re-entry into another turn of this loop, not recursion.
        if self.processing:
            return
        self.processing = True
        try:
            self._process_buffered()
        finally:
            self.processing = False
        if self.paused_reading and not self.busy and len(self.buf) < PIPELINE_BUFFER_LIMIT:
            self.paused_reading = False
            self.transport.resume_reading()  # type: ignore[union-attr]

    def _process_buffered(self) -> None:
        cfg = self.server.cfg
        while not self.busy and not self.closed and not self.write_paused:
            req = self.req
            if req is None:
                if not self.buf:
                    return
                if self.buf[0] == 0x50 and self.server.cfg.http2.h2c:  # "P": maybe the HTTP/2 preface
                    if self.buf[:len(PREFACE)] == PREFACE:
                        self._switch_to_h2(bytes(self.buf))
                        return
                    if PREFACE.startswith(self.buf):
                        return  # wait for the rest of the preface
                try:
                    req = parse_request(self.buf, cfg.max_header_size)
                except HttpError as exc:
                    self._reject(exc.status, exc.reason)
                    return
                if req is None:
                    return
                del self.buf[:req.head_len]
                gateway = self.server.gateway
                if gateway is not None and req.method == "GET" and gateway.kind_of(req.target) is not None \
                        and req.content_length <= 0 and not req.chunked \
                        and (self.server.redirect_port is None or self.scheme == "https"):
                    # websockets.path / websockets.sse.path: the websockets plugin owns the
                    # connection (a GET without a body, as the C engine detaches it)
                    remote = self.server.client_address(req, self.remote, self.scheme,
                                                        f"HTTP/1.{req.http_minor}")
                    self._hand_over(gateway.protocol_for(req, self.scheme, remote), bytes(self.buf))
                    return
                if cfg.http2.h2c and self.scheme == "http" and req.content_length <= 0 \
                        and not req.chunked and self._upgrade_to_h2c(req):
                    return
                self.req = req
                # The access log's start and elapsed count from the head, body included (as RoadRunner's).
                self.started_at = self.loop.time()
                if self.server.metrics is not None:
                    self.started_perf = time.perf_counter()
                if self.server.access_log is not None:
                    self.started_wall = time.time()
                if req.chunked:
                    self.decoder = _core.ChunkedDecoder(cfg.max_body_bytes)
                elif req.content_length > 0:
                    if req.content_length > cfg.max_body_bytes:
                        self._reject(413, f"request body of {req.content_length} bytes is over "
                                          f"max_request_size ({cfg.max_request_size} MB)")
                        return
                    self.body_left = req.content_length
                if req.body_kind == BODY_MULTIPART and (self.decoder is not None or self.body_left > 0) \
                        and self.server.parses_form(req.method, True):
                    try:
                        boundary = boundary_from_content_type(
                            (req.get_header(b"content-type") or b"").decode("latin-1"))
                    except MultipartError as exc:
                        self._reject(exc.status, exc.reason)
                        return
                    self.uploads = MultipartReceiver(self.server.upload_policy, boundary)
                if req.expect_continue and (self.decoder is not None or self.body_left > 0) \
                        and len(self.buf) < max(self.body_left, 1):
                    self.transport.write(CONTINUE)  # type: ignore[union-attr]
            if self.decoder is not None:
                try:
                    used = self.decoder.feed(self.buf)
                except HttpError as exc:
                    self._reject(exc.status, exc.reason)
                    return
                del self.buf[:used]
                if self.uploads is not None:
                    try:
                        self.uploads.feed(self.decoder.take())
                    except MultipartError as exc:
                        self._reject(exc.status, exc.reason)
                        return
                if not self.decoder.done:
                    return
                error = self._encode(req, self.decoder.take())
                self.decoder = None
            elif self.uploads is not None and self.body_left > 0:
                # Multipart: consume what arrived, files go to disk as they come.
                size = min(len(self.buf), self.body_left)
                try:
                    with memoryview(self.buf) as view, view[:size] as part:
                        self.uploads.feed(part)
                except MultipartError as exc:
                    self._reject(exc.status, exc.reason)
                    return
                del self.buf[:size]
                self.body_left -= size
                if self.body_left > 0:
                    return
                self.body_left = -1
                error = self._encode(req, b"")
            elif self.body_left > 0:
                if len(self.buf) < self.body_left:
                    return
                size = self.body_left
                self.body_left = -1
                # Encode straight from the read buffer; the views must be gone
                # before the buffer is resized or anything re-enters _process.
                with memoryview(self.buf) as view, view[:size] as body:
                    error = self._encode(req, body)
                del self.buf[:size]
            else:
                error = self._encode(req, b"")
            if error is not None:
                self._reject(400, error)
                return
            if self.local is not None:
                self._answer_locally()
            else:
                self._submit()

    def _encode(self, req: _core.Request, body: bytes | memoryview) -> str | None:
        """Build the worker frame for `req`; returns a reason when the body is unusable."""
        server = self.server
        remote = self.remote
        if server.redirect_port is not None and self.scheme == "http":
            self.info = RequestInfo(req, remote, self.scheme, "HTTP/1.%d" % req.http_minor)
            location = https_location(req.host, req.target, server.redirect_port)
            self.local = (Response.local(308, headers=[("Location", location)]), 1 << 30)
            return None
        pipeline = server.pipeline
        if pipeline is not None:
            info = self.info = RequestInfo(req, remote, self.scheme, "HTTP/1.%d" % req.http_minor)
            resp, answered_by = pipeline.request(info)
            if resp is not None:
                self.local = (resp, answered_by)
                return None
            req = pipeline.rewrite(info, server.cfg.max_header_size)
            remote = info.remote
        parsed = False
        uploads = None
        if self.uploads is not None:
            try:
                self.uploads.finish()
                body = self.uploads.fields_json()
                uploads = self.uploads.uploads_json()
            except MultipartError as exc:
                self._drop_uploads()
                return exc.reason
            parsed = True
        elif req.body_kind == BODY_URLENCODED and server.parses_form(req.method, False):
            try:
                body = urlencoded_to_json(bytes(body))
            except FormError as exc:
                return str(exc)
            parsed = True
        encode = encode_http_request_proto if server.cfg.codec == "proto" else encode_http_request
        self.request_frame = encode(req, remote, self.scheme, body, parsed, uploads)
        return None

    def _submit(self) -> None:
        self.busy = True
        self.cancelled = False
        self.retries = 0
        self.stream_started = False
        self.stop_sent = False
        self.counted = True
        self.server.in_flight += 1
        self.server.pool.submit(self)

    def _answer_locally(self) -> None:
        """A middleware answered (static file, CORS preflight): no worker involved."""
        assert self.local is not None and self.info is not None
        resp, answered_by = self.local
        self.local = None
        self.busy = True
        self.counted = True
        self.server.in_flight += 1
        if self.server.pipeline is not None:
            self.server.pipeline.response(self.info, resp, answered_by)
        self._send_response(resp)

    # -- worker side (the pool job interface) ---------------------------------------

    def on_worker_frame(self, worker: Worker, flags: int, byte10: int,
                        options: tuple[int, ...], payload: bytes) -> bool:
        if byte10 & PING:
            worker.send(PONG)
        stream = byte10 & STREAM
        if self.closed:
            if stream and not self.stop_sent:
                self.stop_sent = True
                worker.send(STREAM_STOP)
            if not stream:
                self._job_done()
                self._drop_uploads()
            return not stream
        req = self.req
        assert req is not None
        if flags & FLAG_ERROR:
            return self._worker_error(payload, stream)
        if len(options) != 1 or options[0] > len(payload):
            raise WorkerProtocolError(f"options length should be equal 1 (body offset), got {options!r}")
        if self.stream_started:
            if not req.method == "HEAD":
                body = payload[options[0]:]
                if req.http_minor:
                    out = encode_chunk(body)
                    if not stream:
                        out += LAST_CHUNK
                else:
                    out = body
                if out:
                    self.transport.write(out)  # type: ignore[union-attr]
            if stream:
                return False
            self._finish(req.keep_alive and req.http_minor == 1)
            return True
        if self.info is not None and self.server.pipeline is not None and self.server.pipeline.has_response:
            return self._filtered_response(worker, payload, options[0], stream, flags)
        try:
            # codec=flags: FLAG_PROTO → http.v1.Response context, else JSON (flags 0 / FLAG_JSON)
            status, data = build_response(payload, options[0], req.keep_alive and not self.server.stopping,
                                          req.method == "HEAD", req.http_minor, bool(stream), flags)
        except _core.FrameError as exc:
            self.server.log.error("invalid response from worker", pid=worker.pid, error=str(exc))
            if stream:
                # Keep reading the rest of the stream, but the client gets a clean error now.
                self.stream_started = True
            self._respond_error(self.server.cfg.internal_error_code, str(exc), keep_alive=False,
                                job_done=not stream)
            return not stream
        if status < 200:
            if req.http_minor:  # HTTP/1.0 clients must not get 1xx
                self.transport.write(data)  # type: ignore[union-attr]
            return False
        self.status = status
        self.transport.write(data)  # type: ignore[union-attr]
        if stream:
            self.stream_started = True
            return False
        self._finish(req.keep_alive)
        return True

    def _filtered_response(self, worker: Worker, payload: bytes, ctx_len: int, stream: int, flags: int) -> bool:
        """The worker's response through the middleware's response hooks."""
        req = self.req
        assert req is not None and self.info is not None
        try:
            status, data = build_response(payload, ctx_len, True, False, 1, False, flags)
        except _core.FrameError as exc:
            self.server.log.error("invalid response from worker", pid=worker.pid, error=str(exc))
            if stream:
                self.stream_started = True
            self._respond_error(self.server.cfg.internal_error_code, str(exc), keep_alive=False,
                                job_done=not stream)
            return not stream
        if status < 200:
            if req.http_minor:
                self.transport.write(data)  # type: ignore[union-attr]
            return False
        resp = Response.from_http1(data)
        resp.streaming = bool(stream)
        self.server.pipeline.response(self.info, resp)  # type: ignore[union-attr]
        if stream:
            self.status = resp.status
            self.stream_started = True
            keep = req.keep_alive and not self.server.stopping
            self.transport.write(resp.encode_http1(req.http_minor, keep, req.method == "HEAD"))  # type: ignore
            return False
        self._send_response(resp)
        return True

    def _send_response(self, resp: Response) -> None:
        """Write a whole Response (head, then its body or file) and finish the request."""
        req = self.req
        assert req is not None
        keep = req.keep_alive and not self.server.stopping
        head_request = req.method == "HEAD"
        self.status = resp.status
        self.transport.write(resp.encode_http1(req.http_minor, keep, head_request))  # type: ignore[union-attr]
        body = resp.file
        if body is None or not resp.has_body(head_request) or self.closed:
            resp.close()
            self._finish(keep)
            return
        self.sender = FileSender(self.loop, self.transport, body,  # type: ignore[arg-type]
                                 lambda ok: self._file_sent(ok, keep))
        self.sender.start()

    def _file_sent(self, ok: bool, keep_alive: bool) -> None:
        self.sender = None
        if not ok:
            self.server.log.debug("file body not sent completely", remote=self.remote)
        self._finish(keep_alive and ok)

    def _worker_error(self, payload: bytes, stream: int) -> bool:
        text = payload.decode("utf-8", "replace")
        self.server.log.error("worker error", error=text)
        # With the STREAM bit the worker still owes the end of its exchange:
        # the request stays in flight until then, and this connection serves
        # no other request (the frames still to come belong to this one).
        if self.stream_started:
            self._abort()  # the response is cut short: the client must see it broken
            if not stream:
                self._job_done()
                self._drop_uploads()
        else:
            self._respond_error(self.server.cfg.internal_error_code,
                                html.escape(text) if self.server.pool.cfg.debug else "", keep_alive=True,
                                job_done=not stream)
        return not stream

    def on_worker_lost(self, worker: Worker, status: int, reason: str) -> None:
        if self.closed:
            self._job_done()
            self._drop_uploads()
            return
        self.server.log.error("request failed", pid=worker.pid, status=status, reason=reason)
        if self.stream_started:
            self._abort()
            self._job_done()
            self._drop_uploads()
            return
        detail = reason if self.server.pool.cfg.debug else ""
        self._respond_error(status, detail, keep_alive=True)

    def on_no_worker(self, reason: str) -> None:
        if self.closed:
            self._job_done()
            self._drop_uploads()
            return
        self.server.log.warn("no free worker", reason=reason)
        if self.server.metrics is not None:
            self.server.metrics.no_free_workers += 1
        self._respond_error(503, reason, keep_alive=True,
                            extra=b"Retry-After: 1\r\nNo-Workers: true\r\n")

    # -- writing -------------------------------------------------------------------

    def _respond_error(self, status: int, detail: str, keep_alive: bool, extra: bytes = b"",
                       job_done: bool = True) -> None:
        req = self.req
        keep = keep_alive and job_done and req is not None and req.keep_alive and not self.server.stopping
        self.status = status
        self.transport.write(error_response(status, detail, keep, extra,  # type: ignore[union-attr]
                                            head=req is not None and req.method == "HEAD"))
        self._finish(keep, job_done)

    def _finish(self, keep_alive: bool, job_done: bool = True) -> None:
        """The response is written. `job_done` false: the worker still sends
        frames for this request (a stream we answered early), so the request
        stays in flight until they end and the connection closes."""
        server = self.server
        if not job_done:
            keep_alive = False
        elif self.counted:  # _job_done, inline: this runs once per request
            self.counted = False
            server.in_flight -= 1
        if server.metrics is not None and self.req is not None:
            server.metrics.observe(self.status, time.perf_counter() - self.started_perf)
        if server.access_log is not None:
            server.log_access(self)
        if self.uploads is not None:
            self._drop_uploads()
        self.req = None
        self.info = None
        self.busy = False
        if not keep_alive or server.stopping:
            self.closed = True
            self.transport.close()  # type: ignore[union-attr]
            server.on_connection_idle()
            return
        self.deadline = self.loop.time() + server.cfg.idle_timeout
        if self.buf:
            self._process()

    def _reject(self, status: int, reason: str) -> None:
        """Malformed or over-limit input: answer and close, as DESIGN's table says.

        The close lingers: we stop writing but keep reading (and discarding)
        for a moment, because closing a socket with unread input sends a reset
        that can destroy our answer before the client has read it.
        """
        self.server.log.debug("request rejected", remote=self.remote, status=status, reason=reason)
        self.buf.clear()
        self.req = None
        self.decoder = None
        self.body_left = -1
        self._drop_uploads()
        if self.transport is None or self.closed or self.lingering:
            return
        self.transport.write(error_response(status, reason, False))
        self.lingering = True
        self.busy = True  # nothing more is parsed on this connection
        self.deadline = self.loop.time() + LINGER_SECONDS
        if self.paused_reading:
            self.paused_reading = False
            self.transport.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        else:
            self.closed = True
            self.transport.close()

    def _switch_to_h2(self, data: bytes) -> None:
        """ALPN chose h2, or an h2c client sent the preface: hand the transport over."""
        from fastrr.http.h2 import H2Connection

        self._hand_over(H2Connection(self.server, self.scheme, self.remote, self.peer), data)

    def _upgrade_to_h2c(self, req: _core.Request) -> bool:
        """`Upgrade: h2c` on a request without a body (RFC 7540 §3.2): 101, then
        the request is answered as stream 1 of an HTTP/2 connection. Requests
        with a body, or with settings that do not decode, stay on HTTP/1.1 (a
        server may ignore an upgrade)."""
        from fastrr.http.h2 import H2Connection, upgrade_headers, upgrade_settings

        settings = upgrade_settings(req)
        if settings is None:
            return False
        proto = H2Connection(self.server, self.scheme, self.remote, self.peer)
        if not proto.accept_upgrade(settings, upgrade_headers(req)):
            return False
        self.transport.write(SWITCHING_TO_H2C)  # type: ignore[union-attr]
        self._hand_over(proto, bytes(self.buf))  # the client's preface may be here already
        return True

    def _hand_over(self, proto: asyncio.Protocol, data: bytes) -> None:
        self.buf.clear()
        self.busy = True
        self.closed = True  # this object is done; the H2 protocol owns the transport now
        self.server.connections.discard(self)
        assert self.transport is not None
        self.transport.set_protocol(proto)
        proto.connection_made(self.transport)
        if data:
            proto.data_received(data)

    def _job_done(self) -> None:
        """The request left the pool's hands (answered, dropped, or over on its
        worker): it stops counting for the graceful shutdown, exactly once."""
        if self.counted:
            self.counted = False
            server = self.server
            server.in_flight -= 1
            if server.stopping:
                server.on_connection_idle()

    def _drop_uploads(self) -> None:
        if self.uploads is not None:
            self.uploads.cleanup()
            self.uploads = None

    def _abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def check_deadline(self, now: float) -> None:
        """Called by the server ticker: a silent client cannot hold a connection."""
        if self.closed or now < self.deadline:
            return
        if self.lingering:
            self.closed = True
            self.transport.close()  # type: ignore[union-attr]
            return
        if self.busy:
            return
        if self.req is not None or self.buf:
            self._reject(408, "request not received within read_timeout")
        else:
            self.closed = True
            self.transport.close()  # type: ignore[union-attr]
