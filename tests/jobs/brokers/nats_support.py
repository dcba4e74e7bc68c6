"""Fixtures for the nats driver's tests: unique stream/subject names per test
(their streams deleted afterwards), a JetStream client for looking at what is
on the broker, pipeline configs, and a nats-server with credentials on a free port."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.errors import NotFoundError

from tests.conftest import ServerFactory, free_port
from tests.jobs.brokers.common import Daemon, ensure_service, require
from tests.jobs.conftest import jobs_config

ADDR = "nats://127.0.0.1:4222"
DELAY_SUFFIX = "-fastrr-delayed"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _with_js(action: Any) -> Any:
    nc = await nats.connect(ADDR, connect_timeout=5, allow_reconnect=False)
    try:
        return await action(nc, nc.jetstream())
    finally:
        await nc.close()


def js_call(action: Any) -> Any:
    """Run `action(nc, js)` on a fresh connection to the machine's NATS."""
    return run(_with_js(action))


@dataclass
class Names:
    """One test's broker names; every stream made under them is deleted at the end."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    def stream(self, n: int = 0) -> str:
        return f"fastrr-test-{self.tag}-{n}"

    def subject(self, n: int = 0) -> str:
        return f"fastrr.test.{self.tag}.{n}"

    def pipe(self, n: int = 0, **config: Any) -> dict[str, Any]:
        return {"driver": "nats", "config": {"stream": self.stream(n), "subject": self.subject(n), **config}}

    def cleanup(self) -> None:
        async def action(nc: Any, js: Any) -> None:
            for info in await js.streams_info():
                if self.tag in info.config.name:
                    try:
                        await js.delete_stream(info.config.name)
                    except NotFoundError:
                        pass

        ensure_service("nats")
        js_call(action)


@pytest.fixture
def names(fastrr: ServerFactory) -> Iterator[Names]:
    ensure_service("nats")
    found = Names()
    try:
        yield found
    finally:
        fastrr.close()  # first: a running fastrr would declare the deleted streams again
        found.cleanup()


def nats_config(pipelines: dict[str, Any], addr: str = ADDR, **kwargs: Any) -> dict[str, Any]:
    cfg = jobs_config(pipelines, **kwargs)
    cfg["nats"] = {"addr": addr}
    return cfg


def stream_messages(stream: str) -> int:
    async def action(nc: Any, js: Any) -> int:
        return int((await js.stream_info(stream)).state.messages)

    return int(js_call(action))


def stream_exists(stream: str) -> bool:
    async def action(nc: Any, js: Any) -> bool:
        try:
            await js.stream_info(stream)
        except NotFoundError:
            return False
        return True

    return bool(js_call(action))


def publish_raw(subject: str, body: bytes, headers: dict[str, str] | None = None) -> None:
    """A message as another producer (RoadRunner, a foreign app) would publish it."""
    async def action(nc: Any, js: Any) -> None:
        await js.publish(subject, body, headers=headers)

    js_call(action)


def first_message(stream: str) -> tuple[bytes, dict[str, str]]:
    async def action(nc: Any, js: Any) -> tuple[bytes, dict[str, str]]:
        msg = await js.get_msg(stream, 1)
        return bytes(msg.data or b""), dict(msg.headers or {})

    return js_call(action)  # type: ignore[no-any-return]


@pytest.fixture
def nats_with_auth(tmp_path: Path) -> Iterator[str]:
    """A nats-server of this test on a free port that wants user fastrr, password right; its port."""
    port = free_port()
    daemon = Daemon([require("nats-server"), "-a", "127.0.0.1", "-p", str(port), "--user", "fastrr",
                     "--pass", "right"], port, tmp_path / "nats-auth.log")
    daemon.start()
    try:
        yield str(port)
    finally:
        daemon.stop()
