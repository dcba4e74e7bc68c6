"""The engine's static files (`http.middleware: [static]`) in-process: the
engine's cheap check, the "static" event, StaticMiddleware answering through
EnginePool._on_static (the real glue), sendfile, misses going to PHP (the
test's fake worker), and the connection or the file going away meanwhile.
End to end: tests/integration/test_static.py and test_static_engine.py."""

from __future__ import annotations

import os
import select
import socket
import struct
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fastrr.config.schema import StaticConfig
from fastrr.http.engine_pool import EnginePool
from fastrr.http.middleware.static import StaticMiddleware
from tests.core.test_engine import Harness, read_all, read_response


class StaticHarness(Harness):
    def __init__(self, root: Path, **static: Any):
        cfg = StaticConfig(dir=str(root), **static)
        self.mw = StaticMiddleware(cfg, _null_log())
        super().__init__(static_dir=self.mw.root, static_forbid=sorted(self.mw.forbid),
                         static_allow=sorted(self.mw.allow))
        self.failures: list[tuple[str, dict[str, Any]]] = []
        log = SimpleNamespace(error=lambda msg, **kw: self.failures.append((msg, kw)))
        self.glue = SimpleNamespace(engine=self.engine, static=self.mw, http_log=log)

    def answer(self, timeout: float = 3.0) -> tuple[Any, ...]:
        """Wait for a static event and answer it as EnginePool does."""
        ev = self.wait_event("static", timeout)
        EnginePool._on_static(self.glue, ev[1], ev[2])  # type: ignore[arg-type]
        return ev

    def static_events(self) -> list[tuple[Any, ...]]:
        self.events += self.engine.poll_events()
        return [e for e in self.events if e[0] == "static"]


def _null_log() -> Any:
    return SimpleNamespace(debug=lambda *a, **k: None, info=lambda *a, **k: None,
                           warn=lambda *a, **k: None, error=lambda *a, **k: None)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    pub = tmp_path / "pub"
    (pub / "css").mkdir(parents=True)
    (pub / "a.txt").write_bytes(b"hello static\n")
    (pub / "css" / "app.css").write_bytes(b"body{}\n")
    (pub / "x.php").write_bytes(b"<?php")
    (pub / "big.bin").write_bytes(os.urandom(1 << 20) * 16)  # 16 MiB
    (pub / "empty.txt").write_bytes(b"")
    (tmp_path / "outside.txt").write_bytes(b"outside\n")
    os.symlink(tmp_path / "outside.txt", pub / "out.txt")
    return pub


@pytest.fixture
def sh(root: Path):
    harness = StaticHarness(root, forbid=[".php"], calculate_etag=True, response={"X-Static": "yes"})
    yield harness
    harness.close()


def req(target: bytes, method: bytes = b"GET", extra: bytes = b"") -> bytes:
    return method + b" " + target + b" HTTP/1.1\r\nHost: t\r\n" + extra + b"\r\n"


def wait_stats(h: Harness, **want: int) -> dict[str, Any]:
    deadline = time.monotonic() + 3
    while True:
        stats = h.engine.stats()
        if all(stats[k] == v for k, v in want.items()) or time.monotonic() > deadline:
            assert all(stats[k] == v for k, v in want.items()), stats
            return stats
        time.sleep(0.02)


def test_hit_is_answered_by_python_and_sent_by_the_engine(sh, root):
    c = sh.client(req(b"/a.txt"))
    _, _, request = sh.answer()
    assert request.method == "GET" and request.target == "/a.txt" and request.get_header(b"host") == b"t"
    head, body = read_response(c)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and body == b"hello static\n"
    assert b"Content-Type: text/plain; charset=utf-8\r\n" in head and b"X-Static: yes\r\n" in head
    assert b"ETag: \"" in head and b"Accept-Ranges: bytes\r\n" in head and b"Connection" not in head
    c.sendall(req(b"/a.txt", b"GET", b"Range: bytes=0-4\r\n"))  # keep-alive, a range
    sh.answer()
    head, body = read_response(c)
    assert head.startswith(b"HTTP/1.1 206 Partial Content") and body == b"hello"
    c.sendall(req(b"/empty.txt"))
    sh.answer()
    head, body = read_response(c)
    assert head.endswith(b"Content-Length: 0") and body == b""
    wait_stats(sh, in_flight=0)


def test_misses_never_ask_python(sh):
    w = sh.worker()
    for target, method in [(b"/nope.txt", b"GET"), (b"/x.php", b"GET"), (b"/css", b"GET"), (b"/", b"GET"),
                           (b"/a.txt", b"POST"), (b"/a.txt", b"get"), (b"/../pub/a.txt?x", b"OPTIONS"),
                           (b"/css/../../outside.txt", b"GET"), (b"/%00a.txt", b"GET")]:
        c = sh.client(req(target, method, b"Content-Length: 0\r\n" if method == b"POST" else b""))
        assert w.request()["method"] == method.decode()
        w.respond(404, b"php")
        assert read_response(c)[1] == b"php"
        c.close()
    assert sh.static_events() == []


