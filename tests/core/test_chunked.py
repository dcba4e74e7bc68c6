"""ChunkedDecoder: valid bodies in any split, every malformed shape, 413."""

from __future__ import annotations

import pytest

BODY = b"5\r\nhello\r\n6;name=value;flag\r\n world\r\nA; q=\"x \\\" y\"\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"
DECODED = b"hello world0123456789"


def run(core, data: bytes, step: int | None = None, max_size: int = 1 << 62):
    d = core.ChunkedDecoder(max_size)
    out = b""
    used = 0
    if step is None:
        used = d.feed(data)
    else:
        for i in range(0, len(data), step):
            used += d.feed(data[i : i + step])
            out += d.take()
    return d, out + d.take(), used


@pytest.mark.parametrize("step", [None, 1, 2, 3, 7, 16])
def test_valid_splits(core, step):
    d, out, used = run(core, BODY + b"NEXT", step)
    assert d.done and out == DECODED
    assert used == len(BODY)


def test_stops_at_end(core):
    d = core.ChunkedDecoder(100)
    assert d.feed(b"0\r\n\r\nGET / HTTP/1.1\r\n") == 5
    assert d.done
    assert d.feed(b"more") == 0
    assert d.take() == b""


def test_not_done_until_final_crlf(core):
    d = core.ChunkedDecoder(100)
    assert d.feed(b"3\r\nabc\r\n0\r\n") == 11
    assert not d.done
    assert d.take() == b"abc"
    assert d.feed(b"\r\n") == 2 and d.done


def test_take_clears(core):
    d = core.ChunkedDecoder(100)
    d.feed(b"3\r\nabc\r\n")
    assert d.take() == b"abc"
    assert d.take() == b""
    d.feed(b"2\r\nde\r\n0\r\n\r\n")
    assert d.take() == b"de" and d.done


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_buffer_kinds(core, kind):
    d = core.ChunkedDecoder(100)
    assert d.feed(kind(b"1\r\nx\r\n0\r\n\r\n")) == 11
    assert d.take() == b"x"


def test_uppercase_hex_and_leading_zeros(core):
    d, out, _ = run(core, b"0000A\r\n" + b"x" * 10 + b"\r\n00\r\n\r\n")
    assert d.done and out == b"x" * 10


def test_default_limit_is_respected(core):
    with pytest.raises(core.HttpError) as ei:
        run(core, b"ffffffffffffffff\r\n", max_size=1 << 20)
    assert ei.value.status == 413


def test_large_chunk(core):
    data = b"%x\r\n" % 300000 + b"z" * 300000 + b"\r\n0\r\n\r\n"
    d, out, _ = run(core, data, 65536)
    assert d.done and out == b"z" * 300000


def test_exactly_max_size(core):
    d, out, _ = run(core, b"5\r\nhello\r\n0\r\n\r\n", max_size=5)
    assert d.done and out == b"hello"


@pytest.mark.parametrize("data", [
    b"6\r\nhello!\r\n0\r\n\r\n",
    b"3\r\nhel\r\n3\r\nlo!\r\n0\r\n\r\n",
    b"ffffffffffffffff\r\n",
])
def test_413(core, data):
    for step in (None, 1):
        with pytest.raises(core.HttpError) as ei:
            run(core, data, step, max_size=5)
        assert (ei.value.status, ei.value.reason) == (413, "request body too large")


INVALID = [
    (b"\r\n", "invalid chunk size"),
    (b"x\r\n", "invalid chunk size"),
    (b"-1\r\n", "invalid chunk size"),
    (b"+1\r\n", "invalid chunk size"),
    (b"0x5\r\nhello\r\n", "invalid chunk size"),
    (b"5 \r\nhello\r\n", "invalid chunk size"),
    (b" 5\r\nhello\r\n", "invalid chunk size"),
    (b"5\nhello\r\n", "bare LF"),
    (b"\n", "bare LF"),
    (b"5\rhello\r\n", "bare CR"),
    (b"10000000000000000\r\n", "chunk size overflow"),
    (b"5;\r\nhello\r\n", "invalid chunk extension"),
    (b"5;=v\r\nhello\r\n", "invalid chunk extension"),
    (b"5;a=\r\nhello\r\n", "invalid chunk extension"),
    (b"5;a=b c\r\nhello\r\n", "invalid chunk extension"),
    (b"5;a=\"unterminated\r\nhello\r\n", "invalid chunk extension"),
    (b"5;a=\"x\x01\"\r\nhello\r\n", "invalid chunk extension"),
    (b"5;a=\"x\\\x01\"\r\nhello\r\n", "invalid chunk extension"),
    (b"5;a\x00\r\nhello\r\n", "invalid chunk extension"),
    (b"5;a\nhello\r\n", "bare LF"),
    (b"5\r\nhelloX\r\n", "missing CRLF after chunk data"),
    (b"5\r\nhello\rX", "missing CRLF after chunk data"),
    (b"5\r\nhello\n0\r\n\r\n", "missing CRLF after chunk data"),
    (b"5\r\nhello\r\n0\r\n trailer: x\r\n\r\n", "obs-fold in trailer section"),
    (b"5\r\nhello\r\n0\r\nX : y\r\n\r\n", "whitespace before colon"),
    (b"5\r\nhello\r\n0\r\n(x): y\r\n\r\n", "invalid trailer field name"),
    (b"5\r\nhello\r\n0\r\nX: a\x00b\r\n\r\n", "invalid trailer field value"),
    (b"5\r\nhello\r\n0\r\nX: y\n\r\n", "bare LF"),
    (b"5\r\nhello\r\n0\r\nX: y\rZ", "bare CR"),
    (b"5\r\nhello\r\n0\r\n\n", "bare LF"),
    (b"5\r\nhello\r\n0\r\n\rX", "bare CR"),
    (b"1;" + b"a" * 5000 + b"\r\nx\r\n", "chunk size line too long"),
    (b"0\r\n" + b"X: y\r\n" * 3000 + b"\r\n", "trailer section too large"),
]


@pytest.mark.parametrize(("data", "reason"), INVALID, ids=[r for _, r in INVALID])
def test_invalid(core, data, reason):
    for step in (None, 1):
        with pytest.raises(core.HttpError) as ei:
            run(core, data, step)
        assert (ei.value.status, ei.value.reason) == (400, reason)


def test_error_is_sticky(core):
    d = core.ChunkedDecoder(100)
    with pytest.raises(core.HttpError):
        d.feed(b"zz")
    with pytest.raises(core.HttpError) as ei:
        d.feed(b"0\r\n\r\n")
    assert ei.value.reason == "invalid chunk size"
    assert not d.done


def test_valid_extensions(core):
    for ext in (b";a", b";a=b", b" ; a = b ", b";a=\"\"", b";a=\"q\\\"\";b;c=d", b"\t;a"):
        d, out, _ = run(core, b"1" + ext + b"\r\nx\r\n0" + ext + b"\r\n\r\n")
        assert d.done and out == b"x", ext


def test_negative_max_size(core):
    with pytest.raises(ValueError):
        core.ChunkedDecoder(-1)
