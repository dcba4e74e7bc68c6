"""Byte-exactness of protobuf between PHP and Python, through the server.

fastrr never decodes the messages, so what PHP (Debian's php-google-protobuf,
pure PHP) writes must be what Python's protobuf (upb) reads and writes: the
same values give the same bytes both ways. Maps have one entry, the only
case where protobuf fixes the byte order.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.grpc.conftest import Generated, GrpcServer

# The values EchoService::Make builds in PHP (bench/apps/grpc/EchoService.php).
RICH_VALUES: dict[str, Any] = {
    "i32": -7, "i64": -9000000000, "u32": 4000000000, "u64": 2**63 - 1, "s32": -300, "s64": -70000000000,
    "f32": 123456, "f64": 1234567890123, "sf32": -42, "sf64": -4242424242, "flag": True, "fl": 1.5,
    "db": -2.25e100, "text": "héllo ✓ \U0001F600", "raw": b"\x00\x01\xfe\xff", "packed": [1, -1, 300, 0],
    "names": ["a", "", "ß"], "color": 2, "number": 0,
}


def rich(gen: Generated) -> Any:
    msg = gen.types.Rich(**RICH_VALUES)
    msg.inner.msg = "inner"
    msg.inner.sleep_ms = -5
    msg.counts["k"] = -1
    msg.items.add(blob=b"\x00\xff")
    msg.items.add()
    return msg


@pytest.fixture
def srv(grpc_server: Any) -> GrpcServer:
    return grpc_server({}, workers=1)


def test_php_encodes_what_python_encodes(srv: GrpcServer, gen: Generated) -> None:
    raw = srv.channel().unary_unary("/fastrr.test.Echo/Make")(gen.types.Message().SerializeToString(), timeout=10)
    expected = rich(gen)
    assert raw == expected.SerializeToString()
    assert gen.types.Rich.FromString(raw) == expected
    assert gen.types.Rich.FromString(raw).WhichOneof("choice") == "number"  # a set oneof of 0 is written


def test_python_bytes_survive_a_php_decode_and_encode(srv: GrpcServer, gen: Generated) -> None:
    mirror = srv.channel().unary_unary("/fastrr.test.Echo/Mirror")
    for msg in (rich(gen), gen.types.Rich(), gen.types.Rich(word="w", u64=2**64 - 1, i32=-(2**31)),
                gen.types.Rich(raw=bytes(range(256)) * 64, names=["x" * 1000] * 3)):
        data = msg.SerializeToString()
        assert mirror(data, timeout=10) == data
