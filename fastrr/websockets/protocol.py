"""One upgraded WebSocket connection: RoadRunner 2.x's topic protocol over RFC 6455.

Client → server, text frames (executor.go):
    {"command":"join","topics":["t1","t2"]}   each join is asked of PHP (ws:joinTopics "t1,t2")
    {"command":"leave","topics":["t1"]}
    {"command":"headers", ...}                  ignored, as RoadRunner does
Server → client:
    {"topic":"@join","payload":["t1","t2"]}     joined
    {"topic":"#join","payload":["t1","t2"]}     PHP said no (or could not answer)
    {"topic":"@leave","payload":["t1"]}
    {"topic":"t1","payload":"<message>"}        a delivery (frames.py, built once per message)
    {"topic":"#error","payload":["<why>"]}      fastrr: a command that is not JSON, not an
                                                object, has no known command or bad topics.
                                                The connection stays open (RoadRunner logs and
                                                skips such a frame); binary frames are closed
                                                with 1003 (RoadRunner's protocol is text).

Rules of this file:
- wsproto parses client frames (masking, opcodes, fragmentation, UTF-8, permessage-deflate
  inflation); every data frame this side sends is built by frames.py.
- Commands run one at a time in arrival order (a join waits for PHP; a leave sent after it
  is answered after it). At most MAX_PENDING wait; more is a flood: close 1008.
- Input is fed to wsproto in SLICE-byte pieces and a client message is bounded by
  max_message_size after inflation (1009): a deflate bomb inflates at most one slice at a
  time. A token bucket (rate_limit) counts client messages and pings: over it, reading
  pauses until the bucket refills; still over it after close_after, close 1008.
- What we write is bounded by send_queue: a client that does not read is closed with 1008
  "slow consumer" and aborted after close_timeout; nothing queues without bound.
- Timers are the gateway's one ticker (gateway.py): `tick` sends pings, ends a closing
  handshake that takes too long, and closes a peer that did not pong.
- Close codes: 1002 protocol error and 1007 invalid UTF-8 (wsproto's ParseFailed codes),
  1003 binary data, 1008 policy (slow consumer, flood), 1009 message too big, 1011 ping
  timeout or internal error, 1001 at shutdown.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import TYPE_CHECKING, Any

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from fastrr.websockets import frames
from fastrr.websockets.auth import auth_frame, authorize
from fastrr.websockets.fanout import direct_fd

if TYPE_CHECKING:
    from wsproto.extensions import Extension

    from fastrr import _core
    from fastrr.broadcast.hub import Message
    from fastrr.websockets.gateway import Gateway

SLICE = 16 * 1024
MAX_PENDING = 64  # commands waiting for their turn
MAX_TOPICS = 1024  # topics one connection may hold

OPEN, CLOSING, CLOSED = 0, 1, 2


class WsConnection(asyncio.Protocol):
    def __init__(self, gateway: Gateway, req: _core.Request, remote: str, scheme: str,
                 extensions: list[Extension], deflate: bool):
        self.gateway = gateway
        self.cfg = gateway.cfg
        self.loop = gateway.loop
        self.req = req  # the upgrade request: every join is authorized with its context
        self.remote = remote
        self.scheme = scheme
        self.ws = Connection(ConnectionType.SERVER, extensions)
        self.deflate = deflate
        self.transport: asyncio.Transport | None = None
        self.fd = -1  # fanout.py sends deliveries on it directly (plain sockets only)
        self.queued = 0  # deliveries of this loop turn waiting in the fan-out
        self.state = OPEN
        self.deadline = 0.0  # CLOSING: abort when the client has not closed by then
        # input not yet given to wsproto, a slice at a time (deleting from the front of a
        # bytearray does not copy the rest)
        self.stash = bytearray()
        self.message: list[str] = []
        self.message_size = 0
        self.commands: deque[Any] = deque()
        self.task: asyncio.Task[None] | None = None
        rl = self.cfg.rate_limit
        self.tokens = float(rl.burst)
        self.refilled = self.loop.time()
        self.throttled = False
        self.throttled_since = 0.0
        self.reading_paused = False
        self.next_ping = self.loop.time() + self.cfg.ping_interval
        self.awaiting_pong = False
        self.failed = False  # the client broke the protocol: its input is not parsed any more

    # -- asyncio protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.fd = direct_fd(transport)
        self.gateway.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = CLOSED
        self.gateway.hub.unsubscribe(self)  # a client gone without a close frame too
        self.gateway.forget(self)
        if self.task is not None:
            self.task.cancel()

    def data_received(self, data: bytes) -> None:
        if self.state == CLOSED:
            return
        self.stash += data
        self._pump()

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself

    # -- the subscriber face (hub.py) ------------------------------------------------

    def deliver(self, msg: Message) -> None:
        if self.state == OPEN:
            self.gateway.fanout.add(self, frames.delivery_frame(msg, self.deflate))

    # -- reading ---------------------------------------------------------------------

    def _pump(self) -> None:
        """Give wsproto input a slice at a time and act on its events, until the input is
        used up, the rate limit pauses us or the connection is closing."""
        while self.state != CLOSED:
            if self.failed:
                self.stash.clear()  # waiting for the client to close (see close())
                return
            for event in self.ws.events():
                self._on_event(event)
                if self.throttled or self.state == CLOSED:
                    return
            if not self.stash or self.throttled:
                break
            chunk = bytes(self.stash[:SLICE])
            del self.stash[:SLICE]
            if self.ws.state in (ConnectionState.OPEN, ConnectionState.LOCAL_CLOSING):
                self.ws.receive_data(chunk)
            else:
                self.stash.clear()  # closed by the client: nothing more counts
        if not self.throttled:
            self.throttled_since = 0.0

    def _on_event(self, event: Any) -> None:
        if isinstance(event, CloseConnection):
            if self.ws.state is ConnectionState.OPEN:
                # wsproto reports a frame it cannot parse (ParseFailed) as a close event with
                # the code to send (1002, 1007), leaving the state open: the close is ours.
                self.failed = True
                self.close(event.code, event.reason or "")
                return
            if self.ws.state is ConnectionState.REMOTE_CLOSING:
                self._write(self.ws.send(event.response()), check=False)
            self._finish()
            return
        if self.state != OPEN:
            return  # closing: only the client's close counts now
        if isinstance(event, TextMessage):
            self.message_size += len(event.data.encode()) if not event.data.isascii() else len(event.data)
            if self.message_size > self.cfg.max_message_size:
                self.close(1009, f"message over {self.cfg.max_message_size} bytes")
                return
            self.message.append(event.data)
            if event.message_finished:
                text = "".join(self.message)
                self.message.clear()
                self.message_size = 0
                self._take_token()
                self._command(text)
        elif isinstance(event, BytesMessage):
            self.close(1003, "binary messages are not supported")
        elif isinstance(event, Ping):
            self._take_token()
            self._write(self.ws.send(event.response()))
        elif isinstance(event, Pong):
            self.awaiting_pong = False

    def _take_token(self) -> None:
        rl = self.cfg.rate_limit
        if not rl.messages:
            return
        now = self.loop.time()
        self.tokens = min(float(rl.burst), self.tokens + (now - self.refilled) * rl.messages)
        self.refilled = now
        self.tokens -= 1.0
        if self.tokens >= 0:
            return
        if not self.throttled_since:
            self.throttled_since = now
        elif now - self.throttled_since > rl.close_after:
            self.close(1008, "rate limit exceeded")
            return
        self.throttled = True
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self.loop.call_later((1.0 - self.tokens) / rl.messages, self._unthrottle)

    def _unthrottle(self) -> None:
        self.throttled = False
        if self.state != OPEN:
            return
        self._pump()
        if not self.throttled and self.reading_paused and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()

    # -- commands --------------------------------------------------------------------

    def _command(self, text: str) -> None:
        try:
            cmd = json.loads(text)
        except ValueError:
            self._error("invalid command: not JSON")
            return
        if not isinstance(cmd, dict):
            self._error("invalid command: expected a JSON object")
            return
        name = cmd.get("command")
        if name == "headers":
            return  # RoadRunner ignores it too
        if name not in ("join", "leave"):
            self._error(f"invalid command: unknown command {str(name)[:64]!r}" if name is not None
                        else "invalid command: no command")
            return
        topics = cmd.get("topics")
        if not isinstance(topics, list) or not topics or not all(isinstance(t, str) and t for t in topics):
            self._error(f"invalid {name}: topics must be a non-empty list of non-empty strings")
            return
        topics = list(dict.fromkeys(topics))  # RoadRunner answers with the list as sent, duplicates dropped
        if len(self.commands) >= MAX_PENDING:
            self.close(1008, "too many commands waiting")
            return
        self.commands.append((name, topics))
        if self.task is None:
            self.task = self.loop.create_task(self._run_commands())

    def _error(self, why: str) -> None:
        self._write(frames.text_frame(frames.reply("#error", [why]), self.deflate))

    async def _run_commands(self) -> None:
        hub = self.gateway.hub
        try:
            while self.commands and self.state == OPEN:
                name, topics = self.commands.popleft()
                if name == "leave":
                    hub.unsubscribe(self, topics)
                    self._write(frames.text_frame(frames.reply("@leave", topics), self.deflate))
                    continue
                if len(hub.topics_of(self) | set(topics)) > MAX_TOPICS:
                    self._write(frames.text_frame(frames.reply("#join", topics), self.deflate))
                    continue
                answer = await authorize(self.gateway.pool, auth_frame(
                    self.req, self.remote, self.scheme, {"ws:joinTopics": ",".join(topics)}))
                if self.state != OPEN:
                    return
                if answer.allowed:
                    hub.subscribe(self, topics)
                    self._write(frames.text_frame(frames.reply("@join", topics), self.deflate))
                else:
                    if answer.reason:
                        self.gateway.log.warn("join not authorized", topics=topics, status=answer.status,
                                              reason=answer.reason)
                    self._write(frames.text_frame(frames.reply("#join", topics), self.deflate))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.gateway.log.error("websocket command failed", error=repr(exc))
            self.close(1011, "internal error")
        finally:
            self.task = None

    # -- writing and closing ---------------------------------------------------------

    def _write(self, data: bytes, check: bool = True) -> None:
        if self.queued:
            self.gateway.fanout.flush()  # a delivery of this turn goes first
        self.send_rest(data, check)

    def send_rest(self, data: bytes, check: bool = True) -> None:
        transport = self.transport
        if transport is None or transport.is_closing() or not data:
            return
        transport.write(data)
        if check and transport.get_write_buffer_size() > self.cfg.send_queue:
            self.gateway.log.warn("websocket client does not read, closing it", remote=self.remote,
                                  buffered=transport.get_write_buffer_size(), send_queue=self.cfg.send_queue)
            self.close(1008, "slow consumer")

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake: our close frame, then the client's (or abort at the deadline)."""
        if self.state != OPEN:
            return
        self.state = CLOSING
        self.gateway.hub.unsubscribe(self)
        self.commands.clear()
        self.deadline = self.loop.time() + self.cfg.close_timeout
        if self.ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            self._write(self.ws.send(CloseConnection(code, reason[:120])), check=False)
        if self.ws.state is ConnectionState.CLOSED:
            self._finish()
            return
        transport = self.transport
        if transport is None:
            return
        if self.reading_paused:
            self.reading_paused = False
            transport.resume_reading()  # the client's close must be read
        self.throttled = False
        if self.failed:
            # After a protocol error the input cannot be parsed for the client's close:
            # half-close, so the client sees our close frame then EOF, and closes; we keep
            # reading (and dropping) until it does, so no reset destroys our close frame.
            # TLS cannot half-close: close now (close_notify follows our close frame).
            if transport.can_write_eof():
                transport.write_eof()
            else:
                self._finish()

    def _finish(self) -> None:
        """The closing handshake is over (or was never possible): close the TCP connection."""
        if self.state == CLOSED:
            return
        self.state = CLOSED
        self.gateway.hub.unsubscribe(self)
        if self.transport is not None:
            self.transport.close()
        self.gateway.forget(self)

    def abort(self) -> None:
        self.state = CLOSED
        self.gateway.hub.unsubscribe(self)
        if self.transport is not None:
            self.transport.abort()
        self.gateway.forget(self)

    def tick(self, now: float) -> None:
        """The gateway's ticker: closing deadline, ping / pong."""
        if self.state == CLOSING:
            if now >= self.deadline:
                self.abort()
            return
        if self.state != OPEN or not self.cfg.ping_interval or now < self.next_ping:
            return
        if self.awaiting_pong:
            self.close(1011, "keepalive ping timeout")
            return
        self.awaiting_pong = True
        self.next_ping = now + self.cfg.ping_interval
        self._write(self.ws.send(Ping(b"fastrr")))

    def going_away(self) -> None:
        self.close(1001, "server is shutting down")
