"""In-flight accounting and broken replies, end to end.

Graceful shutdown waits while requests are in flight (http.shutdown_timeout),
so the count must be exact: a request that ended in an abort (a worker lost or
failing mid-stream) must not keep it up, a broken reply must not take it down
twice (a later real request would then be cut off at shutdown). A request whose
worker asked to be stopped is re-run elsewhere only while its client waits, and
a response cut short never leaves a reusable connection behind.
"""

from __future__ import annotations

import concurrent.futures
import socket
import time

import httpx
import pytest

SHUTDOWN_TIMEOUT = 10.0
QUICK = 4.0  # a clean shutdown takes ~1 s; one waiting for a phantom request takes SHUTDOWN_TIMEOUT
TIMEOUT_LINE = "shutdown timeout reached"


def start(fastrr, script: str = "app.php", workers: int = 2, **http):
    cfg = {"http": {"shutdown_timeout": f"{SHUTDOWN_TIMEOUT:g}s", **http}}
    return fastrr.start(cfg, script=script, workers=workers)


def exchange(port: int, request: bytes, timeout: float = 3.0) -> tuple[bytes, bool]:
    """Send one request on a fresh connection and read until the server closes
    it or `timeout` passes in silence. Returns (bytes read, closed by server)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return b"".join(chunks), False
            except ConnectionResetError:
                return b"".join(chunks), True
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk)


def get(path: str) -> bytes:
    return b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path.encode()


def assert_logged(server, text: str, timeout: float = 5.0) -> None:
    """The C engine hands its log lines to Python as events: they may trail the answer a little."""
    deadline = time.monotonic() + timeout
    while text not in server.output() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert text in server.output()


def stop_quickly(server) -> None:
    """SIGTERM with nothing in flight: the server must exit at once, not after shutdown_timeout."""
    started = time.monotonic()
    code = server.stop(timeout=SHUTDOWN_TIMEOUT + 15)
    elapsed = time.monotonic() - started
    output = server.output()
    assert TIMEOUT_LINE not in output, output
    assert elapsed < QUICK, f"shutdown took {elapsed:.1f}s\n{output}"
    assert code == 0, output


# -- 1. aborted requests leave in_flight -------------------------------------------------------

def test_worker_crash_mid_stream_does_not_hold_up_shutdown(fastrr):
    server = start(fastrr)
    data, closed = exchange(server.port, get("/stream-crash?n=2"))
    assert data.startswith(b"HTTP/1.1 200"), data
    assert b"chunk 1\n" in data
    assert closed
    assert not data.endswith(b"0\r\n\r\n")  # cut short: no last chunk
    server.wait_workers(2)
    assert httpx.get(server.url("/hello"), timeout=10).status_code == 200
    stop_quickly(server)


def test_worker_error_mid_stream_does_not_hold_up_shutdown(fastrr):
    server = start(fastrr, script="frames.php")
    data, closed = exchange(server.port, get("/stream-error"))
    assert data.startswith(b"HTTP/1.1 200"), data
    assert b"chunk 0\n" in data
    assert closed  # the response was cut short: the connection cannot be reused
    assert not data.endswith(b"0\r\n\r\n")
    assert httpx.get(server.url("/hello"), timeout=10).text == "ok"
    assert_logged(server, "boom in the middle of a stream")
    stop_quickly(server)


# -- 2. an invalid stream reply counts once ----------------------------------------------------

@pytest.mark.parametrize("middleware", [False, True], ids=["plain", "middleware"])
def test_invalid_stream_reply_is_counted_once(fastrr, middleware):
    http = {"middleware": ["headers"], "headers": {"response": {"X-Test": "yes"}}} if middleware else {}
    server = start(fastrr, script="frames.php", **http)
    data, closed = exchange(server.port, get("/bad-stream-head"))
    assert data.startswith(b"HTTP/1.1 500"), data
    assert b"Connection: close" in data
    assert closed
    assert_logged(server, "invalid response from worker")
    for _ in range(3):  # the worker that sent it finished its stream and serves again
        assert httpx.get(server.url("/hello"), timeout=10).text == "ok"
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        slow = ex.submit(httpx.get, server.url("/sleep?ms=1500"), timeout=15)
        time.sleep(0.5)
        started = time.monotonic()
        server.proc.send_signal(15)
        resp = slow.result()
        assert resp.status_code == 200
        assert resp.text == "slept 1500"
    assert server.proc.wait(15) == 0
    assert time.monotonic() - started < QUICK
    assert TIMEOUT_LINE not in server.output()


# -- 3. no stop() retry for a client that is gone ------------------------------------------

def test_stop_retry_is_dropped_when_the_client_is_gone(fastrr, tmp_path):
    server = start(fastrr)
    before = server.wait_workers(2)
    marker, log = tmp_path / "stopped", tmp_path / "executions"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(get(f"/stop-once?marker={marker}&log={log}&ms=800"))
        deadline = time.monotonic() + 5
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert marker.exists()
    # The client is gone while the worker still sleeps; then it asks to be stopped.
    first = int(log.read_text().split()[0])
    assert first in before
    deadline = time.monotonic() + 10
    while first in server.worker_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first not in server.worker_pids()
    time.sleep(0.5)  # a retry would have run by now (another worker was free)
    assert log.read_text().split() == [str(first)], "the request ran again after its client left"
    after = server.wait_workers(2)
    assert first not in after
    for _ in range(4):
        assert httpx.get(server.url("/hello"), timeout=10).status_code == 200
    server.wait_workers(2)
    stop_quickly(server)


def test_stop_retry_still_runs_for_a_waiting_client(fastrr, tmp_path):
    server = start(fastrr)
    marker, log = tmp_path / "stopped", tmp_path / "executions"
    r = httpx.get(server.url(f"/stop-once?marker={marker}&log={log}&ms=200"), timeout=15)
    assert r.status_code == 200
    assert r.json()["stopped_before"] is True
    pids = log.read_text().split()
    assert len(pids) == 2 and pids[0] != pids[1]
    server.wait_workers(2)
    stop_quickly(server)


# -- 4. an error that breaks a stream closes the connection ---------------------------------

def test_error_frame_with_stream_bit_closes_the_connection(fastrr):
    server = start(fastrr, script="frames.php")
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as sock:
        sock.sendall(get("/error-stream"))  # keep-alive request
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except TimeoutError:
            pytest.fail(f"the connection was kept open after a broken response: {data!r}")
        except ConnectionResetError:
            pass
    assert data.startswith(b"HTTP/1.1 500"), data
    assert data.count(b"HTTP/1.1") == 1 and len(data) < 1024  # just the error page
    assert_logged(server, "boom with the stream bit")
    # A new connection works, and the worker ended its exchange and serves again.
    for _ in range(3):
        data, closed = exchange(server.port, get("/hello"), timeout=1)
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"ok"), data
        assert not closed  # an ordinary response keeps the connection
    server.wait_workers(2)
    stop_quickly(server)


def test_error_frame_with_stream_bit_announces_the_close(fastrr):
    server = start(fastrr, script="frames.php")
    data, closed = exchange(server.port, get("/error-stream"))
    assert data.startswith(b"HTTP/1.1 500"), data
    assert b"Connection: close" in data
    assert closed
    stop_quickly(server)
