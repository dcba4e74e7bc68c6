"""DESIGN.md's error table, one bad input or failure at a time; after each, the
server must still serve normally (nothing else was lost)."""

from __future__ import annotations

import concurrent.futures
import socket
import time

import httpx
import pytest

from tests.conftest import raw_request


@pytest.fixture
def server(fastrr):
    return fastrr.start()


def assert_still_serving(server, workers: int = 2) -> None:
    for _ in range(4):
        assert httpx.get(server.url("/hello"), timeout=10).status_code == 200
    server.wait_workers(workers)


@pytest.mark.parametrize("raw, reason", [
    (b"GARBAGE\r\n\r\n", b""),
    (b"GET / HTTP/9.9\r\nHost: t\r\n\r\n", b""),
    (b"GET /\x00 HTTP/1.1\r\nHost: t\r\n\r\n", b""),
    (b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n", b""),
    (b"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n folded\r\n\r\n", b""),
    (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b""),
    (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", b""),
    (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", b""),
    (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", b""),
    (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b""),
    (b"GET / HTTP/1.1\r\n\r\n", b""),
])
def test_malformed_requests_get_400_and_close(server, raw, reason):
    resp = raw_request(server.port, raw)
    assert resp.startswith(b"HTTP/1.1 400 Bad Request"), resp
    assert b"Connection: close" in resp
    assert_still_serving(server)


def test_oversized_headers_get_431(fastrr):
    server = fastrr.start({"http": {"max_header_size": 4096}})
    resp = raw_request(server.port, b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 431")
    assert_still_serving(server)


def test_body_over_limit_gets_413_before_it_is_sent(fastrr):
    server = fastrr.start({"http": {"max_request_size": 1}})
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n")
        resp = sock.recv(4096)  # answered from the header alone
    assert resp.startswith(b"HTTP/1.1 413")
    assert b"max_request_size" in resp
    assert_still_serving(server)


def test_chunked_body_over_limit_gets_413(fastrr):
    server = fastrr.start({"http": {"max_request_size": 1}})
    chunk = b"%x\r\n%s\r\n" % (600000, b"a" * 600000)
    resp = raw_request(server.port, b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                       + chunk * 2 + b"0\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 413")
    assert_still_serving(server)


def test_worker_crash_fails_only_that_request(server):
    before = server.wait_workers(2)
    r = httpx.get(server.url("/crash"), timeout=10)
    assert r.status_code == 502
    assert_still_serving(server)
    after = server.wait_workers(2)
    assert len(before - after) == 1  # exactly the crashed worker was replaced


def test_an_answer_followed_by_exit_reaches_the_client(fastrr):
    # The worker writes a complete answer and exits at once: whichever the server
    # notices first, the pipe's last frames or the process's end, the client gets
    # the answer (never a 502), and the worker is replaced at once, not backed off.
    server = fastrr.start(workers=2)
    pids = set()
    for _ in range(20):
        r = httpx.get(server.url("/answer-then-exit"), timeout=10)
        assert r.status_code == 200, r.text
        pids.add(r.json()["pid"])
    assert len(pids) == 20
    assert server.proc.poll() is None
    assert "right after it was ready" not in server.output()
    assert_still_serving(server)


def test_worker_error_is_500_and_worker_is_kept(fastrr):
    server = fastrr.start(workers=1)
    pid = httpx.get(server.url("/pid")).json()["pid"]
    r = httpx.get(server.url("/error"))
    assert r.status_code == 500
    assert b"boom" not in r.content  # text only in debug mode
    assert httpx.get(server.url("/pid")).json()["pid"] == pid


def test_worker_error_text_shown_in_debug_mode(fastrr):
    server = fastrr.start({"http": {"pool": {"debug": True}}}, workers=1)
    r = httpx.get(server.url("/error"))
    assert r.status_code == 500
    assert b"boom: something failed" in r.content


def test_internal_error_code_is_configurable(fastrr):
    server = fastrr.start({"http": {"internal_error_code": 599}}, workers=1)
    assert httpx.get(server.url("/error")).status_code == 599


def test_worker_stop_reruns_the_request_on_another_worker(server, tmp_path):
    marker = tmp_path / "stopped"
    r = httpx.get(server.url(f"/stop-once?marker={marker}"), timeout=15)
    assert r.status_code == 200
    assert r.json()["stopped_before"] is True
    assert marker.exists()
    assert_still_serving(server)


def test_allocate_timeout_gives_503_with_retry_after(fastrr):
    server = fastrr.start({"http": {"pool": {"allocate_timeout": "500ms"}}}, workers=1)
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        slow = ex.submit(httpx.get, server.url("/sleep?ms=2000"), timeout=10)
        time.sleep(0.3)
        started = time.monotonic()
        r = httpx.get(server.url("/hello"), timeout=10)
        waited = time.monotonic() - started
        assert slow.result().status_code == 200
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert r.headers["no-workers"] == "true"
    assert b"allocate_timeout" in r.content
    assert 0.3 < waited < 1.9
    assert_still_serving(server, 1)


def test_full_queue_gives_503_at_once(fastrr):
    server = fastrr.start({"http": {"pool": {"max_queue_size": 1}}}, workers=1)
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        first = ex.submit(httpx.get, server.url("/sleep?ms=1500"), timeout=10)
        time.sleep(0.3)
        queued = ex.submit(httpx.get, server.url("/hello"), timeout=10)
        time.sleep(0.3)
        r = httpx.get(server.url("/hello"), timeout=10)
        assert r.status_code == 503
        assert b"max_queue_size" in r.content
        assert r.headers["retry-after"] == "1"
        assert r.headers["no-workers"] == "true"
        assert first.result().status_code == 200
        assert queued.result().status_code == 200


def test_exec_ttl_gives_504_and_replaces_the_worker(fastrr):
    server = fastrr.start({"http": {"pool": {"supervisor": {"exec_ttl": "1s"}}}}, workers=1)
    before = server.wait_workers(1)
    r = httpx.get(server.url("/sleep?ms=5000"), timeout=10)
    assert r.status_code == 504
    after = server.wait_workers(1)
    assert before != after
    assert_still_serving(server, 1)


def test_silent_client_is_dropped_after_read_timeout(fastrr):
    server = fastrr.start({"http": {"read_timeout": "1s"}})
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n")  # never finishes the head
        started = time.monotonic()
        data = sock.recv(4096)
        assert data.startswith(b"HTTP/1.1 408")
        assert sock.recv(4096) == b""
        assert time.monotonic() - started < 4
    assert_still_serving(server)


@pytest.mark.parametrize("head, partial", [
    (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n", b"only 19 of 100 byte"),
    (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", b"5\r\nhello\r\n10\r\nabc"),
], ids=["content-length", "chunked"])
def test_stalled_body_gets_408_after_read_timeout(fastrr, head, partial):
    server = fastrr.start({"http": {"read_timeout": "1s"}})
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head + partial)  # the body never finishes
        started = time.monotonic()
        data = b""
        while chunk := sock.recv(4096):  # until the server closes
            data += chunk
        waited = time.monotonic() - started
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), data
    assert b"Connection: close\r\n" in data
    assert data.endswith(b"\r\n\r\n408 Request Timeout: request not received within read_timeout\n"), data
    assert 0.9 <= waited < 4, waited
    assert_still_serving(server)


def test_idle_keepalive_connection_is_closed(fastrr):
    server = fastrr.start({"http": {"idle_timeout": "1s"}})
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        assert sock.recv(4096) == b""  # closed after the idle timeout


def test_invalid_worker_response_is_500(server):
    r = httpx.get(server.url("/status?code=99"))
    assert r.status_code == 500
    assert_still_serving(server)


def test_stdout_pollution_is_reported(fastrr):
    server = fastrr.start(script="badframe.php", workers=1)
    r = httpx.get(server.url("/"), timeout=10)
    assert r.status_code == 502
    deadline = time.monotonic() + 5
    while "validation failed on the message sent to STDOUT" not in server.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "validation failed on the message sent to STDOUT" in server.output()
    server.wait_workers(1)
