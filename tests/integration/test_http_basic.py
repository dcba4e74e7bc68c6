"""The HTTP/1.1 front end to end: real fastrr, real PHP workers, real clients."""

from __future__ import annotations

import json
import socket
import subprocess
import time

import httpx
import pytest

from tests.conftest import raw_request


@pytest.fixture
def server(fastrr):
    return fastrr.start()


def test_hello_from_long_lived_worker(server):
    with httpx.Client(base_url=server.base) as client:
        r = client.get("/hello")
        assert r.status_code == 200
        assert r.json() == {"hello": "world"}
        assert r.headers["content-type"].startswith("application/json")
        assert r.headers["server"] == "fastrr"
        assert "date" in r.headers
        # The same processes serve request after request: counts grow per worker.
        pids: dict[int, int] = {}
        for _ in range(20):
            body = client.get("/pid").json()
            pids[body["pid"]] = max(pids.get(body["pid"], 0), body["count"])
        assert set(pids) <= server.worker_pids()
        assert sum(pids.values()) >= 20


def test_request_context_reaches_php(server):
    r = httpx.post(server.url("/echo?a=1&b[]=2&b[]=3"), content=b'{"x":1}',
                   headers={"Content-Type": "application/json", "X-Custom": "v1",
                            "Cookie": "sess=abc%20def; theme=dark"})
    assert r.status_code == 200
    body = r.json()
    assert body["method"] == "POST"
    assert body["uri"] == f"http://127.0.0.1:{server.port}/echo?a=1&b[]=2&b[]=3"
    assert body["protocol"] == "HTTP/1.1"
    assert body["remoteAddr"] == "127.0.0.1"
    assert body["headers"]["X-Custom"] == ["v1"]
    assert "Host" not in body["headers"]
    assert body["cookies"] == {"sess": "abc def", "theme": "dark"}
    assert body["query"] == {"a": "1", "b": ["2", "3"]}
    assert body["body"] == '{"x":1}'
    assert body["parsed"] is False


def test_urlencoded_form_is_parsed_into_a_tree(server):
    r = httpx.post(server.url("/echo"), content=b"name=fastrr&tags[]=a&tags[]=b&user[role]=admin&x=1&x=2",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    body = r.json()
    assert body["parsed"] is True
    assert body["parsedBody"] == {"name": "fastrr", "tags": ["a", "b"], "user": {"role": "admin"}, "x": "2"}


def test_empty_form_is_an_empty_tree(server):
    r = httpx.post(server.url("/echo"), content=b"", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200
    assert r.json()["parsed"] is True
    assert not r.json()["parsedBody"]


def test_conflicting_form_keys_are_400(server):
    r = httpx.post(server.url("/echo"), content=b"a=1&a[b]=2",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400
    assert b"invalid multiple values" in r.content
    assert httpx.get(server.url("/hello")).status_code == 200


def test_chunked_request_body(server):
    data = (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    resp = raw_request(server.port, data)
    head, _, body = resp.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body)["body"] == "hello world"


def test_keep_alive_and_pipelining_keep_order(server):
    reqs = b"".join(b"GET /status?code=%d HTTP/1.1\r\nHost: t\r\n\r\n" % code for code in (201, 202, 203))
    reqs += b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    resp = raw_request(server.port, reqs)
    statuses = [line.split(b" ")[1] for line in resp.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]
    assert statuses == [b"201", b"202", b"203", b"200"]
    assert resp.rstrip().endswith(b'{"hello":"world"}')


def test_head_has_length_but_no_body(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"HEAD /big?kb=4 HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n"
                     b"Connection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    first, _, rest = data.partition(b"\r\n\r\n")
    assert b"Content-Length: 4096" in first
    assert rest.startswith(b"HTTP/1.1 200")  # no body between the two responses


def test_expect_100_continue(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
                     b"Connection: close\r\n\r\n")
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert json.loads(data.partition(b"\r\n\r\n")[2])["body"] == "hello"


def test_http10_closes_by_default(server):
    resp = raw_request(server.port, b"GET /hello HTTP/1.0\r\nHost: t\r\n\r\n")
    assert resp.startswith(b"HTTP/1.0 200")
    assert b"Connection: close" in resp
    assert resp.endswith(b'{"hello":"world"}')


def test_connection_close_is_honoured(server):
    resp = raw_request(server.port, b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert b"Connection: close" in resp
    assert resp.endswith(b'{"hello":"world"}')


def test_response_headers_from_worker(server):
    r = httpx.get(server.url("/headers"))
    assert r.headers.get_list("x-multi") == ["a", "b"]
    assert r.headers["x-lower-case"] == "yes"
    assert len(r.headers.get_list("set-cookie")) == 2


def test_streamed_response_is_chunked(server):
    with httpx.stream("GET", server.url("/stream?n=5&ms=10")) as r:
        assert r.headers["transfer-encoding"] == "chunked"
        text = b"".join(r.iter_raw()).decode()
    assert text == "".join(f"chunk {i}\n" for i in range(5))
    assert httpx.get(server.url("/hello")).status_code == 200


def test_client_leaving_a_stream_stops_it_and_keeps_the_worker(fastrr):
    server = fastrr.start(workers=1)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /stream?n=200&ms=20 HTTP/1.1\r\nHost: t\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
    # The only worker must finish the cancelled stream and come back to serve.
    r = httpx.get(server.url("/pid"), timeout=10)
    assert r.status_code == 200
    assert r.json()["pid"] in server.worker_pids()


def test_early_hints_reach_the_client(server):
    out = subprocess.run(["curl", "-sv", server.url("/early-hints")], capture_output=True, timeout=10)
    assert b"< HTTP/1.1 103" in out.stderr
    assert b"< Link: </style.css>; rel=preload; as=style" in out.stderr
    assert out.stdout == b'{"ok":true}'


def test_stray_echo_does_not_corrupt_the_pipe(server):
    for _ in range(3):
        r = httpx.get(server.url("/stdout"))
        assert r.status_code == 200
        assert r.json() == {"ok": True}
    deadline = time.monotonic() + 5
    while "stray output from app" not in server.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "stray output from app" in server.output()  # it went to the log via stderr


def test_php_header_call_has_no_effect_and_the_response_is_intact(fastrr):
    # php-cli drops header() (php/README.md): only the response's own headers count.
    server = fastrr.start(workers=1)
    for _ in range(2):
        r = httpx.get(server.url("/php-header"))
        assert r.status_code == 200
        assert r.json()["pid"] in server.worker_pids()
        assert "x-php-header" not in r.headers


def test_large_bodies_both_ways(server):
    payload = b"z" * (3 * 1024 * 1024)
    r = httpx.post(server.url("/echo"), content=payload, timeout=30)
    assert r.status_code == 200
    assert len(r.json()["body"]) == len(payload)
    r = httpx.get(server.url("/big?kb=4096"), timeout=30)
    assert len(r.content) == 4096 * 1024
