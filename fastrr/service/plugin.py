"""The service plugin (rr-plugins.md §6): arbitrary commands kept running next
to the PHP workers, configured under `service:` or created over RPC.

It starts after rpc, kv and lock (a service may call them) and before jobs
and http, so it stops after them: a consumer or an HTTP handler can still
reach a service while it drains. Each service is `process_num` copies of its
command (fastrr/service/process.py); the RPC and the informer face are in
fastrr/service/rpc.py. A section with no service (`service: {}`) turns the
plugin on for service.Create only.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastrr.config.schema import ConfigContext
from fastrr.config.section import Section
from fastrr.rpc.services import Services
from fastrr.server.plugin import Plugin, PluginError
from fastrr.service.config import ServiceConfig, parse_services
from fastrr.service.process import Service, ServiceError
from fastrr.service.rpc import ServiceRpc


class ServicePlugin(Plugin):
    name = "service"
    section = "service"

    @classmethod
    def parse_config(cls, section: Section, ctx: ConfigContext) -> Any:
        return parse_services(section)

    def __init__(self, host: Any, cfg: dict[str, ServiceConfig]):
        super().__init__(host, cfg)
        self.services: dict[str, Service] = {}
        self.rpc = ServiceRpc(self)

    def register(self, rpc: Services) -> None:
        self.rpc.register(rpc)

    async def start(self) -> None:
        for name, cfg in self.cfg.items():
            service = Service(cfg, self.log)
            try:
                service.start()
            except ServiceError as exc:
                raise PluginError(f"{exc} (service.{name}.command)") from None
            self.services[name] = service

    async def stop(self) -> None:
        # kept listed while they stop: a second stop signal's kill() must still find them
        await asyncio.gather(*(service.stop() for service in list(self.services.values())))
        self.services.clear()

    def kill(self) -> None:
        for service in self.services.values():
            service.kill()
