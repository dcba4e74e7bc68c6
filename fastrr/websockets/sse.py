"""Server-Sent Events for the broadcast topics (beyond RoadRunner; Mercure's model).

    GET /events?topic=a&topic=b          authorized by PHP like a join (ws:joinTopics "a,b")
    Last-Event-ID: <id>  or  ?lastEventID=<id>    resume: the retained messages after it

Each message is one event, encoded once per message (frames.sse_event, Message.cache):
`id:` the message id, `event:` its topic, a `data:` line per payload line - so a browser
listens with `source.addEventListener("a", ...)`. The response is close-delimited
(`Connection: close`, no chunked framing) so the same bytes go to every stream.

A resume replays, in id order, the messages retained after the given id (hub.history,
bounded by the broker's history_size/ttl and by websockets.sse.history here). When no
topic of the stream still retains that id the client is too far behind: it gets one
`event: @missed` whose data is the topic list, and should refetch what it shows.

Keep-alive: a comment line every ping_interval (proxies drop silent streams). Slow
consumers: more than send_queue bytes unread → the stream is closed (then aborted after
close_timeout). At shutdown every stream ends (EventSource reconnects elsewhere).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastrr.websockets import frames
from fastrr.websockets.fanout import direct_fd

if TYPE_CHECKING:
    from fastrr.broadcast.hub import Hub, Message
    from fastrr.websockets.gateway import Gateway

KEEP_ALIVE = b": keep-alive\n\n"
OPEN, CLOSING, CLOSED = 0, 1, 2


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


class SseStream(asyncio.Protocol):
    def __init__(self, gateway: Gateway, topics: list[str], remote: str):
        self.gateway = gateway
        self.cfg = gateway.cfg
        self.topics = topics
        self.remote = remote
        self.transport: asyncio.Transport | None = None
        self.fd = -1  # fanout.py sends deliveries on it directly (plain sockets only)
        self.queued = 0  # deliveries of this loop turn waiting in the fan-out
        self.state = OPEN
        self.deadline = 0.0
        self.next_ping = gateway.loop.time() + self.cfg.ping_interval

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.fd = direct_fd(transport)
        self.gateway.connections.add(self)

    def data_received(self, data: bytes) -> None:
        pass  # an event stream has no client input (a pipelined request is dropped with it)

    def eof_received(self) -> bool | None:
        return None  # the client is gone (EventSource.close()): free the stream now

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = CLOSED
        self.gateway.hub.unsubscribe(self)
        self.gateway.forget(self)

    def start(self, head: bytes, last_id: str) -> None:
        """Write the response head, subscribe, replay: all in one loop step, so no message
        published meanwhile can fall between the replay and the live stream."""
        hub = self.gateway.hub
        self._write(head + b": connected\n\n")
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
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        if transport.get_write_buffer_size() > self.cfg.send_queue:
            self.gateway.log.warn("event stream client does not read, closing it", remote=self.remote,
                                  buffered=transport.get_write_buffer_size(), send_queue=self.cfg.send_queue)
            self.close()

    def close(self) -> None:
        if self.state != OPEN:
            return
        self.state = CLOSING
        self.gateway.hub.unsubscribe(self)
        self.deadline = self.gateway.loop.time() + self.cfg.close_timeout
        if self.transport is not None:
            self.transport.close()  # flushes what is buffered, then closes

    def abort(self) -> None:
        self.state = CLOSED
        self.gateway.hub.unsubscribe(self)
        if self.transport is not None:
            self.transport.abort()
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
