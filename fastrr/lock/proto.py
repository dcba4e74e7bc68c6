"""`lock.v1beta1` messages (rr-plugins.md §5.1; lock.v1 has the same numbers).
`ttl` and `wait` are proto3 `optional` there; unset and 0 mean the same to the
server, so plain fields decode both."""

from __future__ import annotations

from fastrr.rpc.protobuf import build_messages

_classes = build_messages("lock.v1beta1", {
    "Request": [("resource", 1, "string", False), ("id", 2, "string", False), ("ttl", 3, "int64", False),
                ("wait", 4, "int64", False)],
    "Response": [("ok", 1, "bool", False)],
})
Request = _classes["Request"]
Response = _classes["Response"]
