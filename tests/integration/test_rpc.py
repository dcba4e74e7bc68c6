"""The RPC plugin against a real server: every method from Python (JSON,
msgpack, raw) and from the PHP client, concurrent calls on one connection,
and malformed input that must get an error, never a crash.

Frames sent by hand are built here with struct + zlib, independently of
fastrr's own encoder.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import socket
import stat
import struct
import subprocess
import time
import zlib
from typing import Any

import httpx
import msgpack
import pytest
import yaml

from fastrr import RR_COMPAT_VERSION
from fastrr.rpc.client import RpcClient, RpcError
from tests.conftest import ROOT, free_port

JSON, RAW, MSGPACK, PROTO, GOB, ERROR = 0x08, 0x04, 0x10, 0x80, 0x20, 0x40


def frame(flags: int, payload: bytes, options: tuple[int, ...] = (), crc_fix: int = 0) -> bytes:
    head = struct.pack("<BBI", 0x10 | (3 + len(options)), flags, len(payload))
    crc = (zlib.crc32(head) ^ crc_fix) & 0xFFFFFFFF
    return head + struct.pack("<IBB", crc, 0, 0) + struct.pack(f"<{len(options)}I", *options) + payload


def call_frame(seq: int, method: str, body: bytes, flags: int = JSON) -> bytes:
    return frame(flags, method.encode() + body, (seq, len(method)))


def read_frame(sock: socket.socket) -> tuple[int, tuple[int, ...], bytes] | None:
    """One frame, or None on EOF."""
    def exactly(n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    head = exactly(12)
    if head is None:
        return None
    hl, flags, length, crc = head[0] & 0x0F, head[1], *struct.unpack("<II", head[2:10])
    assert crc == zlib.crc32(head[:6]) & 0xFFFFFFFF
    opt = exactly((hl - 3) * 4) or b""
    options = struct.unpack(f"<{hl - 3}I", opt)
    payload = exactly(length) if length else b""
    assert payload is not None
    return flags, options, payload


@pytest.fixture
def rpc(fastrr) -> tuple[Any, str]:
    address = f"tcp://127.0.0.1:{free_port()}"
    server = fastrr.start({"rpc": {"listen": address}}, workers=2)
    server.wait_workers(2)
    return server, address


def connect(address: str) -> socket.socket:
    host, _, port = address[6:].rpartition(":")
    return socket.create_connection((host, int(port)), timeout=10)


def assert_rpc_and_http_alive(server, address: str) -> None:
    with RpcClient(address) as client:
        assert client.call("informer.List") == ["http"]
    assert httpx.get(server.url("/hello"), timeout=10).status_code == 200
    assert server.proc.poll() is None


def test_lists_version_and_config(rpc):
    server, address = rpc
    with RpcClient(address) as client:
        assert client.call("informer.List", True) == ["http"]
        assert client.call("resetter.List", True) == ["http"]
        assert client.call("rpc.Version", True) == RR_COMPAT_VERSION
        raw = client.call("rpc.Config", True, RAW)
        cfg = yaml.safe_load(raw)
        assert cfg["http"]["address"] == f"127.0.0.1:{server.port}"
        assert cfg["rpc"]["listen"] == address
        # JSON carries bytes as Go does: base64.
        assert base64.b64decode(client.call("rpc.Config", True)) == raw


def test_informer_workers_rows(rpc):
    server, address = rpc
    for _ in range(5):
        assert httpx.get(server.url("/hello"), timeout=10).status_code == 200
    with RpcClient(address) as client:
        rows = client.call("informer.Workers", "http")["workers"]
    assert {row["pid"] for row in rows} == server.worker_pids()
    now = time.time_ns()
    for row in rows:
        assert set(row) >= {"pid", "status", "numExecs", "created", "memoryUsage", "CPUPercent", "command",
                            "statusStr"}
        assert row["status"] == 1 and row["statusStr"] == "ready"
        assert 0 < now - row["created"] < 120 * 10**9
        assert 1 << 20 < row["memoryUsage"] < 1 << 30
        assert isinstance(row["CPUPercent"], float) and row["CPUPercent"] >= 0
        assert "app.php" in row["command"]
    assert sum(row["numExecs"] for row in rows) == 5


def test_add_and_remove_workers(rpc):
    server, address = rpc
    with RpcClient(address) as client:
        assert client.call("informer.AddWorker", "http") is True
        server.wait_workers(3)
        assert client.call("informer.RemoveWorker", "http") is True
        assert client.call("informer.RemoveWorker", "http") is True
        server.wait_workers(1)
        with pytest.raises(RpcError, match="below one worker"):
            client.call("informer.RemoveWorker", "http")
        with pytest.raises(RpcError, match="no such plugin"):
            client.call("informer.AddWorker", "jobs")
    assert httpx.get(server.url("/hello"), timeout=10).status_code == 200


def test_reset_replaces_every_worker(rpc):
    server, address = rpc
    before = server.worker_pids()
    with RpcClient(address) as client:
        assert client.call("resetter.Reset", "http", timeout=60) is True
        rows = client.call("informer.Workers", "http")["workers"]
    after = {row["pid"] for row in rows}
    assert len(after) == 2 and not (after & before)


def test_msgpack_and_raw_codecs(rpc):
    _, address = rpc
    with RpcClient(address) as client:
        assert client.call("informer.List", True, MSGPACK) == ["http"]
        rows = client.call("informer.Workers", "http", MSGPACK)["workers"]
        assert len(rows) == 2 and rows[0]["statusStr"] == "ready"
        assert client.call("rpc.Version", b"", RAW) == RR_COMPAT_VERSION.encode()  # raw answers stay bytes
    with connect(address) as sock:
        sock.sendall(call_frame(7, "rpc.Version", b"", RAW))
        flags, options, payload = read_frame(sock)
        assert (flags, options, payload) == (RAW, (7, 11), b"rpc.Version" + RR_COMPAT_VERSION.encode())
        sock.sendall(call_frame(8, "informer.Workers", b"http", RAW))
        flags, options, payload = read_frame(sock)
        assert flags == RAW | ERROR and options == (8, 16)
        assert b"use json or msgpack" in payload
        sock.sendall(call_frame(9, "informer.Workers", msgpack.packb("http"), MSGPACK))
        flags, options, payload = read_frame(sock)
        assert flags == MSGPACK and options == (9, 16)
        assert len(msgpack.unpackb(payload[16:])["workers"]) == 2


def test_calls_on_one_connection_are_answered_as_they_complete(rpc):
    server, address = rpc
    with concurrent.futures.ThreadPoolExecutor(1) as ex, connect(address) as sock:
        slow = ex.submit(httpx.get, server.url("/sleep?ms=3000"), timeout=20)
        with RpcClient(address) as client:
            deadline = time.monotonic() + 10
            while not any(w["statusStr"] == "working" for w in client.call("informer.Workers", "http")["workers"]):
                assert time.monotonic() < deadline
                time.sleep(0.05)
        # Reset must drain the busy worker (~3 s); List on the same connection must not wait for it.
        sock.sendall(call_frame(1, "resetter.Reset", b'"http"') + call_frame(2, "informer.List", b"true"))
        first = read_frame(sock)
        assert first is not None and first[1] == (2, 13) and json.loads(first[2][13:]) == ["http"]
        assert not slow.done()
        second = read_frame(sock)
        assert second is not None and second[1] == (1, 14) and second[2] == b"resetter.Resettrue"
        assert slow.result().status_code == 200


@pytest.mark.parametrize("data, expect", [
    (call_frame(5, "informer.Nope", b"true"), (5, b"rpc: can't find method informer.Nope")),
    (call_frame(6, "informer.List", b"true", GOB), (6, b"unsupported codec")),
    (call_frame(7, "informer.List", b"true", 0), (7, b"unsupported codec")),
    (call_frame(8, "informer.Workers", b"{not json", JSON), (8, b"invalid JSON")),
    (call_frame(9, "informer.Workers", b"\xc1", MSGPACK), (9, b"invalid msgpack")),
    (call_frame(10, "informer.Workers", b"", PROTO), (10, b"does not take protobuf")),
    (call_frame(11, "informer.Workers", b"42"), (11, b"expected a plugin name")),
    (frame(JSON, b"informer.List", (12,)), (12, b"expected 2 options")),
    (frame(JSON, b"informer.List", (13, 99)), (13, b"does not fit")),
    (frame(JSON, b"\xff\xfe", (14, 2)), (14, b"not UTF-8")),
], ids=["unknown-method", "gob", "no-codec", "bad-json", "bad-msgpack", "proto", "wrong-arg", "one-option",
        "method-too-long", "method-not-utf8"])
def test_bad_calls_get_an_error_and_the_connection_lives_on(rpc, data, expect):
    server, address = rpc
    with connect(address) as sock:
        sock.sendall(data)
        answer = read_frame(sock)
        assert answer is not None
        flags, options, payload = answer
        assert flags & ERROR
        assert options[0] == expect[0]
        assert expect[1] in payload[options[1]:]
        sock.sendall(call_frame(100, "informer.List", b"true"))
        assert read_frame(sock) == (JSON, (100, 13), b'informer.List["http"]')
    assert_rpc_and_http_alive(server, address)


@pytest.mark.parametrize("data", [
    call_frame(1, "informer.List", b"true")[:6] + b"\0\0\0\0" + call_frame(1, "informer.List", b"true")[10:],
    frame(JSON, b"informer.Listtrue", (1, 13), crc_fix=1),
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x20" + b"\0" * 11,  # version nibble 2
])
def test_frames_that_are_not_goridge_get_an_error_and_a_close(rpc, data):
    server, address = rpc
    with connect(address) as sock:
        sock.sendall(data)
        answer = read_frame(sock)
        assert answer is not None
        flags, options, payload = answer
        assert flags & ERROR and options == (0, 0) and b"malformed frame" in payload
        assert read_frame(sock) is None  # closed
    assert_rpc_and_http_alive(server, address)


@pytest.mark.parametrize("data", [
    call_frame(1, "informer.List", b"true")[:7],               # inside the header
    call_frame(1, "informer.List", b"true")[:20],              # inside the options
    frame(JSON, b"x" * 100, (1, 1))[:40],                      # inside the payload
])
def test_truncated_frames_then_close(rpc, data):
    server, address = rpc
    with connect(address) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        assert read_frame(sock) is None
    assert_rpc_and_http_alive(server, address)


def test_rpc_over_a_unix_socket(fastrr, tmp_path):
    path = tmp_path / "rpc.sock"
    server = fastrr.start({"rpc": {"listen": f"unix://{path}"}})
    with RpcClient(f"unix://{path}") as client:
        assert client.call("informer.List") == ["http"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    server.stop()
    assert not path.exists()


def test_rpc_address_in_use_is_a_clear_start_error(fastrr):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        server = fastrr.start({"rpc": {"listen": f"tcp://127.0.0.1:{port}"}}, wait=False)
        assert server.proc.wait(30) == 1
    assert f"rpc.listen: cannot listen on tcp://127.0.0.1:{port}" in server.err_path.read_text()


PHP_CLIENT = r"""<?php
declare(strict_types=1);
require getenv('FASTRR_PHP') . '/autoload.php';

