"""`jobs.v1` protobuf messages (roadrunner-server/api jobs/v1/jobs.proto), built
by fastrr/rpc/protobuf.py from the table below (no protoc step).

Field numbers and types as RoadRunner's (rr-jobs.md §3.2). `payload` is
`bytes` (it was `string` before 2023-08; both are the same on the wire).
"""

from __future__ import annotations

from fastrr.rpc.protobuf import Table, build_messages

_MESSAGES: Table = {
    "Empty": [],
    "HeaderValue": [("value", 1, "string", True)],
    "Options": [("priority", 1, "int64", False), ("pipeline", 2, "string", False), ("delay", 3, "int64", False),
                ("auto_ack", 6, "bool", False), ("topic", 7, "string", False), ("metadata", 8, "string", False),
                ("offset", 9, "int64", False), ("partition", 10, "int32", False)],
    "Job": [("job", 1, "string", False), ("id", 2, "string", False), ("payload", 3, "bytes", False),
            ("headers", 4, "map:HeaderValue", False), ("options", 5, "Options", False)],
    "PushRequest": [("job", 1, "Job", False)],
    "PushBatchRequest": [("jobs", 1, "Job", True)],
    "Pipelines": [("pipelines", 1, "string", True)],
    "DeclareRequest": [("pipeline", 1, "map:string", False)],
    "Stat": [("pipeline", 1, "string", False), ("driver", 2, "string", False), ("queue", 3, "string", False),
             ("active", 4, "int64", False), ("delayed", 5, "int64", False), ("reserved", 6, "int64", False),
             ("ready", 7, "bool", False), ("priority", 8, "uint64", False)],
    "Stats": [("stats", 1, "Stat", True)],
}


_classes = build_messages("jobs.v1", _MESSAGES)
Empty = _classes["Empty"]
Options = _classes["Options"]
Job = _classes["Job"]
PushRequest = _classes["PushRequest"]
PushBatchRequest = _classes["PushBatchRequest"]
Pipelines = _classes["Pipelines"]
DeclareRequest = _classes["DeclareRequest"]
Stat = _classes["Stat"]
Stats = _classes["Stats"]
