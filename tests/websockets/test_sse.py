"""Server-Sent Events on websockets.sse.path, both fronts (`--engine both`): authorized by PHP
like a join, one event per message (id = the message id, event = the topic), Last-Event-ID
resume from the broker's history, keep-alive comments, PHP's answer on a denial."""

from __future__ import annotations

import socket
import time

import pytest

from tests.websockets.conftest import WsFactory, read_http

SSE = {"sse": {"path": "/events"}}


class SseClient:
    def __init__(self, port: int, query: str, headers: dict[str, str] | None = None, rcvbuf: int = 0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        hdrs = {"Host": "x", "Cookie": "auth=ok", "Accept": "text/event-stream", **(headers or {})}
        self.sock.sendall(f"GET /events?{query} HTTP/1.1\r\n".encode()
                          + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()).encode() + b"\r\n")
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, self.buf
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.head = head.decode("latin-1")

    def block(self, timeout: float = 10.0) -> str:
        """The next event block (up to its blank line), comments included."""
        deadline = time.monotonic() + timeout
        while b"\n\n" not in self.buf:
            assert time.monotonic() < deadline, f"no event within {timeout}s: {self.buf!r}"
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            assert chunk, f"stream ended: {self.buf!r}"
            self.buf += chunk
        text, _, self.buf = self.buf.partition(b"\n\n")
        return text.decode()

    def event(self, timeout: float = 10.0) -> dict[str, str]:
        """The next event that is not a comment: {"id", "event", "data"}."""
        while True:
            block = self.block(timeout)
            fields: dict[str, list[str]] = {}
            for line in block.split("\n"):
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(": ")
                fields.setdefault(name, []).append(value)
            if fields:
                return {k: "\n".join(v) for k, v in fields.items()}

    def ended(self, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.sock.settimeout(1)
                if self.sock.recv(1 << 20) == b"":
                    return True
            except ConnectionResetError:
                return True
            except TimeoutError:
                pass
        return False

    def close(self) -> None:
        self.sock.close()


def test_subscribe_receive_and_resume_with_last_event_id(wsf: WsFactory, fastrr_engine):
    srv = wsf.start(SSE)
    sse = SseClient(srv.port, "topic=a&topic=b")
    try:
        assert sse.head.startswith("HTTP/1.1 200 OK")
        assert "Content-Type: text/event-stream" in sse.head and "X-Topics: a,b" in sse.head  # PHP's header
        assert sse.block() == ": connected"
        srv.publish("a", "one")
        srv.publish("c", "not ours")
        srv.publish("b", "two\nlines")
        first, second = sse.event(), sse.event()
        assert (first["event"], first["data"]) == ("a", "one")
        assert (second["event"], second["data"]) == ("b", "two\nlines")
        assert first["id"] != second["id"]
    finally:
        sse.close()
    srv.publish("a", "three")
    srv.publish("b", "four")
    for headers, query in (({"Last-Event-ID": first["id"]}, "topic=a&topic=b"),
                           ({}, f"topic=a&topic=b&lastEventID={first['id']}")):
        again = SseClient(srv.port, query, headers)
        try:
            got = [again.event() for _ in range(3)]
            assert [(e["event"], e["data"]) for e in got] == [("b", "two\nlines"), ("a", "three"), ("b", "four")]
            assert got[0]["id"] == second["id"]
            srv.publish("a", "live")
            assert again.event()["data"] == "live"
        finally:
            again.close()


def test_an_unknown_last_event_id_says_missed(wsf: WsFactory, fastrr_engine):
    srv = wsf.start(SSE)
    sse = SseClient(srv.port, "topic=a", {"Last-Event-ID": "1-1-nowhere"})
    try:
        assert sse.event() == {"event": "@missed", "data": "a"}
        srv.publish("a", "next")
        assert sse.event()["data"] == "next"
    finally:
        sse.close()


def test_denied_gets_phps_answer_and_bad_requests_are_ours(wsf: WsFactory, fastrr_engine):
    srv = wsf.start(SSE)
    status, _, body = read_http(srv.port, b"GET /events?topic=a&topic=forbidden HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, body) == (403, b"topic forbidden")
    status, _, body = read_http(srv.port, b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 400 and b"expected ?topic=<name>" in body


def test_keep_alive_comments_slow_readers_and_shutdown(wsf: WsFactory, fastrr_engine):
    srv = wsf.start({**SSE, "ping_interval": "300ms", "send_queue": 65536, "close_timeout": "1s"})
    sse = SseClient(srv.port, "topic=a")
    slow = SseClient(srv.port, "topic=big", rcvbuf=8192)
    try:
        assert sse.block() == ": connected"
        assert sse.block() == ": keep-alive"
        for _ in range(160):  # 10 MiB: more than the kernel buffers between us hold
            srv.publish("big", "z" * 65536)
        srv.wait_output("event stream client does not read, closing it")
        assert slow.ended()
        srv.server.proc.send_signal(15)
        assert sse.ended()
        assert srv.server.proc.wait(30) == 0
    finally:
        sse.close()
        slow.close()


@pytest.mark.parametrize("path", ["/eventsx?topic=a", "/wsx", "/ws/", "/events/x?topic=a"])
def test_both_paths_on_one_listener_leave_other_requests_to_php(wsf: WsFactory, fastrr_engine, path):
    srv = wsf.start(SSE)
    status, _, body = read_http(srv.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert (status, body) == (200, b"app -")