use Fastrr\RPC\Codec\MsgpackCodec;
use Fastrr\RPC\Codec\RawCodec;
use Fastrr\RPC\Exception\ServiceException;
use Fastrr\RPC\RPC;

$rpc = RPC::fromEnvironment();
$pids = static fn (array $w): array => array_column($w['workers'], 'pid');
$out = [];
$out['list'] = $rpc->call('informer.List', true);
$out['workers'] = $rpc->call('informer.Workers', 'http');
$out['resetterList'] = $rpc->withServicePrefix('resetter')->call('list', true);
$out['version'] = $rpc->call('rpc.Version', true);
$out['config'] = $rpc->withCodec(new RawCodec())->call('rpc.Config', true);
$out['msgpackWorkers'] = $rpc->withCodec(new MsgpackCodec())->call('informer.Workers', 'http');
$out['add'] = $rpc->withServicePrefix('informer')->call('addWorker', 'http');
$out['remove'] = $rpc->call('informer.RemoveWorker', 'http');
try {
    $rpc->call('informer.Nope', 'http');
    $out['error'] = null;
} catch (ServiceException $e) {
    $out['error'] = $e->getMessage();
}
$out['afterError'] = $rpc->call('informer.List', true);
$out['pidsBefore'] = $pids($rpc->call('informer.Workers', 'http'));
$out['reset'] = $rpc->withServicePrefix('resetter')->call('reset', 'http');
$out['pidsAfter'] = $pids($rpc->call('informer.Workers', 'http'));
// msgpack codec in both directions against Python's msgpack.
$sample = ['a' => [1, -1, 200, -200, 70000, -70000, 5000000000, -5000000000, 1.5, true, false, null],
           's' => str_repeat('x', 40), 'e' => [], 'u' => "h\u{e9}llo", 'n' => ['k' => ['deep' => 'v']]];
