"""gzip, headers/CORS, proxy_ip_parser, sendfile and the access log, end to end."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import time
from datetime import datetime

import httpx
import pytest

from tests.conftest import raw_request

brotli = pytest.importorskip("brotli")
zstandard = pytest.importorskip("zstandard")


def curl(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["curl", "-sS", *args], capture_output=True, timeout=timeout)


def head_and_body(raw: bytes) -> tuple[dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.decode("latin-1").partition(": ")
        headers[name.lower()] = value
    return headers, body


# -- gzip -----------------------------------------------------------------------------


@pytest.fixture
def gz(fastrr):
    return fastrr.start({"http": {"middleware": ["headers", "gzip"],
                                  "headers": {"response": {"X-Frame-Options": "DENY"}}}})


@pytest.mark.parametrize("accept, coding", [
    ("gzip", "gzip"), ("br", "br"), ("zstd", "zstd"), ("gzip, deflate, br, zstd", "br"),
    ("gzip;q=1, br;q=0", "gzip"), ("gzip;q=0.5, zstd;q=0.9", "zstd"), ("*", "br"), ("identity", None),
    ("gzip;q=0", None), ("x-gzip", "gzip"),
])
def test_gzip_negotiation(gz, accept, coding):
    expected = b"x" * 8192
    resp = raw_request(gz.port, b"GET /big?kb=8 HTTP/1.1\r\nHost: t\r\nAccept-Encoding: " + accept.encode()
                       + b"\r\nConnection: close\r\n\r\n")
    headers, body = head_and_body(resp)
    assert headers["vary"] == "Accept-Encoding"
    assert headers["x-frame-options"] == "DENY"
    assert int(headers["content-length"]) == len(body)
    assert headers.get("content-encoding") == coding
    decoded = {None: lambda b: b, "gzip": gzip.decompress, "br": brotli.decompress,
               "zstd": lambda b: zstandard.ZstdDecompressor().decompress(b)}[coding](body)
    assert decoded == expected
    if coding:
        assert len(body) < 200


def test_gzip_with_curl_and_httpx(gz):
    out = curl("--compressed", "-D", "-", gz.url("/big?kb=64"))
    assert out.stdout.endswith(b"x" * 65536)
    assert b"Content-Encoding: " in out.stdout
    r = httpx.get(gz.url("/big?kb=64"), headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and r.content == b"x" * 65536


def test_gzip_skips_small_uncompressible_and_head(gz):
    r = httpx.get(gz.url("/hello"), headers={"Accept-Encoding": "gzip"})  # 17 bytes
    assert "content-encoding" not in r.headers and r.json() == {"hello": "world"}
    r = httpx.get(gz.url("/status?code=204"), headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 204 and "content-encoding" not in r.headers
    resp = raw_request(gz.port, b"HEAD /big?kb=8 HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n"
                                b"Connection: close\r\n\r\n")
    headers, body = head_and_body(resp)
    assert body == b"" and "content-encoding" not in headers and headers["content-length"] == "8192"


def test_gzip_does_not_buffer_a_stream(gz):
    with httpx.stream("GET", gz.url("/stream?n=3&ms=700"), headers={"Accept-Encoding": "gzip"}) as r:
        assert r.headers["transfer-encoding"] == "chunked"
        assert "content-encoding" not in r.headers
        chunks = r.iter_raw()
        # The first chunk reaches us alone, long before the worker has written the rest.
        assert next(chunks) == b"chunk 0\n"
        rest = b"".join(chunks)
    assert rest == b"chunk 1\nchunk 2\n"


def test_early_hints_pass_through_middleware(gz):
    out = subprocess.run(["curl", "-sv", "--compressed", gz.url("/early-hints")], capture_output=True, timeout=10)
    assert b"< HTTP/1.1 103" in out.stderr
    assert b"< Link: </style.css>; rel=preload; as=style" in out.stderr
    assert b"< X-Frame-Options: DENY" in out.stderr  # on the final response
    assert out.stdout == b'{"ok":true}'


# -- headers and CORS ------------------------------------------------------------------------


@pytest.fixture
def cors(fastrr):
    return fastrr.start({"http": {"middleware": ["headers"], "headers": {
        "request": {"X-From-Fastrr": "1"},
        "response": {"X-Powered-By": "fastrr", "Server": "edge"},
        "cors": {"allowed_origin": "https://app.example.com, https://*.corp.example",
                 "allowed_origin_regex": r"^https://pr-\d+\.preview\.example$",
                 "allowed_headers": "Content-Type, X-Token", "allowed_methods": "GET,POST,PUT,DELETE",
                 "allow_credentials": True, "exposed_headers": "X-Total-Count", "max_age": 600}}}})


def test_request_and_response_headers(cors):
    r = httpx.get(cors.url("/echo"))
    assert r.json()["headers"]["X-From-Fastrr"] == ["1"]
    assert r.headers["x-powered-by"] == "fastrr"
    assert r.headers["server"] == "edge"


def test_cors_preflight_is_answered_without_php(cors):
    out = curl("-i", "-X", "OPTIONS", "-H", "Origin: https://app.example.com",
               "-H", "Access-Control-Request-Method: PUT", "-H", "Access-Control-Request-Headers: x-token",
               cors.url("/pid"))
    headers, body = head_and_body(out.stdout)
    assert out.stdout.startswith(b"HTTP/1.1 204")
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert headers["access-control-allow-methods"] == "GET, POST, PUT, DELETE"
    assert headers["access-control-allow-headers"] == "Content-Type, X-Token"
    assert headers["access-control-allow-credentials"] == "true"
    assert headers["access-control-max-age"] == "600"
    assert body == b""
    # PHP never saw it: /pid counts requests per worker, and none was counted.
    assert httpx.get(cors.url("/pid")).json()["count"] == 1


@pytest.mark.parametrize("origin, allowed", [
    ("https://app.example.com", True), ("https://x.corp.example", True), ("https://pr-42.preview.example", True),
    ("https://evil.example", False), ("https://pr-x.preview.example", False),
])
def test_cors_origins(cors, origin, allowed):
    pre = httpx.options(cors.url("/hello"), headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 204
    assert ("access-control-allow-origin" in pre.headers) is allowed
    r = httpx.get(cors.url("/hello"), headers={"Origin": origin})
    assert r.json() == {"hello": "world"}
    assert "Origin" in r.headers["vary"]
    if allowed:
        assert r.headers["access-control-allow-origin"] == origin
        assert r.headers["access-control-expose-headers"] == "X-Total-Count"
    else:
        assert "access-control-allow-origin" not in r.headers


def test_cors_preflight_refuses_unlisted_method_or_header(cors):
    r = httpx.options(cors.url("/x"), headers={"Origin": "https://app.example.com",
                                               "Access-Control-Request-Method": "PATCH"})
    assert "access-control-allow-origin" not in r.headers
    r = httpx.options(cors.url("/x"), headers={"Origin": "https://app.example.com",
                                               "Access-Control-Request-Method": "GET",
                                               "Access-Control-Request-Headers": "X-Secret"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_wildcard_origin(fastrr):
    server = fastrr.start({"http": {"middleware": ["headers"], "headers": {"cors": {
        "allowed_origin": "*", "allowed_headers": "*", "allowed_methods": "*"}}}})
    r = httpx.options(server.url("/x"), headers={"Origin": "https://any.example",
                                                 "Access-Control-Request-Method": "PATCH",
                                                 "Access-Control-Request-Headers": "X-Anything"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-allow-methods"] == "PATCH"
    assert r.headers["access-control-allow-headers"] == "x-anything"
    r = httpx.get(server.url("/hello"), headers={"Origin": "https://any.example"})
    assert r.headers["access-control-allow-origin"] == "*"
    # A plain OPTIONS (no preflight headers) still reaches PHP.
    assert httpx.options(server.url("/hello")).json() == {"hello": "world"}


@pytest.mark.parametrize("order, on_files", [(["static", "headers"], True), (["headers", "static"], False)],
                         ids=["headers-outermost", "static-outermost"])
def test_middleware_order_decides_what_wraps_what(fastrr, tmp_path, order, on_files):
    """The last middleware listed is the outermost (as RoadRunner): headers listed
    after static also decorates the files static answers; listed before it, it
    only sees what passes static on to PHP."""
    (tmp_path / "pub").mkdir()
    (tmp_path / "pub" / "a.txt").write_text("file a\n")
    server = fastrr.start({"http": {"middleware": order, "static": {"dir": str(tmp_path / "pub")},
                                    "headers": {"response": {"X-Frame-Options": "DENY"}}}})
    f = httpx.get(server.url("/a.txt"))
    assert f.status_code == 200 and f.text == "file a\n"
    assert f.headers.get("x-frame-options") == ("DENY" if on_files else None)
    php = httpx.get(server.url("/hello"))  # a static miss: PHP answers, through both
    assert php.json() == {"hello": "world"} and php.headers["x-frame-options"] == "DENY"


# -- proxy_ip_parser -------------------------------------------------------------------------------


@pytest.mark.parametrize("headers, remote", [
    ({"X-Forwarded-For": "203.0.113.7"}, "203.0.113.7"),
    ({"X-Forwarded-For": "198.51.100.1, 203.0.113.7, 10.0.0.2"}, "203.0.113.7"),  # right-most untrusted hop
    ({"X-Forwarded-For": "10.1.1.1, 10.0.0.2"}, "10.1.1.1"),
    ({"X-Real-Ip": "203.0.113.8"}, "203.0.113.8"),
    ({"Forwarded": 'for="[2001:db8::1]:4711";proto=https, for=10.0.0.3'}, "2001:db8::1"),
    ({"True-Client-IP": "203.0.113.9"}, "203.0.113.9"),
    ({"CF-Connecting-IP": "203.0.113.10"}, "203.0.113.10"),
    ({"X-Forwarded-For": "not-an-ip", "X-Real-Ip": "203.0.113.11"}, "203.0.113.11"),
    ({}, "127.0.0.1"),
])
def test_trusted_proxy_headers(fastrr_proxy, headers, remote):
    assert httpx.get(fastrr_proxy.url("/echo"), headers=headers).json()["remoteAddr"] == remote


@pytest.fixture(scope="function")
def fastrr_proxy(fastrr):
    return fastrr.start({"http": {"middleware": ["proxy_ip_parser"]}})


def test_untrusted_peer_cannot_spoof(fastrr):
    server = fastrr.start({"http": {"middleware": ["proxy_ip_parser"], "trusted_subnets": ["10.0.0.0/8"]}})
    for name in ("X-Forwarded-For", "X-Real-Ip", "True-Client-IP", "CF-Connecting-IP"):
        r = httpx.get(server.url("/echo"), headers={name: "203.0.113.7"})
        assert r.json()["remoteAddr"] == "127.0.0.1"
    r = httpx.get(server.url("/echo"), headers={"Forwarded": "for=203.0.113.7"})
    assert r.json()["remoteAddr"] == "127.0.0.1"


def test_proxy_headers_ignored_without_the_middleware(fastrr):
    server = fastrr.start()
    r = httpx.get(server.url("/echo"), headers={"X-Forwarded-For": "203.0.113.7"})
    assert r.json()["remoteAddr"] == "127.0.0.1"


# -- sendfile -----------------------------------------------------------------------------------------


def test_x_sendfile(fastrr, tmp_path):
    server = fastrr.start({"http": {"middleware": ["sendfile", "gzip"]}})
    big = tmp_path / "report.csv"
    big.write_bytes(os.urandom(3 << 20))
    r = httpx.get(server.url("/sendfile"), params={"path": str(big)}, timeout=30)
    assert r.status_code == 200
    assert r.content == big.read_bytes()
    assert "x-sendfile" not in r.headers
    assert r.headers["x-from-app"] == "yes"
    assert r.headers["content-length"] == str(3 << 20)
    r = httpx.get(server.url("/sendfile"), params={"path": str(tmp_path / "missing.txt")})
    assert r.status_code == 404 and "x-sendfile" not in r.headers
    # Small text files may be compressed on the way.
    small = tmp_path / "notes.txt"
    small.write_text("note " * 1000)
    r = httpx.get(server.url("/sendfile"), params={"path": str(small)}, headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and r.text == "note " * 1000
    with httpx.Client(base_url=server.base) as client:  # keep-alive across file bodies
        for _ in range(5):
            assert client.get("/sendfile", params={"path": str(big)}, timeout=30).content == big.read_bytes()
            assert client.get("/hello").json() == {"hello": "world"}


def test_x_sendfile_is_a_plain_header_without_the_middleware(fastrr, tmp_path):
    server = fastrr.start()
    r = httpx.get(server.url("/sendfile"), params={"path": "/etc/hostname"})
    assert r.text == "from php" and r.headers["x-sendfile"] == "/etc/hostname"


# -- access log ------------------------------------------------------------------------------------------


def _log_lines(server, msg: str, count: int) -> list[dict]:
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(line) for line in server.output().splitlines()
                 if line.startswith("{") and f'"{msg}"' in line]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_access_log_covers_local_answers(fastrr, tmp_path):
    (tmp_path / "pub").mkdir()
    (tmp_path / "pub" / "a.txt").write_text("a")
    server = fastrr.start({"http": {"middleware": ["static", "headers"], "access_logs": True,
                                    "static": {"dir": str(tmp_path / "pub")},
                                    "headers": {"cors": {"allowed_origin": "*"}}},
                           "logs": {"level": "info", "encoding": "json"}})
    httpx.get(server.url("/a.txt"))
    httpx.get(server.url("/hello?x=1"), headers={"User-Agent": "probe/1"})
    httpx.options(server.url("/hello"), headers={"Origin": "https://o.example", "Access-Control-Request-Method": "GET"})
    lines = _log_lines(server, "http access log", 3)
    by_uri = {line["URI"]: line for line in lines}
    assert by_uri["/a.txt"]["status"] == 200
    assert by_uri["/hello?x=1"]["status"] == 200 and by_uri["/hello?x=1"]["user_agent"] == "probe/1"
    assert by_uri["/hello?x=1"]["query"] == "x=1"
    assert [line["method"] for line in lines if line["URI"] == "/hello" and line["status"] == 204] == ["OPTIONS"]


@pytest.mark.parametrize("access_logs", [True, False], ids=["access_logs", "http-log"])
def test_access_log_elapsed_counts_the_request_body(fastrr, access_logs):
    # A client that takes 0.6 s to send its body: RoadRunner's log counts from
    # the request head, so elapsed and start include the upload, not only PHP.
    server = fastrr.start({"http": {"access_logs": access_logs}, "logs": {"level": "info", "encoding": "json"}})
    before = time.time()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: 10\r\nConnection: close\r\n\r\nhello")
        time.sleep(0.6)
        sock.sendall(b"world")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ") and b"helloworld" in answer
    (line,) = _log_lines(server, "http access log" if access_logs else "http log", 1)
    assert line["elapsed"] >= 550, line
    if access_logs:
        start = datetime.fromisoformat(line["start"]).timestamp()
        assert before - 0.05 <= start <= before + 0.3, (before, line["start"])
