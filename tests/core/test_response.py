"""build_response(), encode_chunk(), http_date()."""

from __future__ import annotations

import email.utils
import json
import re
import time

import pytest

DATE = re.compile(rb"Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n")


def build(core, ctx: dict | bytes | None, body: bytes = b"", keep_alive: bool = True, head: bool = False,
          minor: int = 1, stream: bool = False) -> tuple[int, bytes]:
    c = ctx if isinstance(ctx, bytes) else b"" if ctx is None else json.dumps(ctx).encode()
    return core.build_response(c + body, len(c), keep_alive, head, minor, stream)


def split(data: bytes) -> tuple[bytes, list[bytes], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    return status, lines, body


def no_date(data: bytes) -> bytes:
    assert len(DATE.findall(data)) == 1
    return DATE.sub(b"", data)


def test_basic(core):
    st, data = build(core, {"status": 200, "headers": {"content-type": ["text/plain"]}}, b"hello")
    assert st == 200
    assert no_date(data) == (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nServer: fastrr\r\n"
                             b"Content-Length: 5\r\n\r\nhello")


def test_header_order_and_multi_values(core):
    ctx = {"headers": {"set-cookie": ["a=1", "b=2"], "X-One": "single", "x-empty": []}, "status": 201}
    st, data = build(core, ctx, b"{}")
    status, lines, body = split(no_date(data))
    assert st == 201 and status == b"HTTP/1.1 201 Created"
    assert lines == [b"Set-Cookie: a=1", b"Set-Cookie: b=2", b"X-One: single", b"Server: fastrr", b"Content-Length: 2"]
    assert body == b"{}"


@pytest.mark.parametrize("headers", [{}, [], None])
def test_empty_headers_forms(core, headers):
    st, data = build(core, {"status": 404, "headers": headers}, b"nope")
    assert st == 404
    assert no_date(data) == b"HTTP/1.1 404 Not Found\r\nServer: fastrr\r\nContent-Length: 4\r\n\r\nnope"


def test_missing_status_and_empty_context(core):
    assert build(core, {"headers": {}})[0] == 200
    st, data = build(core, None, b"raw")
    assert st == 200 and data.endswith(b"Content-Length: 3\r\n\r\nraw")
    assert build(core, b"{}")[0] == 200


def test_unknown_keys_and_any_order(core):
    ctx = (b' { "x": {"a": [1, 2.5e3, null, true, false, "s\\u00e9"]}, "headers" : {"A":"b"} ,'
           b' "status" : 418 , "y":-0 } ')
    st, data = build(core, ctx)
    assert st == 418 and b"HTTP/1.1 418 I'm a teapot\r\nA: b\r\n" in data


def test_unknown_status_reason(core):
    st, data = build(core, {"status": 299})
    assert st == 299 and data.startswith(b"HTTP/1.1 299 Unknown\r\n")


def test_server_decides_framing(core):
    ctx = {"headers": {"Content-Length": ["999"], "transfer-encoding": "chunked", "CONNECTION": ["keep-alive"],
                       "X-Ok": "1"}}
    _, data = build(core, ctx, b"abc", keep_alive=False)
    _, lines, _ = split(no_date(data))
    assert lines == [b"X-Ok: 1", b"Server: fastrr", b"Content-Length: 3", b"Connection: close"]


def test_worker_date_and_server_kept(core):
    ctx = {"headers": {"date": "Thu, 01 Jan 1970 00:00:00 GMT", "server": ["php"]}}
    _, data = build(core, ctx)
    assert data == (b"HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nServer: php\r\n"
                    b"Content-Length: 0\r\n\r\n")


def test_empty_date_array_does_not_count(core):
    _, data = build(core, {"headers": {"Date": []}})
    assert len(DATE.findall(data)) == 1


def test_header_injection(core):
    ctx = {"headers": {"X-Evil": ["a\r\nSet-Cookie: pwned=1", "b\nc", "d\re", "nul\u0000x", "  trim \t"],
                       "Bad Name": "x", "Bad\r\nName": "y", "": "z", "ok:no": "w", "X-Ok": "fine"}}
    _, data = build(core, ctx)
    _, lines, _ = split(no_date(data))
    assert lines[:6] == [b"X-Evil: a  Set-Cookie: pwned=1", b"X-Evil: b c", b"X-Evil: d e", b"X-Evil: nul x",
                         b"X-Evil: trim", b"X-Ok: fine"]
    assert not any(line.startswith(b"Set-Cookie") for line in lines)
    assert b"Bad" not in data and b"ok:no" not in data and b"z\r\n" not in data


def test_non_ascii_header_values_pass_through(core):
    _, data = build(core, {"headers": {"X-U": "caf\u00e9 \U0001F600"}})
    assert "X-U: caf\u00e9 \U0001F600\r\n".encode() in data


def test_unicode_escapes(core):
    _, data = build(core, b'{"headers":{"X":["\\u0041\\ud83d\\ude00\\ud800x\\udc00\\/"]}}')
    assert "X: A\U0001F600\ufffdx\ufffd/\r\n".encode() in data


def test_head_request(core):
    _, data = build(core, {"status": 200}, b"hello", head=True)
    assert data.endswith(b"Content-Length: 5\r\n\r\n")


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(core, status):
    _, data = build(core, {"status": status}, b"ignored")
    _, lines, body = split(no_date(data))
    assert body == b""
    assert not any(line.startswith((b"Content-Length", b"Transfer-Encoding")) for line in lines)
    _, data = build(core, {"status": status}, b"ignored", stream=True)
    assert b"Transfer-Encoding" not in data and not data.endswith(b"ignored")


def test_informational(core):
    st, data = build(core, {"status": 103, "headers": {"link": ["</a.css>; rel=preload"]}}, b"dropped")
    assert st == 103
    assert data == b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
    st, data = build(core, {"status": 100})
    assert data == b"HTTP/1.1 100 Continue\r\n\r\n"


def test_informational_not_sent_to_http10(core):
    assert build(core, {"status": 103, "headers": {"Link": "x"}}, minor=0) == (103, b"")


def test_101_refused(core):
    with pytest.raises(core.FrameError):
        build(core, {"status": 101})


def test_stream_http11(core):
    _, data = build(core, {"status": 200, "headers": {"X": "y"}}, b"first", stream=True)
    assert no_date(data) == (b"HTTP/1.1 200 OK\r\nX: y\r\nServer: fastrr\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"5\r\nfirst\r\n")
    _, data = build(core, {"status": 200}, b"", stream=True)
    assert data.endswith(b"Transfer-Encoding: chunked\r\n\r\n")
    _, data = build(core, {"status": 200}, b"x" * 300, stream=True)
    assert data.endswith(b"\r\n\r\n12c\r\n" + b"x" * 300 + b"\r\n")


def test_stream_http10(core):
    _, data = build(core, {"status": 200}, b"first", keep_alive=True, minor=0, stream=True)
    assert no_date(data) == b"HTTP/1.0 200 OK\r\nServer: fastrr\r\nConnection: close\r\n\r\nfirst"


def test_stream_head(core):
    _, data = build(core, {"status": 200}, b"first", head=True, stream=True)
    assert data.endswith(b"Transfer-Encoding: chunked\r\n\r\n")


@pytest.mark.parametrize(("minor", "keep", "line"), [
    (1, True, None), (1, False, b"Connection: close"), (0, True, b"Connection: keep-alive"),
    (0, False, b"Connection: close"),
])
def test_connection_header(core, minor, keep, line):
    _, data = build(core, {"status": 200}, b"x", keep_alive=keep, minor=minor)
    _, lines, _ = split(data)
    conn = [x for x in lines if x.startswith(b"Connection")]
    assert conn == ([line] if line else [])
    assert data.startswith(b"HTTP/1.%d 200 OK" % minor)


@pytest.mark.parametrize("ctx", [
    b"{", b"[]", b"null", b'{"status":200,}', b'{"status":"200"}', b'{"status":200.0}', b'{"status":2e2}',
    b'{"status":200} x', b'{"headers":{"A":1}}', b'{"headers":{"A":[1]}}', b'{"headers":{"A":[null]}}',
    b'{"headers":"x"}', b'{"headers":[1]}', b'{"headers":{"A":"b\x01"}}', b'{"a":"\\x"}', b'{"a":"\\u12"}',
    b'{"a":01}', b'{"a":-}', b'{"a":1.}', b'{"a":tru}', b"{'a':1}", b'{"a" 1}', b'{"a":[1 2]}',
    b'{"a":' + b"[" * 100 + b"]" * 100 + b"}", b'{"status":200', b'{"a":"unterminated}', b"",
])
def test_bad_json(core, ctx):
    payload = ctx + b"body"
    with pytest.raises(core.FrameError):
        core.build_response(payload, len(ctx) or 1, True, False, 1)


@pytest.mark.parametrize("status", [0, 99, 600, 1000, -200, 99999999999999999999])
def test_bad_status(core, status):
    with pytest.raises(core.FrameError, match="unknown status code from worker"):
        build(core, b'{"status":%d}' % status)


def test_bad_ctx_len(core):
    with pytest.raises(core.FrameError):
        core.build_response(b"{}", 3, True, False, 1)
    with pytest.raises(core.FrameError):
        core.build_response(b"{}", -1, True, False, 1)
    with pytest.raises(ValueError):
        core.build_response(b"{}", 2, True, False, 2)


def test_buffer_kinds(core):
    ctx = b'{"status":200}'
    a = core.build_response(bytearray(ctx + b"b"), len(ctx), True, False, 1)
    b = core.build_response(memoryview(ctx + b"b"), len(ctx), True, False, 1)
    assert a[0] == b[0] == 200 and a[1].endswith(b"\r\n\r\nb") and b[1].endswith(b"\r\n\r\nb")


def test_keywords():
    import fastrr._core as c_core

    st, _ = c_core.build_response(payload=b"{}", ctx_len=2, keep_alive=True, head_request=False, http_minor=1,
                                  stream=False)
    assert st == 200


def test_encode_chunk(core):
    assert core.encode_chunk(b"") == b""
    assert core.encode_chunk(b"abc") == b"3\r\nabc\r\n"
    assert core.encode_chunk(bytearray(b"x" * 4096)) == b"1000\r\n" + b"x" * 4096 + b"\r\n"
    assert core.LAST_CHUNK == b"0\r\n\r\n"


def test_http_date(core):
    d = core.http_date()
    assert re.fullmatch(rb"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", d)
    parsed = email.utils.parsedate_to_datetime(d.decode()).timestamp()
    assert abs(parsed - time.time()) < 3
