"""The fuzz targets' seeds and saved findings, replayed through the Python API.

csrc/fuzz/ holds libFuzzer harnesses (`make fuzz`, needs clang). This test runs
their seed corpora (csrc/fuzz/seeds.py) and every input kept under
tests/fuzz/regressions/<target>/ (inputs that once crashed a harness or broke
one of its properties) with the same properties, against the extension as
built - so `make test` and `make test-asan` cover them without clang.
"""

from __future__ import annotations

import random
import re
import struct
import zlib
from pathlib import Path

import pytest

from csrc.fuzz import seeds as seed_gen
from fastrr import _core

HERE = Path(__file__).parent
TARGETS = ["http_parser", "chunked", "frame", "response"]


def inputs(target: str) -> list[bytes]:
    found = list(seed_gen.all_seeds()[target])
    reg = HERE / "regressions" / target
    if reg.is_dir():
        found += [p.read_bytes() for p in sorted(reg.iterdir()) if p.is_file()]
    return found


def pieces(data: bytes, seed: int) -> list[bytes]:
    rnd = random.Random(seed)
    out, i = [], 0
    while i < len(data):
        k = rnd.choice([1, 2, 3, 5, 7, 12, 13, 64, 4096])
        out.append(data[i : i + k])
        i += k
    return out


def test_http_parser():
    for data in inputs("http_parser"):
        try:
            req = _core.parse_request(data, 1 << 16)
        except _core.HttpError as exc:
            assert exc.status in (400, 431)
            continue
        if req is None:
            continue
        for i in range(req.head_len):
            assert _core.parse_request(data[:i], 1 << 16) is None
        with pytest.raises(_core.HttpError):
            _core.parse_request(data, req.head_len - 1)
        body = data[req.head_len :]
        ctx = _core.encode_http_context(req, "10.1.2.3", "http")
        assert isinstance(__import__("json").loads(ctx.decode("utf-8")), dict)
        frames = _core.FrameReader(1 << 30).feed(_core.encode_http_request(req, "10.1.2.3", "http", body, False))
        assert frames is not None and frames[0][2] == (len(ctx),) and frames[0][3] == ctx + body


def chunked_outcome(data: bytes, split: int | None, max_size: int = 1 << 20):
    d = _core.ChunkedDecoder(max_size)
    used, out = 0, b""
    try:
        for part in [data] if split is None else pieces(data, split):
            k = d.feed(part)
            used += k
            out += d.take()
            if d.done:
                break
    except _core.HttpError as exc:
        return ("error", exc.status, exc.reason)
    return ("ok", used, out, d.done)


def test_chunked():
    for data in inputs("chunked"):
        whole = chunked_outcome(data, None)
        for seed in range(3):
            split = chunked_outcome(data, seed)
            assert split[:3] == whole[:3] if whole[0] == "error" else split == whole


def fix_crcs(data: bytes) -> bytes:
    b = bytearray(data)
    off = 0
    while off + 12 <= len(b):
        if b[off : off + 12] == b"Could not op" or b[off] >> 4 != 1:
            break
        if not b[off + 11] & 0x80:
            b[off + 6 : off + 10] = struct.pack("<I", zlib.crc32(bytes(b[off : off + 6])))
        hl = b[off] & 15
        if hl < 3:
            break
        off += 4 * hl + struct.unpack_from("<I", b, off + 2)[0]
    return bytes(b)


def frame_outcome(data: bytes, split: int | None):
    rd = _core.FrameReader(1 << 16)
    frames: list = []
    try:
        for part in [data] if split is None else pieces(data, split):
            frames += rd.feed(part) or []
        frames += rd.feed(b"") or []
    except _core.FrameError as exc:
        return frames, str(exc)[:16], None
    return frames, "", rd.pending


def test_frame():
    for data in inputs("frame"):
        data = fix_crcs(data)
        whole = frame_outcome(data, None)
        for seed in range(3):
            assert frame_outcome(data, seed) == whole
        for flags, b10, opts, payload in whole[0]:
            if len(opts) <= 10:
                again = _core.FrameReader(1 << 16).feed(_core.encode_frame(flags, payload, opts, b10))
                assert again == [(flags, b10, opts, payload)]


HEADER_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+: (?:[^ \t\r\n\0](?:[^\r\n\0]*[^ \t\r\n\0])?)?")


def test_response():
    for data in inputs("response"):
        if len(data) < 3:
            continue
        opts, payload = data[0], data[3:]
        ctx_len = struct.unpack_from("<H", data, 1)[0] % (len(payload) + 2)
        keep, head, minor, stream = opts & 1, opts >> 1 & 1, opts >> 2 & 1, opts >> 3 & 1
        try:
            status, out = _core.build_response(payload, ctx_len, keep, head, minor, stream)
        except _core.FrameError:
            continue
        assert 100 <= status <= 599 and status != 101 and ctx_len <= len(payload)
        if status < 200 and not minor:
            assert out == b""
            continue
        head_bytes, _, rest = out.partition(b"\r\n\r\n")
        lines = head_bytes.split(b"\r\n")
        assert lines[0].startswith(b"HTTP/1.%d %03d " % (minor, status))
        for line in lines[1:]:
            assert HEADER_LINE.fullmatch(line), line
        body = payload[ctx_len:]
        if status >= 200 and status not in (204, 304) and not stream:
            assert b"Content-Length: %d" % len(body) in lines
            assert rest == (b"" if head else body)
