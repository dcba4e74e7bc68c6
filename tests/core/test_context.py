"""The RoadRunner JSON request context and the request frame."""

from __future__ import annotations

import json
import struct

import pytest


def req(core, raw: bytes):
    r = core.parse_request(raw, 1 << 16)
    assert r is not None
    return r


def ctx(core, raw: bytes, **kw) -> dict:
    data = core.encode_http_context(req(core, raw), kw.pop("remote", "10.0.0.1"), kw.pop("scheme", "http"), **kw)
    return json.loads(data)


BASIC = (b"GET /path/x?a=1&b=%20two#frag HTTP/1.1\r\nHost: example.com:8080\r\nuser-agent: curl\r\n"
         b"ACCEPT: */*\r\nx-forwarded-for: 1.1.1.1\r\nX-FORWARDED-FOR: 2.2.2.2\r\n\r\n")


def test_exact_bytes(core):
    r = req(core, b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-Y: z\r\n\r\n")
    assert core.encode_http_context(r, "127.0.0.1", "http") == (
        b'{"remoteAddr":"127.0.0.1","protocol":"HTTP/1.1","method":"GET","uri":"http://h/a?x=1",'
        b'"headers":{"X-Y":["z"]},"cookies":{},"rawQuery":"x=1","parsed":false,"uploads":null,"attributes":{}}')


def test_key_order(core):
    d = ctx(core, BASIC)
    assert list(d) == ["remoteAddr", "protocol", "method", "uri", "headers", "cookies", "rawQuery", "parsed",
                       "uploads", "attributes"]


def test_fields(core):
    d = ctx(core, BASIC, remote="192.0.2.7", scheme="https")
    assert d["remoteAddr"] == "192.0.2.7"
    assert d["protocol"] == "HTTP/1.1"
    assert d["method"] == "GET"
    assert d["uri"] == "https://example.com:8080/path/x?a=1&b=%20two#frag"
    assert d["rawQuery"] == "a=1&b=%20two"
    assert d["parsed"] is False and d["uploads"] is None and d["attributes"] == {}


def test_headers_canonical_merged_host_excluded(core):
    d = ctx(core, BASIC)
    assert d["headers"] == {"User-Agent": ["curl"], "Accept": ["*/*"], "X-Forwarded-For": ["1.1.1.1", "2.2.2.2"]}
    assert list(d["headers"]) == ["User-Agent", "Accept", "X-Forwarded-For"]


@pytest.mark.parametrize(("name", "canon"), [
    (b"content-type", "Content-Type"), (b"X-API-KEY", "X-Api-Key"), (b"sec-ch-ua", "Sec-Ch-Ua"),
    (b"WWW-Authenticate", "Www-Authenticate"), (b"x--y", "X--Y"), (b"-x", "-X"), (b"x_y", "X_y"),
    (b"a1b", "A1b"), (b"x.y", "X.y"), (b"dnt", "Dnt"), (b"TE", "Te"),
])
def test_canonical_names(core, name, canon):
    d = ctx(core, b"GET / HTTP/1.1\r\nHost: h\r\n" + name + b": v\r\n\r\n")
    assert d["headers"] == {canon: ["v"]}


def test_empty_maps(core):
    d = ctx(core, b"GET / HTTP/1.0\r\n\r\n")
    assert d["headers"] == {} and d["cookies"] == {}
    assert d["uri"] == "http:///"
    assert d["protocol"] == "HTTP/1.0"
    assert d["rawQuery"] == ""


def test_absolute_form_kept(core):
    d = ctx(core, b"GET http://other.example/x?q=1 HTTP/1.1\r\nHost: h\r\n\r\n", scheme="https")
    assert d["uri"] == "http://other.example/x?q=1"
    assert d["rawQuery"] == "q=1"


def test_cookies(core):
    d = ctx(core, b"GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; b=two; c=\"quoted\"; d=%41%2b+; e=\r\n"
                  b"cookie: f=x=y;  g = spaced ;bad name=1; h=%zz; ;i\r\n\r\n")
    assert d["cookies"] == {"a": "1", "b": "two", "c": "quoted", "d": "A++", "e": "", "f": "x=y", "g": " spaced",
                            "i": ""}
    assert d["headers"]["Cookie"] == ["a=1; b=two; c=\"quoted\"; d=%41%2b+; e=", "f=x=y;  g = spaced ;bad name=1; "
                                                                                "h=%zz; ;i"]


def test_cookie_last_wins(core):
    d = ctx(core, b"GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; b=2; a=3\r\n\r\n")
    assert d["cookies"] == {"b": "2", "a": "3"}


def test_cookie_dropped_bytes(core):
    # Go's validCookieValueByte refuses these; the cookie is dropped, the header kept
    d = ctx(core, b"GET / HTTP/1.1\r\nHost: h\r\nCookie: a=\xc3\xa9; b=x\\y; c=\"a\"b\"; d=ok\r\n\r\n")
    assert d["cookies"] == {"d": "ok"}


def test_cookie_unescaped_to_invalid_utf8(core):
    d = ctx(core, b"GET / HTTP/1.1\r\nHost: h\r\nCookie: a=%ff%41; b=%e2%82%ac\r\n\r\n")
    assert d["cookies"] == {"a": "\ufffdA", "b": "\u20ac"}


def test_many_cookies(core):
    jar = b"; ".join(b"c%d=%d" % (i % 500, i) for i in range(3000))
    d = ctx(core, b"GET / HTTP/1.1\r\nHost: h\r\nCookie: " + jar + b"\r\n\r\n")
    assert len(d["cookies"]) == 500
    assert d["cookies"]["c0"] == "2500" and d["cookies"]["c499"] == "2999"


def test_invalid_utf8_replaced(core):
    raw = (b"GET /caf\xe9?q=\xff HTTP/1.1\r\nHost: h\r\nX-A: \xc3\xa9t\xc3\xa9\r\nX-B: a\xffb\xc3\r\n"
           b"X-C: \xe2\x82\r\n\r\n")
    data = core.encode_http_context(req(core, raw), "r", "http")
    data.decode("utf-8")  # strictly valid UTF-8
    d = json.loads(data)
    assert d["uri"] == "http://h/caf\ufffd?q=\ufffd"
    assert d["rawQuery"] == "q=\ufffd"
    assert d["headers"]["X-A"] == ["\u00e9t\u00e9"]
    assert d["headers"]["X-B"] == ["a\ufffdb\ufffd"]
    assert d["headers"]["X-C"] == ["\ufffd\ufffd"]  # Go: one U+FFFD per bad byte


@pytest.mark.parametrize(("raw", "text"), [
    (b"\xed\xa0\x80", "\ufffd\ufffd\ufffd"),  # surrogate
    (b"\xc0\xaf", "\ufffd\ufffd"),  # overlong
    (b"\xf4\x90\x80\x80", "\ufffd" * 4),  # > U+10FFFF
    (b"\xf0\x9f\x98\x80", "\U0001F600"),
    (b"\xef\xbf\xbd", "\ufffd"),
])
def test_utf8_edges(core, raw, text):
    d = ctx(core, b"GET / HTTP/1.1\r\nHost: h\r\nX: " + raw + b"\r\n\r\n")
    assert d["headers"]["X"] == [text]


def test_json_escaping(core):
    d = core.encode_http_context(req(core, b'GET /a"b\\c HTTP/1.1\r\nHost: h\r\nX: "q"\t\\ /\r\n\r\n'),
                                 'r"\n\x01', "http")
    assert b'"remoteAddr":"r\\"\\u000a\\u0001"' in d
    assert b'"X":["\\"q\\"\\u0009\\\\ /"]' in d
    assert json.loads(d)["uri"] == 'http://h/a"b\\c'


def test_parsed_and_uploads(core):
    r = req(core, b"POST /f HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data\r\n\r\n")
    up = b'{"file":{"name":"a.txt","mime":"text/plain","size":3,"error":0,"tmpName":"/tmp/upload1"}}'
    d = json.loads(core.encode_http_context(r, "r", "http", True, up))
    assert d["parsed"] is True
    assert d["uploads"]["file"]["name"] == "a.txt"
    d = json.loads(core.encode_http_context(r, "r", "http", parsed=True, uploads=None))
    assert d["uploads"] is None


def test_unicode_remote_and_scheme(core):
    d = ctx(core, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", remote="\u00e9", scheme="https")
    assert d["remoteAddr"] == "\u00e9"


def test_request_frame(core):
    r = req(core, b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n")
    f = core.encode_http_request(r, "1.2.3.4", "http", b"body", False)
    c = core.encode_http_context(r, "1.2.3.4", "http")
    assert f[0] == 0x14 and f[1] == core.FLAG_JSON
    assert struct.unpack("<I", f[2:6])[0] == len(c) + 4
    assert struct.unpack("<I", f[12:16])[0] == len(c)
    assert f[16:] == c + b"body"
    assert core.FrameReader(1 << 20).feed(f) == [(core.FLAG_JSON, 0, (len(c),), c + b"body")]


def test_request_frame_body_kinds(core):
    r = req(core, b"POST /x HTTP/1.1\r\nHost: h\r\n\r\n")
    a = core.encode_http_request(r, "a", "http", bytearray(b"xyz"), True, b"[]")
    b = core.encode_http_request(r, "a", "http", memoryview(b"xyz"), parsed=True, uploads=b"[]")
    assert a == b and a.endswith(b"xyz")


def test_c_rejects_non_request():
    import fastrr._core as c_core

    with pytest.raises(TypeError):
        c_core.encode_http_context(object(), "a", "http")
    r = c_core.parse_request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 99)
    with pytest.raises(TypeError):
        c_core.encode_http_context(r, b"a", "http")
    with pytest.raises(ValueError):
        c_core.encode_http_context(r, "a", "http", False, b"")
