"""The pieces with no I/O: server frames (built once per message, checked against wsproto as
the client), the permessage-deflate offer we take, SSE events, the Last-Event-ID replay."""

from __future__ import annotations

import asyncio

from wsproto.connection import Connection, ConnectionType
from wsproto.events import TextMessage
from wsproto.extensions import PerMessageDeflate

from fastrr import _core
from fastrr.broadcast.brokers.memory import MemoryBroker
from fastrr.broadcast.hub import Hub, Message
from fastrr.log import Logger, LogSink
from fastrr.websockets import frames
from fastrr.websockets.gateway import accept_key, negotiate_deflate
from fastrr.websockets.sse import replay


def client(deflate: bool) -> Connection:
    ext = PerMessageDeflate()
    if deflate:
        ext.finalize("permessage-deflate; server_no_context_takeover")
    return Connection(ConnectionType.CLIENT, [ext] if deflate else [])


def received(conn: Connection, data: bytes) -> str:
    conn.receive_data(data)
    return "".join(e.data for e in conn.events() if isinstance(e, TextMessage))


def test_a_delivery_is_encoded_once_and_valid_on_every_connection():
    msg = Message("news", ("é" * 500).encode(), "1-1-x")
    plain, packed = frames.delivery_frame(msg, False), frames.delivery_frame(msg, True)
    assert frames.delivery_frame(msg, True) is packed and msg.cache["ws-deflate"] is packed
    assert packed[0] & 0x40 and len(packed) < len(plain)  # RSV1: compressed
    want = '{"topic":"news","payload":"' + "é" * 500 + '"}'
    assert received(client(False), plain) == want
    # one client connection receiving several compressed messages (each from an empty window)
    conn = client(True)
    other = Message("news", b"x" * 300, "1-2-x")
    assert received(conn, packed) == want
    assert received(conn, frames.delivery_frame(other, True)) == '{"topic":"news","payload":"' + "x" * 300 + '"}'
    assert received(conn, packed) == want
    # short messages stay uncompressed (RSV1 clear) even on a deflate connection
    assert not frames.delivery_frame(Message("a", b"1", "1-3-x"), True)[0] & 0x40


def test_frame_lengths_use_the_three_encodings():
    for n in (0, 125, 126, 65535, 65536, 70000):
        data = frames.frame(b"a" * n)
        assert received(client(False), data) == "a" * n


def test_deflate_offer_negotiation():
    def req(*offers: str) -> _core.Request:
        head = b"GET /ws HTTP/1.1\r\nHost: x\r\n" + b"".join(
            b"Sec-WebSocket-Extensions: " + o.encode() + b"\r\n" for o in offers) + b"\r\n"
        parsed = _core.parse_request(head, 65536)
        assert parsed is not None
        return parsed

    ext, header = negotiate_deflate(req("permessage-deflate; client_max_window_bits"))
    assert ext is not None and header == b"permessage-deflate; server_no_context_takeover; client_max_window_bits=15"
    assert negotiate_deflate(req("x-webkit-deflate-frame"))[0] is None
    assert negotiate_deflate(req())[0] is None
    # a smaller window for what we send is declined (every message is compressed with 15 bits);
    # the next offer is taken instead
    ext, header = negotiate_deflate(req("permessage-deflate; server_max_window_bits=10, permessage-deflate"))
    assert ext is not None and header == b"permessage-deflate; server_no_context_takeover"
    assert negotiate_deflate(req("permessage-deflate; server_max_window_bits=10"))[0] is None


def test_accept_key_is_rfc_6455s_example():
    assert accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_sse_event_lines():
    msg = Message("chat", b"one\r\ntwo\rthree\nfour", "17-3-ab")
    assert frames.sse_event(msg) == b"id: 17-3-ab\nevent: chat\ndata: one\ndata: two\ndata: three\ndata: four\n\n"
    assert frames.sse_event(msg) is msg.cache["sse"]


def test_replay_merges_topics_in_id_order_and_reports_a_lost_id():
    async def run() -> None:
        log = Logger(LogSink("error"), "test")
        hub = Hub("default", MemoryBroker("default", {}, log), log, history_size=10)
        await hub.start()
        for topic, payload in [("a", b"1"), ("b", b"2"), ("a", b"3"), ("c", b"x"), ("b", b"4")]:
            await hub.publish(topic, payload)
        assert hub.history("a", "0") is None  # not an id it has
        ids = [m.id for m in hub._history["a"]] + [m.id for m in hub._history["b"]]
        msgs, missed = replay(hub, ["a", "b"], ids[0], 100)
        assert not missed and [m.payload for m in msgs] == [b"2", b"3", b"4"]
        msgs, missed = replay(hub, ["a", "b"], "1-1-gone", 100)
        assert missed
        msgs, _ = replay(hub, ["a", "b"], ids[0], 2)
        assert [m.payload for m in msgs] == [b"3", b"4"]  # websockets.sse.history bounds it
        await hub.stop()

    asyncio.run(run())