def test_path_normalisation_reaches_the_file(sh):
    # what static.py would serve: %-decoding, dot segments, absolute-form, query and fragment cut
    for target in [b"/css/../a.txt", b"/%61.txt", b"/./a.txt?q=1#f", b"//a.txt", b"http://t/a.txt",
                   b"/css/%2e%2e/a.txt", b"/nope/../a.txt", b"/a.txt/", b"/a.txt%2f", b"/a.tx%74"]:
        c = sh.client(req(target))
        sh.answer()
        assert read_response(c)[1] == b"hello static\n", target
        c.close()


def test_python_says_miss_then_php_answers_with_the_body(sh, root):
    """The symlink leaves the root (stat says file, realpath says no), and a
    file deleted between the engine's stat and Python's answer: both go to PHP,
    with the request body the engine kept."""
    w = sh.worker()
    c = sh.client(req(b"/out.txt", b"GET", b"Content-Length: 3\r\n") + b"abc")
    sh.answer()
    ctx = w.request()
    assert ctx["uri"] == "http://t/out.txt" and ctx["_body"] == b"abc"
    w.respond(404, b"from php")
    assert read_response(c)[1] == b"from php"

    (root / "gone.txt").write_bytes(b"soon gone")
    c.sendall(req(b"/gone.txt", b"GET", b"Transfer-Encoding: chunked\r\n") + b"2\r\nxy\r\n0\r\n\r\n"
              + req(b"/a.txt"))
    ev = sh.wait_event("static")
    (root / "gone.txt").unlink()
    EnginePool._on_static(sh.glue, ev[1], ev[2])  # type: ignore[arg-type]
    ctx = w.request()
    assert ctx["uri"] == "http://t/gone.txt" and ctx["_body"] == b"xy"
    w.respond(404, b"not here")
    assert read_response(c)[1] == b"not here"
    sh.answer()  # the pipelined one after it
    assert read_response(c)[1] == b"hello static\n"
    wait_stats(sh, in_flight=0)


