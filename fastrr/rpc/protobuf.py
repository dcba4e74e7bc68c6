"""protobuf message classes from a table written here, instead of protoc-generated
code (no build step). The plugins' RPC messages (jobs.v1, kv.v1, lock.v1beta1)
are declared with it; field numbers and types are RoadRunner's.

A table maps message -> [(field, number, type, repeated)]. A type is a scalar
name, another message of the same package, or "map:<value type>" (string keys).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
SCALARS = {"string": _F.TYPE_STRING, "bytes": _F.TYPE_BYTES, "int64": _F.TYPE_INT64, "int32": _F.TYPE_INT32,
           "bool": _F.TYPE_BOOL, "uint64": _F.TYPE_UINT64, "float": _F.TYPE_FLOAT}
Table = dict[str, list[tuple[str, int, str, bool]]]


def build_messages(package: str, messages: Table) -> dict[str, Any]:
    fd = descriptor_pb2.FileDescriptorProto(name=f"fastrr/{package.replace('.', '/')}.proto", package=package,
                                            syntax="proto3")
    for name, fields in messages.items():
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
                if value in SCALARS:
                    vfield.type = SCALARS[value]
                else:
                    vfield.type = _F.TYPE_MESSAGE
                    vfield.type_name = f".{package}.{value}"
                field.label = _F.LABEL_REPEATED
                field.type = _F.TYPE_MESSAGE
                field.type_name = f".{package}.{name}.{entry.name}"
            elif ftype in SCALARS:
                field.type = SCALARS[ftype]
            else:
                field.type = _F.TYPE_MESSAGE
                field.type_name = f".{package}.{ftype}"
    pool = descriptor_pool.DescriptorPool()
    file = pool.Add(fd)
    return {name: message_factory.GetMessageClass(file.message_types_by_name[name]) for name in messages}
