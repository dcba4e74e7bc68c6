"""The RPC server in-process, with fake services: framing, concurrency and
errors without PHP workers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from fastrr import _core
from fastrr.log import Logger, LogSink
from fastrr.rpc import codec
from fastrr.rpc.codec import FLAG_ERROR, FLAG_JSON, RpcError
from fastrr.rpc.server import RpcServer


class FakeServices:
    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.finished = asyncio.Event()
        self.proto: set[str] = set()  # methods taking protobuf bytes (none here)
        self.fast: dict[str, object] = {}
        self.methods = {
            "test.Echo": self.echo,
            "test.Slow": self.slow,
            "test.Fail": self.fail,
            "test.Crash": self.crash,
        }

    async def echo(self, arg: Any) -> Any:
        return arg

    async def slow(self, arg: Any) -> Any:
        await self.gate.wait()
        self.finished.set()
        return "slow done"

    async def fail(self, arg: Any) -> Any:
        raise RpcError("it failed on purpose")

    async def crash(self, arg: Any) -> Any:
        raise ValueError("a bug")


async def _start(tmp_path) -> tuple[RpcServer, FakeServices, str]:
    services = FakeServices()
    path = tmp_path / "rpc.sock"
    server = RpcServer(f"unix://{path}", services, Logger(LogSink("error"), "rpc"))  # type: ignore[arg-type]
    await server.start()
    return server, services, str(path)


async def _read(reader: asyncio.StreamReader, frames: _core.FrameReader) -> tuple[int, tuple[int, ...], bytes]:
    while True:
        got = frames.feed(await asyncio.wait_for(reader.read(65536), 5))
        if got:
            flags, _, options, payload = got[0]
            return flags, options, payload


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_answers_leave_as_calls_complete(tmp_path):
    async def main() -> None:
        server, services, path = await _start(tmp_path)
        reader, writer = await asyncio.open_unix_connection(path)
        frames = _core.FrameReader(1 << 20)
        writer.write(codec.encode_call(1, "test.Slow", b"true", FLAG_JSON))
        writer.write(codec.encode_call(2, "test.Echo", b'{"a":1}', FLAG_JSON))
        flags, options, payload = await _read(reader, frames)
        assert (flags, options, payload) == (FLAG_JSON, (2, 9), b'test.Echo{"a":1}')
        services.gate.set()
        flags, options, payload = await _read(reader, frames)
        assert (flags, options, payload) == (FLAG_JSON, (1, 9), b'test.Slow"slow done"')
        writer.close()
        await server.stop()

    run(main())


@pytest.mark.parametrize("method, needle", [
    ("test.Fail", b"it failed on purpose"),
    ("test.Crash", b"rpc: internal error in test.Crash: ValueError('a bug')"),
    ("test.Missing", b"rpc: can't find method test.Missing"),
])
def test_errors_echo_seq_and_method(tmp_path, method, needle):
    async def main() -> None:
        server, _, path = await _start(tmp_path)
        reader, writer = await asyncio.open_unix_connection(path)
        frames = _core.FrameReader(1 << 20)
        writer.write(codec.encode_call(77, method, b"null", FLAG_JSON))
        flags, options, payload = await _read(reader, frames)
        assert flags == FLAG_JSON | FLAG_ERROR
        assert options == (77, len(method))
        assert payload[:len(method)] == method.encode() and needle in payload
        # The connection still serves.
        writer.write(codec.encode_call(78, "test.Echo", b"[1]", FLAG_JSON))
        flags, options, payload = await _read(reader, frames)
        assert json.loads(payload[options[1]:]) == [1]
        writer.close()
        await server.stop()

    run(main())


def test_a_client_that_leaves_mid_call_does_not_cancel_it(tmp_path):
    async def main() -> None:
        server, services, path = await _start(tmp_path)
        _, writer = await asyncio.open_unix_connection(path)
        writer.write(codec.encode_call(1, "test.Slow", b"true", FLAG_JSON))
        await writer.drain()
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 5)
        services.gate.set()
        await asyncio.wait_for(services.finished.wait(), 5)
        await server.stop()

    run(main())
