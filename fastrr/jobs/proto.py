"""`jobs.v1` protobuf messages (roadrunner-server/api jobs/v1/jobs.proto), built
from a descriptor written here rather than generated code, so no protoc step.

Field numbers and types as RoadRunner's (rr-jobs.md §3.2). `payload` is
`bytes` (it was `string` before 2023-08; both are the same on the wire).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {"string": _F.TYPE_STRING, "bytes": _F.TYPE_BYTES, "int64": _F.TYPE_INT64, "int32": _F.TYPE_INT32,
            "bool": _F.TYPE_BOOL, "uint64": _F.TYPE_UINT64}

# message -> [(field, number, type, repeated)]; a type that is not a scalar names a message.
_MESSAGES: dict[str, list[tuple[str, int, str, bool]]] = {
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


def _build() -> dict[str, Any]:
    fd = descriptor_pb2.FileDescriptorProto(name="fastrr/jobs/v1/jobs.proto", package="jobs.v1", syntax="proto3")
    for name, fields in _MESSAGES.items():
        msg = fd.message_type.add(name=name)
        for fname, number, ftype, repeated in fields:
            field = msg.field.add(name=fname, number=number,
                                  label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
            if ftype.startswith("map:"):
                value = ftype[4:]
                entry = msg.nested_type.add(name="".join(p.title() for p in fname.split("_")) + "Entry")
                entry.options.map_entry = True
                entry.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
                vfield = entry.field.add(name="value", number=2, label=_F.LABEL_OPTIONAL)
                if value in _SCALARS:
                    vfield.type = _SCALARS[value]
                else:
                    vfield.type = _F.TYPE_MESSAGE
                    vfield.type_name = f".jobs.v1.{value}"
                field.label = _F.LABEL_REPEATED
                field.type = _F.TYPE_MESSAGE
                field.type_name = f".jobs.v1.{name}.{entry.name}"
            elif ftype in _SCALARS:
                field.type = _SCALARS[ftype]
            else:
                field.type = _F.TYPE_MESSAGE
                field.type_name = f".jobs.v1.{ftype}"
    pool = descriptor_pool.DescriptorPool()
    file = pool.Add(fd)
    return {name: message_factory.GetMessageClass(file.message_types_by_name[name]) for name in _MESSAGES}


_classes = _build()
Empty = _classes["Empty"]
Options = _classes["Options"]
Job = _classes["Job"]
PushRequest = _classes["PushRequest"]
PushBatchRequest = _classes["PushBatchRequest"]
Pipelines = _classes["Pipelines"]
DeclareRequest = _classes["DeclareRequest"]
Stat = _classes["Stat"]
Stats = _classes["Stats"]
