"""WebSockets end to end on both HTTP fronts (`--engine both`): a real `fastrr serve`, the
suite's PHP app authorizing (php/app.php: cookie auth=ok for the upgrade, "private-*"
topics for role=admin only, "forbidden" for nobody), the `websockets` package as the
client, raw sockets where a client must misbehave."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import struct
import time
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.websockets.conftest import (
    AUTH,
    WsFactory,
    client_frame,
    close_code,
    raw_upgrade,
    read_frames,
    read_http,
    reply,
)


def join(ws, *topics: str) -> dict:
    ws.send(json.dumps({"command": "join", "topics": list(topics)}))
    return reply(ws.recv(timeout=10))


def test_upgrade_accepted_with_phps_headers_and_refused_with_phps_answer(wsf: WsFactory, fastrr_engine):
    srv = wsf.start()
    with connect(srv.url(), additional_headers=AUTH, open_timeout=10) as ws:
        headers = ws.response.headers
        assert ws.response.status_code == 101
        assert headers["Set-Cookie"] == "ws=joined; Path=/"  # PHP's header, on the 101
        assert "server_no_context_takeover" in headers["Sec-WebSocket-Extensions"]
        assert join(ws, "a") == {"topic": "@join", "payload": ["a"]}
    with pytest.raises(InvalidStatus) as err:
        connect(srv.url(), additional_headers={"Cookie": "auth=no"}, open_timeout=10)
    resp = err.value.response
    assert resp.status_code == 403
    assert resp.headers["X-Denied"] == "yes" and bytes(resp.body) == b"forbidden: log in first"
    # the http pool still serves the rest of the site
    with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/page", timeout=10) as page:
        assert page.read() == b"app -"


def test_php_sees_the_client_address_proxy_ip_parser_gives(wsf: WsFactory, fastrr_engine):
    """The upgrade is taken before the middleware runs, but PHP is told the same client
    address as for any request: X-Forwarded-For from a trusted proxy with proxy_ip_parser
    (a middleware only the Python front has), the TCP peer without it (either front)."""
    srv = wsf.start(extra={"http": {"middleware": ["proxy_ip_parser", "websockets"], "engine": "python",
                                    "trusted_subnets": ["127.0.0.0/8"]}})
    sock, head, _ = raw_upgrade(srv.port, headers={"X-Forwarded-For": "203.0.113.7, 127.0.0.1"})
    sock.close()
    assert head.startswith(b"HTTP/1.1 101") and b"X-Remote: 203.0.113.7" in head, head
    plain = wsf.start()
    sock, head, _ = raw_upgrade(plain.port, headers={"X-Forwarded-For": "203.0.113.7"})
    sock.close()
    assert head.startswith(b"HTTP/1.1 101") and b"X-Remote: 127.0.0.1" in head, head


def test_plain_get_bad_version_and_body_on_the_path_are_answered_without_php(wsf: WsFactory, fastrr_engine):
    srv = wsf.start()
    status, _, body = read_http(srv.port, b"GET /ws HTTP/1.1\r\nHost: x\r\nCookie: auth=ok\r\n\r\n")
    assert status == 400 and b"/ws serves WebSocket connections" in body
    sock, head, _ = raw_upgrade(srv.port, headers={"Sec-WebSocket-Version": "8"})
    sock.close()
    assert head.startswith(b"HTTP/1.1 426") and b"Sec-WebSocket-Version: 13" in head
    sock, head, _ = raw_upgrade(srv.port, headers={"Sec-WebSocket-Key": "short"})
    sock.close()
    assert head.startswith(b"HTTP/1.1 400")
    # another path is PHP's, as is a POST to the websocket path
    status, _, body = read_http(srv.port, b"GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (status, body) == (200, b"app -")
    status, _, body = read_http(srv.port, b"POST /ws HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                          b"Connection: close\r\n\r\n")
    assert (status, body) == (200, b"app -")


def test_origin_is_checked_as_roadrunner_does(wsf: WsFactory, fastrr_engine):
    srv = wsf.start({"allowed_origin": "https://*.example.com"})
    with connect(srv.url(), additional_headers=AUTH, origin="https://app.example.com", open_timeout=10) as ws:
        assert join(ws, "a")["topic"] == "@join"
    for origin in ("https://evil.test", None):
        with pytest.raises(InvalidStatus) as err:
            connect(srv.url(), additional_headers=AUTH, origin=origin, open_timeout=10)
        assert err.value.response.status_code == 405


def test_join_and_leave_are_authorized_per_topic(wsf: WsFactory, fastrr_engine):
    srv = wsf.start()
    with connect(srv.url(), additional_headers=AUTH, open_timeout=10) as ws:
        assert join(ws, "news", "sport") == {"topic": "@join", "payload": ["news", "sport"]}
        assert join(ws, "private-1") == {"topic": "#join", "payload": ["private-1"]}
        assert join(ws, "news", "forbidden") == {"topic": "#join", "payload": ["news", "forbidden"]}
        ws.send(json.dumps({"command": "leave", "topics": ["sport"]}))
        assert reply(ws.recv(timeout=10)) == {"topic": "@leave", "payload": ["sport"]}
        srv.publish("sport", "s1")
        srv.publish("private-1", "p1")
        srv.publish("news", "n1")
        assert reply(ws.recv(timeout=10)) == {"topic": "news", "payload": "n1"}  # nothing of sport, private-1
    with connect(srv.url(), additional_headers={"Cookie": "auth=ok; role=admin"}, open_timeout=10) as admin:
        assert join(admin, "private-1") == {"topic": "@join", "payload": ["private-1"]}


def test_a_worker_crashing_while_it_authorizes(wsf: WsFactory, fastrr_engine):
    """As for any request: 502 for the upgrade, a denied join; the worker is replaced."""
    srv = wsf.start()
    with pytest.raises(InvalidStatus) as err:
        connect(srv.url(), additional_headers={"Cookie": "auth=ok; crash=1"}, open_timeout=15)
    assert err.value.response.status_code == 502
    with connect(srv.url(), additional_headers=AUTH, open_timeout=15) as ws:
        assert join(ws, "crash") == {"topic": "#join", "payload": ["crash"]}
        assert join(ws, "fine") == {"topic": "@join", "payload": ["fine"]}


def test_every_way_a_connection_ends_leaves_its_topics(wsf: WsFactory, fastrr_engine):
    srv = wsf.start({"max_message_size": 256, "sse": {"path": "/events"}})
    sock, _, rest = raw_upgrade(srv.port)
    sock.sendall(client_frame(0x1, b'{"command":"join","topics":["gone"]}'))
    assert b"@join" in read_frames(sock, rest, until_close=False, timeout=2)[0][1]
    with connect(srv.url(), additional_headers=AUTH, open_timeout=10) as closing, \
            connect(srv.url(), additional_headers=AUTH, open_timeout=10) as oversize:
        join(closing, "polite", "gone")
        join(oversize, "big")
        events = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        events.sendall(b"GET /events?topic=sse&topic=gone HTTP/1.1\r\nHost: x\r\nCookie: auth=ok\r\n\r\n")
        assert b": connected" in events.recv(65536)
        srv.wait_topics({"gone": 3, "polite": 1, "big": 1, "sse": 1})
        sock.close()  # no close frame: the TCP connection just ends
        events.close()
        srv.wait_topics({"gone": 1, "polite": 1, "big": 1})
        oversize.send("x" * 300)
        with pytest.raises(ConnectionClosed):
            oversize.recv(timeout=10)
        closing.send(json.dumps({"command": "leave", "topics": ["gone"]}))
        assert reply(closing.recv(timeout=10))["topic"] == "@leave"
        srv.wait_topics({"polite": 1})
    srv.wait_topics({})


def test_malformed_commands_get_an_error_reply_and_the_connection_stays(wsf: WsFactory, fastrr_engine):
    srv = wsf.start()
    with connect(srv.url(), additional_headers=AUTH, open_timeout=10) as ws:
        for text, why in [("not json", "not JSON"), ("[1]", "expected a JSON object"),
                          ('{"command":"dance","topics":["a"]}', "unknown command 'dance'"),
                          ('{"topics":["a"]}', "no command"),
                          ('{"command":"join","topics":"a"}', "topics must be a non-empty list"),
                          ('{"command":"join","topics":[]}', "topics must be a non-empty list"),
                          ('{"command":"leave","topics":[1]}', "topics must be a non-empty list")]:
            ws.send(text)
            answer = reply(ws.recv(timeout=10))
            assert answer["topic"] == "#error" and why in answer["payload"][0], (text, answer)
        ws.send('{"command":"headers","headers":{"a":"b"}}')  # ignored, as RoadRunner does
        assert join(ws, "a") == {"topic": "@join", "payload": ["a"]}
        ws.send(b"\x00binary")
        with pytest.raises(ConnectionClosed) as err:
            ws.recv(timeout=10)
        assert err.value.rcvd is not None and err.value.rcvd.code == 1003


def test_publish_from_php_reaches_exactly_the_subscribers(wsf: WsFactory, fastrr_engine):
    srv = wsf.start()
    with contextlib.ExitStack() as stack:
        a, b, ab = (stack.enter_context(connect(srv.url(), additional_headers=AUTH, open_timeout=10,
                                                compression=comp)) for comp in ("deflate", None, "deflate"))
        join(a, "a")
        join(b, "b")
        join(ab, "a", "b")
        payload = "héllo " + "x" * 300  # long enough to be sent compressed where negotiated
        with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/publish?topic=a&msg="
                                    + urllib.request.quote(payload), timeout=10) as resp:
            assert resp.read() == b"published"
        srv.publish("b", "to b")
        assert reply(a.recv(timeout=10)) == {"topic": "a", "payload": payload}
        assert reply(ab.recv(timeout=10)) == {"topic": "a", "payload": payload}
        assert reply(ab.recv(timeout=10)) == {"topic": "b", "payload": "to b"}
        assert reply(b.recv(timeout=10)) == {"topic": "b", "payload": "to b"}  # the first it got
        srv.publish("a", b"\xff\xfe not utf-8")
        assert reply(a.recv(timeout=10))["payload"] == "\ufffd\ufffd not utf-8"


def test_oversize_message_is_closed_with_1009_also_when_compressed(wsf: WsFactory, fastrr_engine):
    srv = wsf.start({"max_message_size": 1024})
    for compression in (None, "deflate"):
        with connect(srv.url(), additional_headers=AUTH, open_timeout=10, compression=compression,
                     max_size=None) as ws:
            ws.send(json.dumps({"command": "join", "topics": ["a" * 2000]}))
            with pytest.raises(ConnectionClosed) as err:
                ws.recv(timeout=10)
            assert err.value.rcvd is not None and err.value.rcvd.code == 1009, compression


@pytest.mark.parametrize(("frame", "code"), [
    (client_frame(0x1, b'{"command":"join","topics":["a"]}', mask=False), 1002),  # unmasked
    (client_frame(0x3, b"x"), 1002),  # reserved opcode
    (client_frame(0x1, b'{"x":"\xff\xfe"}'), 1007),  # invalid UTF-8
    (client_frame(0x9, b"p" * 200), 1002),  # a control frame over 125 bytes
    (client_frame(0x0, b"x"), 1002),  # a continuation with nothing to continue
], ids=["unmasked", "reserved-opcode", "invalid-utf8", "long-control-frame", "stray-continuation"])
def test_invalid_frames_close_with_the_rfc_codes(wsf: WsFactory, fastrr_engine, frame, code):
    srv = wsf.start()
    sock, head, rest = raw_upgrade(srv.port)
    try:
        assert head.startswith(b"HTTP/1.1 101")
        sock.sendall(frame)
        frames = read_frames(sock, rest)
        assert close_code(frames) == code, frames
    finally:
        sock.close()


def test_pings_keep_a_live_client_and_close_a_silent_one(wsf: WsFactory, fastrr_engine):
    srv = wsf.start({"ping_interval": "300ms"})
    with connect(srv.url(), additional_headers=AUTH, open_timeout=10, ping_interval=None) as ws:
        join(ws, "a")
        time.sleep(1.2)  # four pings, each answered by the client library
        srv.publish("a", "still here")
        assert reply(ws.recv(timeout=10)) == {"topic": "a", "payload": "still here"}
    sock, _, rest = raw_upgrade(srv.port)  # never answers a ping
    try:
        frames = read_frames(sock, rest)
        assert [op for op, _ in frames[:-1]] == [0x9] * (len(frames) - 1) and frames[0][0] == 0x9
        assert close_code(frames) == 1011
    finally:
        sock.close()


def test_a_client_that_stops_reading_is_closed_at_its_bound(wsf: WsFactory, fastrr_engine):
    srv = wsf.start({"send_queue": 262144, "close_timeout": "1s"})
    sock, head, rest = raw_upgrade(srv.port, rcvbuf=16384)
    try:
        assert head.startswith(b"HTTP/1.1 101")
        sock.sendall(client_frame(0x1, b'{"command":"join","topics":["flood"]}'))
        assert b"@join" in read_frames(sock, rest, until_close=False, timeout=2)[0][1]
        with connect(srv.url(), additional_headers=AUTH, open_timeout=10) as reader:
            join(reader, "flood")
            payload = "y" * 65536
            for _ in range(80):  # 5 MiB for a client that reads nothing
                srv.publish("flood", payload)
            srv.wait_output("websocket client does not read, closing it")
            # the reading client got all of it (it was never the slow one)
            got = sum(1 for _ in range(80) if reply(reader.recv(timeout=10))["payload"] == payload)
            assert got == 80
        # the slow one is aborted after close_timeout: its socket ends
        deadline = time.monotonic() + 15
        ended = False
        sock.settimeout(1)
        while time.monotonic() < deadline and not ended:
            try:
                ended = sock.recv(1 << 20) == b""
            except ConnectionResetError:
                ended = True
            except TimeoutError:
                pass
        assert ended
    finally:
        sock.close()


def test_a_flood_of_client_frames_is_throttled_then_closed(wsf: WsFactory, fastrr_engine):
    srv = wsf.start({"rate_limit": {"messages": 20, "burst": 5, "close_after": "1s"}})
    with connect(srv.url(), additional_headers=AUTH, open_timeout=10) as ws:
        for i in range(10):  # over the burst, under close_after: only slowed down
            ws.send(json.dumps({"command": "leave", "topics": [f"t{i}"]}))
        assert [reply(ws.recv(timeout=10))["payload"] for _ in range(10)] == [[f"t{i}"] for i in range(10)]
    with connect(srv.url(), additional_headers=AUTH, open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed) as err:
            for _ in range(5000):
                ws.send('{"command":"headers"}')
            ws.recv(timeout=15)
        assert err.value.rcvd is not None and err.value.rcvd.code == 1008
        assert err.value.rcvd.reason == "rate limit exceeded"


def test_graceful_shutdown_closes_with_1001(wsf: WsFactory, fastrr_engine):
    srv = wsf.start()
    with connect(srv.url(), additional_headers=AUTH, open_timeout=10) as ws:
        join(ws, "a")
        srv.server.proc.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as err:
            ws.recv(timeout=15)
        assert err.value.rcvd is not None and err.value.rcvd.code == 1001
    assert srv.server.proc.wait(30) == 0


def test_early_frames_sent_with_the_upgrade_are_kept(wsf: WsFactory, fastrr_engine):
    """A client that writes its join right behind the upgrade request (before the 101)."""
    srv = wsf.start()
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    try:
        sock.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                     b"Cookie: auth=ok\r\n\r\n" + client_frame(0x1, b'{"command":"join","topics":["e"]}'))
        data = b""
        while b"@join" not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        assert data.startswith(b"HTTP/1.1 101") and b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in data
        sock.sendall(client_frame(0x8, struct.pack("!H", 1000)))
        assert close_code(read_frames(sock)) == 1000
    finally:
        sock.close()
