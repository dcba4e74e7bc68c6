"""`kv.v1` messages (roadrunner-server/api kv/v1/kv.proto, rr-plugins.md §2.3)."""

from __future__ import annotations

from fastrr.rpc.protobuf import build_messages

_classes = build_messages("kv.v1", {
    "Item": [("key", 1, "string", False), ("value", 2, "bytes", False), ("timeout", 3, "string", False)],
    "Request": [("storage", 1, "string", False), ("items", 2, "Item", True)],
    "Response": [("items", 1, "Item", True)],
})
Item = _classes["Item"]
Request = _classes["Request"]
Response = _classes["Response"]
