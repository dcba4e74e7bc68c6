"""Fixtures for the websockets plugin: a real `fastrr serve` with the broadcast and websockets
sections, the suite's PHP app (php/app.php) in both pools, and helpers to publish through
the broadcast RPC and to read WebSocket / SSE traffic.

`--engine both` runs the front-dependent tests on the Python front and on the C engine
(ids [python] / [c]), as tests/integration does.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fastrr.broadcast import proto
from fastrr.rpc.client import RpcClient
from fastrr.rpc.codec import FLAG_PROTO
from tests.conftest import Server, ServerFactory, deep_merge, free_port, raw_request

HERE = Path(__file__).resolve().parent
APP = HERE / "php" / "app.php"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fastrr_engine" in metafunc.fixturenames and metafunc.config.getoption("engine") == "both":
        metafunc.parametrize("fastrr_engine", ["python", "c"], indirect=True)


@pytest.fixture
def fastrr_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The HTTP front (FASTRR_ENGINE, the default of http.engine) of a test that asks for it."""
    engine = getattr(request, "param", None) or request.config.getoption("engine")
    monkeypatch.setenv("FASTRR_ENGINE", engine)
    return engine


class WsServer:
    def __init__(self, server: Server):
        self.server = server
        self.port = server.port
        self.rpc = RpcClient(f"tcp://127.0.0.1:{server.extra['rpc_port']}", 10.0)

    def url(self, path: str = "/ws", scheme: str = "ws") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def publish(self, topic: str, payload: bytes | str, *more: str) -> None:
        """broadcast.Publish over RPC, as PHP's Fastrr\\Broadcast sends it."""
        req = proto.Request()
        req.messages.add(topics=[topic, *more], payload=payload.encode() if isinstance(payload, str) else payload)
        answer = proto.Response()
        answer.ParseFromString(self.rpc.call("broadcast.Publish", req.SerializeToString(), flags=FLAG_PROTO))
        assert answer.ok

    def topics(self) -> dict[str, int]:
        """{topic: local subscribers} of the default broker (broadcast.Topics)."""
        return dict(self.rpc.call("broadcast.Topics", "default").get("default", {}))

    def wait_topics(self, expected: dict[str, int], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while (now := self.topics()) != expected:
            assert time.monotonic() < deadline, f"topics {now}, expected {expected}"
            time.sleep(0.05)

    def output(self) -> str:
        return self.server.output()

    def wait_output(self, text: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert time.monotonic() < deadline, f"{text!r} not logged within {timeout}s:\n{self.output()[-3000:]}"
            time.sleep(0.05)

    def close(self) -> None:
        self.rpc.close()


class WsFactory:
    def __init__(self, factory: ServerFactory):
        self.factory = factory
        self.opened: list[WsServer] = []

    def config(self, ws: dict[str, Any] | None = None, broker: dict[str, Any] | None = None,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
        rpc_port = free_port()
        cfg: dict[str, Any] = {
            "version": "3",
            "server": {"command": f"php {APP}"},
            "rpc": {"listen": f"tcp://127.0.0.1:{rpc_port}"},
            "http": {"address": "127.0.0.1:{port}", "middleware": ["websockets"], "pool": {"num_workers": 1}},
            "broadcast": {"default": broker or {"driver": "memory"}},
            "websockets": deep_merge({"broker": "default", "path": "/ws", "pool": {"num_workers": 1}}, ws or {}),
            "logs": {"level": "debug"},
        }
        return deep_merge(cfg, extra or {})

    def start(self, ws: dict[str, Any] | None = None, broker: dict[str, Any] | None = None,
              extra: dict[str, Any] | None = None) -> WsServer:
        cfg = self.config(ws, broker, extra)
        rpc_port = int(cfg["rpc"]["listen"].rpartition(":")[2])
        server = self.factory.start(raw_config=yaml.safe_dump(cfg), wait=True)
        server.extra["rpc_port"] = rpc_port
        deadline = time.monotonic() + 20
        while "fastrr started" not in server.output():
            if server.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"fastrr did not start:\n{server.output()}")
            time.sleep(0.05)
        engine = os.environ.get("FASTRR_ENGINE", "")
        tls = bool(cfg["http"].get("ssl"))
        if engine in ("python", "c") and "engine" not in cfg["http"] and not tls:
            # the front the test asked for is the one serving (websockets must not force python)
            assert f'"front": "{engine}"' in server.output(), server.output()
        srv = WsServer(server)
        self.opened.append(srv)
        return srv

    def fails(self, ws: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
              raw: dict[str, Any] | None = None) -> tuple[int, str]:
        """Start a server whose config must be refused: (exit code, output)."""
        cfg = raw if raw is not None else self.config(ws, None, extra)
        server = self.factory.start(raw_config=yaml.safe_dump(cfg), wait=False)
        try:
            code = server.proc.wait(30)
        except Exception:
            server.kill()
            raise
        return code, server.output()

    def close(self) -> None:
        for srv in self.opened:
            srv.close()


@pytest.fixture
def wsf(fastrr: ServerFactory) -> Iterator[WsFactory]:
    factory = WsFactory(fastrr)
    yield factory
    factory.close()


AUTH = {"Cookie": "auth=ok"}


def reply(data: str | bytes) -> dict[str, Any]:
    out = json.loads(data)
    assert isinstance(out, dict)
    return out


def raw_upgrade(port: int, path: str = "/ws", headers: dict[str, str] | None = None,
                timeout: float = 5.0, rcvbuf: int = 0) -> tuple[socket.socket, bytes, bytes]:
    """A WebSocket upgrade by hand: (socket, response head, bytes after it). `rcvbuf`: a
    small receive buffer, set before connecting (so the TCP window stays small too)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    hdrs = {"Host": f"127.0.0.1:{port}", "Upgrade": "websocket", "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13", **AUTH,
            **(headers or {})}
    head = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
    sock.sendall(head.encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    resp, _, rest = data.partition(b"\r\n\r\n")
    return sock, resp, rest


def read_http(port: int, request: bytes, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """One raw request, read to the server's close: (status, headers lower-cased, body)."""
    head, _, body = raw_request(port, request, timeout).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def client_frame(opcode: int, payload: bytes, mask: bool = True, fin: bool = True) -> bytes:
    """One client frame by hand (RFC 6455 §5.2), masked unless told not to."""
    import os
    import struct

    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = bytes((b0, m | n))
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_frames(sock: socket.socket, rest: bytes = b"", until_close: bool = True,
                timeout: float = 10.0) -> list[tuple[int, bytes]]:
    """Server frames as (opcode, payload) until a close frame (or EOF / timeout)."""
    import struct

    buf = bytearray(rest)
    out: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        while len(buf) >= 2:
            n = buf[1] & 0x7F
            off = 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, off = struct.unpack("!H", buf[2:4])[0], 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, off = struct.unpack("!Q", buf[2:10])[0], 10
            if len(buf) < off + n:
                break
            out.append((buf[0] & 0x0F, bytes(buf[off:off + n])))
            del buf[:off + n]
            if out[-1][0] == 0x8 and until_close:
                return out
        try:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        buf += chunk
    return out


def close_code(frames: list[tuple[int, bytes]]) -> int | None:
    import struct

    for opcode, payload in frames:
        if opcode == 0x8:
            return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
    return None
