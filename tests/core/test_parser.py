"""parse_request(): fields, strictness, incremental use and limits."""

from __future__ import annotations

import pytest

import fastrr._core as c_core

GET = (b"GET /hello?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: test\r\n"
       b"Accept: */*\r\nX-Multi: a\r\nx-multi: b\r\nConnection: keep-alive\r\n\r\n")


def test_basic_fields(core):
    r = core.parse_request(GET, 8192)
    assert r.method == "GET"
    assert r.target == "/hello?x=1"
    assert r.http_minor == 1
    assert r.head_len == len(GET)
    assert r.content_length == -1
    assert r.chunked is False
    assert r.keep_alive is True
    assert r.expect_continue is False
    assert r.body_kind == core.BODY_OTHER
    assert r.host == "example.com"
    assert r.headers == [(b"Host", b"example.com"), (b"User-Agent", b"test"), (b"Accept", b"*/*"),
                         (b"X-Multi", b"a"), (b"x-multi", b"b"), (b"Connection", b"keep-alive")]


def test_get_header(core):
    r = core.parse_request(GET, 8192)
    assert r.get_header(b"x-multi") == b"a"
    assert r.get_header(b"X-MULTI") == b"a"
    assert r.get_header(bytearray(b"user-agent")) == b"test"
    assert r.get_header(b"missing") is None


def test_values_trimmed(core):
    r = core.parse_request(b"GET / HTTP/1.1\r\nHost:   h  \r\nX:\t a b \t\r\n\r\n", 8192)
    assert r.headers == [(b"Host", b"h"), (b"X", b"a b")]
    assert r.host == "h"


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_buffer_kinds(core, kind):
    r = core.parse_request(kind(GET + b"tail"), 8192)
    assert r.head_len == len(GET)


def test_request_owns_its_bytes(core):
    buf = bytearray(GET)
    r = core.parse_request(buf, 8192)
    del buf[: r.head_len]
    buf += b"X" * 1000
    assert r.method == "GET" and r.target == "/hello?x=1" and r.host == "example.com"
    assert r.get_header(b"accept") == b"*/*"


def test_pipelined(core):
    buf = GET + b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"
    r1 = core.parse_request(buf, 8192)
    r2 = core.parse_request(memoryview(buf)[r1.head_len :], 8192)
    assert r2.method == "POST" and r2.content_length == 2
    assert buf[r1.head_len + r2.head_len :] == b"hi"


def test_incremental_byte_by_byte(core):
    for i in range(len(GET)):
        assert core.parse_request(GET[:i], 8192) is None, i
    assert core.parse_request(GET, 8192).head_len == len(GET)


