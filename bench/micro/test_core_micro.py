"""fastrr._core hot-path functions vs the pure-Python reference (and httptools)."""

from __future__ import annotations

import httptools
import pytest

import fastrr._core as c_core
import fastrr._core_reference as ref_core

IMPLS = [pytest.param(c_core, id="c"), pytest.param(ref_core, id="ref")]

# What wrk sends, and a browser-like request with cookies.
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


def _rid(raw: bytes) -> str:
    return "hello" if raw == HELLO else "browser"


# ------------------------------------------------------------ parse_request

@pytest.mark.parametrize("raw", REQUESTS)
@pytest.mark.parametrize("core", IMPLS)
def test_parse_request(benchmark, core, raw):
    benchmark.group = f"parse_request {_rid(raw)}"
    req = benchmark(core.parse_request, raw, 65536)
    assert req.head_len == len(raw)


class _Collect:
    """The minimum a server does with httptools: keep the URL and the headers."""

    __slots__ = ("url", "headers", "done")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.done = False

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.done = True


@pytest.mark.parametrize("raw", REQUESTS)
def test_parse_request_httptools(benchmark, raw):
    benchmark.group = f"parse_request {_rid(raw)}"
    def run():
        sink = _Collect()
        httptools.HttpRequestParser(sink).feed_data(raw)
        return sink

    assert benchmark(run).done


# ------------------------------------------------------- encode_http_request

@pytest.mark.parametrize("raw", REQUESTS)
@pytest.mark.parametrize("core", IMPLS)
def test_encode_http_request(benchmark, core, raw):
    benchmark.group = f"encode_http_request {_rid(raw)}"
    req = core.parse_request(raw, 65536)
    frame = benchmark(core.encode_http_request, req, "127.0.0.1:50312", "http", b"", False)
    assert frame[:1] == b"\x14"


# ------------------------------------------------- encode_frame / FrameReader

CTX = b'{"status":200,"headers":{"Content-Type":["application/json"]}}'
BODY = b'{"message":"Hello, World!"}'


@pytest.mark.parametrize("core", IMPLS)
def test_encode_frame(benchmark, core):
    benchmark.group = "encode_frame hello"
    out = benchmark(core.encode_frame, 0x08, CTX + BODY, (len(CTX),))
    assert len(out) == 16 + len(CTX) + len(BODY)


@pytest.mark.parametrize("size", [pytest.param(len(CTX + BODY), id="hello"), pytest.param(1 << 20, id="1MiB")])
@pytest.mark.parametrize("core", IMPLS)
def test_frame_reader(benchmark, core, size):
    benchmark.group = f"FrameReader {'hello' if size < 65536 else '1MiB'}"
    payload = (CTX + BODY) if size == len(CTX + BODY) else CTX + b"x" * (size - len(CTX))
    frame = core.encode_frame(0, payload, (len(CTX),))
    rd = core.FrameReader(1 << 30)
    # a small frame arrives whole; a large one in 256 KiB reads, as the relay does
    if size < 65536:
        frames = benchmark(rd.feed, frame)
        assert frames[0][3] == payload
    else:
        parts = [frame[i : i + (1 << 18)] for i in range(0, len(frame), 1 << 18)]

        def run():
            out = None
            for part in parts:
                out = rd.feed(part) or out
            return out

        assert benchmark(run)[0][3] == payload


# ------------------------------------------------------------ build_response

@pytest.mark.parametrize("core", IMPLS)
def test_build_response(benchmark, core):
    benchmark.group = "build_response hello"
    status, data = benchmark(core.build_response, CTX + BODY, len(CTX), True, False, 1)
    assert status == 200 and data.endswith(BODY)


# ------------------------------------------------------------ ChunkedDecoder

def _chunked(body: bytes, chunk: int) -> bytes:
    out = [b"%x\r\n%s\r\n" % (len(body[i : i + chunk]), body[i : i + chunk]) for i in range(0, len(body), chunk)]
    return b"".join(out) + b"0\r\n\r\n"


@pytest.mark.parametrize("body_size", [pytest.param(64, id="64B"), pytest.param(1 << 16, id="64KiB-4KiB-chunks")])
@pytest.mark.parametrize("core", IMPLS)
def test_chunked(benchmark, core, body_size):
    benchmark.group = f"ChunkedDecoder {'64B' if body_size == 64 else '64KiB'}"
    body = bytes(range(256)) * (body_size // 256) or b"x" * body_size
    data = _chunked(body, 4096)

    def run():
        d = core.ChunkedDecoder(1 << 30)
        d.feed(data)
        return d.take()

    assert benchmark(run) == body
