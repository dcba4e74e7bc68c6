"""HTTP/2 (over TLS with ALPN `h2`; h2c with prior knowledge or `Upgrade: h2c`) on the h2 library.

Data flow: data_received → h2 events → per stream: headers become an HTTP/1.1
head that the C parser turns into a `_core.Request` (so the context encoder,
limits and middleware are the same as for HTTP/1.1) → body (buffered, or
multipart streamed to temp files) → request context in `http.codec` (JSON, or
protobuf http.v1.Request with frame flag FLAG_PROTO, as on HTTP/1.1; protocol
"HTTP/2.0" either way) → one pool job per stream → worker frames → C
`build_response` (reads the reply in the codec its frame flags name) →
Response → h2 HEADERS/DATA under flow control.

Rules of this file:
- Every stream is its own pool job (H2Stream implements the Job interface),
  so concurrent streams of one connection run on different workers.
- A stream is finished when both sides are done: the job (final worker frame,
  worker lost, or no worker) and the output (END_STREAM sent, or the stream
  reset / connection gone). Only then: in_flight -1, access log, temp files
  removed. A reset stream never strands a worker: a queued job is skipped by
  the pool, a running one runs to its end (a stream gets STOP).
- Output obeys both flow-control windows and the transport's pause_writing;
  pending bytes wait in the stream (`pending`), file bodies are read from the
  file only as far as the window allows.
- Request bodies are acknowledged (WINDOW_UPDATE) as soon as they are
  consumed: buffered (bounded by max_request_size) or written to disk.
- A stream over max_concurrent_streams is refused on its own (RST_STREAM
  REFUSED_STREAM, RFC 9113 §5.1.2); the connection and its other streams go on.
- A complete GET on websockets.sse.path is no pool job: the websockets gateway
  makes it an event stream (websockets/sse_h2.py) that writes with
  `stream_write` and is told of the stream's end by `maybe_finish`. It holds
  one of max_concurrent_streams while open. No SETTINGS_ENABLE_CONNECT_PROTOCOL:
  WebSockets stay on HTTP/1.1.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import html
import os
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from hyperframe.frame import HeadersFrame

from fastrr import _core
from fastrr.http.errors import REASONS
from fastrr.http.forms import FormError, urlencoded_to_json
from fastrr.http.middleware import RequestInfo
from fastrr.http.response import FileBody, Response
from fastrr.http.uploads import MultipartError, MultipartReceiver, boundary_from_content_type
from fastrr.pool.worker import PONG, STREAM_STOP, Worker, WorkerProtocolError

if TYPE_CHECKING:
    from fastrr.http.server import HttpServer

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
INITIAL_WINDOW = 1 << 20  # per stream, for request bodies
CONNECTION_WINDOW = 16 << 20
FILE_READ = 256 << 10
PRE_ACK_STREAMS = 256
DISCARD_LIMIT = 64 << 20
_SKIP_REQUEST = {b"host", b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                 b"upgrade", b"te", b"cookie", b"http2-settings"}
_SKIP_RESPONSE = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}


class _RefusingH2(h2.connection.H2Connection):
    """h2 treats a HEADERS frame over our MAX_CONCURRENT_STREAMS as an error of
    the whole connection (GOAWAY: every stream on it fails). RFC 9113 §5.1.2
    allows a stream error instead, which is what clients retry on: the frame is
    still decoded (the HPACK table must stay in step with the client), the
    stream is opened and at once reset with REFUSED_STREAM, and its request is
    never seen by the server."""

    _refusing = False

    @property
    def open_inbound_streams(self) -> int:
        return 0 if self._refusing else super().open_inbound_streams

    def _receive_headers_frame(self, frame: HeadersFrame):  # type: ignore[no-untyped-def]
        if frame.stream_id in self.streams or \
                self.open_inbound_streams < self.local_settings.max_concurrent_streams:
            return super()._receive_headers_frame(frame)
        self._refusing = True
        try:
            frames, events = super()._receive_headers_frame(frame)
        finally:
            self._refusing = False
        frames += self.streams[frame.stream_id].reset_stream(ErrorCodes.REFUSED_STREAM)
        return frames, [e for e in events if getattr(e, "stream_id", None) != frame.stream_id]


def upgrade_settings(req: _core.Request) -> bytes | None:
    """The HTTP2-Settings payload of an `Upgrade: h2c` request (RFC 7540 §3.2),
    or None when the request does not ask for h2c or its settings do not decode
    (then the upgrade is ignored and the request served on HTTP/1.1)."""
    upgrade = req.get_header(b"upgrade")
    settings = req.get_header(b"http2-settings")
    if upgrade is None or settings is None:
        return None
    if b"h2c" not in [token.strip().lower() for token in upgrade.split(b",")]:
        return None
    try:
        raw = base64.b64decode(settings + b"=" * (-len(settings) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) % 6:
        return None  # a SETTINGS payload is a list of 6-byte entries
    return base64.urlsafe_b64encode(raw)


def upgrade_headers(req: _core.Request) -> list[tuple[bytes, bytes]]:
    """The HTTP/1.1 request that asked for h2c, as the h2 header list of stream 1."""
    headers = [(b":method", req.method.encode("latin-1")), (b":path", req.target.encode("latin-1")),
               (b":scheme", b"http"), (b":authority", (req.host or "").encode("latin-1"))]
    headers += [(name.lower(), value) for name, value in req.headers]
    return headers


class H2Stream:
    """One request/response exchange; the pool job for it."""

    __slots__ = (
        "conn", "stream_id", "req", "info", "method", "uploads", "body", "body_limit", "request_frame",
        "cancelled", "retries", "queued_at", "stream_started", "stop_sent", "dispatched", "job_done",
        "output_done", "pending", "end_pending", "file", "status", "started_at", "started_perf", "started_wall",
        "peer", "scheme", "error", "remote_ended", "pending_bytes", "event_stream",
    )

    def __init__(self, conn: H2Connection, stream_id: int):
        self.conn = conn
        self.stream_id = stream_id
        self.req: _core.Request | None = None
        self.info: RequestInfo | None = None
        self.method = ""
        self.uploads: MultipartReceiver | None = None
        self.body = bytearray()
        self.body_limit = conn.server.cfg.max_body_bytes
        self.request_frame = b""
        self.cancelled = False
        self.retries = 0
        self.queued_at = 0.0
        self.stream_started = False
        self.stop_sent = False
        self.dispatched = False
        self.job_done = False
        self.output_done = False
        self.pending: deque[bytes] = deque()
        self.pending_bytes = 0  # in `pending` (an event stream's slow-consumer measure)
        self.end_pending = False  # END_STREAM goes with the last pending byte
        self.file: FileBody | None = None
        self.status = 0
        self.started_at = 0.0
        self.started_perf = 0.0  # http_metrics (loop.time() moves in whole milliseconds)
        self.started_wall = 0.0
        self.peer = conn.peer
        self.scheme = conn.scheme
        self.error: tuple[int, str] | None = None  # a request refused before it was complete
        self.remote_ended = False
        self.event_stream: Any = None  # websockets/sse_h2.H2EventStream: no pool job, the gateway's

    # -- pool job interface -----------------------------------------------------------------

    def on_worker_frame(self, worker: Worker, flags: int, byte10: int,
                        options: tuple[int, ...], payload: bytes) -> bool:
        if byte10 & _core.PING:
            worker.send(PONG)
        stream = byte10 & _core.STREAM
        if self.cancelled:
            if stream and not self.stop_sent:
                self.stop_sent = True
                worker.send(STREAM_STOP)
            if not stream:
                self._job_finished()
            return not stream
        conn = self.conn
        if flags & _core.FLAG_ERROR:
            text = payload.decode("utf-8", "replace")
            conn.server.log.error("worker error", error=text)
            if self.stream_started:
                conn.reset(self, ErrorCodes.INTERNAL_ERROR)
            else:
                detail = html.escape(text) if conn.server.pool.cfg.debug else ""
                self.respond(_error(conn.server.cfg.internal_error_code, detail))
            if not stream:
                self._job_finished()
            return not stream
        if len(options) != 1 or options[0] > len(payload):
            raise WorkerProtocolError(f"options length should be equal 1 (body offset), got {options!r}")
        if self.stream_started:
            if self.method != "HEAD":
                self.send_data(payload[options[0]:], end=not stream)
            elif not stream:
                self.send_data(b"", end=True)
            if stream:
                return False
            self._job_finished()
            return True
        try:
            # codec=flags: FLAG_PROTO → http.v1.Response context, else JSON (flags 0 / FLAG_JSON)
            status, data = _core.build_response(payload, options[0], True, False, 1, False, flags)
        except _core.FrameError as exc:
            conn.server.log.error("invalid response from worker", pid=worker.pid, error=str(exc))
            self.respond(_error(conn.server.cfg.internal_error_code, str(exc)))
            if stream:
                self.stream_started = True
                self.cancelled = True  # read the rest of the stream, send nothing more
                return False
            self._job_finished()
            return True
        if status < 200:
            conn.send_informational(self, Response.from_http1(data))
            return False
        resp = Response.from_http1(data)
        resp.streaming = bool(stream)
        pipeline = conn.server.pipeline
        if pipeline is not None and pipeline.has_response and self.info is not None:
            pipeline.response(self.info, resp)
        if stream:
            self.stream_started = True
        self.respond(resp)
        if stream:
            return False
        self._job_finished()
        return True

    def on_worker_lost(self, worker: Worker, status: int, reason: str) -> None:
        conn = self.conn
        if not self.cancelled:
            conn.server.log.error("request failed", pid=worker.pid, status=status, reason=reason)
            if self.stream_started:
                conn.reset(self, ErrorCodes.INTERNAL_ERROR)
            else:
                self.respond(_error(status, reason if conn.server.pool.cfg.debug else ""))
        self._job_finished()

    def on_no_worker(self, reason: str) -> None:
        if not self.cancelled:
            self.conn.server.log.warn("no free worker", reason=reason)
            if self.conn.server.metrics is not None:
                self.conn.server.metrics.no_free_workers += 1
            self.respond(_error(503, reason, [("Retry-After", "1"), ("No-Workers", "true")]))
        self._job_finished()

    # -- output ---------------------------------------------------------------------------

    def respond(self, resp: Response) -> None:
        self.status = resp.status
        self.conn.send_response(self, resp)

    def send_data(self, data: bytes, end: bool) -> None:
        self.conn.stream_write(self, data, end, every_stream=True)

    def _job_finished(self) -> None:
        self.job_done = True
        self.conn.maybe_finish(self)


def _error(status: int, detail: str, extra: list[tuple[str, str]] | None = None) -> Response:
    reason = REASONS.get(status, "Error")
    body = f"{status} {reason}: {detail}\n" if detail else f"{status} {reason}\n"
    return Response.local(status, body.encode(), headers=extra)


_PROTO_HTTP11 = b"\x12\x08HTTP/1.1"  # http.v1.Request field 2 (protocol), as the C encoder writes it
_PROTO_HTTP2 = b"\x12\x08HTTP/2.0"


def _h2_protocol_proto(context: bytes) -> bytes:
    """An http.v1.Request context made from the HTTP/1.1 head we built for a
    stream, with `protocol` set to "HTTP/2.0" (as the JSON context says).

    The C encoder writes remote_addr (field 1, omitted when empty) and then
    protocol (field 2, always 8 bytes): the same length, so it is patched in place."""
    pos = 0
    if context[:1] == b"\x0a":  # remote_addr: tag, varint length, bytes
        pos, shift, length = 1, 0, 0
        while True:
            byte = context[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        pos += length
    if context[pos:pos + len(_PROTO_HTTP11)] != _PROTO_HTTP11:
        return context  # not the layout we know: leave it as the HTTP/1.1 head made it
    return context[:pos] + _PROTO_HTTP2 + context[pos + len(_PROTO_HTTP11):]


class H2Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer, scheme: str, remote: str, peer: str):
        self.server = server
        self.loop = server.loop
        self.scheme = scheme
        self.remote = remote
        self.peer = peer
        self.transport: asyncio.Transport | None = None
        cfg = server.cfg
        self.h2 = _RefusingH2(config=h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_inbound_headers=True))
        # Clients may open streams before they have our SETTINGS; h2 would
        # treat a stream over its current limit as a connection error. So the
        # first SETTINGS frame allows PRE_ACK_STREAMS and a second one, sent
        # right after it, lowers the limit to max_concurrent_streams: h2
        # enforces that once the client has acknowledged it.
        self.max_streams = cfg.http2.max_concurrent_streams
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max(PRE_ACK_STREAMS, self.max_streams),
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: INITIAL_WINDOW,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: cfg.max_header_size,
            h2.settings.SettingCodes.ENABLE_PUSH: 0,
        })
        self.streams: dict[int, H2Stream] = {}
        self.draining: dict[int, int] = {}  # answered streams whose request body we drop: bytes so far
        self.closed = False
        self.write_paused = False
        self.deadline = 0.0
        self.goaway_sent = False
        self.upgrade_request: list[tuple[bytes, bytes]] | None = None

    def accept_upgrade(self, settings: bytes, headers: list[tuple[bytes, bytes]]) -> bool:
        """Before connection_made: become the HTTP/2 side of an `Upgrade: h2c`;
        `headers` (the upgrading request) is served as stream 1. False when
        h2 rejects the client's settings: the caller stays on HTTP/1.1."""
        try:
            self.h2.initiate_upgrade_connection(settings)
        except (h2.exceptions.ProtocolError, ValueError):
            return False
        self.upgrade_request = headers
        return True

    # -- server registry interface ------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return bool(self.streams)

    def check_deadline(self, now: float) -> None:
        if self.closed or self.streams or now < self.deadline:
            return
        self.shutdown()

    def shutdown(self) -> None:
        """Graceful: GOAWAY, then close once the open streams are done."""
        if self.closed or self.transport is None:
            return
        if not self.goaway_sent:
            self.goaway_sent = True
            self.h2.close_connection()
            self._write()
        if not self.streams:
            self.closed = True
            self.transport.close()

    # -- asyncio protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)  # type: ignore[arg-type]
        self.deadline = self.loop.time() + self.server.cfg.idle_timeout
        if self.upgrade_request is None:
            self.h2.initiate_connection()  # (an upgrade did this in accept_upgrade)
        if self.max_streams < PRE_ACK_STREAMS:
            self.h2.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.max_streams})
        self.h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        self._write()
        if self.upgrade_request is not None:
            headers, self.upgrade_request = self.upgrade_request, None
            self._on_headers(1, headers, True)
            stream = self.streams.get(1)
            if stream is not None and not stream.dispatched:
                self._dispatch(stream)  # h2 sends no StreamEnded for it: the request is complete
            self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)  # type: ignore[arg-type]
        for stream in list(self.streams.values()):
            stream.cancelled = True
            stream.output_done = True
            self.maybe_finish(stream)
        self.server.on_connection_idle()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.flush()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self.server.log.debug("http/2 protocol error", remote=self.remote, error=str(exc))
            self._write()
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self._on_headers(event.stream_id, event.headers, event.stream_ended is not None)
            elif isinstance(event, h2.events.DataReceived):
                self._on_data(event.stream_id, event.data, event.flow_controlled_length)
            elif isinstance(event, h2.events.StreamEnded):
                self.draining.pop(event.stream_id, None)
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.remote_ended = True
                    if not stream.dispatched:
                        self._dispatch(stream)
            elif isinstance(event, h2.events.StreamReset):
                self.draining.pop(event.stream_id, None)
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.cancelled = True
                    stream.output_done = True
                    stream.remote_ended = True
                    self.maybe_finish(stream)
            elif isinstance(event, h2.events.WindowUpdated):
                pass  # flush() below
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.goaway_sent = True
                if not self.streams:
                    self._write()
                    self.closed = True
                    if self.transport is not None:
                        self.transport.close()
                    return
        self.flush()

    # -- requests ---------------------------------------------------------------------------------

    def _on_headers(self, stream_id: int, headers: list[tuple[bytes, bytes]], ended: bool) -> None:
        stream = H2Stream(self, stream_id)
        # The access log's start and elapsed count from the head, body included (as RoadRunner's).
        stream.started_at = self.loop.time()
        if self.server.metrics is not None:
            stream.started_perf = time.perf_counter()
        if self.server.access_log is not None:
            stream.started_wall = time.time()
        self._read_head(stream, headers, ended)
        if stream.error is not None:
            self._dispatch(stream)  # answer now; the rest of the body is not wanted

    def _read_head(self, stream: H2Stream, headers: list[tuple[bytes, bytes]], ended: bool) -> None:
        stream_id = stream.stream_id
        stream.remote_ended = ended
        self.streams[stream_id] = stream
        self.deadline = self.loop.time() + self.server.cfg.read_timeout
        pseudo: dict[bytes, bytes] = {}
        lines: list[bytes] = []
        cookies: list[bytes] = []
        host = None
        for name, value in headers:
            if name.startswith(b":"):
                pseudo[name] = value
            elif name == b"cookie":
                cookies.append(value)
            elif name == b"host":
                host = value
            elif name not in _SKIP_REQUEST:
                lines.append(b"%s: %s\r\n" % (name, value))
        method = pseudo.get(b":method", b"")
        path = pseudo.get(b":path", b"")
        stream.method = method.decode("latin-1")
        if method == b"CONNECT" or not path:
            stream.error = (400, "CONNECT and requests without :path are not supported")
            return
        authority = pseudo.get(b":authority", host or b"")
        if cookies:
            lines.append(b"cookie: %s\r\n" % b"; ".join(cookies))
        head = b"%s %s HTTP/1.1\r\nhost: %s\r\n%s\r\n" % (method, path, authority, b"".join(lines))
        cfg = self.server.cfg
        try:
            req = _core.parse_request(head, max(cfg.max_header_size, len(head)))
        except _core.HttpError as exc:
            stream.error = (exc.status, exc.reason)
            return
        if req is None:
            stream.error = (400, "incomplete request head")
            return
        stream.req = req
        if req.content_length > cfg.max_body_bytes:
            stream.error = (413, f"request body of {req.content_length} bytes is over "
                                 f"max_request_size ({cfg.max_request_size} MB)")
            return
        if req.body_kind == _core.BODY_MULTIPART and not ended and self.server.parses_form(req.method, True):
            try:
                boundary = boundary_from_content_type((req.get_header(b"content-type") or b"").decode("latin-1"))
            except MultipartError as exc:
                stream.error = (exc.status, exc.reason)
                return
            stream.uploads = MultipartReceiver(self.server.upload_policy, boundary)

    def _on_data(self, stream_id: int, data: bytes, flow_length: int) -> None:
        stream = self.streams.get(stream_id)
        try:
            self.h2.acknowledge_received_data(flow_length, stream_id)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass
        if stream_id in self.draining:
            self.draining[stream_id] += len(data)
            if self.draining[stream_id] > DISCARD_LIMIT:
                del self.draining[stream_id]
                try:
                    self.h2.reset_stream(stream_id, ErrorCodes.NO_ERROR)
                except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
                    pass
            return
        if stream is None or stream.error is not None or stream.dispatched:
            return
        self.deadline = self.loop.time() + self.server.cfg.read_timeout
        if stream.uploads is not None:
            stream.body_limit -= len(data)
            if stream.body_limit < 0:
                stream.error = (413, f"request body is over max_request_size "
                                     f"({self.server.cfg.max_request_size} MB)")
            else:
                try:
                    stream.uploads.feed(data)
                except MultipartError as exc:
                    stream.error = (exc.status, exc.reason)
            if stream.error is not None:
                stream.uploads.cleanup()
                stream.uploads = None
                self._dispatch(stream)
            return
        if len(stream.body) + len(data) > stream.body_limit:
            stream.error = (413, f"request body is over max_request_size ({self.server.cfg.max_request_size} MB)")
            stream.body = bytearray()
            self._dispatch(stream)
            return
        stream.body += data

    def _dispatch(self, stream: H2Stream) -> None:
        """The request is complete: answer it locally or hand it to the pool."""
        server = self.server
        stream.dispatched = True
        server.in_flight += 1
        req = stream.req
        gateway = server.gateway
        if gateway is not None and req is not None and stream.error is None and req.method == "GET" \
                and not stream.body and stream.uploads is None and req.content_length <= 0 \
                and gateway.kind_of(req.target) == "sse":
            # websockets.sse.path: an event stream on this stream, before the middleware as on
            # HTTP/1.1 (connection.py). It counts in in_flight until it ends (a graceful stop
            # waits for its END_STREAM); its END_STREAM / reset finish it as any stream's do.
            # (h2c has no http.ssl.redirect for any request, so none for this one either.)
            stream.job_done = True
            gateway.event_stream_h2(self, stream)
            return
        if stream.error is not None or req is None:
            status, reason = stream.error or (400, "bad request")
            stream.job_done = True
            stream.respond(_error(status, reason))
            return
        remote = self.remote
        pipeline = server.pipeline
        if pipeline is not None:
            info = stream.info = RequestInfo(req, remote, self.scheme, "HTTP/2.0")
            resp, answered_by = pipeline.request(info)
            if resp is not None:
                stream.job_done = True
                pipeline.response(info, resp, answered_by)
                stream.respond(resp)
                return
            req = pipeline.rewrite(info, server.cfg.max_header_size)
            remote = info.remote
        body: bytes | bytearray = stream.body
        parsed = False
        uploads = None
        try:
            if stream.uploads is not None:
                stream.uploads.finish()
                body = stream.uploads.fields_json()
                uploads = stream.uploads.uploads_json()
                parsed = True
            elif req.body_kind == _core.BODY_URLENCODED and server.parses_form(req.method, False):
                body = urlencoded_to_json(bytes(body))
                parsed = True
        except (MultipartError, FormError) as exc:
            stream.job_done = True
            stream.respond(_error(getattr(exc, "status", 400), str(exc)))
            return
        if server.cfg.codec == "proto":
            context = _h2_protocol_proto(_core.encode_http_context_proto(req, remote, self.scheme, parsed, uploads))
            flag = _core.FLAG_PROTO
        else:
            context = _core.encode_http_context(req, remote, self.scheme, parsed, uploads)
            context = context.replace(b'"protocol":"HTTP/1.1"', b'"protocol":"HTTP/2.0"', 1)
            flag = _core.FLAG_JSON
        stream.request_frame = _core.encode_frame(flag, context + body, [len(context)])
        stream.body = bytearray()
        server.pool.submit(stream)

    # -- responses -----------------------------------------------------------------------------------

    def send_informational(self, stream: H2Stream, resp: Response) -> None:
        if stream.cancelled or self.closed:
            return
        headers = [(b":status", str(resp.status).encode())]
        headers += [(n.lower().encode("latin-1"), v.encode("latin-1", "replace")) for n, v in resp.headers
                    if n.lower() not in _SKIP_RESPONSE and n.lower() not in ("date", "server")]
        try:
            self.h2.send_headers(stream.stream_id, headers)
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
            return
        self._write()

    def send_response(self, stream: H2Stream, resp: Response) -> None:
        if stream.cancelled or stream.output_done or self.closed:
            resp.close()
            stream.output_done = True
            self.maybe_finish(stream)
            return
        head_request = stream.method == "HEAD"
        has_body = resp.has_body(head_request)
        headers = [(b":status", str(resp.status).encode())]
        for name, value in resp.headers:
            lname = name.lower()
            if lname not in _SKIP_RESPONSE:
                headers.append((lname.encode("latin-1"), value.encode("latin-1", "replace")))
        if not resp.streaming and resp.status >= 200 and resp.status not in (204, 304):
            headers.append((b"content-length", str(resp.body_length).encode()))
        end_now = not has_body or (not resp.streaming and resp.body_length == 0)
        try:
            self.h2.send_headers(stream.stream_id, headers, end_stream=end_now)
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
            resp.close()
            stream.output_done = True
            self.maybe_finish(stream)
            return
        if end_now:
            resp.close()
            stream.output_done = True
            self._write()
            self.maybe_finish(stream)
            return
        if resp.body:
            stream.pending.append(resp.body)
            stream.pending_bytes += len(resp.body)
        if resp.file is not None:
            stream.file = resp.file
        if not resp.streaming:
            stream.end_pending = True
        self.flush()

    def reset(self, stream: H2Stream, code: ErrorCodes) -> None:
        if not stream.output_done and not self.closed:
            try:
                self.h2.reset_stream(stream.stream_id, code)
            except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
                pass
        stream.cancelled = True
        stream.output_done = True
        if stream.file is not None:
            stream.file.close()
            stream.file = None
        self._write()

    def stream_write(self, stream: H2Stream, data: bytes, end: bool, every_stream: bool = False) -> None:
        """More body for a stream, sent as far as the windows allow. An event stream's
        writes flush only their own stream (a fan-out to many streams of a connection must
        not flush all of them once per stream); the others go on at their window updates."""
        if stream.cancelled or stream.output_done:
            return
        if data:
            stream.pending.append(data)
            stream.pending_bytes += len(data)
        if end:
            stream.end_pending = True
        if every_stream:
            self.flush()
            return
        if self.closed:
            return
        if not self.write_paused:
            self._send_stream(stream)
        self._write()

    def flush(self) -> None:
        """Send pending stream output as far as the windows allow, then write."""
        if self.closed:
            return
        for stream in list(self.streams.values()):
            if stream.output_done or not (stream.pending or stream.file is not None or stream.end_pending):
                continue
            if self.write_paused:
                break
            self._send_stream(stream)
        self._write()

    def _send_stream(self, stream: H2Stream) -> None:
        sid = stream.stream_id
        h2c = self.h2
        try:
            while True:
                if stream.pending:
                    data = stream.pending[0]
                elif stream.file is not None and stream.file.count > 0:
                    window = min(h2c.local_flow_control_window(sid), FILE_READ)
                    if window <= 0:
                        return
                    f = stream.file
                    data = os.pread(f.file, min(window, f.count), f.offset)
                    if not data:
                        self.reset(stream, ErrorCodes.INTERNAL_ERROR)
                        return
                    f.offset += len(data)
                    f.count -= len(data)
                    stream.pending.append(data)
                    stream.pending_bytes += len(data)
                    continue
                else:
                    if stream.file is not None:
                        stream.file.close()
                        stream.file = None
                    if stream.end_pending:
                        h2c.end_stream(sid)
                        stream.output_done = True
                        self.maybe_finish(stream)
                    return
                window = h2c.local_flow_control_window(sid)
                if window <= 0:
                    return
                size = min(window, h2c.max_outbound_frame_size, len(data))
                last = size == len(data) and len(stream.pending) == 1 and stream.file is None \
                    and stream.end_pending
                h2c.send_data(sid, data[:size], end_stream=last)
                stream.pending_bytes -= size
                if size == len(data):
                    stream.pending.popleft()
                else:
                    stream.pending[0] = data[size:]
                if last:
                    stream.output_done = True
                    self.maybe_finish(stream)
                    return
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            stream.output_done = True
            stream.cancelled = True
            stream.pending.clear()
            stream.pending_bytes = 0
            if stream.file is not None:
                stream.file.close()
                stream.file = None
            self.maybe_finish(stream)

    def maybe_finish(self, stream: H2Stream) -> None:
        """Close the books on a stream once its job and its output are both done."""
        if not (stream.output_done and (stream.job_done or not stream.dispatched)):
            return
        if self.streams.pop(stream.stream_id, None) is None:
            return
        server = self.server
        if not stream.remote_ended and not stream.cancelled and not self.closed:
            # We answered before the request was complete (an error): read and
            # drop the rest, so the client gets to read our answer (curl fails
            # the whole exchange on RST_STREAM(NO_ERROR)), up to DISCARD_LIMIT.
            self.draining[stream.stream_id] = 0
        if stream.file is not None:
            stream.file.close()
            stream.file = None
        if stream.uploads is not None:
            stream.uploads.cleanup()
            stream.uploads = None
        if stream.event_stream is not None:
            stream.event_stream.gone()  # unsubscribed now; not a request for metrics and access log
        elif stream.req is not None and not stream.cancelled and server.metrics is not None:
            server.metrics.observe(stream.status, time.perf_counter() - stream.started_perf)
        if stream.dispatched:
            server.in_flight -= 1
            if server.access_log is not None and stream.req is not None and not stream.cancelled \
                    and stream.event_stream is None:
                server.log_access(stream)  # type: ignore[arg-type]
        if not self.streams:
            self.deadline = self.loop.time() + server.cfg.idle_timeout
            if (server.stopping or self.goaway_sent) and not self.closed:
                self.shutdown()
            server.on_connection_idle()

    def _write(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
