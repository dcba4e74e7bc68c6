"""The engine handing connections over to Python (`detach_paths`, for the
WebSockets and Server-Sent Events plugins) in-process: the "detach" event,
the socket working from Python afterwards, pipelining order, what still goes
to PHP, clients that leave first, drain, and fds across many hand-overs.
The same harness as test_engine.py (the test is the PHP worker)."""

from __future__ import annotations

import fcntl
import gc
import os
import select
import socket
import time
from types import SimpleNamespace
from typing import Any

import pytest

from fastrr import _core
from fastrr.http.engine_pool import EnginePool
from tests.core.test_engine import Harness, read_all, read_response

WS = b"GET /ws?room=1 HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


@pytest.fixture
def h():
    harness = Harness(detach_paths=[b"/ws", b"/events"])
    yield harness
    harness.close()


def fd_count() -> int:
    gc.collect()  # sockets earlier tests dropped
    return len(os.listdir("/proc/self/fd"))


def wait_stats(h: Harness, **want: int) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while True:
        stats = h.engine.stats()
        if all(stats[k] == v for k, v in want.items()):
            return stats
        assert time.monotonic() < deadline, stats
        time.sleep(0.01)


def detached(h: Harness) -> list[tuple[Any, ...]]:
    h.events += h.engine.poll_events()
    return [e for e in h.events if e[0] == "detach"]


def test_detach_event_carries_the_head_and_the_bytes_after_it(h):
    w = h.worker()
    frame = b"\x81\x85abcd" + bytes(b ^ k for b, k in zip(b"hello", b"abcda", strict=True))  # a masked text frame
    c = h.client(WS + frame)
    kind, fd, req, leftover = h.wait_event("detach")
    try:
        assert isinstance(req, _core.Request) and req.method == "GET" and req.target == "/ws?room=1"
        assert req.get_header(b"upgrade") == b"websocket" and req.http_minor == 1 and req.keep_alive
        assert leftover == frame
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        assert flags & os.O_NONBLOCK and fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        stats = wait_stats(h, connections=0, detached=1, in_flight=0, conn_allocs=0)
        assert stats["requests"] == 0 and w.idle()  # PHP never saw it
        # Python owns the socket now: both directions work
        sock = socket.socket(fileno=os.dup(fd))
        sock.setblocking(True)
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
        c.settimeout(3)
        assert c.recv(100) == b"HTTP/1.1 101 Switching Protocols\r\n\r\n"
        c.sendall(b"from the client")
        sock.settimeout(3)
        assert sock.recv(100) == b"from the client"
        sock.close()
    finally:
        os.close(fd)
    assert read_all(c) == b""  # our close is the last one: the client sees EOF
    c.close()


