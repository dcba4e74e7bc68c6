"""The broadcast plugin: one Hub per broker of the `broadcast` section (hub.py).

Other plugins (websockets, SSE) take theirs with `host.plugins["broadcast"].hub(name)`; the
hubs exist from construction, so that works before and after `start`. PHP publishes over
RPC (rpc.py). No workers.
"""

from __future__ import annotations

from typing import Any

from fastrr.broadcast.brokers import broker_class
from fastrr.broadcast.config import BroadcastConfig, parse_broadcast
from fastrr.broadcast.hub import BroadcastError, Hub
from fastrr.config.schema import ConfigContext
from fastrr.config.section import Section
from fastrr.rpc.services import Services
from fastrr.server.plugin import Plugin, PluginError


class BroadcastPlugin(Plugin):
    name = "broadcast"
    section = "broadcast"
    cfg: BroadcastConfig

    @classmethod
    def parse_config(cls, section: Section, ctx: ConfigContext) -> Any:
        cfg = parse_broadcast(section, ctx.raw)
        if ctx.top is not None:
            ctx.top.used.update(cfg.top_sections)
        return cfg

    def __init__(self, host: Any, cfg: BroadcastConfig):
        super().__init__(host, cfg)
        self.hubs: dict[str, Hub] = {}
        for name, bcfg in cfg.brokers.items():
            log = self.log.named(f"broadcast.{name}") if len(cfg.brokers) > 1 else self.log
            broker = broker_class(bcfg.driver)(name, bcfg.options, log, host.config.workdir)
            self.hubs[name] = Hub(name, broker, log, bcfg.history_size, bcfg.history_ttl)

    def hub(self, name: str) -> Hub:
        hub = self.hubs.get(name)
        if hub is None:
            raise PluginError(f"broadcast: no such broker: {name!r} (brokers: {', '.join(self.hubs) or 'none'})")
        return hub

    def register(self, rpc: Services) -> None:
        from fastrr.broadcast.rpc import BroadcastRpc

        BroadcastRpc(self).register(rpc)

    async def start(self) -> None:
        for name, hub in self.hubs.items():
            try:
                await hub.start()
            except BroadcastError as exc:
                raise PluginError(f"broadcast.{name}: {exc}") from None
        self.log.debug("broadcast brokers started", brokers={n: c.driver for n, c in self.cfg.brokers.items()})

    async def stop(self) -> None:
        for name, hub in self.hubs.items():
            try:
                await hub.stop()
            except Exception as exc:  # one broker must not keep the others connected
                self.log.error("broadcast broker failed to stop", broker=name, error=repr(exc))