def test_head_conditional_and_http10(sh):
    c = sh.client(req(b"/big.bin", b"HEAD"))
    sh.answer()
    c.settimeout(3)
    head = c.recv(65536)
    assert head.endswith(b"\r\n\r\n") and b"Content-Length: %d\r\n" % (16 << 20) in head
    etag = [line.split(b": ", 1)[1] for line in head.split(b"\r\n") if line.startswith(b"ETag")][0]
    c.sendall(req(b"/big.bin", b"GET", b"If-None-Match: " + etag + b"\r\n"))
    sh.answer()
    data = c.recv(65536)
    assert data.startswith(b"HTTP/1.1 304 Not Modified") and b"Content-Length" not in data
    assert data.endswith(b"\r\n\r\n")
    c2 = sh.client(b"GET /a.txt HTTP/1.0\r\n\r\n")
    sh.answer()
    data = read_all(c2)
    assert data.startswith(b"HTTP/1.0 200 OK") and b"Connection: close\r\n" in data
    assert data.endswith(b"hello static\n")
    c3 = sh.client(b"GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    sh.answer()
    head, body = read_response(c3)
    assert head.endswith(b"Connection: keep-alive") and body == b"hello static\n"


def test_large_file_to_a_slow_reader_is_complete(sh, root):
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.connect(("127.0.0.1", sh.port))
    c.sendall(req(b"/big.bin") + req(b"/a.txt"))
    sh.answer()
    time.sleep(0.3)  # the socket fills: the engine waits for EPOLLOUT
    head, body = read_response(c, timeout=10)
    assert body == (root / "big.bin").read_bytes()
    sh.answer()
    assert read_response(c)[1] == b"hello static\n"


def test_pipelined_static_and_php_stay_in_order(sh, root):
    w = sh.worker()
    c = sh.client(req(b"/a.txt") + req(b"/php1") + req(b"/big.bin", b"GET", b"Range: bytes=10-19\r\n")
                  + req(b"/a.txt", b"HEAD") + req(b"/php2") + req(b"/css/app.css"))
    sh.answer()
    assert read_response(c)[1] == b"hello static\n"
    assert w.request()["uri"] == "http://t/php1"
    w.respond(200, b"one")
    assert read_response(c)[1] == b"one"
    sh.answer()
    assert read_response(c)[1] == (root / "big.bin").read_bytes()[10:20]
    sh.answer()
    head = c.recv(4096)  # HEAD: no body, so read_response would wait for it
    assert head.startswith(b"HTTP/1.1 200 OK") and head.endswith(b"\r\n\r\n")
    assert w.request()["uri"] == "http://t/php2"
    w.respond(200, b"two")
    assert read_response(c)[1] == b"two"
    sh.answer()
    assert read_response(c)[1] == b"body{}\n"


def test_client_leaving_mid_sendfile_and_before_the_answer(sh, root):
    for _ in range(3):
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.connect(("127.0.0.1", sh.port))
        c.sendall(req(b"/big.bin"))
        sh.answer()
        c.recv(1024)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()  # RST mid-file
    wait_stats(sh, in_flight=0, connections=0)
    logs = [e for e in sh.logs() if e[2] == "file body not sent completely"]
    assert len(logs) == 3
    # gone before Python answered: the answer is a no-op, the fd stays ours (the
    # engine closes its own dup), and no fd leaks
    c = sh.client(req(b"/a.txt"))
    ev = sh.wait_event("static")
    c.close()
    wait_stats(sh, in_flight=0, connections=0)
    fds_before = len(os.listdir("/proc/self/fd"))
    fd = os.open(root / "a.txt", os.O_RDONLY)
    try:
        assert sh.engine.static_serve(ev[1], 200, b"HTTP/1.1 200 OK\r\n", b"", fd, 0, 3) is None
        sh.engine.static_miss(ev[1])
        sh.engine.static_abort(ev[1])
        sh.engine.stats()  # a waited-for command: the ones queued before it ran
        os.fstat(fd)
    finally:
        os.close(fd)
    assert len(os.listdir("/proc/self/fd")) == fds_before
    c = sh.client(req(b"/big.bin"))
    sh.answer()
    assert read_response(c, timeout=10)[1] == (root / "big.bin").read_bytes()


def test_abort_and_drain(sh):
    c = sh.client(req(b"/a.txt"))
    ev = sh.wait_event("static")
    sh.engine.static_abort(ev[1])
    c.settimeout(3)
    assert c.recv(100) == b""
    # stop_accepting waits for a pending static answer, then drains
    c = sh.client(req(b"/a.txt"))
    ev = sh.wait_event("static")
    sh.engine.stop_accepting()
    time.sleep(0.1)
    assert not [e for e in sh.engine.poll_events() if e[0] == "drained"]
    EnginePool._on_static(sh.glue, ev[1], ev[2])  # type: ignore[arg-type]
    data = read_all(c)
    assert b"Connection: close\r\n" in data and data.endswith(b"hello static\n")
    sh.wait_event("drained")


def test_allow_list_and_case(root):
    h = StaticHarness(root, allow=[".txt"])
    try:
        w = h.worker()
        c = h.client(req(b"/css/app.css"))
        w.request()
        w.respond(404)
        read_response(c)
        assert h.static_events() == []
        c.sendall(req(b"/A.TXT"))  # extension compared lowercased; the file system decides the rest
        w.request()
        w.respond(404)
        read_response(c)
        c.sendall(req(b"/a.txt"))
        h.answer()
        assert read_response(c)[1] == b"hello static\n"
    finally:
        h.close()


PIECES = [b"a.txt", b"A.TXT", b"css", b"app.css", b"..", b".", b"", b"%2e%2e", b"%2E", b"%2f", b"%2F", b"%61.txt",
          b"x.php", b"X.PHP", b"x.PhP", b"\xc3\xa9.txt", b"\xe9.txt", b"%C3%A9.txt", b"%e9.txt", b"%00", b"%zz",
          b"%", b"%4", b"dir.d", b"file", b"out.txt", b"big.bin", b"empty.txt", b"a.txt?q=1", b"a.txt#f",
          b"?x=http://h/a.txt", b"http:", b"a.TxT"]


@pytest.mark.parametrize("static", [{"forbid": [".php"]}, {"allow": [".txt", ".css"]}, {}])
def test_the_engine_asks_python_whenever_python_would_serve(root, static):
    """Differential over generated targets: every request StaticMiddleware
    serves (asked directly, as the Python front would) must reach it through
    the engine, and the answer must be the file; the rest go to PHP."""
    import random

    from fastrr import _core
    from fastrr.http.middleware import RequestInfo

    (root / "\u00e9.txt").write_bytes(b"accent\n")
    (root / "dir.d").mkdir()
    (root / "dir.d" / "file").write_bytes(b"no ext\n")
    h = StaticHarness(root, **static)
    rng = random.Random(1234)
    targets = [b"/" + b"/".join(rng.choice(PIECES) for _ in range(rng.randint(1, 4))) for _ in range(300)]
    targets += [b"http://h/a.txt", b"http://h", b"http://h/css/../a.txt?x", b"/a.txt?u=http://x/y"]
    try:
        w = h.worker()
        c = h.client()
        asked = served = 0
        for target in targets:
            raw = b"GET " + target + b" HTTP/1.1\r\nHost: t\r\n\r\n"
            parsed = _core.parse_request(raw, 65536)
            resp = h.mw.request(RequestInfo(parsed, "", "http", "HTTP/1.1"))
            if resp is not None:
                resp.close()
            c.sendall(raw)
            got_event = False
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                if h.static_events():
                    got_event = True
                    break
                if w.frames or select.select([w.in_r], [], [], 0.01)[0]:
                    break  # the request went to PHP
            if got_event:
                asked += 1
                h.answer()
            if resp is not None:
                assert got_event, target  # Python would serve it: the engine must ask
                served += 1
                head, _ = read_response(c)
                assert head.startswith(b"HTTP/1.1 200"), target
            else:
                w.request()
                w.respond(404, b"php")
                assert read_response(c)[1] == b"php", target
        assert served > 20 and asked >= served
    finally:
        h.close()