$out['packed'] = base64_encode(MsgpackCodec::pack($sample));
$off = 0;
$out['unpacked'] = MsgpackCodec::unpack(base64_decode(getenv('PY_PACKED')), $off);
echo json_encode($out, JSON_UNESCAPED_SLASHES), "\n";
"""


def run_php_client(address: str, tmp_path, py_value: dict) -> dict:
    """PHP_CLIENT against the server at `address` (RR_RPC); its JSON report."""
    script = tmp_path / "client.php"
    script.write_text(PHP_CLIENT)
    env = {**os.environ, "RR_RPC": address, "FASTRR_PHP": str(ROOT / "php"),
           "PY_PACKED": base64.b64encode(msgpack.packb(py_value)).decode()}
    res = subprocess.run(["php", str(script)], capture_output=True, text=True, timeout=90, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads(res.stdout)
    assert out["unpacked"] == py_value
    return out


def test_php_rpc_client_calls_every_method(rpc, tmp_path):
    server, address = rpc
    py_value = {"list": [1, -2, 300, -40000, 2**40, 0.25, True, None], "text": "z" * 300, "m": {"x": {"y": "z"}}}
    out = run_php_client(address, tmp_path, py_value)
    assert out["list"] == ["http"] and out["resetterList"] == ["http"] and out["afterError"] == ["http"]
    assert len(out["workers"]["workers"]) == 2  # (RemoveWorker may have stopped one of them since)
    assert out["msgpackWorkers"]["workers"][0]["statusStr"] in ("ready", "working")
    assert out["version"] == RR_COMPAT_VERSION
    assert yaml.safe_load(out["config"])["rpc"]["listen"] == address
    assert out["add"] is True and out["remove"] is True and out["reset"] is True
    assert "Error 'rpc: can't find method informer.Nope' on" in out["error"]
    assert not set(out["pidsBefore"]) & set(out["pidsAfter"])
    assert msgpack.unpackb(base64.b64decode(out["packed"])) == {
        "a": [1, -1, 200, -200, 70000, -70000, 5000000000, -5000000000, 1.5, True, False, None],
        "s": "x" * 40, "e": [], "u": "h\u00e9llo", "n": {"k": {"deep": "v"}}}
    server.wait_workers(2)


def test_php_rpc_client_over_a_unix_socket(fastrr, tmp_path):
    path = tmp_path / "rpc.sock"
    address = f"unix://{path}"
    server = fastrr.start({"rpc": {"listen": address}}, workers=2)
    server.wait_workers(2)
    out = run_php_client(address, tmp_path, {"k": [1, "two", None]})
    assert out["list"] == ["http"] and out["resetterList"] == ["http"] and out["afterError"] == ["http"]
    assert out["version"] == RR_COMPAT_VERSION
    assert yaml.safe_load(out["config"])["rpc"]["listen"] == address
    assert out["msgpackWorkers"]["workers"][0]["statusStr"] in ("ready", "working")
    assert out["add"] is True and out["remove"] is True and out["reset"] is True
    assert "Error 'rpc: can't find method informer.Nope' on" in out["error"]
    assert len(out["pidsAfter"]) == 2 and not set(out["pidsBefore"]) & set(out["pidsAfter"])
    assert server.wait_workers(2) == set(out["pidsAfter"])


def test_cpu_percent_of_a_busy_worker(fastrr):
    address = f"tcp://127.0.0.1:{free_port()}"
    server = fastrr.start({"rpc": {"listen": address}}, workers=2)
    server.wait_workers(2)
    r = httpx.get(server.url("/burn?ms=600"), timeout=20)
    assert r.status_code == 200
    busy = r.json()["pid"]
    with RpcClient(address) as client:
        rows = {row["pid"]: row for row in client.call("informer.Workers", "http")["workers"]}
    lifetime = (time.time_ns() - rows[busy]["created"]) / 1e9
    # 0.6 s of CPU over the worker's life so far (gopsutil's CPUPercent: CPU time / age).
    assert rows[busy]["CPUPercent"] >= 0.9 * 0.6 / lifetime * 100, (rows[busy], lifetime)
    idle = next(pid for pid in rows if pid != busy)
    assert 0 <= rows[idle]["CPUPercent"] < rows[busy]["CPUPercent"]