def test_error_found_before_head_is_complete(core):
    with pytest.raises(core.HttpError) as ei:
        core.parse_request(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y", 8192)
    assert (ei.value.status, ei.value.reason) == (400, "whitespace before colon")


def test_431_complete_head(core):
    req = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200 + b"\r\n\r\n"
    assert core.parse_request(req, len(req)).head_len == len(req)
    with pytest.raises(core.HttpError) as ei:
        core.parse_request(req, len(req) - 1)
    assert ei.value.status == 431


def test_431_incomplete_but_longer(core):
    req = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200
    assert core.parse_request(req, len(req)) is None
    with pytest.raises(core.HttpError) as ei:
        core.parse_request(req, len(req) - 1)
    assert (ei.value.status, ei.value.reason) == (431, "request header fields too large")


def test_431_body_bytes_do_not_count(core):
    req = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    assert core.parse_request(req + b"b" * 1000, len(req)).content_length == 1000


def test_too_many_headers(core):
    head = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: y\r\n" * 99
    assert len(core.parse_request(head + b"\r\n", 1 << 16).headers) == 100
    with pytest.raises(core.HttpError) as ei:
        core.parse_request(head + b"X: y\r\n\r\n", 1 << 16)
    assert (ei.value.status, ei.value.reason) == (431, "too many headers")


def test_max_head_edge_cases(core):
    assert core.parse_request(b"", 0) is None
    with pytest.raises(core.HttpError):
        core.parse_request(b"G", 0)
    with pytest.raises(ValueError):
        core.parse_request(b"", -1)


@pytest.mark.parametrize(("minor", "conn", "expected"), [
    (1, None, True), (1, b"close", False), (1, b"keep-alive", True), (1, b"Keep-Alive, Close", False),
    (1, b"upgrade", True), (0, None, False), (0, b"keep-alive", True), (0, b"KEEP-ALIVE", True),
    (0, b"close", False), (0, b"keep-alive, close", False), (0, b"foo,  keep-alive ,bar", True),
])
def test_keep_alive(core, minor, conn, expected):
    req = b"GET / HTTP/1.%d\r\nHost: h\r\n" % minor
    if conn is not None:
        req += b"Connection: " + conn + b"\r\n"
    assert core.parse_request(req + b"\r\n", 8192).keep_alive is expected


@pytest.mark.parametrize(("ctype", "kind"), [
    (b"application/x-www-form-urlencoded", 1), (b"Application/X-WWW-Form-Urlencoded; charset=utf-8", 1),
    (b"multipart/form-data; boundary=abc", 2), (b"text/plain; x=multipart/form-data", 2),
    (b"application/json", 0), (b"", 0),
])
def test_body_kind(core, ctype, kind):
    req = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Type: " + ctype + b"\r\nContent-Type: multipart/form-data\r\n\r\n"
    assert core.parse_request(req, 8192).body_kind == kind


def test_expect_continue(core):
    req = b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"
    assert core.parse_request(req, 8192).expect_continue is True
    assert core.parse_request(req.replace(b"100-continue", b"something"), 8192).expect_continue is False


def test_chunked_flag(core):
    r = core.parse_request(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n", 8192)
    assert r.chunked is True and r.content_length == -1


def test_leading_empty_lines(core):
    r = core.parse_request(b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 8192)
    assert r.head_len == 4 + 16 + 9 + 2
    assert r.method == "GET"


def test_target_forms(core):
    assert core.parse_request(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 99).target == "*"
    assert core.parse_request(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 99).target == "h:443"
    assert core.parse_request(b"GET https://h/x HTTP/1.1\r\nHost: h\r\n\r\n", 99).target == "https://h/x"
    assert core.parse_request(b"GET /\xe9 HTTP/1.1\r\nHost: h\r\n\r\n", 99).target == "/\xe9"


def test_http_error_shape(core):
    e = core.HttpError(400, "bad")
    assert (e.status, e.reason, str(e), e.args) == (400, "bad", "bad", (400, "bad"))
    assert isinstance(e, Exception)


def test_http_error_pickles():
    import pickle

    e = pickle.loads(pickle.dumps(c_core.HttpError(413, "too big")))
    assert (e.status, e.reason) == (413, "too big")


def test_request_not_constructible():
    with pytest.raises(TypeError):
        c_core.Request()


def test_request_is_immutable():
    r = c_core.parse_request(GET, 8192)
    with pytest.raises(AttributeError):
        r.method = "POST"


def test_repr():
    assert repr(c_core.parse_request(GET, 8192)) == "<Request GET '/hello?x=1' HTTP/1.1>"


def test_method_interned():
    a = c_core.parse_request(GET, 8192).method
    b = c_core.parse_request(GET, 8192).method
    assert a is b


def test_keywords():
    assert c_core.parse_request(buf=GET, max_head=8192).method == "GET"
    with pytest.raises(TypeError):
        c_core.parse_request(GET)
    with pytest.raises(TypeError):
        c_core.parse_request(GET, 1, 2)
    with pytest.raises(TypeError):
        c_core.parse_request(GET, max_head=1, bogus=2)
    with pytest.raises(TypeError):
        c_core.parse_request("GET / HTTP/1.1", 8192)
