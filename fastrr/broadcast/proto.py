"""`broadcast.v1` messages (roadrunner-php/broadcast resources/proto/v1/broadcast.proto; the same
field numbers as roadrunner-server/api websockets/v1), plus fastrr's own TopicsResponse."""

from __future__ import annotations

from fastrr.rpc.protobuf import build_messages

_classes = build_messages("broadcast.v1", {
    "Message": [("command", 1, "string", False), ("topics", 2, "string", True), ("payload", 3, "bytes", False)],
    "Request": [("messages", 1, "Message", True)],
    "Response": [("ok", 1, "bool", False)],
})
Message = _classes["Message"]
Request = _classes["Request"]
Response = _classes["Response"]
