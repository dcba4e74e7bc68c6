"""The kv plugin: opens every storage of the `kv` section at start, closes them at stop.
It has no workers; PHP reaches it over RPC (rpc.py)."""

from __future__ import annotations

from typing import Any

from fastrr.config.schema import ConfigContext
from fastrr.config.section import Section
from fastrr.kv.config import KvConfig, parse_kv
from fastrr.kv.drivers import driver_class
from fastrr.kv.drivers.base import KvDriver, KvError
from fastrr.rpc.services import Services
from fastrr.server.plugin import Plugin, PluginError


class KvPlugin(Plugin):
    name = "kv"
    section = "kv"
    cfg: KvConfig

    @classmethod
    def parse_config(cls, section: Section, ctx: ConfigContext) -> Any:
        cfg = parse_kv(section, ctx.raw)
        if ctx.top is not None:
            ctx.top.used.update(cfg.top_sections)  # read, so no "not supported" warning for them
        return cfg

    def __init__(self, host: Any, cfg: KvConfig):
        super().__init__(host, cfg)
        self.storages: dict[str, KvDriver] = {}

    def register(self, rpc: Services) -> None:
        from fastrr.kv.rpc import KvRpc

        KvRpc(self).register(rpc)

    async def start(self) -> None:
        for name, scfg in self.cfg.storages.items():
            driver = driver_class(scfg.driver)(name, scfg.options, self.log, self.host.config.workdir)
            try:
                await driver.open()
            except KvError as exc:
                raise PluginError(f"kv.{name}: {exc}") from None
            self.storages[name] = driver
        self.log.debug("kv storages open", storages={n: c.driver for n, c in self.cfg.storages.items()})

    async def stop(self) -> None:
        storages, self.storages = self.storages, {}
        for name, driver in storages.items():
            try:
                await driver.close()
            except Exception as exc:  # one storage must not keep the others open
                self.log.error("kv storage failed to close", storage=name, error=repr(exc))
