"""The machine-floor server (bench/floor.c): it builds warning-free, answers
hello byte for byte like the demo app, keeps connections alive and answers
pipelined requests in one go; and the report places it next to the front."""

from __future__ import annotations

import socket

import pytest

from fastrr.benchmark import env, floor, procs, report
from fastrr.benchmark.apps import APPS

RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n"
            b'{"message":"Hello, World!"}')


@pytest.fixture
def floor_server(tmp_path):
    binary = floor.build(tmp_path)
    with procs.Reaper() as reaper:
        server = floor.start(binary, APPS["hello"], env.Layout("unpinned", None, None), reaper, tmp_path / "log")
        yield server


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def test_keep_alive_and_pipelining(floor_server):
    with socket.create_connection(("127.0.0.1", floor_server.port), timeout=5) as sock:
        for _ in range(3):
            sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            assert recv_exactly(sock, len(RESPONSE)) == RESPONSE
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n" * 5 + b"GET /hello HTTP/1.1\r\n")
        assert recv_exactly(sock, 5 * len(RESPONSE)) == RESPONSE * 5
        sock.sendall(b"Host: x\r\n\r\n")  # the rest of the sixth
        assert recv_exactly(sock, len(RESPONSE)) == RESPONSE


def test_oversized_head_closes_only_that_connection(floor_server):
    with socket.create_connection(("127.0.0.1", floor_server.port), timeout=5) as bad:
        bad.sendall(b"GET /" + b"a" * 20000)
        try:
            assert bad.recv(100) == b""
        except ConnectionResetError:
            pass  # closed with unread bytes: a reset is the kernel's way of saying so
    with socket.create_connection(("127.0.0.1", floor_server.port), timeout=5) as good:
        good.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert recv_exactly(good, len(RESPONSE)) == RESPONSE


def test_summary_is_the_median_with_spread():
    s = floor.summary([{"cpu_us": 5.0, "rps": 100.0}, {"cpu_us": 4.0, "rps": 120.0}, {"cpu_us": 6.0, "rps": 90.0}])
    assert (s["cpu_us"], s["cpu_min"], s["cpu_max"], s["rps"], s["repeats"]) == (5.0, 4.0, 6.0, 100.0, 3)


def test_report_places_the_floor_next_to_the_front(doc):
    doc["floor"] = {"mode": "pinned", "connections": 64, "cpu_us": 5.0, "cpu_min": 4.5, "cpu_max": 5.5,
                    "rps": 120000.0, "repeats": 3}
    md = report.markdown(doc)
    line = next(ln for ln in md.splitlines() if ln.startswith("Machine floor"))
    assert "5.0 µs/req (4.5–5.5)" in line and "120,000 req/s" in line
    front = report.summary(next(p for p in doc["points"] if p["app"] == "hello" and p["connections"] == 64),
                           "fastrr", "front_us").median
    assert f"{front - 5.0:.1f} µs above it" in line
    doc["floor"] = {"error": "no C compiler (Debian: gcc)"}
    assert "Machine floor: not measured (no C compiler (Debian: gcc))." in report.markdown(doc)
