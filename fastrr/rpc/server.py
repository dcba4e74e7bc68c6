"""The RPC listener: one asyncio protocol per connection, calls served concurrently.

Rules of this file:
- Every well-framed call gets exactly one answer frame echoing its seq and
  method, sent when its handler completes; a slow call (Reset) never holds
  up a later one on the same connection.
- A byte stream that stops being goridge frames (bad CRC, bad version) cannot
  be resynchronised: it gets one ERROR frame (seq 0) and the connection is closed.
- Handlers are not cancelled when their client goes away (a half-done reset
  is worse than an unread answer); the answer is dropped.
- Nothing a client sends can raise out of this module.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import stat
from typing import Any

from fastrr import _core
from fastrr.log import Logger
from fastrr.rpc import codec
from fastrr.rpc.codec import RpcError
from fastrr.rpc.services import Services

MAX_PAYLOAD = 64 << 20


class RpcServer:
    def __init__(self, listen: str, services: Services, log: Logger):
        self.listen = listen
        self.services = services
        self.log = log
        self.loop = asyncio.get_running_loop()
        self.connections: set[RpcConnection] = set()
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Bind `rpc.listen`; OSError when the address cannot be used."""
        dsn = self.listen
        if dsn.startswith("unix://"):
            path = dsn[7:]
            try:
                if stat.S_ISSOCK(os.stat(path).st_mode):
                    os.unlink(path)  # left over by a server that did not stop cleanly
            except FileNotFoundError:
                pass
            self.server = await self.loop.create_unix_server(lambda: RpcConnection(self), path)
            os.chmod(path, 0o600)  # only our user may reset workers or read the config
        else:
            host, _, port = dsn[6:].rpartition(":")
            host = host.strip("[]")
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, int(port)))
            except OSError:
                sock.close()
                raise
            self.server = await self.loop.create_server(lambda: RpcConnection(self), sock=sock)
            if not _is_loopback(host):
                self.log.warn("rpc.listen is not a loopback address: anyone who can reach it can reset "
                              "workers and read the config", listen=dsn)
        self.log.debug("rpc listening", listen=dsn)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.close()
        if self.listen.startswith("unix://"):
            try:
                os.unlink(self.listen[7:])
            except OSError:
                pass

    def call_fast(self, fast: Any, flags: int, method: str, body: bytes) -> tuple[int, bytes] | None:
        """A proto method's synchronous form: its answer, or None to take the async path."""
        fmt = codec.pick_codec(flags)
        if fmt not in (codec.FLAG_PROTO, codec.FLAG_RAW):
            return None  # the async path gives the error
        answer = fast(body)
        return None if answer is None else (codec.FLAG_PROTO, answer)

    async def call(self, flags: int, method: str, body: bytes) -> tuple[int, bytes]:
        """Run one call; returns (answer flags, answer body). Raises RpcError."""
        fmt = codec.pick_codec(flags)
        handler = self.services.methods.get(method)
        if handler is None:
            raise RpcError(f"rpc: can't find method {method}")
        if method in self.services.proto:
            # The method decodes its own protobuf message; raw bytes are taken too.
            if fmt not in (codec.FLAG_PROTO, codec.FLAG_RAW):
                raise RpcError(f"{method} takes a protobuf message (frame flags 0x80), not {codec.CODEC_NAMES[fmt]}")
            return codec.FLAG_PROTO, await handler(body)
        if fmt == codec.FLAG_PROTO:
            raise RpcError(f"{method} does not take protobuf messages; use json, msgpack or raw")
        arg = codec.decode(fmt, body)
        result = await handler(arg)
        return fmt, codec.encode(fmt, result, method)


class RpcConnection(asyncio.Protocol):
    def __init__(self, server: RpcServer):
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.reader = _core.FrameReader(MAX_PAYLOAD)
        self.closed = False
        self.tasks: set[asyncio.Task[Any]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            frames = self.reader.feed(data)
        except _core.FrameError as exc:
            self.server.log.warn("rpc: malformed frame, closing the connection", error=str(exc))
            self._send_error(0, "", codec.FLAG_JSON, f"rpc: malformed frame: {exc}")
            self.close()
            return
        for flags, _, options, payload in frames or ():
            self._on_call(flags, options, payload)

    def _on_call(self, flags: int, options: tuple[int, ...], payload: bytes) -> None:
        seq = options[0] if options else 0
        if len(options) != 2:
            self._send_error(seq, "", flags, f"rpc: expected 2 options [seq, method length], got {len(options)}")
            return
        mlen = options[1]
        if mlen == 0 or mlen > len(payload):
            self._send_error(seq, "", flags,
                             f"rpc: method length {mlen} does not fit a payload of {len(payload)} bytes")
            return
        try:
            method = payload[:mlen].decode()
        except UnicodeDecodeError:
            self._send_error(seq, "", flags, "rpc: the method name is not UTF-8")
            return
        body = payload[mlen:]
        # Fast path: a method with a synchronous form (kv.MGet on a local storage,
        # lock.Exists, ...) is answered here, without a Task and its loop turns (a
        # third of a small call's cost). It returns None when it has to wait.
        fast = self.server.services.fast.get(method)
        if fast is not None:
            try:
                result = self.server.call_fast(fast, flags, method, body)
            except Exception as exc:
                self._reply(seq, method, flags, None, exc)
                return
            if result is not None:
                self._reply(seq, method, flags, result, None)
                return
        task = asyncio.ensure_future(self.server.call(flags, method, body))
        self.tasks.add(task)
        task.add_done_callback(lambda t: self._answer(t, seq, method, flags))

    def _answer(self, task: asyncio.Task[tuple[int, bytes]], seq: int, method: str, flags: int) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            self._send_error(seq, method, flags, "rpc: call cancelled (server stopping)")
            return
        exc = task.exception()
        self._reply(seq, method, flags, task.result() if exc is None else None, exc)

    def _reply(self, seq: int, method: str, flags: int, result: tuple[int, bytes] | None,
               exc: BaseException | None) -> None:
        if exc is None:
            assert result is not None
            fmt, body = result
            self._write(codec.encode_call(seq, method, body, fmt))
        elif isinstance(exc, RpcError):
            self._send_error(seq, method, flags, str(exc))
        else:
            self.server.log.error("rpc: call failed", method=method, error=repr(exc))
            self._send_error(seq, method, flags, f"rpc: internal error in {method}: {exc!r}")

    def _send_error(self, seq: int, method: str, flags: int, text: str) -> None:
        codec_bits = flags & (codec.FLAG_RAW | codec.FLAG_JSON | codec.FLAG_MSGPACK | codec.FLAG_PROTO)
        self._write(codec.encode_call(seq & 0xFFFFFFFF, method, text.encode(), codec_bits | codec.FLAG_ERROR))

    def _write(self, frame: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(frame)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
