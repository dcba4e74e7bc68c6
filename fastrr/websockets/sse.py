"""Server-Sent Events for the broadcast topics (beyond RoadRunner; Mercure's model).

    GET /events?topic=a&topic=b          authorized by PHP like a join (ws:joinTopics "a,b")
    Last-Event-ID: <id>  or  ?lastEventID=<id>    resume: the retained messages after it

Each message is one event, encoded once per message (frames.sse_event, Message.cache):
`id:` the message id, `event:` its topic, a `data:` line per payload line - so a browser
listens with `source.addEventListener("a", ...)`.

Two carriers share everything here but the bytes' way out (EventStream's four hooks):
- HTTP/1.1 (SseStream, below): the response is close-delimited (`Connection: close`, no
  chunked framing) so the same bytes go to every stream; the connection is the stream.
- HTTP/2 (sse_h2.H2EventStream): one h2 stream of a connection that keeps serving its
  other streams; what browsers use over https, since ALPN picks h2 for them.
The request checks (`read_request`), PHP's authorization (`authorize_stream`), the head
(`stream_headers`), the replay, the keep-alive and the slow-consumer bound are the same.

A resume replays, in id order, the messages retained after the given id (hub.history,
bounded by the broker's history_size/ttl and by websockets.sse.history here). When no
topic of the stream still retains that id the client is too far behind: it gets one
`event: @missed` whose data is the topic list, and should refetch what it shows.

Keep-alive: a comment line every ping_interval (proxies drop silent streams). Slow
consumers: more than send_queue bytes unread → the stream is ended (then aborted after
close_timeout). At shutdown every stream ends (EventSource reconnects elsewhere).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from fastrr.websockets import frames
from fastrr.websockets.auth import auth_frame, authorize, php_headers
from fastrr.websockets.fanout import direct_fd

if TYPE_CHECKING:
    from fastrr import _core
    from fastrr.broadcast.hub import Hub, Message
    from fastrr.websockets.auth import Answer
    from fastrr.websockets.config import WebsocketsConfig
    from fastrr.websockets.gateway import Gateway

KEEP_ALIVE = b": keep-alive\n\n"
CONNECTED = b": connected\n\n"
OPEN, CLOSING, CLOSED = 0, 1, 2
# The head of every event stream, before PHP's own headers (gateway._OWN keeps PHP from
# setting these, and the framing ones, itself).
HEADERS = ((b"Content-Type", b"text/event-stream; charset=utf-8"), (b"Cache-Control", b"no-cache"),
           (b"X-Accel-Buffering", b"no"))


class Refused(Exception):
    """A request fastrr answers itself, without asking PHP: (status, text)."""

    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status = status
        self.text = text


def origin_ok(cfg: WebsocketsConfig, req: _core.Request, required: bool) -> bool:
    origin = req.get_header(b"origin")
    if origin is None:
        return not required or cfg.origin_allowed("")
    return cfg.origin_allowed(origin.decode("latin-1"))


def read_request(cfg: WebsocketsConfig, req: _core.Request) -> tuple[list[str], str]:
    """The checks that need no PHP: (topics, the id to resume after, "" for none); Refused."""
    if not origin_ok(cfg, req, required=False):
        raise Refused(405, f"origin not allowed (websockets.allowed_origin is {cfg.allowed_origin})")
    if req.content_length > 0 or req.chunked:
        raise Refused(400, "an event stream request has no body")
    query = parse_qs(req.target.partition("?")[2], keep_blank_values=False)
    topics = list(dict.fromkeys(t for t in query.get("topic", []) if t))
    if not topics:
        raise Refused(400, f"{cfg.sse.path} serves Server-Sent Events: expected ?topic=<name> (one or more)")
    last_id = (req.get_header(b"last-event-id") or b"").decode("latin-1").strip() \
        or (query.get("lastEventID") or [""])[0]
    return topics, last_id


async def authorize_stream(gateway: Gateway, req: _core.Request, remote: str, scheme: str,
                           topics: list[str]) -> Answer:
    """PHP's answer to `ws:joinTopics "t1,t2"` for this request (2xx: the stream opens)."""
    answer = await authorize(gateway.pool, auth_frame(req, remote, scheme, {"ws:joinTopics": ",".join(topics)}))
    if not answer.allowed and answer.reason:
        gateway.log.warn("event stream not authorized", status=answer.status, reason=answer.reason)
    return answer


def stream_headers(answer: Answer) -> list[tuple[bytes, bytes]]:
    """The event stream's response headers: ours, then PHP's (Set-Cookie, ...)."""
    return [*HEADERS, *php_headers(answer.headers)]


def _order(msg_id: str) -> tuple[int, int, str]:
    """Message ids are "<unix ms>-<seq>-<instance>": ordered by time, then sequence."""
    ms, _, rest = msg_id.partition("-")
    seq, _, inst = rest.partition("-")
    try:
        return int(ms), int(seq), inst
    except ValueError:
        return 0, 0, msg_id


