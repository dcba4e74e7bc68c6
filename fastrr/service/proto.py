"""`service.v1` messages (roadrunner-server/api service/v1/service.proto, rr-plugins.md §6.2).

`Status.status` is a `common.v1.Status` there; it is declared here in the same
package as `CommonStatus` (the wire only carries field numbers and types),
with `Any` for its `details`.
"""

from __future__ import annotations

from fastrr.rpc.protobuf import build_messages

_classes = build_messages("service.v1", {
    "Response": [("message", 1, "string", False), ("ok", 2, "bool", False)],
    "Create": [("name", 1, "string", False), ("command", 2, "string", False), ("process_num", 3, "int64", False),
               ("exec_timeout", 4, "int64", False), ("remain_after_exit", 5, "bool", False),
               ("env", 6, "map:string", False), ("restart_sec", 7, "uint64", False),
               ("service_name_in_logs", 8, "bool", False), ("timeout_stop_sec", 9, "uint64", False)],
    "Any": [("type_url", 1, "string", False), ("value", 2, "bytes", False)],
    "CommonStatus": [("code", 1, "int32", False), ("message", 2, "string", False), ("details", 3, "Any", True)],
    "Status": [("cpu_percent", 1, "float", False), ("pid", 2, "int32", False), ("memory_usage", 3, "uint64", False),
               ("command", 4, "string", False), ("status", 5, "CommonStatus", False)],
    "Statuses": [("status", 1, "Status", True)],
    "Service": [("name", 1, "string", False)],
    "List": [("services", 1, "string", True)],
})
Response = _classes["Response"]
Create = _classes["Create"]
Status = _classes["Status"]
Statuses = _classes["Statuses"]
Service = _classes["Service"]
List = _classes["List"]
