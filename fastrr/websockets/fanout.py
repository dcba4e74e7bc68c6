"""The broadcast fan-out: the deliveries of one loop turn sent with one C call per message.

Every subscriber of a topic gets the same bytes (frames.py builds a delivery once per
message). Written through asyncio, each subscriber costs a transport.write(): measured
with 10,000 WebSocket subscribers, about as much Python as the kernel's own loopback
send. So `deliver` only queues the subscriber here; at the end of the loop turn `flush`
hands each message's frame and the sockets of its subscribers to `_core.send_all`
(csrc/fanout.c: send() in a C loop, the GIL released).

Only a plain socket whose transport has nothing buffered is sent to directly: TLS
transports (wss, SSE over https) and transports with bytes waiting get transport.write(),
so nothing is ever sent out of order. An event stream on HTTP/2 (sse_h2.py) has fd -1:
its send_rest puts the bytes on its h2 stream, under that stream's flow control. What a
socket did not take (a short write, EAGAIN, an error) goes to its transport's write(),
which buffers it (the slow-consumer bound then applies as for any write) or finds the
error and closes. A connection that writes anything else (a join reply, a ping, a close)
while a delivery of this turn is still queued flushes first, so its own bytes never
overtake a delivery.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from fastrr import _core


class Fanned(Protocol):
    """What WsConnection, SseStream and H2EventStream offer the fan-out."""

    transport: asyncio.Transport | None
    fd: int  # the socket for direct sends, -1 when every write must go through the transport
    queued: int  # deliveries of this turn not yet sent

    def send_rest(self, data: bytes) -> None: ...  # transport.write + the slow-consumer check


def direct_fd(transport: asyncio.BaseTransport) -> int:
    """The socket's fd when bytes may be sent on it directly (plain TCP or unix), else -1."""
    if transport.get_extra_info("ssl_object") is not None:
        return -1
    sock = transport.get_extra_info("socket")
    return sock.fileno() if sock is not None else -1


class Fanout:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        # frame object id -> (frame, subscribers): insertion order is publish order
        self.batches: dict[int, tuple[bytes, list[Fanned]]] = {}
        self.scheduled = False

    def add(self, sub: Fanned, frame: bytes) -> None:
        batch = self.batches.get(id(frame))
        if batch is None:
            batch = self.batches[id(frame)] = (frame, [])
            if not self.scheduled:
                self.scheduled = True
                self.loop.call_soon(self.flush)
        batch[1].append(sub)
        sub.queued += 1

    def flush(self) -> None:
        self.scheduled = False
        batches, self.batches = self.batches, {}
        for frame, subs in batches.values():
            direct: list[Fanned] = []
            fds: list[int] = []
            for sub in subs:
                sub.queued -= 1
                transport = sub.transport
                if transport is None or transport.is_closing():
                    continue
                if sub.fd >= 0 and not transport.get_write_buffer_size():
                    direct.append(sub)
                    fds.append(sub.fd)
                else:
                    sub.send_rest(frame)
            if not fds:
                continue
            for index, sent, _err in _core.send_all(fds, frame):
                # the transport buffers the rest, or meets the error and closes itself
                direct[index].send_rest(frame[sent:])
