"""Reference-leak smoke test for the C extension: every entry point, on its
success and error paths, run many times; traced memory must not grow.
(tracemalloc sees all PyMem/PyObject allocations, so one leaked object per
call shows up as tens of kilobytes here.) The ASan build is the deeper check:
see csrc/README.md."""

from __future__ import annotations

import gc
import tracemalloc

import fastrr._core as C

GET = b"GET /a?b=1 HTTP/1.1\r\nHost: h\r\nCookie: a=1; b=%41; a=2\r\nX-Y: \xff\r\nx-y: 2\r\n\r\n"
CTX = b'{"status":201,"headers":{"X":["a","b\\r\\n"],"Date":"d","skip":[],"bad name":"x"},"other":[1,{"a":null}]}'


def exercise() -> None:
    r = C.parse_request(GET, 8192)
    _ = (r.method, r.target, r.host, r.headers, r.get_header(b"x-y"), r.get_header(b"nope"), repr(r))
    C.parse_request(GET[:10], 8192)
    for bad in (b"GET / HTTP/1.1\r\nHost: h\r\nA : b\r\n\r\n", GET, b"\x00"):
        try:
            C.parse_request(bad, 20)
        except C.HttpError:
            pass
    C.encode_http_context(r, "1.2.3.4", "http", True, b"[]")
    C.encode_http_request(r, "1.2.3.4", "https", memoryview(b"body"), False)
    C.build_response(CTX + b"body", len(CTX), True, False, 1)
    C.build_response(CTX + b"body", len(CTX), False, True, 0, True)
    C.build_response(b'{"status":103}', 14, True, False, 1)
    for bad in (b'{"status":1}', b'{"headers":[1]}', b"{"):
        try:
            C.build_response(bad, len(bad), True, False, 1)
        except C.FrameError:
            pass
    fr = C.FrameReader(1000)
    frame = C.encode_frame(8, b"x" * 100, (1, 2))
    fr.feed(frame + frame[:50])
    fr.feed(frame[50:])
    bad = C.FrameReader(1000)
    for data in (frame + b"garbage", b"more"):
        try:
            bad.feed(data)
        except C.FrameError:
            pass
    try:
        C.FrameReader(10).feed(b"Could not open input file: x")
    except C.FrameError:
        pass
    d = C.ChunkedDecoder(1000)
    d.feed(b"5\r\nhel")
    d.feed(b"lo\r\n0\r\n\r\n")
    d.take()
    d = C.ChunkedDecoder(3)
    d.feed(b"2\r\nab\r\n")  # left with undelivered output
    try:
        d.feed(b"5\r\n")
    except C.HttpError:
        pass
    C.encode_chunk(b"abc")
    C.http_date()
    C.crc32(b"abc")
    try:
        C.encode_frame(1, b"", tuple(range(11)))
    except ValueError:
        pass
    try:
        raise C.HttpError(400, "y")
    except C.HttpError:
        pass


def test_no_leaks():
    for _ in range(300):
        exercise()
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(200):
            exercise()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(3000):
            exercise()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 64 * 1024, f"traced memory grew by {after - before} bytes"
