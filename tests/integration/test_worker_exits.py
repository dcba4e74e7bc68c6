"""Workers that end on their own, and how fastrr reports it: a worker leaving
right after its handshake backs off and gives up like a failed boot; stdout of
socket-relay workers is read (and logged); shutdown is bounded even with a
request still running; operators see which workers exited unexpectedly."""

from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import subprocess
import sys
import time

import httpx

from fastrr.rpc.client import RpcClient
from tests.integration.test_supervisor import wait_until, with_rpc


def test_worker_leaving_right_after_its_handshake_backs_off_then_gives_up(fastrr):
    started = time.monotonic()
    server = fastrr.start(script="quitter.php", workers=1, wait=False)
    assert server.proc.wait(30) == 3
    elapsed = time.monotonic() - started
    err = server.err_path.read_text()
    assert "failed to boot 5 times in a row" in err
    assert "right after it was ready, before serving any request" in err
    assert "quitting right after the handshake" in err
    # Backoff between the attempts (0.1 + 0.2 + 0.4 + 0.8 s), not a respawn loop.
    assert elapsed >= 1.4, elapsed
    spawned = set(re.findall(r'quitting right after the handshake\s+\{"pid": (\d+)\}', server.output()))
    assert len(spawned) == 5, f"{len(spawned)} workers started"


def test_socket_relay_worker_stdout_is_read_and_logged(fastrr, tmp_path):
    server = fastrr.start({"server": {"relay": f"unix://{tmp_path}/relay.sock"}}, script="noisy.php",
                          timeout=30)
    pids = server.wait_workers(2)
    assert httpx.get(server.url("/hello"), timeout=10).json() == {"hello": "world"}
    out = server.output()
    assert out.count("boot noise line 19") == 2
    logged = {int(m) for m in re.findall(r'boot noise line 19 n+\s+\{"pid": (\d+)\}', out)}
    assert logged == pids


def test_missing_script_on_a_socket_relay_says_could_not_open(fastrr, tmp_path):
    server = fastrr.start({"server": {"command": "php does-not-exist.php",
                                      "relay": f"unix://{tmp_path}/relay.sock"}}, wait=False)
    assert server.proc.wait(30) == 3
    err = server.err_path.read_text()
    assert "failed to boot 5 times in a row" in err
    assert "(Could not open input file: does-not-exist.php)" in err


def test_shutdown_is_bounded_with_a_request_still_running(fastrr):
    cfg, address = with_rpc({"http": {"shutdown_timeout": "1s",
                                      "pool": {"stop_timeout": "1s", "destroy_timeout": "60s"}}})
    server = fastrr.start(cfg, workers=1)
    (pid,) = server.wait_workers(1)
    with concurrent.futures.ThreadPoolExecutor(1) as ex, RpcClient(address) as client:
        slow = ex.submit(httpx.get, server.url("/sleep?ms=20000"), timeout=30)
        wait_until(lambda: client.call("informer.Workers", "http")["workers"][0]["statusStr"] == "working",
                   what="the request to reach the worker")
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(15) == 0
        elapsed = time.monotonic() - started
        try:
            slow.result()
            answered = True
        except httpx.HTTPError:
            answered = False
    # shutdown_timeout (1 s) for the request, then stop_timeout (1 s) for its worker.
    assert 0.9 <= elapsed < 4.0, elapsed
    assert not answered
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_unexpected_exits_are_listed_for_operators(fastrr):
    cfg, address = with_rpc()
    server = fastrr.start(cfg, workers=2)
    victim = min(server.wait_workers(2))
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: victim not in server.worker_pids() and len(server.worker_pids()) == 2,
               what="the killed worker to be replaced")
    with RpcClient(address) as client:
        exits = wait_until(lambda: client.call("informer.Stats", "http")["exits"], what="the exit")
    assert [(e["pid"], e["code"]) for e in exits] == [(victim, -9)]
    # (from a directory without .rr.yaml: `-o rpc.listen` is all the CLI needs)
    out = subprocess.run([sys.executable, "-m", "fastrr", "workers", "-o", f"rpc.listen={address}"],
                         capture_output=True, text=True, timeout=30, cwd=str(server.workdir.parent))
    assert out.returncode == 0, out.stderr
    assert "Recent unexpected worker exits:" in out.stdout
    assert f"{victim} " in out.stdout and "killed by signal 9" in out.stdout
    # A worker stopped on purpose is not listed.
    with RpcClient(address) as client:
        client.call("resetter.Reset", "http")
        assert [e["pid"] for e in client.call("informer.Stats", "http")["exits"]] == [victim]
