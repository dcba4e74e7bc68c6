"""fastrr._core.Engine in-process: real sockets as clients, the test itself as
the PHP worker (goridge frames over pipes). No PHP, no fastrr process: fast,
and the suite to run under ASan (csrc/README.md). The end-to-end behaviour is
covered by tests/integration with `--engine c`."""

from __future__ import annotations

import json
import os
import select
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fastrr import _core

JSON, CONTROL, ERROR = _core.FLAG_JSON, _core.FLAG_CONTROL, _core.FLAG_ERROR
STREAM, STOP, PING, PONG = _core.STREAM, _core.STOP, _core.PING, _core.PONG
STOP_FRAME = _core.encode_frame(CONTROL | JSON, b'{"stop":true}')


class FakeWorker:
    """The worker end of two pipes: reads request frames, writes answers."""

    def __init__(self, engine: _core.Engine, pid: int, max_jobs: int = 0):
        self.pid = pid
        self.in_r, self.in_w = os.pipe()    # engine -> worker (its stdin)
        self.out_r, self.out_w = os.pipe()  # worker -> engine (its stdout)
        self.reader = _core.FrameReader(1 << 30)
        self.frames: list[tuple[int, int, tuple[int, ...], bytes]] = []
        engine.add_worker(pid, self.out_r, self.in_w, max_jobs)

    def frame(self, timeout: float = 3.0) -> tuple[int, int, tuple[int, ...], bytes]:
        deadline = time.monotonic() + timeout
        while not self.frames:
            left = deadline - time.monotonic()
            assert left > 0, f"worker {self.pid}: no frame within {timeout}s"
            if select.select([self.in_r], [], [], left)[0]:
                data = os.read(self.in_r, 1 << 20)
                assert data, "engine closed the worker's stdin"
                self.frames += self.reader.feed(data) or []
        return self.frames.pop(0)

    def request(self, timeout: float = 3.0) -> dict[str, Any]:
        flags, _, options, payload = self.frame(timeout)
        assert flags in (JSON, _core.FLAG_PROTO)
        ctx = json.loads(payload[:options[0]])
        ctx["_body"] = payload[options[0]:]
        return ctx

    def idle(self, wait: float = 0.2) -> bool:
        return not self.frames and not select.select([self.in_r], [], [], wait)[0]

    def send(self, data: bytes) -> None:
        os.write(self.out_w, data)

    def respond(self, status: int = 200, body: bytes = b"", headers: dict | None = None,
                byte10: int = 0) -> None:
        ctx = json.dumps({"status": status, "headers": headers or {}}).encode()
        self.send(_core.encode_frame(JSON, ctx + body, (len(ctx),), byte10))

    def close(self) -> None:
        for fd in (self.in_r, self.in_w, self.out_r, self.out_w):
            try:
                os.close(fd)
            except OSError:
                pass


class Harness:
    def __init__(self, **limits: Any):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.engine = _core.Engine(self.sock.fileno(), **{"log_level": 10, **limits})
        self.workers: list[FakeWorker] = []
        self.events: list[tuple[Any, ...]] = []

    def worker(self, pid: int = 1000, max_jobs: int = 0) -> FakeWorker:
        w = FakeWorker(self.engine, pid, max_jobs)
        self.workers.append(w)
        return w

    def client(self, data: bytes = b"") -> socket.socket:
        c = socket.create_connection(("127.0.0.1", self.port), timeout=3)
        if data:
            c.sendall(data)
        return c

    def wait_event(self, kind: str, timeout: float = 3.0) -> tuple[Any, ...]:
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev[0] == kind:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            assert left > 0, f"no {kind} event; got {self.events}"
            select.select([self.engine.event_fd], [], [], left)
            self.events += self.engine.poll_events()

    def logs(self) -> list[tuple[Any, ...]]:
        self.events += self.engine.poll_events()
        return [e for e in self.events if e[0] == "log"]

    def close(self) -> None:
        self.engine.close()
        for w in self.workers:
            w.close()
        self.sock.close()


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness()
    yield harness
    harness.close()


_pending: dict[int, bytes] = {}  # bytes read past a response, per socket


