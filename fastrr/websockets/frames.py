"""Server-to-client WebSocket frames (RFC 6455 §5.2), built once per message for every subscriber.

wsproto parses what clients send; what the server sends is built here, because a
published message goes to every subscriber of its topic and must be encoded (and
compressed) once, not once per connection as wsproto's per-connection compressor would.
That is why permessage-deflate is answered with `server_no_context_takeover`: each
message is compressed from an empty window, so the same bytes are valid on every
connection (RFC 7692 §7.1.1.1).

Server frames are never masked (§5.1). A message whose compressed form is not smaller is
sent uncompressed (RSV1 clear), which RFC 7692 §6 allows on a deflate connection.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastrr.broadcast.hub import Message

OP_TEXT = 0x1
FIN = 0x80
RSV1 = 0x40
DEFLATE_LEVEL = 6
WINDOW_BITS = 15  # what the server compresses with (it never accepts a smaller server_max_window_bits)
_TAIL = b"\x00\x00\xff\xff"


def frame(payload: bytes, opcode: int = OP_TEXT, rsv1: bool = False) -> bytes:
    """One final, unmasked frame."""
    n = len(payload)
    b0 = FIN | opcode | (RSV1 if rsv1 else 0)
    if n < 126:
        head = bytes((b0, n))
    elif n < 65536:
        head = struct.pack("!BBH", b0, 126, n)
    else:
        head = struct.pack("!BBQ", b0, 127, n)
    return head + payload


def deflate(data: bytes) -> bytes:
    """RFC 7692 §7.2.1: a raw deflate block ended by a sync flush, without its 4-byte tail."""
    comp = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -WINDOW_BITS)
    out = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4] if out.endswith(_TAIL) else out


def text_frame(text: bytes, compress: bool) -> bytes:
    if compress and len(text) > 32:
        packed = deflate(text)
        if len(packed) < len(text):
            return frame(packed, rsv1=True)
    return frame(text)


def reply(topic: str, payload: list[str]) -> bytes:
    """A command's answer, RoadRunner's executor.Response: {"topic":"@join","payload":["t1"]}."""
    return json.dumps({"topic": topic, "payload": payload}, ensure_ascii=False, separators=(",", ":")).encode()


def delivery_json(msg: Message) -> bytes:
    """RoadRunner's pool.Response: {"topic":"t","payload":"<the payload bytes as a string>"};
    bytes that are not UTF-8 become U+FFFD, as Go's json does."""
    data = msg.cache.get("json")
    if data is None:
        data = msg.cache["json"] = json.dumps(
            {"topic": msg.topic, "payload": msg.payload.decode("utf-8", "replace")},
            ensure_ascii=False, separators=(",", ":")).encode()
    return data


def delivery_frame(msg: Message, compress: bool) -> bytes:
    """The whole frame of a delivery, memoized on the message (one encode per fan-out)."""
    key = "ws-deflate" if compress else "ws"
    data = msg.cache.get(key)
    if data is None:
        data = msg.cache[key] = text_frame(delivery_json(msg), compress)
    return data


def sse_event(msg: Message) -> bytes:
    """The Server-Sent Events form (HTML §9.2.6): id, event = the topic, one data line per
    payload line (a CR LF / CR / LF inside the payload starts a new data line)."""
    data = msg.cache.get("sse")
    if data is None:
        text = msg.payload.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
        lines = "".join(f"data: {line}\n" for line in text.split("\n"))
        data = msg.cache["sse"] = f"id: {msg.id}\nevent: {_one_line(msg.topic)}\n{lines}\n".encode()
    return data


def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")
