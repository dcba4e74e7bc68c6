"""Goridge v3 frames: byte-exact encoding (protocol doc, Appendix A) and the
incremental FrameReader."""

from __future__ import annotations

import struct
import zlib

import pytest


def crc_le(hdr6: bytes) -> bytes:
    return struct.pack("<I", zlib.crc32(hdr6) & 0xFFFFFFFF)


def frame(b0: int, flags: int, payload: bytes, opts: tuple[int, ...] = (), byte10: int = 0) -> bytes:
    """Independent frame builder straight from the spec table."""
    h = bytes([b0, flags]) + struct.pack("<I", len(payload))
    return h + crc_le(h) + bytes([byte10, 0]) + b"".join(struct.pack("<I", o) for o in opts) + payload


# --------------------------------------------------------------- crc32

def test_crc32_matches_zlib(core):
    for data in (b"", b"a", b"hello", bytes(range(256)) * 3):
        assert core.crc32(data) == zlib.crc32(data)
    assert core.crc32(bytearray(b"hello")) == zlib.crc32(b"hello")
    assert core.crc32(memoryview(b"xhellox")[1:-1]) == zlib.crc32(b"hello")


def test_crc32_known_value(core):
    # CRC of the PID-request header bytes 13 09 0C 00 00 00, as computed by PHP's crc32()
    assert core.crc32(bytes.fromhex("13090c000000")) == 0x73460C5F


# ---------------------------------------------------- Appendix A, byte exact

def test_appendix_pid_request(core):
    out = core.encode_frame(core.FLAG_CONTROL | core.FLAG_JSON, b'{"pid":4242}')
    assert out[:6] == bytes.fromhex("13 09 0C 00 00 00")
    assert out[6:10] == crc_le(out[:6]) == bytes.fromhex("5f0c4673")
    assert out[10:12] == b"\x00\x00"
    assert out[12:] == bytes.fromhex("7B 22 70 69 64 22 3A 34 32 34 32 7D")


def test_appendix_worker_stop(core):
    out = core.encode_frame(0, b'{"stop":true}', (13,))
    expected = (bytes.fromhex("14 00 0D 00 00 00") + crc_le(bytes.fromhex("14 00 0D 00 00 00"))
                + bytes.fromhex("00 00 0D 00 00 00 7B 22 73 74 6F 70 22 3A 74 72 75 65 7D"))
    assert out == expected


def test_appendix_worker_error(core):
    out = core.encode_frame(core.FLAG_ERROR, b"boom")
    assert out == frame(0x13, 0x40, b"boom")
    assert out[:2] == b"\x13\x40"


@pytest.mark.parametrize(("bit", "byte10"), [("PONG", 0x08), ("STOP", 0x02)])
def test_appendix_pong_and_stop(core, bit, byte10):
    out = core.encode_frame(0, b"", (), getattr(core, bit))
    h = bytes.fromhex("13 00 00 00 00 00")
    assert out == h + crc_le(h) + bytes([byte10, 0])
    assert len(out) == 12


def test_appendix_rpc_call(core):
    out = core.encode_frame(core.FLAG_JSON, b'informer.Workers"http"', (1, 16))
    h = bytes.fromhex("15 08 16 00 00 00")
    assert out == h + crc_le(h) + bytes.fromhex("00 00 01 00 00 00 10 00 00 00") + b'informer.Workers"http"'


def test_http_request_frame_layout(core):
    """14 <flags> <ctx+body len> <crc> 00 00 <ctx_len> <ctx> <body> - options not counted."""
    out = core.encode_frame(core.FLAG_PROTO, b"CTX" + b"body", (3,))
    assert out[0] == 0x14 and out[1] == 0x80
    assert struct.unpack("<I", out[2:6])[0] == 7
    assert struct.unpack("<I", out[12:16])[0] == 3
    assert out[16:] == b"CTXbody"


def test_encode_frame_keywords_and_buffers(core):
    a = core.encode_frame(flags=8, payload=bytearray(b"x"), options=[1, 2], byte10=1)
    assert a == frame(0x15, 8, b"x", (1, 2), 1)
    assert core.encode_frame(8, memoryview(b"x")) == frame(0x13, 8, b"x")
    assert core.encode_frame(0, options=tuple(range(10)))[0] == 0x1D


@pytest.mark.parametrize("kwargs", [
    {"flags": 256}, {"flags": -1}, {"flags": 0, "byte10": 256},
    {"flags": 0, "options": tuple(range(11))}, {"flags": 0, "options": (2**32,)}, {"flags": 0, "options": (-1,)},
])
def test_encode_frame_rejects(core, kwargs):
    with pytest.raises(ValueError):
        core.encode_frame(**kwargs)


# -------------------------------------------------------------- FrameReader

FRAMES = [
    frame(0x13, 0x09, b'{"pid":4242}'),
    frame(0x14, 0x00, b'{"stop":true}', (13,)),
    frame(0x13, 0x40, b"error text"),
    frame(0x13, 0x00, b"", (), 0x08),
    frame(0x15, 0x08, b'informer.Workers"http"', (1, 16)),
    frame(0x14, 0x08, b'{"status":200}' + b"x" * 5000, (14,), 0x01),
]
DECODED = [
    (0x09, 0, (), b'{"pid":4242}'),
    (0x00, 0, (13,), b'{"stop":true}'),
    (0x40, 0, (), b"error text"),
    (0x00, 0x08, (), b""),
    (0x08, 0, (1, 16), b'informer.Workers"http"'),
    (0x08, 0x01, (14,), b'{"status":200}' + b"x" * 5000),
]