def read_response(sock: socket.socket, timeout: float = 3.0) -> tuple[bytes, bytes]:
    """One Content-Length response: (head, body)."""
    sock.settimeout(timeout)
    data = _pending.pop(sock.fileno(), b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    _pending[sock.fileno()] = body[length:]
    return head, body[:length]


def read_all(sock: socket.socket, timeout: float = 3.0) -> bytes:
    sock.settimeout(timeout)
    data = _pending.pop(sock.fileno(), b"")
    while chunk := sock.recv(65536):
        data += chunk
    return data


GET = b"GET /hello?x=1 HTTP/1.1\r\nHost: t\r\n\r\n"


def test_request_reaches_the_worker_and_the_answer_the_client(h):
    w = h.worker()
    c = h.client(b"GET /a?b=1 HTTP/1.1\r\nHost: example\r\nX-Api-Key: k\r\nCookie: s=a%20b\r\n\r\n")
    ctx = w.request()
    assert ctx["method"] == "GET" and ctx["uri"] == "http://example/a?b=1" and ctx["rawQuery"] == "b=1"
    assert ctx["headers"]["X-Api-Key"] == ["k"] and ctx["cookies"] == {"s": "a b"}
    assert ctx["remoteAddr"] == "127.0.0.1" and ctx["protocol"] == "HTTP/1.1" and ctx["parsed"] is False
    w.respond(201, b"hi", {"X-A": ["1", "2"]})
    head, body = read_response(c)
    assert head.startswith(b"HTTP/1.1 201 Created\r\n") and b"X-A: 1\r\nX-A: 2\r\n" in head
    assert b"Server: fastrr" in head and b"Content-Length: 2" in head and body == b"hi"
    c.sendall(GET)  # keep-alive: the same connection, the same (only) worker
    w.request()
    w.respond(200, b"again")
    assert read_response(c)[1] == b"again"
    c.close()


def test_pipelined_requests_are_answered_in_order(h):
    w = h.worker()
    c = h.client(b"".join(b"GET /%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(3)))
    for i in range(3):
        assert w.request()["uri"].endswith(f"/{i}")
        w.respond(200, str(i).encode())
    assert [read_response(c)[1] for _ in range(3)] == [b"0", b"1", b"2"]


def test_head_http10_and_connection_close(h):
    w = h.worker()
    c = h.client(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n")
    w.request()
    w.respond(200, b"x" * 10)
    head = c.recv(4096)
    assert b"Content-Length: 10\r\n" in head and head.endswith(b"\r\n\r\n")
    c2 = h.client(b"GET / HTTP/1.0\r\n\r\n")
    assert w.request()["protocol"] == "HTTP/1.0"
    w.respond(200, b"old")
    data = read_all(c2)
    assert data.startswith(b"HTTP/1.0 200 OK") and b"Connection: close" in data and data.endswith(b"old")


def test_urlencoded_forms_become_the_data_tree(h):
    w = h.worker()
    body = b"a=1&b[]=2&b[]=3&c[d]=x"
    c = h.client(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    ctx = w.request()
    assert ctx["parsed"] is True and json.loads(ctx["_body"]) == {"a": "1", "b": ["2", "3"], "c": {"d": "x"}}
    w.respond(200)
    read_response(c)
    bad = b"a=1&a[b]=2"
    c.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(bad), bad))
    data = read_all(c)
    assert data.startswith(b"HTTP/1.1 400 Bad Request") and b"invalid multiple values to key 'a[b]'" in data


def test_chunked_body_and_expect_continue(h):
    w = h.worker()
    c = h.client(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    assert c.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
    c.sendall(b"hello")
    assert w.request()["_body"] == b"hello"
    w.respond(200)
    read_response(c)
    c.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    assert w.request()["_body"] == b"abcde"


@pytest.mark.parametrize("raw, status", [
    (b"GARBAGE\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\n\r\n", b"400"),
    (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\n\r\n", b"413"),
    (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"a" * 70000 + b"\r\n\r\n", b"431"),
])
def test_rejects_answer_and_close(h, raw, status):
    h.worker()
    data = read_all(h.client(raw))
    assert data.startswith(b"HTTP/1.1 " + status) and b"Connection: close" in data
    assert any(e[2] == "request rejected" for e in h.logs())


def test_no_free_worker_waits_then_503(h):
    h.close()
    h.__init__(allocate_timeout=0.3)
    c = h.client(GET)
    started = time.monotonic()
    head, body = read_response(c)  # keep-alive: the connection stays
    assert 0.25 < time.monotonic() - started < 2
    assert head.startswith(b"HTTP/1.1 503") and head.endswith(b"Retry-After: 1\r\nNo-Workers: true")
    assert body == b"503 Service Unavailable: no free worker within allocate_timeout (0.3s); busy workers: []\n"


def test_full_queue_is_503_at_once_and_queued_requests_run_fifo(h):
    h.close()
    h.__init__(max_queue_size=1)
    first = h.client(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(0.1)
    head, body = read_response(h.client(GET))
    assert head.startswith(b"HTTP/1.1 503") and b"request queue is full (max_queue_size 1)" in body
    w = h.worker()  # a worker arrives: the queued request runs
    assert w.request()["uri"].endswith("/1")
    w.respond(200, b"ok")
    assert read_response(first)[1] == b"ok"


def test_worker_error_is_500_text_only_in_debug(h):
    w = h.worker()
    c = h.client(GET)
    w.request()
    w.send(_core.encode_frame(ERROR, b"boom <b>"))
    head, body = read_response(c)
    assert head.startswith(b"HTTP/1.1 500") and body == b"500 Internal Server Error\n"
    assert ("log", 40, "worker error", {"error": "boom <b>"}) in h.logs()
    h.close()
    h.__init__(debug=True, internal_error_code=599)
    w = h.worker()
    c = h.client(GET)
    w.request()
    w.send(_core.encode_frame(ERROR, b"boom <b>"))
    head, body = read_response(c)
    assert head.startswith(b"HTTP/1.1 599 Error") and body == b"599 Error: boom &lt;b&gt;\n"


def test_stop_request_reruns_on_another_worker(h):
    a = h.worker(1001)
    c = h.client(GET)
    a.request()
    b = h.worker(1002)  # arrives while a is busy
    a.send(_core.encode_frame(0, b'{"stop":true}', (13,)))
    assert h.wait_event("stop_requested") == ("stop_requested", 1001)
    b.request()
    b.respond(200, b"second")
    assert read_response(c)[1] == b"second"
    assert h.engine.stop_worker(1001) == 0  # Python's stop: the CONTROL frame goes out
    assert a.frame()[0] == CONTROL | JSON


def test_worker_eof_mid_request_is_502(h):
    w = h.worker()
    c = h.client(GET)
    w.request()
    os.close(w.out_w)
    # (busy: a request was on it; 0 requests completed before)
    assert h.wait_event("failed") == ("failed", 1000, "relay closed by the worker (EOF)", True, True, 0)
    head, body = read_response(c)
    assert head.startswith(b"HTTP/1.1 502") and body == b"502 Bad Gateway\n"


def test_worker_eof_when_idle_says_so_with_its_execs(h):
    w = h.worker()
    c = h.client(GET)
    w.request()
    w.respond()
    assert read_response(c)[0].startswith(b"HTTP/1.1 200")
    os.close(w.out_w)
    assert h.wait_event("failed") == ("failed", 1000, "relay closed by the worker (EOF)", True, False, 1)


def test_garbage_on_stdout_is_a_protocol_failure(h):
    w = h.worker()
    c = h.client(GET)
    w.request()
    w.send(b"garbage!garbage!garbage!")
    ev = h.wait_event("failed")
    assert ev[2] == "validation failed on the message sent to STDOUT: b'garbage!garbage!garbage!'"
    assert ev[3] is False
    assert read_response(c)[0].startswith(b"HTTP/1.1 502")


def test_exec_ttl_answers_504_once_the_process_is_gone(h):
    h.close()
    h.__init__(exec_ttl=0.3, doomed_wait=5)
    w = h.worker()
    c = h.client(GET)
    w.request()
    assert h.wait_event("exec_ttl") == ("exec_ttl", 1000, "exec_ttl (0.3s) exceeded")
    c.settimeout(0.3)
    with pytest.raises(TimeoutError):
        c.recv(1)  # held until Python says the process exited
    assert h.engine.remove_worker(1000, "exited") is False  # already forgotten, answer released
    head, _ = read_response(c)
    assert head.startswith(b"HTTP/1.1 504")


def test_remove_worker_answers_its_request(h):
    w = h.worker()
    c = h.client(GET)
    w.request()
    assert h.engine.remove_worker(1000, "worker exited with code 9 during the request") is True
    assert read_response(c)[0].startswith(b"HTTP/1.1 502")
    assert ("log", 40, "request failed", {"pid": 1000, "status": 502,
            "reason": "worker exited with code 9 during the request"}) in h.logs()


def test_streams_chunks_ping_pong_and_stop_when_the_client_leaves(h):
    w = h.worker()
    c = h.client(GET)
    w.request()
    w.respond(200, b"one", byte10=STREAM)
    w.respond(200, b"two", byte10=STREAM | PING)
    flags, byte10, _, _ = w.frame()
    assert byte10 == PONG
    w.respond(200, b"", byte10=0)
    data = b""
    while not data.endswith(b"0\r\n\r\n"):
        data += c.recv(4096)
    assert b"Transfer-Encoding: chunked" in data and data.endswith(b"3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n")
    c.sendall(GET)
    w.request()
    w.respond(200, b"a", byte10=STREAM)
    c.recv(4096)
    c.close()
    time.sleep(0.1)
    w.respond(200, b"b", byte10=STREAM)
    assert w.frame()[1] == STOP
    w.respond(200, b"", byte10=0)  # the end of the stream frees the worker
    c2 = h.client(GET)
    w.request()
    w.respond(200, b"free")
    assert read_response(c2)[1] == b"free"


def test_early_hints_then_the_response(h):
    w = h.worker()
    c = h.client(GET)
    w.request()
    w.respond(103, b"", {"Link": ["</a.css>; rel=preload"]}, byte10=STREAM)
    w.respond(200, b"ok")
    data = b""
    while not data.endswith(b"ok"):
        data += c.recv(4096)
    assert data.startswith(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK")


def test_invalid_response_is_500_and_closes(h):
    w = h.worker()
    c = h.client(GET)
    w.request()
    w.respond(99)
    data = read_all(c)
    assert data.startswith(b"HTTP/1.1 500") and b"unknown status code from worker: 99" in data


def test_max_jobs_then_stop_frame(h):
    w = h.worker(max_jobs=1)
    c = h.client(GET)
    w.request()
    w.respond(200)
    read_response(c)
    assert h.wait_event("max_jobs") == ("max_jobs", 1000)
    c.sendall(GET)  # the retired worker gets nothing: the request waits
    assert w.idle()
    assert h.engine.stop_worker(1000) == 0
    assert w.frame()[3] == b'{"stop":true}'


def test_busy_worker_stop_is_deferred_until_its_request_ends(h):
    w = h.worker()
    c = h.client(GET)
    w.request()
    assert h.engine.stop_worker(1000) == 1
    w.respond(200, b"done")
    assert read_response(c)[1] == b"done"
    assert h.wait_event("stop_sent") == ("stop_sent", 1000)
    assert w.frame()[0] == CONTROL | JSON


def test_read_and_idle_timeouts(h):
    h.close()
    h.__init__(read_timeout=0.3, idle_timeout=0.3)
    c = h.client(b"GET / HTTP/1.1\r\nHost: t\r\n")
    assert read_all(c).startswith(b"HTTP/1.1 408")
    assert read_all(h.client()) == b""  # idle connection: closed without an answer


def test_stop_accepting_drains_then_refuses(h):
    w = h.worker()
    c = h.client(GET)
    w.request()
    idle = h.client()
    time.sleep(0.05)
    h.engine.stop_accepting()
    assert read_all(idle) == b""  # idle keep-alive connections are closed at once
    w.respond(200, b"last")
    head, body = read_response(c)
    assert b"Connection: close" in head and body == b"last"
    assert h.wait_event("drained") == ("drained",)


def test_access_events(h):
    h.close()
    h.__init__(access_log=2)
    w = h.worker()
    c = h.client(b"GET /x?q=1 HTTP/1.1\r\nHost: t\r\nUser-Agent: ua\r\n\r\n")
    w.request()
    w.respond(204)
    read_response(c)
    _, fields = h.wait_event("access")
    assert fields["status"] == 204 and fields["method"] == "GET" and fields["target"] == "/x?q=1"
    assert fields["host"] == "t" and fields["user_agent"] == "ua" and fields["peer"].startswith("127.0.0.1:")


def test_multipart_goes_through_python_and_the_answer_waits_for_cleanup(h):
    w = h.worker()
    body = b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--B--\r\n"
    c = h.client(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=B\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    _, token, ctype = h.wait_event("upload_start")
    assert ctype == "multipart/form-data; boundary=B"
    h.engine.upload_go(token)
    _, token2, data = h.wait_event("upload_data")
    assert token2 == token and data == body
    h.engine.upload_ack(token, len(data))
    h.wait_event("upload_end")
    h.engine.upload_done(token, b'{"a":"1"}', b'{"f":{"name":"x"}}')
    ctx = w.request()
    assert ctx["parsed"] is True and ctx["_body"] == b'{"a":"1"}' and ctx["uploads"] == {"f": {"name": "x"}}
    w.respond(200, b"ok")
    h.wait_event("upload_drop")
    c.settimeout(0.2)
    with pytest.raises(TimeoutError):
        c.recv(1)  # held: the temp files are not gone yet
    h.engine.upload_release(token)
    assert read_response(c)[1] == b"ok"


def test_stats_and_close(h):
    w = h.worker()
    c = h.client(GET)
    w.request()
    st = h.engine.stats()
    assert st["in_flight"] == 1 and st["connections"] == 1 and st["workers"][1000]["state"] == "working"
    w.respond(200)
    read_response(c)
    st = h.engine.stats()
    assert st["in_flight"] == 0 and st["workers"][1000]["execs"] == 1
    assert st["workers"][1000]["state"] == "ready"


def test_closed_engine_refuses_commands():
    sock = socket.socket()
    engine = _core.Engine(log_level=10)
    assert engine.close() == []
    assert engine.closed
    with pytest.raises(RuntimeError):
        engine.stats()
    sock.close()


def test_http_metrics_count_requests_by_status_in_engine_memory():
    """metrics=True (http_metrics): every answered request is counted by status with its
    duration bucket; a 503 for want of a worker also counts as no_free_workers; a connection
    that never sent a request counts nothing. Without metrics=True there is nothing to read."""
    h = Harness(metrics=True, allocate_timeout=0.3)
    try:
        w = h.worker()
        c = h.client()
        for status in (200, 200, 404, 500):
            c.sendall(GET)
            w.request()
            if status == 404:
                time.sleep(0.03)  # lands past the 0.025 s bound
            w.respond(status, b"x")
            assert read_response(c)[0].startswith(f"HTTP/1.1 {status}".encode())
        idle = h.client()  # connects, sends nothing
        c.sendall(GET)
        w.request()  # the only worker is busy now: the next request waits and gets 503
        other = h.client(GET)
        assert read_response(other)[0].startswith(b"HTTP/1.1 503")
        w.respond(200, b"late")
        read_response(c)
        idle.close()
        m = h.engine.metrics()
        assert m is not None and m["no_free_workers"] == 1
        assert m["bounds"] == [.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60]
        assert {s: r["count"] for s, r in m["requests"].items()} == {200: 3, 404: 1, 500: 1, 503: 1}
        for r in m["requests"].values():
            assert sum(r["buckets"]) == r["count"] and len(r["buckets"]) == 15
        assert m["requests"][404]["buckets"][3] == 1 and m["requests"][404]["sum"] >= 0.025
        assert m["requests"][503]["sum"] >= 0.25  # waited allocate_timeout
        c.close()
        other.close()
    finally:
        h.close()
    plain = Harness()
    try:
        assert plain.engine.metrics() is None
    finally:
        plain.close()
