"""`server.relay: shm` end to end: the shared-memory ring with real PHP workers."""

from __future__ import annotations

import hashlib
import os
import signal
import time

import httpx
import psutil
import pytest

from tests.conftest import WORKERS

SHM = {"server": {"relay": "shm"}, "logs": {"level": "debug"}}


def ring_fds(pid: int) -> list[str]:
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return [t for t in out if "fastrr-ring" in t or "eventfd" in t]


def test_workers_use_the_ring(fastrr):
    server = fastrr.start(SHM)
    pids = server.wait_workers(2)
    assert httpx.get(server.url("/hello")).json() == {"hello": "world"}
    for pid in pids:
        assert len(ring_fds(pid)) == 2  # the memfd and the eventfd
    deadline = time.monotonic() + 5
    while server.output().count("worker uses the shm relay") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.output().count("worker uses the shm relay") == 2
    assert "shm relay unavailable" not in server.output()
    env = psutil.Process(next(iter(pids))).environ()
    assert env["RR_RELAY"] == "pipes"  # RoadRunner's PHP libraries keep working (on pipes)
    assert env["FASTRR_RING"].startswith("fd:") and env["FASTRR_RING_LIB"].endswith("libfastrr_ring.so")


def test_large_bodies_both_ways(fastrr):
    server = fastrr.start(SHM)
    body = os.urandom(5 * 1024 * 1024).hex().encode()  # 10 MiB, JSON-safe
    r = httpx.post(server.url("/echo"), content=body, headers={"Content-Type": "application/octet-stream"},
                   timeout=60)
    assert r.status_code == 200
    got = r.json()
    assert got["bodyLength"] == len(body)
    assert got["bodySha256"] == hashlib.sha256(body).hexdigest()
    assert got["body"].encode() == body  # and 10 MiB back inside the JSON
    r = httpx.get(server.url("/big?kb=10240"), timeout=60)
    assert r.status_code == 200 and r.content == b"x" * (10 << 20)
    assert httpx.get(server.url("/hello")).status_code == 200


def test_streamed_response_with_pings(fastrr):
    server = fastrr.start(SHM)
    r = httpx.get(server.url("/stream?n=12&ms=1"), timeout=20)
    assert r.status_code == 200
    assert r.text == "".join(f"chunk {i}\n" for i in range(12))


def test_worker_crash_on_the_ring_gives_502_and_a_new_worker(fastrr):
    server = fastrr.start(SHM)
    before = server.wait_workers(2)
    r = httpx.get(server.url("/crash"), timeout=20)
    assert r.status_code == 502
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        now = server.worker_pids()
        if len(now) == 2 and now != before:
            break
        time.sleep(0.05)
    now = server.worker_pids()
    assert len(now) == 2 and len(now & before) == 1
    for _ in range(4):
        assert httpx.get(server.url("/hello")).json() == {"hello": "world"}
    new = (now - before).pop()
    assert len(ring_fds(new)) == 2


def test_error_and_stop_over_the_ring(fastrr, tmp_path):
    server = fastrr.start(SHM)
    assert httpx.get(server.url("/error")).status_code == 500
    marker = tmp_path / "stopped"
    r = httpx.get(server.url(f"/stop-once?marker={marker}"), timeout=20)
    assert r.status_code == 200 and r.json()["stopped_before"] is True


def test_without_ffi_the_worker_falls_back_to_pipes(fastrr):
    server = fastrr.start({"server": {"relay": "shm", "command": f"php -d ffi.enable=0 {WORKERS / 'app.php'}"},
                           "logs": {"level": "debug"}})
    server.wait_workers(2)
    for _ in range(4):
        assert httpx.get(server.url("/hello")).json() == {"hello": "world"}
    r = httpx.post(server.url("/echo"), content=b"a" * 3_000_000, headers={"Content-Type": "text/plain"},
                   timeout=30)
    assert r.json()["bodyLength"] == 3_000_000
    out = server.output()
    # once per worker process, on stderr
    assert out.count("shm relay unavailable") == 2, out
    assert out.count("worker uses pipes (no shm)") == 2, out


def test_graceful_shutdown_over_the_ring(fastrr):
    server = fastrr.start(SHM)
    pids = server.wait_workers(2)
    assert httpx.get(server.url("/hello")).status_code == 200
    assert server.stop(signal.SIGTERM, timeout=20) == 0
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.parametrize("path", ["/hello", "/headers", "/status?code=204", "/big?kb=2000"])
def test_same_answers_as_pipes(fastrr, path):
    pipes = fastrr.start()
    shm = fastrr.start(SHM)
    shm.wait_workers(2)
    a, b = httpx.get(pipes.url(path)), httpx.get(shm.url(path))
    assert (a.status_code, a.content) == (b.status_code, b.content)
