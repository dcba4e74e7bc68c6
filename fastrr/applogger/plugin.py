"""The app-logger plugin (RoadRunner's `app`): PHP code logs through the server.

RoadRunner's plugin has no config and is always on; fastrr's is on whenever
the RPC is (an `rpc` section). Lines come from the logger named `app`, so
`logs.channels.app` sets their level and outputs, as in RoadRunner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastrr.applogger.rpc import LEVELS, AppLoggerRpc
from fastrr.config.schema import ConfigContext
from fastrr.config.section import Section
from fastrr.rpc.services import Services
from fastrr.server.plugin import Plugin


class AppLoggerPlugin(Plugin):
    name = "app"
    section = "app"

    @classmethod
    def enabled(cls, raw: dict[str, Any]) -> bool:
        return "rpc" in raw

    @classmethod
    def parse_config(cls, section: Section, ctx: ConfigContext) -> Any:
        section.finish()  # no keys; any given is warned about
        return None

    def register(self, rpc: Services) -> None:
        methods = AppLoggerRpc(self.log)
        for level in LEVELS:
            rpc.register(f"app.{level}", methods.plain(level))
            fast = methods.with_context(level)
            rpc.register(f"app.{level}WithContext", _async(fast), proto=True, fast=fast)
        rpc.register("app.Log", methods.raw_log)
        rpc.register("app.LogWithContext", _async(methods.raw_log_with_context), proto=True,
                     fast=methods.raw_log_with_context)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


def _async(fast: Callable[[bytes], bytes]) -> Any:
    """The Task form of a method that never waits (taken when the fast path declines)."""
    async def handler(body: bytes) -> bytes:
        return fast(body)

    return handler
