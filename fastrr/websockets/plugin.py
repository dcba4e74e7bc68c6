"""The websockets plugin: RoadRunner 2.x's websockets middleware (rr-plugins.md §8.1), and SSE.

On with `http.middleware: [websockets]` and a `websockets:` section (config.py); either
without the other is a start-up error naming the key. It owns:
- the `websockets` worker pool (RR_MODE=http, RR_BROADCAST_PATH=<path>, 2 workers by
  default) that authorizes upgrades, joins and event streams (auth.py);
- the Gateway (gateway.py): the HTTP plugin hands it every GET on websockets.path and
  websockets.sse.path, from the Python front (connection.py) or the C engine
  (EnginePool.on_detach), and it keeps the open connections, their ticker and shutdown;
- nothing of publishing: messages come from the broadcast hub of `websockets.broker`
  (PHP publishes through the broadcast plugin's RPC).

Order: after broadcast (its hub must exist), before http (whose front hands us
connections). Stop: the HTTP plugin calls `going_away` first, so every WebSocket gets
close 1001 and every event stream ends while requests drain; `stop` then waits
close_timeout at most for the closing handshakes and stops the pool.
"""

from __future__ import annotations

from typing import Any

from fastrr.config.schema import ConfigContext
from fastrr.config.section import Section
from fastrr.config.units import ConfigError, parse_str_list
from fastrr.pool.pool import WorkerPool
from fastrr.server.plugin import Plugin, PluginError, pool_health
from fastrr.websockets.config import WebsocketsConfig, parse_websockets
from fastrr.websockets.gateway import Gateway


class WebsocketsPlugin(Plugin):
    name = "websockets"
    section = "websockets"
    cfg: WebsocketsConfig

    @classmethod
    def enabled(cls, raw: dict[str, Any]) -> bool:
        """The section and `websockets` in http.middleware (RoadRunner's switch); the section
        alone is ignored with a warning (HttpPlugin.parse_config), as RoadRunner ignores it."""
        if cls.section not in raw:
            return False
        http = raw.get("http")
        try:
            middleware = parse_str_list("http.middleware", http.get("middleware") or []) \
                if isinstance(http, dict) else []
        except ConfigError:
            return False  # the http section's reader reports it
        return "websockets" in middleware

    @classmethod
    def parse_config(cls, section: Section, ctx: ConfigContext) -> Any:
        return parse_websockets(section)

    def __init__(self, host: Any, cfg: WebsocketsConfig):
        super().__init__(host, cfg)
        self.pool: WorkerPool | None = None
        self.gateway: Gateway | None = None

    def pools(self) -> dict[str, WorkerPool]:
        return {"websockets": self.pool} if self.pool is not None else {}

    def health(self) -> tuple[int, str]:
        return pool_health(self.pool)

    # No ready(): a small authorization pool busy for a moment must not take the whole
    # server out of a load balancer (upgrades queue for allocate_timeout meanwhile).

    async def start(self) -> None:
        cfg = self.cfg
        broadcast = self.host.plugins.get("broadcast")
        if broadcast is None:
            raise PluginError(f"websockets.broker: {cfg.broker!r} needs a broadcast section "
                              f"(broadcast: {{{cfg.broker}: {{driver: memory}}}})")
        try:
            hub = broadcast.hub(cfg.broker)  # type: ignore[attr-defined]
        except PluginError as exc:
            raise PluginError(f"websockets.broker: {exc}") from None
        self.pool = self.host.new_pool("websockets", cfg.pool, "http")
        self.pool.env["RR_BROADCAST_PATH"] = cfg.path
        await self.pool.start()  # BootFailure: the arbiter reports it
        self.gateway = Gateway(cfg, self.pool, hub, self.log)
        self.gateway.start()
        self.log.debug("websockets ready", path=cfg.path, sse=cfg.sse.path or None, broker=cfg.broker)

    def going_away(self) -> None:
        """The server is stopping: close 1001 / end the streams now (the HTTP plugin calls this)."""
        if self.gateway is not None:
            self.gateway.going_away()

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
        if self.pool is not None:
            await self.pool.stop()
