"""The static middleware on the C engine end to end (`http.middleware: [static]`
alone is served by the engine; any other middleware keeps the Python front).
These tests pick the front in their config, whatever --engine says;
test_static.py runs the same behaviour on the front --engine picks."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import struct
import time

import httpx
import pytest

from tests.conftest import raw_request

BIG = 8 << 20


@pytest.fixture
def public(tmp_path):
    root = tmp_path / "public"
    (root / "css").mkdir(parents=True)
    (root / "css" / "app.css").write_text("body { color: red }\n")
    (root / "index.html").write_text("<h1>hi</h1>\n")
    (root / "big.bin").write_bytes(os.urandom(1 << 20) * (BIG >> 20))
    (root / "secret.php").write_text("<?php echo 'source';")
    (tmp_path / "outside.txt").write_text("outside the root\n")
    os.symlink(tmp_path / "outside.txt", root / "link-out.txt")
    return root


def static_config(public, engine="c", middleware=("static",), **extra):
    return {"http": {"engine": engine, "middleware": list(middleware), "static": {
        "dir": str(public), "forbid": [".php"], "calculate_etag": True, "response": {"X-Static": "yes"},
        **extra}}}


@pytest.fixture
def server(fastrr, public):
    return fastrr.start(static_config(public))


def listening_line(server) -> str:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in server.output().splitlines():
            if "http server listening" in line:
                return line
        time.sleep(0.05)
    raise AssertionError(server.output())


def test_static_only_config_runs_on_the_engine(server):
    assert '"engine": "c"' in listening_line(server)
    assert "does not support these settings" not in server.output()
    assert httpx.get(server.url("/index.html")).text == "<h1>hi</h1>\n"
    server.stop()
    assert re.search(r'http log\t\{"status": 200, "method": "GET", "URI": "/index.html"', server.output())


def test_static_with_gzip_falls_back_to_the_python_front(fastrr, public):
    server = fastrr.start(static_config(public, middleware=("static", "gzip")))
    line = listening_line(server)
    assert '"engine"' not in line
    assert "does not support these settings" in server.output() and "http.middleware" in server.output()
    r = httpx.get(server.url("/css/app.css"), headers={"Accept-Encoding": "identity"})
    assert r.text == "body { color: red }\n"


def test_large_file_is_complete_and_byte_identical(server, public):
    data = (public / "big.bin").read_bytes()
    with httpx.Client(base_url=server.base) as client:
        for _ in range(3):
            r = client.get("/big.bin")
            assert r.status_code == 200 and int(r.headers["content-length"]) == BIG
            assert hashlib.sha256(r.content).digest() == hashlib.sha256(data).digest()
        r = client.get("/big.bin", headers={"Range": f"bytes={BIG - 3000000}-"})
        assert r.status_code == 206 and r.content == data[BIG - 3000000:]
        assert client.get("/hello").json() == {"hello": "world"}  # keep-alive after the files


def read_responses(sock: socket.socket, count: int, heads: list[bool]) -> list[tuple[bytes, bytes]]:
    """`count` Content-Length responses; heads[i]: the i-th was a HEAD (no body)."""
    sock.settimeout(10)
    data = b""
    out = []
    for i in range(count):
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(1 << 20)
            assert chunk, (i, out)
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        m = re.search(rb"\r\nContent-Length: (\d+)", head)
        length = 0 if heads[i] or m is None else int(m.group(1))
        while len(data) < length:
            chunk = sock.recv(1 << 20)
            assert chunk
            data += chunk
        out.append((head, data[:length]))
        data = data[length:]
    return out


def test_pipelined_static_and_php_requests_in_order(server, public):
    big = (public / "big.bin").read_bytes()
    reqs = [
        (b"GET /index.html", False), (b"GET /hello", False), (b"GET /big.bin", False),
        (b"HEAD /big.bin", True), (b"GET /missing.txt", False), (b"GET /css/app.css", False),
        (b"GET /secret.php", False), (b"GET /link-out.txt", False), (b"GET /hello?x=1", False),
    ]
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"".join(line + b" HTTP/1.1\r\nHost: t\r\n\r\n" for line, _ in reqs))
        got = read_responses(sock, len(reqs), [h for _, h in reqs])
    status = [int(head.split(b" ", 2)[1]) for head, _ in got]
    assert status == [200, 200, 200, 200, 404, 200, 404, 404, 200]
    assert got[0][1] == b"<h1>hi</h1>\n"
    assert got[1][1] == b'{"hello":"world"}'
    assert got[2][1] == big
    assert b"Content-Length: %d" % BIG in got[3][0] and got[3][1] == b""
    assert got[5][1] == b"body { color: red }\n"
    assert b"source" not in got[6][1] and b"outside" not in got[7][1]
    assert got[8][1] == b'{"hello":"world"}'


def test_clients_leaving_mid_file_do_not_hurt_the_server(server, public):
    for _ in range(5):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # reset with most of the file unsent
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
    sock.close()  # gone before (or while) the answer is made
    assert httpx.get(server.url("/big.bin")).content == (public / "big.bin").read_bytes()
    assert httpx.get(server.url("/hello")).json() == {"hello": "world"}
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 10  # drained: nothing left in flight
    assert "shutdown timeout" not in server.output() and "engine event failed" not in server.output()


def test_head_and_conditionals(server, public):
    out = raw_request(server.port, b"HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                                   b"GET /index.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    first, _, rest = out.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: %d" % BIG in first
    assert rest.startswith(b"HTTP/1.1 200 OK") and rest.endswith(b"\r\n\r\n<h1>hi</h1>\n")
    r = httpx.get(server.url("/index.html"))
    r2 = httpx.get(server.url("/index.html"), headers={"If-None-Match": r.headers["etag"]})
    assert r2.status_code == 304 and r2.content == b"" and r2.headers["x-static"] == "yes"
    r3 = httpx.get(server.url("/big.bin"), headers={"Range": f"bytes={BIG}-"})
    assert r3.status_code == 416 and r3.headers["content-range"] == f"bytes */{BIG}"


def test_file_replaced_by_a_directory_or_removed_goes_to_php(server, public):
    for _ in range(3):
        (public / "flip.txt").write_text("file\n")
        assert httpx.get(server.url("/flip.txt")).text == "file\n"
        (public / "flip.txt").unlink()
        assert httpx.get(server.url("/flip.txt")).status_code == 404  # PHP's
        (public / "flip.txt").mkdir()
        assert httpx.get(server.url("/flip.txt")).status_code == 404
        (public / "flip.txt").rmdir()


REQUESTS = [
    b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n",
    b"HEAD /index.html HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /css/app.css HTTP/1.0\r\n\r\n",
    b"GET /css/app.css HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=5-9\r\n\r\n",
    b"GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=-3\r\n\r\n",
    b"GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=99999999-\r\n\r\n",
    b"GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=1-2,4-5\r\nIf-Range: \"x\"\r\n\r\n",
    b"GET /index.html HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT\r\n\r\n",
    b"GET /index.html HTTP/1.1\r\nHost: t\r\nIf-None-Match: *\r\n\r\n",
    b"GET /css/../index.html?x=1 HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /%69ndex.html HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET http://t/index.html HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /link-out.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /secret.php HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /css HTTP/1.1\r\nHost: t\r\n\r\n",
    b"POST /index.html HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx",
    b"GET /index.html HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc",
]


def normalise(data: bytes) -> bytes:
    data = re.sub(rb"Date: [^\r]*\r\n", b"", data)
    return re.sub(rb"\d+\.\d+\.\d+\.\d+:\d+", b"ADDR", data)


def test_same_bytes_as_the_python_front(fastrr, public):
    """Differential: each request alone on a connection, the whole answer
    (Connection: close after it) compared byte for byte, Date aside."""
    fronts = [fastrr.start(static_config(public, engine=e)) for e in ("python", "c")]
    assert '"engine": "c"' in listening_line(fronts[1]) and '"engine"' not in listening_line(fronts[0])
    for raw in REQUESTS:
        if b"HTTP/1.0" not in raw:
            raw = raw.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
        answers = [normalise(raw_request(f.port, raw)) for f in fronts]
        assert answers[0] == answers[1], raw
        assert answers[0].startswith(b"HTTP/1."), raw
