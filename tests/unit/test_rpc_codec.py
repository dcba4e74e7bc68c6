"""RPC codecs, the call frame layout (protocol doc Appendix A) and the
`fastrr workers` formatting helpers."""

from __future__ import annotations

import base64
import struct
import zlib

import msgpack
import pytest
from rich.console import Console

from fastrr.rpc import codec
from fastrr.rpc.codec import FLAG_JSON, FLAG_MSGPACK, FLAG_PROTO, FLAG_RAW, RpcError
from fastrr.rpc.render import relative_age, si_bytes, workers_table


def test_call_frame_matches_the_documented_bytes():
    # RPC call informer.Workers("http"), seq 1, JSON: 15 08 16 00 00 00 <crc> 00 00 01.. 10.. payload
    data = codec.encode_call(1, "informer.Workers", b'"http"', FLAG_JSON)
    head = bytes([0x15, 0x08, 0x16, 0, 0, 0])
    assert data[:6] == head
    assert data[6:10] == struct.pack("<I", zlib.crc32(head))
    assert data[10:12] == b"\0\0"
    assert data[12:20] == struct.pack("<II", 1, 16)
    assert data[20:] == b'informer.Workers"http"'


@pytest.mark.parametrize("flags, expected", [
    (FLAG_JSON, FLAG_JSON), (FLAG_MSGPACK, FLAG_MSGPACK), (FLAG_RAW, FLAG_RAW), (FLAG_PROTO, FLAG_PROTO),
    (FLAG_JSON | FLAG_RAW, FLAG_JSON), (FLAG_PROTO | FLAG_JSON, FLAG_PROTO), (FLAG_RAW | FLAG_MSGPACK, FLAG_RAW),
])
def test_codec_precedence_is_roadrunners(flags, expected):
    assert codec.pick_codec(flags) == expected


@pytest.mark.parametrize("flags", [0, 0x20, 0x01, 0x40])
def test_gob_or_no_codec_is_refused(flags):
    with pytest.raises(RpcError, match="unsupported codec"):
        codec.pick_codec(flags)


def test_json_and_msgpack_round_trips():
    value = {"workers": [{"pid": 1, "CPUPercent": 0.5, "statusStr": "ready", "created": 1795769524544892672}]}
    assert codec.decode(FLAG_JSON, codec.encode(FLAG_JSON, value, "m")) == value
    assert codec.decode(FLAG_MSGPACK, codec.encode(FLAG_MSGPACK, value, "m")) == value
    assert codec.decode(FLAG_JSON, b"") is None and codec.decode(FLAG_MSGPACK, b"") is None


def test_bytes_follow_gos_rules():
    assert codec.encode(FLAG_RAW, b"\x00yaml", "rpc.Config") == b"\x00yaml"
    assert codec.encode(FLAG_JSON, b"\x00yaml", "rpc.Config") == b'"' + base64.b64encode(b"\x00yaml") + b'"'
    assert msgpack.unpackb(codec.encode(FLAG_MSGPACK, b"\x00yaml", "rpc.Config")) == b"\x00yaml"
    assert codec.encode(FLAG_RAW, "text", "m") == b"text"
    assert codec.decode(FLAG_RAW, b"http") == b"http"


def test_structured_results_do_not_fit_raw():
    with pytest.raises(RpcError, match="informer.Workers returns structured data"):
        codec.encode(FLAG_RAW, {"workers": []}, "informer.Workers")


@pytest.mark.parametrize("fmt, body, needle", [
    (FLAG_JSON, b"{oops", "invalid JSON"), (FLAG_MSGPACK, b"\xc1", "invalid msgpack"),
    (FLAG_MSGPACK, b"\x92\x01", "invalid msgpack"),
])
def test_undecodable_bodies(fmt, body, needle):
    with pytest.raises(RpcError, match=needle):
        codec.decode(fmt, body)


@pytest.mark.parametrize("size, text", [
    (0, "0 B"), (9, "9 B"), (82, "82 B"), (999, "999 B"), (1000, "1.0 kB"), (1500, "1.5 kB"),
    (26_000_000, "26 MB"), (26_543_210, "26 MB"), (26_960_000, "27 MB"), (9_940_000, "9.9 MB"), (9_960_000, "10 MB"),
    (3_200_000_000, "3.2 GB"),
])
def test_si_bytes_is_go_humanizes(size, text):
    assert si_bytes(size) == text


@pytest.mark.parametrize("seconds, text", [
    (0, "now"), (0.9, "now"), (1.5, "1 second ago"), (42, "42 seconds ago"), (61, "1 minute ago"),
    (150, "2 minutes ago"), (3599, "59 minutes ago"), (3600, "1 hour ago"), (3 * 3600, "3 hours ago"),
    (86400, "1 day ago"), (3 * 86400, "3 days ago"), (8 * 86400, "1 week ago"), (20 * 86400, "2 weeks ago"),
    (45 * 86400, "1 month ago"), (100 * 86400, "3 months ago"), (400 * 86400, "1 year ago"),
    (600 * 86400, "2 years ago"), (5 * 365 * 86400, "5 years ago"), (-3, "now"),
])
def test_relative_age_is_go_humanizes(seconds, text):
    assert relative_age(seconds) == text


def test_workers_table_rows_sorted_and_formatted():
    now = 1_800_000_000.0
    rows = [
        {"pid": 30, "statusStr": "working", "numExecs": 1234567, "memoryUsage": 26_000_000, "CPUPercent": 1.23456,
         "created": int((now - 150) * 1e9)},
        {"pid": 4, "statusStr": "ready", "numExecs": 12, "memoryUsage": 1500, "CPUPercent": 0,
         "created": int((now - 5) * 1e9)},
    ]
    console = Console(width=100, record=True, color_system=None)
    for part in workers_table("http", rows, now):
        console.print(part)
    text = console.export_text()
    lines = text.splitlines()
    assert lines[0] == "Workers of [http]:"
    body = [[c.strip() for c in line.strip("│").split("│")] for line in lines if line.startswith("│")]
    assert body == [
        ["PID", "STATUS", "EXECS", "MEMORY", "CPU%", "CREATED"],
        ["4", "ready", "12", "1.5 kB", "0.00", "5 seconds ago"],
        ["30", "working", "1,234,567", "26 MB", "1.23", "2 minutes ago"],
    ]
