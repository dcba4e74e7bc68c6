"""The protobuf HTTP contexts (csrc/proto.c) against the JSON ones: request
encoding (context alone and the whole frame) and response reading
(build_response with a JSON or a protobuf context). `make microbench` /
`pytest bench/micro/test_proto_micro.py`."""

from __future__ import annotations

import pytest

import fastrr._core as C

HELLO = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
BROWSER = (
    b"GET /app/items?page=2&sort=name HTTP/1.1\r\n"
    b"Host: shop.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Referer: https://shop.example.com/app/items?page=1\r\n"
    b"Cookie: session=0123456789abcdef0123456789abcdef; theme=dark; cart=%7B%22n%22%3A3%7D\r\n"
    b"Connection: keep-alive\r\n"
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"Sec-Fetch-Dest: document\r\n"
    b"Sec-Fetch-Mode: navigate\r\n"
    b"Sec-Fetch-Site: same-origin\r\n"
    b"\r\n"
)
REQUESTS = [pytest.param(HELLO, id="hello"), pytest.param(BROWSER, id="browser")]
CODECS = [pytest.param((C.encode_http_context, C.encode_http_request), id="json"),
          pytest.param((C.encode_http_context_proto, C.encode_http_request_proto), id="proto")]


@pytest.mark.benchmark(group="request context")
@pytest.mark.parametrize("raw", REQUESTS)
@pytest.mark.parametrize("codec", CODECS)
def test_encode_context(benchmark, codec, raw):
    req = C.parse_request(raw, 65536)
    benchmark(codec[0], req, "127.0.0.1", "http")


@pytest.mark.benchmark(group="request frame (1 KiB body)")
@pytest.mark.parametrize("raw", REQUESTS)
@pytest.mark.parametrize("codec", CODECS)
def test_encode_frame(benchmark, codec, raw):
    req = C.parse_request(raw, 65536)
    benchmark(codec[1], req, "127.0.0.1", "http", b"x" * 1024, False)


def _pb(n: int, s: bytes) -> bytes:
    return bytes([n]) + bytes([len(s)]) + s


# The same two responses as JSON and as http.v1.Response (what PHP sends).
JSON_SMALL = b'{"status":200,"headers":{"Content-Type":["application/json"]}}'
PROTO_SMALL = b"\x08\xc8\x01" + _pb(0x12, _pb(0x0A, b"Content-Type") + _pb(0x12, _pb(0x0A, b"application/json")))
_LARAVEL = [(b"Content-Type", b"text/html; charset=UTF-8"), (b"Cache-Control", b"no-cache, private"),
            (b"Set-Cookie", b"XSRF-TOKEN=abcdefabcdefabcdefabcdef; expires=Fri, 01 Jan 2027 00:00:00 GMT; "
                            b"Max-Age=7200; path=/; samesite=lax"),
            (b"X-Powered-By", b"PHP")]
JSON_LARAVEL = (b'{"status":200,"headers":{' +
                b",".join(b'"%s":["%s"]' % (k, v) for k, v in _LARAVEL) + b"}}")
PROTO_LARAVEL = b"\x08\xc8\x01" + b"".join(_pb(0x12, _pb(0x0A, k) + _pb(0x12, _pb(0x0A, v))) for k, v in _LARAVEL)
RESPONSES = [pytest.param((JSON_SMALL, PROTO_SMALL), id="small"),
             pytest.param((JSON_LARAVEL, PROTO_LARAVEL), id="laravel")]
BODY = b'{"hello":"world"}'


@pytest.mark.benchmark(group="build_response")
@pytest.mark.parametrize("ctxs", RESPONSES)
@pytest.mark.parametrize("codec", [C.FLAG_JSON, C.FLAG_PROTO], ids=["json", "proto"])
def test_build_response(benchmark, codec, ctxs):
    ctx = ctxs[codec == C.FLAG_PROTO]
    payload = ctx + BODY
    assert C.build_response(payload, len(ctx), True, False, 1, False, codec)[0] == 200
    benchmark(C.build_response, payload, len(ctx), True, False, 1, False, codec)


@pytest.mark.benchmark(group="build_response")
@pytest.mark.parametrize("ctxs", RESPONSES)
def test_build_response_via_json_conversion(benchmark, ctxs):
    """The alternative not taken: convert to JSON, re-assemble the payload, build."""
    ctx = ctxs[1]

    def convert_then_build():
        js = C.proto_response_to_json(ctx)
        return C.build_response(js + BODY, len(js), True, False, 1, False)

    benchmark(convert_then_build)


@pytest.mark.benchmark(group="proto_response_to_json")
@pytest.mark.parametrize("ctxs", RESPONSES)
def test_proto_response_to_json(benchmark, ctxs):
    benchmark(C.proto_response_to_json, ctxs[1])
