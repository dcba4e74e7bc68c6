"""What the engine keeps per connection, from its own accounting (stats():
conn_buffer_bytes, conn_allocs, pool_bytes, trims), in-process with the test
as the PHP worker (test_engine.py's harness). No RSS and no timing here:
bench/conn_scale.py measures the process (csrc/README.md, "Memory").

The rules checked: a connection that got its answer and waits for the next
request holds no buffer (its reads go to the engine's scratch; the request
head block and the worker frame went back to a bounded pool at the answer);
what a partial head or a big body needed is released once it is idle; and
bursts of connections opened and closed return every count to its
baseline."""

from __future__ import annotations

import gc
import os
import time
from typing import Any

import pytest

from tests.core.test_engine import Harness, read_response

GET = b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
POOL_BOUND = 2 * 256 * 16 * 1024  # csrc/engine.h: two stacks of FE_POOL_SIZE, each buffer <= FE_POOL_MAX_CAP


@pytest.fixture
def h():
    harness = Harness()
    harness.sock.listen(4096)  # bursts of connections: a backlog that never drops a SYN
    yield harness
    harness.close()


def wait_stats(h: Harness, **want: int) -> dict[str, Any]:
    """Until the engine reports these values (it processes closes in its own thread)."""
    deadline = time.monotonic() + 10
    while True:
        stats = h.engine.stats()
        if all(stats[k] == v for k, v in want.items()):
            return stats
        assert time.monotonic() < deadline, (want, stats)
        time.sleep(0.02)


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def serve(h: Harness, n: int) -> list:
    """n clients that each sent one GET and read its answer, left open."""
    w = h.workers[0]
    clients = [h.client(GET) for _ in range(n)]
    for _ in range(n):
        w.request()
        w.respond(200, b"hello")
    for c in clients:
        assert read_response(c)[1] == b"hello"
    return clients


def test_an_answered_keep_alive_connection_holds_no_buffers(h):
    h.worker()
    clients = serve(h, 200)
    stats = h.engine.stats()  # the answer went out whole: conn_finish gave the buffers back then
    assert stats["connections"] == 200 and stats["conn_allocs"] == 200
    assert stats["conn_buffer_bytes"] == 0
    assert 0 < stats["pool_bytes"] <= POOL_BOUND
    assert 0 < stats["conn_struct_bytes"] <= 1024  # all that an idle connection costs the engine
    # the next request on each connection is served from the pool again
    for c in clients[:10]:
        c.sendall(GET)
        h.workers[0].request()
        h.workers[0].respond(200, b"again")
        assert read_response(c)[1] == b"again"
    assert h.engine.stats()["conn_buffer_bytes"] == 0
    for c in clients:
        c.close()
    stats = wait_stats(h, connections=0, conn_allocs=0)
    assert stats["conn_buffer_bytes"] == 0


def test_what_a_partial_head_needed_is_released_once_idle(h):
    w = h.worker()
    c = h.client(GET[:10])  # a partial head must outlive the read: it gets a buffer of its own
    assert wait_stats(h, connections=1)
    deadline = time.monotonic() + 10
    while h.engine.stats()["conn_buffer_bytes"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    c.sendall(GET[10:])
    w.request()
    w.respond(200, b"ok")
    assert read_response(c)[1] == b"ok"
    wait_stats(h, conn_buffer_bytes=0)  # the connection scan frees what an idle one kept
    c.close()


def test_a_big_body_leaves_nothing_behind(h):
    w = h.worker()
    body = os.urandom(3 << 20)
    c = h.client(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body))
    c.sendall(body)
    assert w.request()["_body"] == body
    w.respond(200, b"got it")
    assert read_response(c)[1] == b"got it"
    stats = wait_stats(h, conn_buffer_bytes=0)
    assert stats["pool_bytes"] <= POOL_BOUND  # the 3 MiB frame was freed, not pooled
    c.sendall(GET)  # and the connection still works
    w.request()
    w.respond(200, b"small")
    assert read_response(c)[1] == b"small"


def test_reads_through_the_scratch_keep_every_byte(h):
    w = h.worker()
    # 3000 pipelined requests in one send: more than one scratch-full (64 KiB)
    c = h.client(b"".join(b"GET /%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(3000)))
    for i in range(3000):
        assert w.request()["uri"] == f"http://t/{i}"
        w.respond(200, b"%d" % i)
        assert read_response(c)[1] == b"%d" % i
    # a head a byte at a time
    c2 = h.client()
    for b in GET:
        c2.sendall(bytes([b]))
    assert w.request()["uri"] == "http://t/hello"
    w.respond(200, b"slow")
    assert read_response(c2)[1] == b"slow"
    # a body in pieces after its head
    c2.sendall(b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + b"a" * 1000)
    for _ in range(99):
        c2.sendall(b"b" * 1000)
    assert w.request()["_body"] == b"a" * 1000 + b"b" * 99000
    w.respond(200, b"body")
    assert read_response(c2)[1] == b"body"
    c.close()
    c2.close()
    wait_stats(h, connections=0, conn_allocs=0, conn_buffer_bytes=0)


def test_bursts_return_to_the_baseline(h):
    h.worker()
    gc.collect()  # sockets of earlier tests closed now, not in the middle of the count
    base_fds = fds()
    pools = []
    for burst in range(3):
        clients = serve(h, 2000)
        stats = h.engine.stats()
        assert stats["connections"] == 2000 and stats["conn_allocs"] == 2000
        assert stats["conn_buffer_bytes"] == 0
        for c in clients:
            c.close()
        stats = wait_stats(h, connections=0, conn_allocs=0, in_flight=0)
        assert stats["conn_buffer_bytes"] == 0 and stats["pool_bytes"] <= POOL_BOUND
        assert stats["trims"] == burst + 1  # the freed memory went back once per burst
        pools.append(stats["pool_bytes"])
        assert fds() <= base_fds  # (a collected object of another test may close one of its own)
    assert pools[0] == pools[1] == pools[2]  # nothing accumulates from burst to burst
    assert h.engine.stats()["accepted"] == 6000
