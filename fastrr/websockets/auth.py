"""Authorization through PHP: the upgrade, each join and each SSE stream are asked of the
websockets pool as RoadRunner 2.x asks them (websockets plugin.go / validator).

The worker gets a normal RoadRunner HTTP request frame - the same JSON context the HTTP
front sends (fastrr._core.encode_http_request: remoteAddr, protocol, method, uri,
headers, cookies, rawQuery, ...), empty body - with `attributes` set to
`{"ws:joinServer":true}` for the upgrade or `{"ws:joinTopics":"t1,t2"}` for a join. The
app's own cookies and session decide; its answer is a normal HTTP response: 2xx allows
(RoadRunner wants exactly 200; fastrr takes any 2xx), anything else denies, and for an
upgrade the denial (status, headers, body) is what the client gets.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from fastrr import _core
from fastrr.pool.worker import WorkerProtocolError

if TYPE_CHECKING:
    from fastrr.pool.pool import WorkerPool
    from fastrr.pool.worker import Worker

_NO_ATTRIBUTES = b'"attributes":{}}'
# Headers of PHP's answer that the 101 / event-stream head sets itself (or that cannot be on it).
_OWN = frozenset({b"content-length", b"transfer-encoding", b"connection", b"upgrade", b"keep-alive",
                  b"sec-websocket-accept", b"sec-websocket-extensions", b"content-type", b"date",
                  b"proxy-connection", b"te"})


def auth_frame(req: _core.Request, remote: str, scheme: str, attributes: dict[str, object]) -> bytes:
    """The worker frame for `req` with RoadRunner's websocket attributes in its context."""
    frame = _core.encode_http_request(req, remote, scheme, b"", False, None)
    payload = frame[(frame[0] & 0x0F) * 4:]  # goridge v3: the low nibble is the header's length in words
    if not payload.endswith(_NO_ATTRIBUTES):  # the C encoder ends every context so
        raise ValueError("unexpected request context: no empty attributes at its end")
    attrs = json.dumps(attributes, separators=(",", ":")).encode()
    ctx = payload[:-len(_NO_ATTRIBUTES)] + b'"attributes":' + attrs + b"}"
    return _core.encode_frame(_core.FLAG_JSON, ctx, (len(ctx),))


def php_headers(headers: dict[str, list[str]]) -> list[tuple[bytes, bytes]]:
    """PHP's headers for an allowed upgrade / event stream head, as (name, value) pairs:
    without the ones the head sets itself and without any that could split it."""
    out = []
    for name, values in headers.items():
        raw = name.encode("latin-1", "replace")
        if raw.lower() in _OWN or not raw or any(c in raw for c in b"\r\n: "):
            continue
        for value in values:
            val = value.encode("utf-8", "replace")
            if b"\r" not in val and b"\n" not in val:
                out.append((raw, val))
    return out


class Answer:
    """PHP's response: status, headers (name -> values) and body; or a local failure."""

    __slots__ = ("status", "headers", "body", "reason", "raw")

    def __init__(self, status: int, headers: dict[str, list[str]], body: bytes, reason: str = "",
                 raw: bytes = b""):
        self.status = status
        self.headers = headers
        self.body = body
        self.reason = reason  # why fastrr answered itself (no worker, worker lost)
        self.raw = raw  # the whole HTTP/1.1 response PHP's answer makes (denials)

    @property
    def allowed(self) -> bool:
        return 200 <= self.status < 300


def http_answer(status: int, text: str, extra: str = "") -> bytes:
    from fastrr.http.response import reason_phrase

    body = text.encode()
    return (f"HTTP/1.1 {status} {reason_phrase(status)}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n").encode() + body


class AuthCall:
    """The pool's Job protocol (pool/worker.py) for one authorization; `future` gets the Answer.
    `cancelled`: the client went away (a queued call is then skipped)."""

    __slots__ = ("request_frame", "cancelled", "retries", "queued_at", "future", "_first", "_body")

    def __init__(self, frame: bytes, loop: asyncio.AbstractEventLoop):
        self.request_frame = frame
        self.cancelled = False
        self.retries = 0
        self.queued_at = 0.0
        self.future: asyncio.Future[Answer] = loop.create_future()
        self._first: tuple[int, bytes, int] | None = None  # a streamed answer's first frame
        self._body: list[bytes] = []

    def _set(self, answer: Answer) -> None:
        if not self.future.done():
            self.future.set_result(answer)

    def on_worker_frame(self, worker: Worker, flags: int, byte10: int, options: tuple[int, ...],
                        payload: bytes) -> bool:
        if byte10 & _core.PING:
            from fastrr.pool.worker import PONG
            worker.send(PONG)
        if flags & _core.FLAG_ERROR:
            text = payload.decode("utf-8", "replace")
            self._set(Answer(500, {}, b"", f"worker error: {text[:200]}", http_answer(500, "")))
            return not byte10 & _core.STREAM
        if len(options) != 1 or options[0] > len(payload):
            raise WorkerProtocolError(f"options length should be equal 1 (body offset), got {options!r}")
        stream = byte10 & _core.STREAM
        if self._first is None:
            self._first = (flags, payload[:options[0]], options[0])
        self._body.append(payload[options[0]:])
        if stream:
            return False  # a streamed answer: its body is gathered, it decides when it ends
        self._set(self._read())
        return True

    def _read(self) -> Answer:
        assert self._first is not None
        flags, ctx, _ = self._first
        body = b"".join(self._body)
        try:
            if flags & _core.FLAG_PROTO:
                ctx = _core.proto_response_to_json(ctx)
            data = json.loads(ctx) if ctx else {}
            status = int(data.get("status") or 200)
            headers = {str(k): [str(v) for v in (vs if isinstance(vs, list) else [vs])]
                       for k, vs in (data.get("headers") or {}).items()}
            _, raw = _core.build_response(ctx + body, len(ctx), False, False, 1, False, _core.FLAG_JSON)
        except (ValueError, TypeError, AttributeError, _core.FrameError) as exc:
            return Answer(500, {}, b"", f"invalid response from worker: {exc}", http_answer(500, ""))
        return Answer(status, headers, body, raw=raw)

    def on_worker_lost(self, worker: Worker, status: int, reason: str) -> None:
        self._set(Answer(status, {}, b"", reason, http_answer(status, "")))

    def on_no_worker(self, reason: str) -> None:
        self._set(Answer(503, {}, b"", reason, http_answer(503, "", "Retry-After: 1\r\n")))


async def authorize(pool: WorkerPool, frame: bytes) -> Answer:
    """Run one authorization on the pool. Cancelling the caller marks the call cancelled
    (a queued one is skipped; one on a worker runs to its end, its answer dropped)."""
    call = AuthCall(frame, asyncio.get_running_loop())
    pool.submit(call)
    try:
        return await asyncio.shield(call.future)
    except asyncio.CancelledError:
        call.cancelled = True
        raise
