"""The Symfony test app on real fastrr with Fastrr\\Symfony\\Runtime (its own public/index.php as the
worker, one worker, so every request meets the state the previous ones left): nothing of one
request reaches the next (session, ResetInterface services, the request stack), streamed and
binary-file responses, an exception answered 500 by a worker that lives on, exit() replacing it."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, ServerFactory
from tests.differential.conftest import PHP_INI
from tests.frameworks.symfony.peers import APP, FRONT, start_fastrr

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("sf")
    factory = ServerFactory(base)
    try:
        yield start_fastrr(factory, base / "var", workers=1, log_level="info")
    finally:
        factory.close()


def client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.base, timeout=15.0)


def ledger(http: httpx.Client) -> dict[str, Any]:
    answer = http.get("/ledger")
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_session_never_reaches_another_client(server: Server) -> None:
    with client(server) as alice, client(server) as bob:
        pid = ledger(alice)["pid"]
        assert alice.get("/session/set", params={"value": "alice-secret"}).json() == {"stored": "alice-secret"}
        assert "PHPSESSID" in alice.cookies
        # Same worker, next request, another client: nothing of alice's session.
        assert bob.get("/session/get").json() == {"value": None, "all": []}
        assert "PHPSESSID" not in bob.cookies  # an empty session sets no cookie
        bob.get("/session/set", params={"value": "bob-secret"})
        assert bob.cookies["PHPSESSID"] != alice.cookies["PHPSESSID"]
        for _ in range(3):  # interleaved on the one worker
            assert alice.get("/session/get").json()["value"] == "alice-secret"
            assert bob.get("/session/get").json()["value"] == "bob-secret"
            assert httpx.get(server.url("/session/get")).json()["value"] is None
        assert ledger(bob)["pid"] == pid


def test_reset_interface_services_are_reset_after_every_request(server: Server) -> None:
    with client(server) as http:
        first = ledger(http)
        # One reset per request whatever the request did: ok, 404, exception, \Error, a sub-request.
        for path in ("/", "/missing", "/boom", "/error", "/stack?sub=1", "/stream", "/file"):
            http.get(path)
        after = ledger(http)
        assert after["pid"] == first["pid"]
        assert after["resets"] == first["resets"] + 8  # the 7 requests above and the first /ledger
        for _ in range(5):
            seen = ledger(http)
            assert seen["entries_before"] == 0  # what the previous request recorded is gone
            assert seen["stack_empty_at_reset"] is True
            assert seen["resets"] == after["resets"] + 1
            after = seen


def test_the_request_stack_holds_only_the_current_request(server: Server) -> None:
    with client(server) as http:
        assert http.get("/stack", params={"fail": "1"}).status_code == 500  # fails with the request on the stack
        assert http.get("/error").status_code == 500
        for _ in range(2):
            assert http.get("/stack?sub=1").json() == {
                "uri": "/stack?sub=1", "main": "/stack?sub=1", "parent": None,
                "sub": {"uri": "/stack?inner=1", "main": "/stack?sub=1", "parent": "/stack?sub=1"},
            }


def read_until(sock: socket.socket, needle: bytes, data: bytes = b"") -> bytes:
    while needle not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_a_streamed_response_goes_out_while_the_callback_runs(server: Server, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(f"GET /stream?n=3&wait={gate} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        head = read_until(sock, b"chunk 1\n")
        # The callback is now waiting for the gate: what arrived was streamed, not buffered.
        assert b"chunk 1\n" in head and b"chunk 2" not in head
        assert b"Transfer-Encoding: chunked" in head and b"text/plain; charset=UTF-8" in head
        gate.touch()
        rest = read_until(sock, b"0\r\n\r\n", head)
    assert b"chunk 2\n" in rest and b"chunk 3\n" in rest


def test_binary_file_responses_with_ranges_small_and_large(server: Server) -> None:
    sample = (APP / "files" / "sample.bin").read_bytes()
    size = 12_000_000  # past the one-frame limit (10 MB): streamed
    block = b"0123456789abcdef" * 4096
    with client(server) as http:
        pid = ledger(http)["pid"]
        small = http.get("/file")
        assert small.content == sample and small.headers["content-disposition"] == "attachment; filename=sample.bin"
        part = http.get("/file", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == sample[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(sample)}"
        large = http.get("/file", params={"size": str(size)})
        assert large.status_code == 200 and len(large.content) == size
        assert large.content[:len(block)] == block and large.content[-16:] == (block * 200)[size - 16:size]
        tail = http.get("/file", params={"size": str(size)}, headers={"Range": f"bytes={size - 10}-"})
        assert tail.status_code == 206 and tail.content == (block * 200)[size - 10:size]
        # A client that leaves half-way: the worker drops the rest and serves on.
        with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
            sock.sendall(f"GET /file?size={size} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            read_until(sock, block)
        assert ledger(http)["pid"] == pid
        assert http.get("/").text == "Hello from Symfony\n"


def test_an_exception_is_the_kernels_500_and_the_worker_lives_on(server: Server) -> None:
    with client(server) as http:
        pid = ledger(http)["pid"]
        for path in ("/boom", "/error"):
            answer = http.get(path)
            assert answer.status_code == 500
            assert "The server returned a \"500 Internal Server Error\"." in answer.text  # Symfony's error page
        assert ledger(http)["pid"] == pid
    assert "boom: an exception in a controller" in server.output()


def test_exit_answers_and_the_worker_is_replaced(server: Server) -> None:
    with client(server) as http:
        before = ledger(http)
        answer = http.get("/exit")
        assert (answer.status_code, answer.text) == (200, "bye\n")
        after = ledger(http)  # never a 502: the request meant for the exiting worker is retried
        assert after["pid"] != before["pid"]
        assert after["resets"] == 0  # a new process, a new kernel
        assert ledger(http)["pid"] == after["pid"]
    server.wait_workers(1)


def test_the_same_front_controller_still_runs_without_fastrr(tmp_path: Path) -> None:
    """Outside a fastrr worker (no RR_MODE), Fastrr\\Symfony\\Runtime is SymfonyRuntime: one request
    from the globals, here the CLI's, and the process ends."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RR_")}
    env.update({"APP_RUNTIME": "Fastrr\\Symfony\\Runtime", "APP_ENV": "prod", "APP_DEBUG": "0",
                "APP_VAR_DIR": str(tmp_path)})
    done = subprocess.run(["php", "-c", str(PHP_INI), str(FRONT)], env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"Hello from Symfony\n"


def test_request_building_unit_checks(tmp_path: Path) -> None:
    """php tests/frameworks/symfony/unit.php: RequestFactory on hand-made fastrr requests."""
    done = subprocess.run(["php", str(HERE / "symfony" / "unit.php")], capture_output=True, timeout=60,
                          env={**os.environ, "APP_VAR_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert b" passed, 0 failed" in done.stdout, done.stdout
