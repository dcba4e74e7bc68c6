"""A blocking goridge RPC client, for the CLI and the tests.

One connection, one call at a time: seq starts at 1 and goes up by one per
call (as spiral/goridge's PHP client); an answer whose seq does not match is
a protocol error.
"""

from __future__ import annotations

import socket
from typing import Any

from fastrr import _core
from fastrr.rpc import codec
from fastrr.rpc.codec import FLAG_JSON, RpcError

__all__ = ["RpcClient", "RpcError", "RpcUnreachable"]


class RpcUnreachable(ConnectionError):
    """Nothing answers on the RPC address."""


def connect(dsn: str, timeout: float) -> socket.socket:
    try:
        if dsn.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(dsn[7:])
            except OSError:
                sock.close()
                raise
            return sock
        if not dsn.startswith("tcp://"):
            raise RpcUnreachable(f"unsupported RPC address {dsn!r}: expected tcp://host:port or unix:///path")
        host, _, port = dsn[6:].rpartition(":")
        return socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout)
    except (OSError, ValueError) as exc:
        raise RpcUnreachable(str(exc)) from None


class RpcClient:
    def __init__(self, dsn: str, timeout: float = 10.0):
        self.dsn = dsn
        self.sock = connect(dsn, timeout)
        self.reader = _core.FrameReader(1 << 30)
        self.seq = 1

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(self, method: str, payload: Any = True, flags: int = FLAG_JSON, timeout: float | None = -1.0) -> Any:
        """Call `method`; RpcError with the server's text on an ERROR answer.
        `timeout` None waits forever; -1 keeps the connection's timeout."""
        fmt = codec.pick_codec(flags)
        if fmt in (codec.FLAG_RAW, codec.FLAG_PROTO):
            body = payload if isinstance(payload, bytes) else payload.encode() if isinstance(payload, str) else b""
        else:
            body = codec.encode(fmt, payload, method)
        seq = self.seq
        self.sock.sendall(codec.encode_call(seq, method, body, flags))
        ans_flags, options, ans = self.read_frame(timeout)
        if len(options) != 2 or options[0] != seq:
            raise RpcError(f"invalid RPC answer: options {options!r}, expected [{seq}, ...]")
        self.seq += 1
        result = ans[options[1]:]
        if ans_flags & codec.FLAG_ERROR:
            raise RpcError(result.decode("utf-8", "replace"))
        return codec.decode(codec.pick_codec(ans_flags), result)

    def read_frame(self, timeout: float | None = -1.0) -> tuple[int, tuple[int, ...], bytes]:
        """The next frame as (flags, options, payload); ConnectionError on EOF."""
        if timeout != -1.0:
            self.sock.settimeout(timeout)
        while True:
            frames = self.reader.feed(b"")
            if frames:
                flags, _, options, payload = frames[0]
                return flags, options, payload
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError("the RPC server closed the connection")
            frames = self.reader.feed(data)
            if frames:
                # One call at a time: at most one frame can be pending.
                flags, _, options, payload = frames[0]
                return flags, options, payload
