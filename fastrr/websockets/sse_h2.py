"""Server-Sent Events on one HTTP/2 stream (the Python front's h2.py; TLS ALPN h2 and h2c).

A browser on https negotiates HTTP/2, so its EventSource is a stream of an h2 connection
that also carries the page's other requests. h2.py hands a complete GET on sse.path
(no body, before the middleware, as connection.py does on HTTP/1.1) to
Gateway.event_stream_h2; from there this stream is ours and no pool job is made for it:

  ① sse.read_request: Origin (405), no body, topics present (400), Last-Event-ID /
     ?lastEventID - answered on the stream by fastrr, as on HTTP/1.1;
  ② sse.authorize_stream: PHP's `ws:joinTopics` on the websockets pool; a denial is PHP's
     status, headers and body as this stream's response (END_STREAM, the connection goes on);
  ③ 2xx → HEADERS :status 200 text/event-stream with PHP's headers, then sse.EventStream:
     ": connected", subscribe + replay in one loop step, live deliveries, keep-alive.

Output is DATA on the stream through h2.py's flow control (H2Connection.stream_write):
what the client's windows do not take yet waits in the stream (`H2Stream.pending`), and
that, not the connection's shared transport buffer, is the slow-consumer measure - more
than send_queue bytes → END_STREAM after them, RST_STREAM(CANCEL) if still not out after
close_timeout. The fan-out gives every stream the same frame (fd = -1: nothing is sent on
the socket directly, send_rest feeds the stream); ordering is fanout.py's rule (a
keep-alive or replay write flushes this turn's queued deliveries first).

The stream ends when the client resets it or the connection goes (h2.py's maybe_finish
calls `gone`: unsubscribed at once), at shutdown (END_STREAM, then h2.py's GOAWAY), or
as above. Until then it counts in the server's in_flight, so a graceful stop waits for
its END_STREAM to go out (bounded by close_timeout, then shutdown_timeout); it is not
access-logged (nor is an HTTP/1.1 event stream).

Limit to know: a long-lived event stream occupies one of the connection's
http2.max_concurrent_streams for its whole life. Others over that limit are refused
(RST_STREAM REFUSED_STREAM, retried by clients) rather than queued, so an app whose
pages hold more event streams than that on one connection should raise the limit.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from h2.errors import ErrorCodes

from fastrr.http.response import Response
from fastrr.websockets.sse import CLOSED, OPEN, EventStream, Refused, authorize_stream, read_request, stream_headers

if TYPE_CHECKING:
    from fastrr.http.h2 import H2Connection, H2Stream
    from fastrr.websockets.gateway import Gateway


class H2EventStream(EventStream):
    """One h2 stream from PHP's authorization to its end (module doc)."""

    def __init__(self, gateway: Gateway, conn: H2Connection, stream: H2Stream):
        remote = conn.remote
        if stream.req is not None:  # proxy_ip_parser's client address, as for any request
            remote = conn.server.client_address(stream.req, remote, conn.scheme, "HTTP/2.0")
        super().__init__(gateway, [], remote)
        self.conn = conn
        self.stream = stream
        self.transport = conn.transport  # the fan-out skips a closing one
        self.task: asyncio.Task[None] | None = None
        stream.event_stream = self

    def begin(self) -> None:
        self.gateway.pending.add(self)
        if self.gateway.stopping:
            self.refuse()
            return
        self.task = self.gateway.loop.create_task(self._run())

    async def _run(self) -> None:
        try:
            await self._open()
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            self.gateway.log.error("event stream failed to open", error=repr(exc))
            self._answer(Response.local(500, b"internal error\n"))

    async def _open(self) -> None:
        req = self.stream.req
        assert req is not None
        try:
            self.topics, last_id = read_request(self.cfg, req)
        except Refused as exc:
            self.gateway.log.debug("event stream request refused", remote=self.remote, status=exc.status,
                                   reason=exc.text)
            self._answer(Response.local(exc.status, (exc.text + "\n").encode()))
            return
        answer = await authorize_stream(self.gateway, req, self.remote, self.conn.scheme, self.topics)
        if self.state != OPEN:
            return  # reset or refused meanwhile
        if not answer.allowed:
            self._answer(Response.from_http1(answer.raw))
            return
        self.gateway.pending.discard(self)
        self.gateway.connections.add(self)
        headers = [(name.decode("latin-1").lower(), value.decode("latin-1").strip())
                   for name, value in stream_headers(answer)]
        self.stream.respond(Response(200, headers, streaming=True))
        if self.stream.output_done:
            return  # the HEADERS could not go (h2.py finished the stream: `gone` ran)
        self.start(last_id)

    def _answer(self, resp: Response) -> None:
        """A final answer instead of a stream (refused, denied, shutting down)."""
        if self.state != OPEN:
            return
        self.state = CLOSED
        self.gateway.pending.discard(self)
        self.stream.respond(resp)  # END_STREAM: h2.py finishes the stream, which calls gone()
        self.gateway.forget(None)

    # -- gateway registry

    def refuse(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
        self._answer(Response.local(503, b"server is shutting down\n", headers=[("Retry-After", "1")]))

    def gone(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()  # a queued authorization is skipped
        self.gateway.pending.discard(self)
        super().gone()

    # -- EventStream's hooks

    def _send(self, data: bytes) -> bool:
        if self.state != OPEN or self.stream.output_done:
            return False
        self.conn.stream_write(self.stream, data, end=False)
        return True

    def _buffered(self) -> int:
        return self.stream.pending_bytes

    def _end(self) -> None:
        self.conn.stream_write(self.stream, b"", end=True)

    def _kill(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
        self.gateway.pending.discard(self)
        self.conn.reset(self.stream, ErrorCodes.CANCEL)
        self.conn.maybe_finish(self.stream)
