"""RPC body codecs, chosen by the frame's flag bits.

When several codec bits are set the first of PROTO, JSON, RAW, MSGPACK wins
(RoadRunner's order). GOB (or no codec bit, which means GOB to Go) is not
spoken here: such calls get an ERROR answer.

Byte values follow Go's encoding of `[]byte`: raw as they are, base64 in
JSON, bin in msgpack.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import msgpack

from fastrr import _core

FLAG_RAW = _core.FLAG_RAW
FLAG_JSON = _core.FLAG_JSON
FLAG_MSGPACK = _core.FLAG_MSGPACK
FLAG_PROTO = _core.FLAG_PROTO
FLAG_ERROR = _core.FLAG_ERROR
CODEC_ORDER = (FLAG_PROTO, FLAG_JSON, FLAG_RAW, FLAG_MSGPACK)
CODEC_NAMES = {FLAG_PROTO: "proto", FLAG_JSON: "json", FLAG_RAW: "raw", FLAG_MSGPACK: "msgpack"}


class RpcError(Exception):
    """A call that gets an ERROR answer; the text goes back to the caller."""


def pick_codec(flags: int) -> int:
    for codec in CODEC_ORDER:
        if flags & codec:
            return codec
    raise RpcError(f"unsupported codec (frame flags {flags:#04x}): fastrr speaks json (0x08), msgpack (0x10), "
                   f"raw (0x04) and proto (0x80), not gob")


def decode(codec: int, body: bytes) -> Any:
    """The call's argument. RAW and PROTO arguments stay bytes."""
    if codec == FLAG_JSON:
        if not body:
            return None
        try:
            return json.loads(body)
        except ValueError as exc:
            raise RpcError(f"invalid JSON in the request body: {exc}") from None
    if codec == FLAG_MSGPACK:
        if not body:
            return None
        try:
            return msgpack.unpackb(body, raw=False, strict_map_key=False)
        except (ValueError, msgpack.UnpackException) as exc:
            raise RpcError(f"invalid msgpack in the request body: {exc}") from None
    return body


def encode(codec: int, value: Any, method: str) -> bytes:
    if codec == FLAG_JSON:
        return json.dumps(_json_ready(value), separators=(",", ":"), ensure_ascii=False).encode()
    if codec == FLAG_MSGPACK:
        return msgpack.packb(value, use_bin_type=True)
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    name = CODEC_NAMES[codec]
    raise RpcError(f"{method} returns structured data, which the {name} codec cannot carry; use json or msgpack")


def _json_ready(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return value


def encode_call(seq: int, method: str, body: bytes, flags: int) -> bytes:
    """A request (or answer) frame: options [seq, len(method)], payload method || body."""
    name = method.encode()
    return _core.encode_frame(flags, name + body, (seq, len(name)))