def replay(hub: Hub, topics: list[str], last_id: str, limit: int) -> tuple[list[Message], bool]:
    """(messages after `last_id` on `topics`, in id order; True when none retains `last_id`).

    The id is in the history of the topic its message had; the other topics of the stream
    are read from their retained messages by id order (the hub keeps them per topic)."""
    found = False
    out: dict[str, Message] = {}
    after = _order(last_id)
    for topic in topics:
        exact = hub.history(topic, last_id)
        if exact is not None:
            found = True
            for msg in exact:
                out[msg.id] = msg
            continue
        # Not this topic's: what it retains from after that moment (history() answers
        # only by exact id, and the id is in one topic's history).
        for msg in hub.retained(topic):
            if _order(msg.id)[:2] > after[:2]:
                out[msg.id] = msg
    msgs = sorted(out.values(), key=lambda m: _order(m.id))
    return msgs[-limit:] if limit else [], not found


class EventStream:
    """One open event stream: subscription, replay, deliveries, keep-alive, the slow-consumer
    bound and its end. A carrier gives the four hooks: `_send` (False: the way out is gone),
    `_buffered` (this stream's bytes not yet taken by the client's side), `_end` (end the
    stream after what is buffered), `_kill` (end it now). It is also the fan-out's
    subscriber (fanout.Fanned): `transport`, `fd`, `queued`, `send_rest`."""

    def __init__(self, gateway: Gateway, topics: list[str], remote: str):
        self.gateway = gateway
        self.cfg = gateway.cfg
        self.topics = topics
        self.remote = remote
        self.transport: asyncio.Transport | None = None
        self.fd = -1  # fanout.py sends deliveries on it directly (plain HTTP/1.1 sockets only)
        self.queued = 0  # deliveries of this loop turn waiting in the fan-out
        self.state = OPEN
        self.deadline = 0.0
        self.next_ping = gateway.loop.time() + self.cfg.ping_interval

    # -- the carrier's hooks

    def _send(self, data: bytes) -> bool:
        raise NotImplementedError

    def _buffered(self) -> int:
        raise NotImplementedError

    def _end(self) -> None:
        raise NotImplementedError

    def _kill(self) -> None:
        raise NotImplementedError

    # -- shared

    def start(self, last_id: str, head: bytes = b"") -> None:
        """Write `head` (HTTP/1.1: the response head, so head and first line are one write),
        subscribe and replay, all in one loop step, so no message published meanwhile can
        fall between the replay and the live stream."""
        hub = self.gateway.hub
        self._write(head + CONNECTED)
        hub.subscribe(self, self.topics)
        if last_id:
            msgs, missed = replay(hub, self.topics, last_id, self.cfg.sse.history)
            if missed:
                self._write(b"event: @missed\ndata: " + ",".join(self.topics).encode() + b"\n\n")
            for msg in msgs:
                if self.state != OPEN:
                    return
                self._write(frames.sse_event(msg))

    def deliver(self, msg: Message) -> None:
        if self.state == OPEN:
            self.gateway.fanout.add(self, frames.sse_event(msg))

    def _write(self, data: bytes) -> None:
        if self.queued:
            self.gateway.fanout.flush()  # a delivery of this turn goes first
        self.send_rest(data)

    def send_rest(self, data: bytes) -> None:
        if not self._send(data):
            return
        buffered = self._buffered()
        if buffered > self.cfg.send_queue:
            self.gateway.log.warn("event stream client does not read, closing it", remote=self.remote,
                                  buffered=buffered, send_queue=self.cfg.send_queue)
            self.close()

    def close(self) -> None:
        if self.state != OPEN:
            return
        self.state = CLOSING
        self.gateway.hub.unsubscribe(self)
        self.deadline = self.gateway.loop.time() + self.cfg.close_timeout
        self._end()

    def abort(self) -> None:
        self.state = CLOSED
        self.gateway.hub.unsubscribe(self)
        self._kill()
        self.gateway.forget(self)

    def gone(self) -> None:
        """The client went (connection lost, stream reset): free the stream."""
        self.state = CLOSED
        self.gateway.hub.unsubscribe(self)
        self.gateway.forget(self)

    def tick(self, now: float) -> None:
        if self.state == CLOSING:
            if now >= self.deadline:
                self.abort()
            return
        if self.state == OPEN and self.cfg.ping_interval and now >= self.next_ping:
            self.next_ping = now + self.cfg.ping_interval
            self._write(KEEP_ALIVE)

    def going_away(self) -> None:
        self.close()


class SseStream(EventStream, asyncio.Protocol):
    """An event stream on an HTTP/1.1 connection of its own (handed over by gateway.Upgrade)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.fd = direct_fd(transport)
        self.gateway.connections.add(self)

    def data_received(self, data: bytes) -> None:
        pass  # an event stream has no client input (a pipelined request is dropped with it)

    def eof_received(self) -> bool | None:
        return None  # the client is gone (EventSource.close()): free the stream now

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone()

    def open(self, answer: Answer, last_id: str) -> None:
        head = b"".join(b"%s: %s\r\n" % pair for pair in stream_headers(answer))
        self.start(last_id, b"HTTP/1.1 200 OK\r\n" + head + b"Connection: close\r\n\r\n")

    def _send(self, data: bytes) -> bool:
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        transport.write(data)
        return True

    def _buffered(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    def _end(self) -> None:
        if self.transport is not None:
            self.transport.close()  # flushes what is buffered, then closes

    def _kill(self) -> None:
        if self.transport is not None:
            self.transport.abort()
