"""Bounded smoke tests with the real tools: the Lua scripts under wrk (~1 s each) and
one tiny end-to-end run of the harness (hello, 8 connections, one 1-second run per
server, ~5 s). Skipped when wrk / nginx / php-fpm are not installed."""

from __future__ import annotations

import http.server
import shutil
import threading
import zlib
from collections.abc import Iterator

import psutil
import pytest

from fastrr.benchmark import apps, env, runner, wrk

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed")


class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    bodies: list[tuple[str, str | None, bytes]] = []

    def _answer(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        if len(self.bodies) < 3:
            self.bodies.append((self.command, self.headers.get("Content-Type"), body))
        status = 404 if self.path == "/missing" else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[int, list]]:
    _Recorder.bodies = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], _Recorder.bodies
    finally:
        server.shutdown()
        server.server_close()


def _run(port: int, app: apps.App, path: str | None = None) -> wrk.WrkResult:
    argv = wrk.command(f"http://127.0.0.1:{port}{path or app.path}", connections=1, duration=1,
                       script=apps.WRK_SCRIPTS / app.wrk_script, script_args=app.wrk_args)
    return wrk.run(argv, 1)


@needs_wrk
def test_report_lua_gives_json_and_counts_non_2xx(recorder):
    port, _ = recorder
    res = _run(port, apps.APPS["hello"], "/missing")
    assert res.source == "json"
    assert res.requests > 0 and res.non_2xx == res.requests
    assert set(res.latency_ms) == {"50", "75", "90", "99", "99.9"}


@needs_wrk
def test_post_json_lua_sends_the_payload(recorder):
    port, bodies = recorder
    res = _run(port, apps.APPS["api"])
    assert res.requests > 0 and res.non_2xx == 0
    method, ctype, body = bodies[0]
    assert (method, ctype) == ("POST", "application/json")
    assert body == apps.APPS["api"].request_body()


@needs_wrk
def test_upload_lua_sends_the_same_bytes_as_upload_body(recorder):
    port, bodies = recorder
    _run(port, apps.APPS["upload"])
    method, ctype, body = bodies[0]
    assert (method, ctype) == ("POST", "application/octet-stream")
    assert len(body) == apps.UPLOAD_SIZE
    assert zlib.crc32(body) == zlib.crc32(apps.upload_body())


@pytest.mark.timeout(90)
def test_tiny_end_to_end_run_leaves_nothing_running(tmp_path):
    missing = env.missing_packages() + ([] if shutil.which("wrk") else ["wrk"])
    assert not missing, f"not installed: {', '.join(missing)} (make setup installs them)"
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    options = runner.Options.make(quick=True, apps="hello", connections=(8,), repeats=1, duration=1, warmup=0,
                                  workers=2, out=tmp_path)
    doc = runner.run(options, plain_progress=True)
    assert doc["failures"] == []
    assert doc["checks"][0]["problems"] == [] and doc["checks"][0]["same_body"]
    (point,) = doc["points"]
    for kind in ("fpm", "fastrr"):
        (s,) = point["servers"][kind]["samples"]
        assert s["rps"] > 0 and s["non_2xx"] == 0 and s["cpu_us"] > 0 and s["rss_mib"] > 0
    assert point["servers"]["fastrr"]["samples"][0]["front_us"] > 0
    left = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not left, f"processes left running: {left}"
