"""Server-Sent Events over HTTP/2 (websockets/sse_h2.py): what a browser on https gets, since
ALPN picks h2 for it, and h2c (prior knowledge). A real fastrr serve with a TLS listener and
h2c on the plain one (both the Python front's: the C engine has neither), the suite's PHP app
authorizing, httpx (h2) as the client, and the h2 library on a raw socket where a test needs
to hold one connection's streams, windows and resets in its own hands."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import httpx
import pytest
from h2.errors import ErrorCodes

from tests.conftest import ROOT, free_port
from tests.integration.test_tls_h2 import make_cert
from tests.websockets.conftest import AUTH, WsFactory, WsServer


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("sse-h2-certs"))


class Servers:
    """One fastrr with both ways to HTTP/2: https (ALPN h2) and h2c on the plain port."""

    def __init__(self, wsf: WsFactory, cert: tuple[Path, Path]):
        self.wsf = wsf
        self.cert = cert
        self.cafile = str(cert[0])

    def start(self, http2: dict[str, Any] | None = None, command: str = "", **ws: Any) -> WsServer:
        self.tls_port = free_port()
        extra: dict[str, Any] = {"http": {
            "ssl": {"address": f"127.0.0.1:{self.tls_port}", "cert": self.cafile, "key": str(self.cert[1])},
            "http2": {"h2c": True, **(http2 or {})}}}
        if command:
            extra["server"] = {"command": command}
        srv = self.wsf.start({"sse": {"path": "/events"}, **ws}, extra=extra)
        self.srv = srv
        return srv

    def base(self, carrier: str) -> str:
        return f"https://localhost:{self.tls_port}" if carrier == "tls" else f"http://127.0.0.1:{self.srv.port}"

    def client(self, carrier: str) -> httpx.Client:
        timeout = httpx.Timeout(10.0)
        if carrier == "tls":
            return httpx.Client(http2=True, verify=ssl.create_default_context(cafile=self.cafile), timeout=timeout)
        return httpx.Client(http1=False, http2=True, timeout=timeout)  # h2c with prior knowledge

    def raw(self, carrier: str, **kw: Any) -> RawH2:
        if carrier == "tls":
            return RawH2(self.tls_port, self.cafile, **kw)
        return RawH2(self.srv.port, None, **kw)


@pytest.fixture
def servers(wsf: WsFactory, cert: tuple[Path, Path]) -> Servers:
    return Servers(wsf, cert)


def blocks(chunks: Iterator[bytes]) -> Iterator[str]:
    """The event blocks of an SSE body (up to each blank line), comments included."""
    buf = b""
    for chunk in chunks:
        buf += chunk
        while b"\n\n" in buf:
            block, _, buf = buf.partition(b"\n\n")
            yield block.decode()


def fields(block: str) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    for line in block.split("\n"):
        if not line.startswith(":"):
            name, _, value = line.partition(": ")
            out.setdefault(name, []).append(value)
    return {k: "\n".join(v) for k, v in out.items()}


def next_event(stream: Iterator[str]) -> dict[str, str]:
    """The next block that is not a comment."""
    for block in stream:
        if not block.startswith(":"):
            return fields(block)
    raise AssertionError("stream ended")


class _Client(h2.connection.H2Connection):
    """h2's client side, which can be told to open a stream over the server's limit (what a
    client that has not yet seen the server's SETTINGS does)."""

    ignore_limit = False

    @property
    def open_outbound_streams(self) -> int:
        return 0 if self.ignore_limit else super().open_outbound_streams


class RawH2:
    """An h2 client on one socket (TLS with ALPN h2, or h2c prior knowledge): every stream's
    headers, data, end and reset recorded; data is acknowledged unless the stream is in `stall`."""

    def __init__(self, port: int, cafile: str | None, stream_window: int = 0):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if cafile is not None:
            ctx = ssl.create_default_context(cafile=cafile)
            ctx.set_alpn_protocols(["h2"])
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
            assert sock.selected_alpn_protocol() == "h2"
        self.sock = sock
        self.h2 = _Client(h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.h2.initiate_connection()
        if stream_window:
            # small stream windows for what the server sends, and a connection window that is
            # never the limit: a stalled stream must not hold up the others
            self.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: stream_window})
            self.h2.increment_flow_control_window(1 << 30)
        self.stall: set[int] = set()
        self.headers: dict[int, dict[bytes, bytes]] = {}
        self.data: dict[int, bytearray] = {}
        self.ended: set[int] = set()
        self.resets: dict[int, int] = {}
        self.terminated = False
        self.settings_seen = False
        self.closed = False
        self._send()

    def _send(self) -> None:
        out = self.h2.data_to_send()
        if out:
            self.sock.sendall(out)

    def get(self, path: str, headers: dict[str, str] | None = None, over_limit: bool = False) -> int:
        self.h2.ignore_limit = over_limit
        sid = self.h2.get_next_available_stream_id()
        hdrs = [(b":method", b"GET"), (b":path", path.encode()), (b":scheme", b"https"),
                (b":authority", b"localhost")]
        hdrs += [(k.lower().encode(), v.encode()) for k, v in {**AUTH, **(headers or {})}.items()]
        self.h2.send_headers(sid, hdrs, end_stream=True)
        self.h2.ignore_limit = False
        self.data[sid] = bytearray()
        self._send()
        return sid

    def reset(self, sid: int) -> None:
        self.h2.reset_stream(sid, ErrorCodes.CANCEL)
        self._send()

    def pump(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(1 << 20)
        except TimeoutError:
            return
        except (ConnectionResetError, ssl.SSLError):
            chunk = b""
        if not chunk:
            self.closed = True
            return
        for event in self.h2.receive_data(chunk):
            if isinstance(event, h2.events.ResponseReceived):
                self.headers[event.stream_id] = dict(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                self.data.setdefault(event.stream_id, bytearray()).extend(event.data)
                if event.stream_id not in self.stall:
                    self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.ended.add(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self.resets[event.stream_id] = event.error_code
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.terminated = True
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                self.settings_seen = True
        self._send()

    def wait(self, done: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline and not self.closed, \
                f"{what}: not within {timeout}s (data {dict(self.data)!r}, resets {self.resets})"
            self.pump(min(0.2, max(0.01, deadline - time.monotonic())))

    def wait_text(self, sid: int, text: bytes, timeout: float = 10.0) -> None:
        self.wait(lambda: text in self.data.get(sid, b""), f"{text!r} on stream {sid}", timeout)

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("carrier", ["tls", "h2c"])
def test_stream_receives_publishes_keep_alives_and_resumes(servers: Servers, carrier: str):
    srv = servers.start(ping_interval="300ms")
    url = servers.base(carrier) + "/events"
    with servers.client(carrier) as client:
        with client.stream("GET", url, params=[("topic", "a"), ("topic", "b")], headers=AUTH) as resp:
            assert resp.http_version == "HTTP/2"
            assert resp.status_code == 200
            assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"
            assert resp.headers["cache-control"] == "no-cache"
            assert resp.headers["x-topics"] == "a,b"  # PHP's header on the allowed stream
            assert "content-length" not in resp.headers
            events = blocks(resp.iter_raw())
            assert next(events) == ": connected"
            assert next(events) == ": keep-alive"  # on the gateway's ticker
            srv.publish("a", "one")
            srv.publish("c", "not ours")
            srv.publish("b", "two\nlines")
            first, second = next_event(events), next_event(events)
            assert (first["event"], first["data"]) == ("a", "one")
            assert (second["event"], second["data"]) == ("b", "two\nlines")
        srv.publish("a", "three")
        srv.publish("b", "four")
        for headers, params in (({"Last-Event-ID": first["id"]}, [("topic", "a"), ("topic", "b")]),
                                ({}, [("topic", "a"), ("topic", "b"), ("lastEventID", first["id"])])):
            with client.stream("GET", url, params=params, headers={**AUTH, **headers}) as resp:
                assert resp.http_version == "HTTP/2" and resp.status_code == 200
                events = blocks(resp.iter_raw())
                got = [next_event(events) for _ in range(3)]
                assert [(e["event"], e["data"]) for e in got] == \
                    [("b", "two\nlines"), ("a", "three"), ("b", "four")]
                assert got[0]["id"] == second["id"]
                srv.publish("a", "live")
                assert next_event(events)["data"] == "live"
        # an id no topic retains: @missed, then the live stream
        with client.stream("GET", url, params={"topic": "a"}, headers={**AUTH, "Last-Event-ID": "1-1-x"}) as resp:
            events = blocks(resp.iter_raw())
            assert next_event(events) == {"event": "@missed", "data": "a"}
        # the same connection still serves PHP's requests
        answer = client.get(servers.base(carrier) + "/hello")
        assert (answer.http_version, answer.status_code, answer.text) == ("HTTP/2", 200, "app -")
    # httpx leaves a stream it stopped reading open (no RST_STREAM) until its connection
    # closes: then every stream of it is unsubscribed
    srv.wait_topics({})


@pytest.mark.parametrize("carrier", ["tls", "h2c"])
def test_denied_gets_phps_answer_and_bad_requests_are_ours(servers: Servers, carrier: str):
    servers.start()
    base = servers.base(carrier)
    with servers.client(carrier) as client:
        resp = client.get(base + "/events", params=[("topic", "a"), ("topic", "forbidden")], headers=AUTH)
        assert (resp.http_version, resp.status_code, resp.text) == ("HTTP/2", 403, "topic forbidden")
        assert resp.headers["content-type"] == "text/plain"  # PHP's own header
        resp = client.get(base + "/events", params={"topic": "private-x"}, headers=AUTH)
        assert resp.status_code == 403
        resp = client.get(base + "/events", headers=AUTH)
        assert resp.status_code == 400 and "expected ?topic=<name>" in resp.text
        # the authorizing worker dies: fastrr's 5xx on the stream (the pool restarts the worker)
        resp = client.get(base + "/events", params={"topic": "crash"}, headers=AUTH)
        assert resp.status_code >= 500
        # the connection goes on after a denial
        resp = client.get(base + "/events/x", params={"topic": "a"})
        assert (resp.status_code, resp.text) == (200, "app -")  # not the path: PHP's


def test_origin_refused_and_no_connect_protocol(servers: Servers):
    servers.start(allowed_origin="https://app.example")
    raw = servers.raw("tls")
    try:
        sid = raw.get("/events?topic=a", {"Origin": "https://evil.example"})
        raw.wait(lambda: sid in raw.ended, "the 405")
        assert raw.headers[sid][b":status"] == b"405" and b"origin not allowed" in raw.data[sid]
        # RFC 8441 is not offered: WebSockets over HTTP/2 would be an extended CONNECT
        assert raw.settings_seen and raw.h2.remote_settings.enable_connect_protocol in (None, 0)
    finally:
        raw.close()


@pytest.mark.parametrize("carrier", ["tls", "h2c"])
def test_two_streams_and_a_request_on_one_connection_and_a_reset(servers: Servers, carrier: str):
    srv = servers.start()
    raw = servers.raw(carrier)
    try:
        first = raw.get("/events?topic=a")
        second = raw.get("/events?topic=b&topic=a")
        page = raw.get("/hello")
        raw.wait(lambda: page in raw.ended, "the page request")
        assert raw.headers[page][b":status"] == b"200" and bytes(raw.data[page]) == b"app -"
        raw.wait_text(first, b": connected\n\n")
        raw.wait_text(second, b": connected\n\n")
        srv.wait_topics({"a": 2, "b": 1})
        srv.publish("a", "to both")
        srv.publish("b", "to the second")
        raw.wait_text(second, b"data: to the second\n\n")
        raw.wait_text(first, b"data: to both\n\n")
        assert b"to the second" not in raw.data[first]
        assert raw.data[second].index(b"to both") < raw.data[second].index(b"to the second")
        # the client resets one: unsubscribed at once, the other and the connection go on
        raw.reset(first)
        srv.wait_topics({"a": 1, "b": 1})
        again = raw.get("/hello")
        raw.wait(lambda: again in raw.ended, "a request after the reset")
        srv.publish("a", "after the reset")
        raw.wait_text(second, b"data: after the reset\n\n")
        assert b"after the reset" not in raw.data[first]
        assert first not in raw.resets and second not in raw.ended
    finally:
        raw.close()
    srv.wait_topics({})  # the connection went: its streams are unsubscribed


def test_event_streams_hold_their_share_of_max_concurrent_streams(servers: Servers):
    """The documented limit: an open event stream is an open h2 stream. Past
    http2.max_concurrent_streams a new stream is refused on its own (REFUSED_STREAM, which
    clients retry) - never queued behind the event streams - and served once one ends."""
    srv = servers.start(http2={"max_concurrent_streams": 2})
    raw = servers.raw("tls")
    try:
        first, second = raw.get("/events?topic=a"), raw.get("/events?topic=b")
        raw.wait_text(first, b": connected\n\n")
        raw.wait_text(second, b": connected\n\n")
        refused = raw.get("/hello", over_limit=True)
        raw.wait(lambda: refused in raw.resets, "REFUSED_STREAM past the limit")
        assert raw.resets[refused] == ErrorCodes.REFUSED_STREAM
        raw.reset(first)
        srv.wait_topics({"b": 1})
        page = raw.get("/hello")
        raw.wait(lambda: page in raw.ended, "a request once a stream ended")
        assert bytes(raw.data[page]) == b"app -"
    finally:
        raw.close()


def test_slow_reader_is_bounded_and_the_connection_goes_on(servers: Servers):
    srv = servers.start(send_queue=65536, close_timeout="1s")
    raw = servers.raw("tls", stream_window=4096)
    try:
        slow = raw.get("/events?topic=big")
        raw.stall.add(slow)  # never a WINDOW_UPDATE for it: the server's data waits for it
        raw.wait_text(slow, b": connected\n\n")
        for _ in range(8):  # 512 KiB for a stream that takes 4 KiB
            srv.publish("big", "z" * 65536)
        srv.wait_output("event stream client does not read, closing it")
        srv.wait_topics({})
        # END_STREAM waits behind what the client does not take; after close_timeout: reset
        raw.wait(lambda: slow in raw.resets, "RST_STREAM of the slow stream")
        assert raw.resets[slow] == ErrorCodes.CANCEL and slow not in raw.ended
        assert len(raw.data[slow]) <= 4096
        line = next(ln for ln in srv.output().splitlines() if "event stream client does not read" in ln)
        buffered = int(line.split('"buffered": ')[1].split(",")[0].split("}")[0])
        assert 65536 < buffered <= 65536 + 65536 + 200  # the bound and at most one more message
        page = raw.get("/hello")
        raw.wait(lambda: page in raw.ended, "a request on the same connection")
        assert bytes(raw.data[page]) == b"app -"
    finally:
        raw.close()


@pytest.mark.parametrize("carrier", ["tls", "h2c"])
def test_shutdown_ends_the_stream_then_the_connection(servers: Servers, carrier: str):
    srv = servers.start(close_timeout="2s")
    raw = servers.raw(carrier)
    try:
        sid = raw.get("/events?topic=a")
        raw.wait_text(sid, b": connected\n\n")
        srv.server.proc.send_signal(15)
        raw.wait(lambda: sid in raw.ended, "END_STREAM at shutdown", 15)
        assert sid not in raw.resets
        raw.wait(lambda: raw.terminated or raw.closed, "GOAWAY / close", 15)
        assert srv.server.proc.wait(30) == 0
    finally:
        raw.close()
    assert "event stream failed" not in srv.output() and "Traceback" not in srv.output()


SLOW_AUTH = """<?php
require '%s';
$http = new Fastrr\\Http\\HttpWorker(Fastrr\\Worker::create());
while ($req = $http->waitRequest()) {
    if (isset($req->attributes['ws:joinTopics'])) {
        fwrite(STDERR, "authorizing " . $req->attributes['ws:joinTopics'] . "\\n");
        usleep(1500000);
    }
    $http->respond(200, 'app');
}
"""


def test_a_stream_still_authorizing_at_shutdown_gets_503(servers: Servers, tmp_path: Path):
    worker = tmp_path / "slow_auth.php"
    worker.write_text(SLOW_AUTH % (ROOT / "php" / "autoload.php"))
    srv = servers.start(command=f"php {worker}")
    raw = servers.raw("tls")
    try:
        sid = raw.get("/events?topic=slow")
        srv.wait_output("authorizing slow")
        srv.server.proc.send_signal(15)
        raw.wait(lambda: sid in raw.ended, "the refusal", 15)
        assert raw.headers[sid][b":status"] == b"503" and raw.headers[sid][b"retry-after"] == b"1"
        assert bytes(raw.data[sid]) == b"server is shutting down\n"
        assert srv.server.proc.wait(30) == 0
    finally:
        raw.close()