def test_reader_whole(core):
    r = core.FrameReader(1 << 20)
    assert r.feed(b"".join(FRAMES)) == DECODED
    assert r.pending == 0
    assert r.feed(b"") is None


def test_reader_byte_by_byte(core):
    r = core.FrameReader(1 << 20)
    data = b"".join(FRAMES)
    got = []
    for i in range(len(data)):
        out = r.feed(data[i : i + 1])
        if out is None:
            assert r.pending > 0
        else:
            got += out
    assert got == DECODED
    assert r.pending == 0


@pytest.mark.parametrize("split", [1, 5, 11, 12, 13, 15, 16, 17, 40, 1000])
def test_reader_splits(core, split):
    r = core.FrameReader(1 << 20)
    data = b"".join(FRAMES)
    got = []
    for i in range(0, len(data), split):
        got += r.feed(memoryview(data)[i : i + split]) or []
    assert got == DECODED


def test_reader_pending(core):
    r = core.FrameReader(100)
    f = frame(0x14, 0x08, b"0123456789", (3,))
    assert r.feed(f[:7]) is None and r.pending == 7
    assert r.feed(f[7:20]) is None and r.pending == 20
    assert r.feed(f[20:]) == [(8, 0, (3,), b"0123456789")]
    assert r.pending == 0


def test_reader_accepts_bytearray(core):
    r = core.FrameReader(100)
    assert r.feed(bytearray(FRAMES[0])) == [DECODED[0]]


def test_reader_crc_mismatch_is_stdout_error(core):
    bad = bytearray(FRAMES[0])
    bad[6] ^= 0xFF
    r = core.FrameReader(100)
    with pytest.raises(core.FrameError) as ei:
        r.feed(bytes(bad))
    msg = str(ei.value)
    assert msg.startswith("validation failed on the message sent to STDOUT: ")
    assert msg.endswith(repr(bytes(bad)))


def test_reader_php_echo(core):
    """A stray `echo` in pipes mode: the text shows up in the error, <= 200 bytes."""
    r = core.FrameReader(1 << 20)
    text = b"Hello world! " * 40
    with pytest.raises(core.FrameError) as ei:
        r.feed(text)
    assert str(ei.value) == "validation failed on the message sent to STDOUT: " + repr(text[:200])


def test_reader_short_echo_fails_at_once(core):
    """Fewer than 12 bytes that cannot start a frame are reported without waiting."""
    r = core.FrameReader(100)
    with pytest.raises(core.FrameError, match="STDOUT: b'hi\\\\n'"):
        r.feed(b"hi\n")


def test_reader_sticky_error(core):
    r = core.FrameReader(100)
    with pytest.raises(core.FrameError) as e1:
        r.feed(b"garbage garbage")
    with pytest.raises(core.FrameError) as e2:
        r.feed(FRAMES[0])
    assert str(e1.value) == str(e2.value)


def test_reader_frames_before_error_are_delivered(core):
    r = core.FrameReader(100)
    assert r.feed(FRAMES[0] + b"oops, an echo") == [DECODED[0]]
    with pytest.raises(core.FrameError, match="STDOUT"):
        r.feed(b"")


def test_reader_could_not_open(core):
    r = core.FrameReader(100)
    with pytest.raises(core.FrameError) as ei:
        r.feed(b"Could not open input file: worker.php\n")
    assert str(ei.value) == "Could not open input file: worker.php"


def test_reader_could_not_open_split(core):
    r = core.FrameReader(100)
    assert r.feed(b"Could") is None
    assert r.feed(b" not o") is None
    with pytest.raises(core.FrameError) as ei:
        r.feed(b"pen input file: /srv/app/worker.php\n")
    assert str(ei.value) == "Could not open input file: /srv/app/worker.php"


def test_reader_could_not_op_only(core):
    r = core.FrameReader(100)
    with pytest.raises(core.FrameError) as ei:
        r.feed(b"Could not op")
    assert str(ei.value).startswith("Could not open input file")


def test_reader_bad_version(core):
    h = bytes([0x23, 0, 0, 0, 0, 0])
    r = core.FrameReader(100)
    with pytest.raises(core.FrameError, match="STDOUT"):
        r.feed(h + crc_le(h) + b"\0\0")


def test_reader_bad_header_length(core):
    h = bytes([0x12, 0, 0, 0, 0, 0])
    r = core.FrameReader(100)
    with pytest.raises(core.FrameError, match="header length"):
        r.feed(h + crc_le(h) + b"\0\0")


def test_reader_payload_too_large(core):
    r = core.FrameReader(10)
    assert r.feed(frame(0x13, 0, b"x" * 10)) == [(0, 0, (), b"x" * 10)]
    with pytest.raises(core.FrameError, match="too large"):
        r.feed(frame(0x13, 0, b"x" * 11)[:12])  # detected from the header alone


def test_reader_max_options(core):
    """HL is 4 bits: up to 12 option words can be read (10 can be written)."""
    opts = tuple(range(1, 13))
    f = frame(0x1F, 0x04, b"p", opts)
    r = core.FrameReader(100)
    assert r.feed(f) == [(4, 0, opts, b"p")]


def test_reader_roundtrip_with_encoder(core):
    r = core.FrameReader(1 << 16)
    out = []
    for n in range(11):
        out += r.feed(core.encode_frame(n, b"p" * n, tuple(range(n)), n % 16)) or []
    assert out == [(n, n % 16, tuple(range(n)), b"p" * n) for n in range(11)]


def test_reader_max_payload_negative(core):
    with pytest.raises(ValueError):
        core.FrameReader(-1)