def test_an_earlier_pipelined_request_is_answered_first():
    h = Harness(detach_paths=[b"/ws"], access_log=1)
    try:
        w = h.worker()
        c = h.client(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n" + WS.replace(b"?room=1", b"") + b"early")
        assert w.request()["uri"] == "http://t/first"
        assert w.idle() and detached(h) == []  # waits for the answer before it
        w.respond(200, b"answer one")
        head, body = read_response(c)
        assert head.startswith(b"HTTP/1.1 200 OK") and body == b"answer one"
        _, fd, req, leftover = h.wait_event("detach")
        with socket.socket(fileno=fd) as sock:
            assert req.target == "/ws" and leftover == b"early"
            sock.setblocking(True)
            sock.sendall(b"two")
            c.settimeout(3)
            assert c.recv(10) == b"two"
        access = [e for e in h.events + h.engine.poll_events() if e[0] == "access"]
        assert [a[1]["target"] for a in access] == ["/first"]  # no line for the detached request
    finally:
        h.close()


def test_detach_waits_until_a_big_earlier_answer_is_written(h):
    w = h.worker()
    c = h.client(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n" + WS)
    w.request()
    big = os.urandom(8 << 20)  # far more than the socket buffers hold
    w.respond(200, big)
    wait_stats(h, in_flight=0)
    assert detached(h) == []  # the client has not read it: still the engine's
    head, body = read_response(c, timeout=10)
    assert body == big
    _, fd, req, leftover = h.wait_event("detach")
    os.close(fd)
    assert req.target == "/ws?room=1" and leftover == b""


def test_what_still_goes_to_php(h):
    w = h.worker()
    cases = [
        b"POST /ws HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi",
        b"HEAD /ws HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /ws HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc",
        b"GET /ws HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
        b"get /ws HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /wsx HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /w HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /ws/ HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /WS HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /%77s HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET http://t/ws HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /events/x HTTP/1.1\r\nHost: t\r\n\r\n",
    ]
    c = h.client()
    for data in cases:
        c.sendall(data)
        ctx = w.request()
        w.respond(200, b"" if ctx["method"] == "HEAD" else b"php")
        head, body = read_response(c)
        assert head.startswith(b"HTTP/1.1 200 OK") and body == (b"" if ctx["method"] == "HEAD" else b"php"), data
    # on the same keep-alive connection, a GET with an empty body is detached
    c.sendall(b"GET /events HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
    _, fd, req, _ = h.wait_event("detach")
    os.close(fd)
    assert req.target == "/events"
    stats = wait_stats(h, connections=0, detached=1)
    assert stats["requests"] == len(cases) and w.idle()


def test_without_detach_paths_nothing_is_detached():
    h = Harness()
    try:
        w = h.worker()
        c = h.client(WS)
        assert w.request()["uri"] == "http://t/ws?room=1"
        w.respond(404, b"no")
        assert read_response(c)[1] == b"no"
        assert detached(h) == [] and h.engine.stats()["detached"] == 0
    finally:
        h.close()


def test_a_client_that_leaves_before_the_detach(h):
    before = fd_count()
    w = h.worker()
    c = h.client(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n" + WS)
    w.request()
    c.close()  # gone while its first request runs
    w.respond(200, b"late")
    wait_stats(h, connections=0, in_flight=0, conn_allocs=0)
    assert detached(h) == [] and h.engine.stats()["detached"] == 0
    # one that sends the head and closes at once is handed over: Python reads the EOF
    c2 = h.client(WS)
    c2.close()
    _, fd, _, leftover = h.wait_event("detach")
    assert leftover == b""
    assert select.select([fd], [], [], 3)[0] and os.read(fd, 100) == b""
    os.close(fd)
    wait_stats(h, connections=0, conn_allocs=0)
    assert fd_count() <= before + 6  # the fake worker: its 4 pipe ends and the engine's 2 dups


def test_drain_and_abort_leave_detached_connections_alone(h):
    w = h.worker()
    busy = h.client(b"GET /php HTTP/1.1\r\nHost: t\r\n\r\n")
    w.request()
    c = h.client(WS)
    _, fd, _, _ = h.wait_event("detach")
    with socket.socket(fileno=fd) as sock:
        idle = h.client()
        wait_stats(h, connections=2)
        h.engine.stop_accepting()
        assert read_all(idle) == b""  # an idle connection is closed at once
        w.respond(200, b"done")
        assert read_all(busy).endswith(b"done")
        h.wait_event("drained")  # not waiting for the detached one
        h.engine.abort_connections()
        sock.setblocking(True)
        sock.sendall(b"still mine")
        c.settimeout(3)
        assert c.recv(100) == b"still mine"
        assert wait_stats(h, connections=0)["detached"] == 1


def test_a_thousand_detaches_leak_no_fds(h):
    before = fd_count()
    for _ in range(10):
        clients = [h.client(WS) for _ in range(100)]
        got = 0
        while got < 100:
            for ev in [e for e in h.events if e[0] == "detach"]:
                h.events.remove(ev)
                os.close(ev[1])
                got += 1
            if got < 100:
                select.select([h.engine.event_fd], [], [], 3)
                h.events += h.engine.poll_events()
        for c in clients:
            c.close()
    stats = wait_stats(h, connections=0, conn_allocs=0)
    assert stats["detached"] == 1000 and stats["accepted"] == 1000
    assert fd_count() <= before  # (<=: a collected object of another test may close its own)


def test_an_event_never_taken_closes_its_fd():
    before = fd_count()
    h = Harness(detach_paths=[b"/ws"])
    c = h.client(WS)
    wait_stats(h, detached=1)
    engine = h.engine
    del h.engine
    h.engine = SimpleNamespace(close=lambda: None)  # type: ignore[assignment]
    del engine  # dealloc frees the queued event: its fd goes with it
    gc.collect()
    h.close()
    assert read_all(c) == b""
    c.close()
    assert fd_count() <= before  # (<=: a collected object of another test may close its own)


def test_engine_pool_hands_over_or_closes():
    h = Harness(detach_paths=[b"/ws"])
    try:
        glue = SimpleNamespace(on_detach=None)
        c = h.client(WS)
        _, fd, req, leftover = h.wait_event("detach")
        EnginePool._on_detach(glue, fd, req, leftover)  # type: ignore[arg-type]
        assert read_all(c) == b""  # no callback: closed
        got: list[tuple[int, Any, bytes]] = []
        glue.on_detach = lambda fd, req, leftover: got.append((fd, req, leftover))
        c2 = h.client(WS + b"x")
        _, fd, req, leftover = h.wait_event("detach")
        EnginePool._on_detach(glue, fd, req, leftover)  # type: ignore[arg-type]
        assert got == [(fd, req, b"x")]
        os.close(fd)
        c.close()
        c2.close()
    finally:
        h.close()


@pytest.mark.parametrize("value, error, text", [
    (b"/ws", TypeError, "sequence of bytes, not one string"),
    ("/ws", TypeError, "sequence of bytes, not one string"),
    (["/ws"], TypeError, "detach_paths[0] must be bytes, not str"),
    ([b"/a", b""], ValueError, "detach_paths[1] must be 1..8192 bytes long"),
    ([b"/" * 8193], ValueError, "must be 1..8192 bytes long"),
    ([b"/%d" % i for i in range(257)], ValueError, "at most 256 paths"),
    (5, TypeError, "detach_paths must be a sequence of bytes"),
])
def test_bad_detach_paths(value, error, text):
    with pytest.raises(error) as info:
        _core.Engine(detach_paths=value)
    assert text in str(info.value)
