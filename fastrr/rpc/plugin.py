"""The rpc plugin: the goridge RPC listener on `rpc.listen`, first in the start order
(workers may call it while they boot) and last to stop."""

from __future__ import annotations

from typing import Any

from fastrr.config.schema import ConfigContext
from fastrr.config.section import Section
from fastrr.rpc.config import parse_rpc
from fastrr.rpc.server import RpcServer
from fastrr.server.plugin import Plugin, PluginError


class RpcPlugin(Plugin):
    name = "rpc"
    section = "rpc"

    @classmethod
    def parse_config(cls, section: Section, ctx: ConfigContext) -> Any:
        return parse_rpc(section)

    async def start(self) -> None:
        self.server = RpcServer(self.cfg, self.host.services, self.log)
        try:
            await self.server.start()
        except OSError as exc:
            raise PluginError(f"rpc.listen: cannot listen on {self.cfg}: {exc.strerror or exc}") from None

    async def stop(self) -> None:
        await self.server.stop()
