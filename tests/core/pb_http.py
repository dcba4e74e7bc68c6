"""RoadRunner's http.v1 messages as real protobuf classes, for the tests.

The classes are built at run time from a FileDescriptorProto (no protoc, no
generated code), with the field names and numbers of RoadRunner's
api/http/v1/http.proto:

    message HeaderValue { repeated bytes value = 1; }
    message Request { string remote_addr = 1; string protocol = 2; string method = 3;
                      string uri = 4; map<string, HeaderValue> header = 5;
                      map<string, HeaderValue> cookies = 6; string raw_query = 7;
                      bool parsed = 8; bytes uploads = 9; map<string, HeaderValue> attributes = 10; }
    message Response { int64 status = 1; map<string, HeaderValue> headers = 2; }

Also a tiny wire-format walker, to look at field order and presence, which
the parsed messages do not show.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

pytest.importorskip("google.protobuf")

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory  # noqa: E402

_F = descriptor_pb2.FieldDescriptorProto


def _map_field(msg: descriptor_pb2.DescriptorProto, name: str, number: int) -> None:
    entry = "".join(part.capitalize() for part in name.split("_")) + "Entry"
    e = msg.nested_type.add(name=entry)
    e.options.map_entry = True
    e.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    e.field.add(name="value", number=2, type=_F.TYPE_MESSAGE, label=_F.LABEL_OPTIONAL,
                type_name=".http.v1.HeaderValue")
    msg.field.add(name=name, number=number, type=_F.TYPE_MESSAGE, label=_F.LABEL_REPEATED,
                  type_name=f".http.v1.{msg.name}.{entry}")


@cache
def classes() -> tuple[Any, Any, Any]:
    """(Request, Response, HeaderValue) message classes."""
    fdp = descriptor_pb2.FileDescriptorProto(name="fastrr_tests/http_v1.proto", package="http.v1",
                                             syntax="proto3")
    hv = fdp.message_type.add(name="HeaderValue")
    hv.field.add(name="value", number=1, type=_F.TYPE_BYTES, label=_F.LABEL_REPEATED)
    req = fdp.message_type.add(name="Request")
    for name, number in (("remote_addr", 1), ("protocol", 2), ("method", 3), ("uri", 4)):
        req.field.add(name=name, number=number, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    _map_field(req, "header", 5)
    _map_field(req, "cookies", 6)
    req.field.add(name="raw_query", number=7, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    req.field.add(name="parsed", number=8, type=_F.TYPE_BOOL, label=_F.LABEL_OPTIONAL)
    req.field.add(name="uploads", number=9, type=_F.TYPE_BYTES, label=_F.LABEL_OPTIONAL)
    _map_field(req, "attributes", 10)
    resp = fdp.message_type.add(name="Response")
    resp.field.add(name="status", number=1, type=_F.TYPE_INT64, label=_F.LABEL_OPTIONAL)
    _map_field(resp, "headers", 2)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    get = message_factory.GetMessageClass
    return (get(pool.FindMessageTypeByName("http.v1.Request")),
            get(pool.FindMessageTypeByName("http.v1.Response")),
            get(pool.FindMessageTypeByName("http.v1.HeaderValue")))


def parse_request(data: bytes) -> Any:
    msg = classes()[0]()
    msg.ParseFromString(data)
    return msg


def parse_response(data: bytes) -> Any:
    msg = classes()[1]()
    msg.ParseFromString(data)
    return msg


def response(status: int, headers: dict[str, list[bytes]] | None = None) -> bytes:
    msg = classes()[1](status=status)
    for name, values in (headers or {}).items():
        msg.headers[name].value.extend(values)
    return msg.SerializeToString()


# ------------------------------------------------------------------ wire walker

def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def fields(data: bytes) -> list[tuple[int, int, Any]]:
    """Top-level (field number, wire type, value) in wire order; values of
    length-delimited fields are bytes, of varints ints (no groups)."""
    out = []
    pos = 0
    while pos < len(data):
        tag, pos = read_varint(data, pos)
        number, wt = tag >> 3, tag & 7
        if wt == 0:
            value, pos = read_varint(data, pos)
        elif wt == 2:
            n, pos = read_varint(data, pos)
            value, pos = data[pos:pos + n], pos + n
        elif wt == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wt == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wt}")
        out.append((number, wt, value))
    return out


def map_keys(data: bytes, number: int) -> list[str]:
    """Keys of the map field `number`, in wire order."""
    keys = []
    for num, _, entry in fields(data):
        if num == number:
            keys.append(next(v for n, _, v in fields(entry) if n == 1).decode())
    return keys


# --------------------------------------------------------- varint / tag writers

def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tag(number: int, wt: int) -> bytes:
    return varint(number << 3 | wt)


def ld(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return tag(number, 2) + varint(len(payload)) + payload
