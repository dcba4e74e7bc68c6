"""The static middleware end to end: hits, misses to PHP, 304, 206, traversal attempts."""

from __future__ import annotations

import os
import subprocess

import httpx
import pytest

from tests.conftest import raw_request


@pytest.fixture
def public(tmp_path):
    root = tmp_path / "public"
    (root / "css").mkdir(parents=True)
    (root / "css" / "app.css").write_text("body { color: red }\n")
    (root / "index.html").write_text("<h1>hi</h1>\n")
    (root / "data.bin").write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    (root / "secret.php").write_text("<?php echo 'source';")
    (root / "with space.txt").write_text("spaced\n")
    (tmp_path / "outside.txt").write_text("outside the root\n")
    os.symlink(tmp_path / "outside.txt", root / "link-out.txt")
    os.symlink(root / "index.html", root / "link-in.html")
    return root


@pytest.fixture
def server(fastrr, public):
    return fastrr.start({"http": {"middleware": ["static"], "static": {
        "dir": str(public), "forbid": [".php"], "calculate_etag": True,
        "response": {"X-Static": "yes"}}}})


def test_hit_has_type_length_and_validators(server, public):
    r = httpx.get(server.url("/css/app.css"))
    assert r.status_code == 200
    assert r.text == "body { color: red }\n"
    assert r.headers["content-type"] == "text/css; charset=utf-8"
    assert r.headers["content-length"] == str(len(r.content))
    assert r.headers["x-static"] == "yes"
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["etag"].startswith('"')
    assert "last-modified" in r.headers
    r = httpx.get(server.url("/with%20space.txt"))
    assert r.text == "spaced\n"
    big = httpx.get(server.url("/data.bin"))
    assert big.content == (public / "data.bin").read_bytes()
    assert big.headers["content-type"] == "application/octet-stream"


def test_head_has_length_and_no_body(server):
    out = raw_request(server.port, b"HEAD /index.html HTTP/1.1\r\nHost: t\r\n\r\n"
                                   b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    first, _, rest = out.partition(b"\r\n\r\n")
    assert b"Content-Length: 12" in first
    assert rest.startswith(b"HTTP/1.1 200")
    assert rest.endswith(b'{"hello":"world"}')


def test_misses_fall_through_to_php(server):
    assert httpx.get(server.url("/hello")).json() == {"hello": "world"}
    assert httpx.get(server.url("/css")).status_code == 404  # a directory: PHP's 404
    # A forbidden extension is never served, PHP gets the request.
    r = httpx.get(server.url("/secret.php"))
    assert r.status_code == 404 and "source" not in r.text
    # Other methods go to PHP too.
    r = httpx.post(server.url("/index.html"), content=b"x")
    assert r.status_code == 404 and r.json() == {"error": "not found"}


def test_conditional_requests_get_304(server):
    r = httpx.get(server.url("/index.html"))
    etag, modified = r.headers["etag"], r.headers["last-modified"]
    r = httpx.get(server.url("/index.html"), headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == etag
    r = httpx.get(server.url("/index.html"), headers={"If-None-Match": f'"other", W/{etag}'})
    assert r.status_code == 304
    r = httpx.get(server.url("/index.html"), headers={"If-Modified-Since": modified})
    assert r.status_code == 304
    r = httpx.get(server.url("/index.html"), headers={"If-None-Match": '"nope"', "If-Modified-Since": modified})
    assert r.status_code == 200  # If-None-Match wins over If-Modified-Since
    r = httpx.get(server.url("/index.html"), headers={"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"})
    assert r.status_code == 200


def test_ranges(server, public):
    data = (public / "data.bin").read_bytes()
    r = httpx.get(server.url("/data.bin"), headers={"Range": "bytes=100-199"})
    assert r.status_code == 206
    assert r.content == data[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{len(data)}"
    r = httpx.get(server.url("/data.bin"), headers={"Range": "bytes=-10"})
    assert r.status_code == 206 and r.content == data[-10:]
    r = httpx.get(server.url("/data.bin"), headers={"Range": "bytes=1048000-"})
    assert r.status_code == 206 and r.content == data[1048000:]
    r = httpx.get(server.url("/data.bin"), headers={"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(data)}"
    r = httpx.get(server.url("/data.bin"), headers={"Range": "bytes=0-1,5-6"})
    assert r.status_code == 200 and len(r.content) == len(data)  # several ranges: the whole file
    etag = r.headers["etag"]
    r = httpx.get(server.url("/data.bin"), headers={"Range": "bytes=0-9", "If-Range": etag})
    assert r.status_code == 206
    r = httpx.get(server.url("/data.bin"), headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert r.status_code == 200
    out = subprocess.run(["curl", "-s", "-r", "0-15", server.url("/data.bin")], capture_output=True, timeout=10)
    assert out.stdout == data[:16]


@pytest.mark.parametrize("target", [
    b"/../outside.txt", b"/css/../../outside.txt", b"/%2e%2e/outside.txt", b"/css/%2E%2E/%2e%2e/outside.txt",
    b"/..%2foutside.txt", b"/link-out.txt", b"/%00index.html",
])
def test_traversal_and_symlink_escapes_are_not_served(server, target):
    resp = raw_request(server.port, b"GET " + target + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert b"outside the root" not in resp
    assert resp.startswith(b"HTTP/1.1 404") or resp.startswith(b"HTTP/1.1 400")


def test_symlink_inside_root_is_served(server):
    assert httpx.get(server.url("/link-in.html")).text == "<h1>hi</h1>\n"


def test_keep_alive_across_static_and_php(server, public):
    with httpx.Client(base_url=server.base) as client:
        for _ in range(20):
            assert client.get("/data.bin").content == (public / "data.bin").read_bytes()
            assert client.get("/hello").json() == {"hello": "world"}


def test_weak_etag_and_allow_list(fastrr, public):
    server = fastrr.start({"http": {"middleware": ["static"], "static": {
        "dir": str(public), "allow": [".html"], "calculate_etag": True, "weak": True}}})
    r = httpx.get(server.url("/index.html"))
    assert r.headers["etag"].startswith('W/"')
    assert httpx.get(server.url("/index.html"), headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    assert httpx.get(server.url("/css/app.css")).status_code == 404  # not in allow: PHP answers


def test_without_static_middleware_files_are_not_served(fastrr, public):
    server = fastrr.start({"http": {"static": {"dir": str(public)}}})
    assert httpx.get(server.url("/index.html")).status_code == 404
