"""The http plugin: its worker pool (RR_MODE=http) and the front that serves it.

The C engine (engine.py + engine_pool.py, csrc/engine*.c) runs the HTTP/1.1
data path unless `http.engine` says python or a setting only the Python front
has is on (engine_blockers); asking for "c" explicitly then earns a warning.
Start: boot the workers, then open the listener (a request never meets an
empty pool). Stop: stop accepting and drain in-flight requests within
`http.shutdown_timeout`, then stop the workers.
"""

from __future__ import annotations

from typing import Any

from fastrr.config.schema import ConfigContext
from fastrr.config.section import Section
from fastrr.config.units import ConfigError
from fastrr.http.config import HttpConfig, parse_http
from fastrr.http.engine import EngineHttpServer, engine_blockers
from fastrr.http.engine_pool import EnginePool
from fastrr.http.request_metrics import Uptime
from fastrr.http.request_metrics import enabled as metrics_enabled
from fastrr.http.server import HttpServer
from fastrr.pool.active_limit import ActiveLimitController
from fastrr.pool.pool import WorkerPool
from fastrr.server.plugin import Plugin, PluginError, pool_health, pool_ready


class HttpPlugin(Plugin):
    name = "http"
    section = "http"
    cfg: HttpConfig

    @classmethod
    def parse_config(cls, section: Section, ctx: ConfigContext) -> Any:
        cfg = parse_http(section, ctx.cpu_count, ctx.workers_override)
        if cfg.websockets and not isinstance(ctx.raw.get("websockets"), dict):
            raise ConfigError("http.middleware", "websockets needs a websockets section "
                                                 "(websockets: {broker: <a broadcast broker>, path: /ws})")
        if not cfg.websockets and "websockets" in ctx.raw and ctx.top is not None:
            ctx.top.used.add("websockets")  # (else: "not supported yet", which it is)
            section.warnings.append("websockets: ignored, http.middleware does not list websockets")
        return cfg

    def __init__(self, host: Any, cfg: HttpConfig):
        super().__init__(host, cfg)
        self.pool: WorkerPool | None = None
        self.front: HttpServer | EngineHttpServer | None = None
        self.limiter: ActiveLimitController | None = None
        self.uptime = Uptime()

    def pools(self) -> dict[str, WorkerPool]:
        return {"http": self.pool} if self.pool is not None else {}

    def health(self) -> tuple[int, str]:
        return pool_health(self.pool)

    def ready(self) -> tuple[int, str]:
        # The workers boot before the listener opens: ready only once requests can arrive.
        if self.front is None:
            return 503, "the http server is not listening yet"
        return pool_ready(self.pool)

    def kill(self) -> None:
        """Forced exit: the engine drops its client connections first, so a request in flight
        ends as a broken connection rather than a 502 from a worker killed under it."""
        if isinstance(self.front, EngineHttpServer):
            self.front.engine.abort_connections()
        super().kill()

    def _use_engine(self) -> bool:
        cfg = self.cfg
        if cfg.engine == "python":
            return False
        blockers = engine_blockers(cfg, self.host.config.server.relay)
        if not blockers:
            return True
        if cfg.engine == "c":
            self.log.warn("http.engine: c does not support these settings, using the python front",
                          settings=blockers)
        else:
            self.log.debug("using the python front", settings=blockers)
        return False

    def _websockets(self) -> Any:
        """The websockets plugin's gateway, which takes GETs on its paths (None: not on)."""
        plugin = self.host.plugins.get("websockets") if self.cfg.websockets else None
        return getattr(plugin, "gateway", None)

    async def start(self) -> None:
        cfg = self.cfg
        gateway = self._websockets()
        if self._use_engine():
            # With websockets on, the engine hands a GET on its paths over as (fd, request,
            # leftover) instead of running it (EnginePool's "detach" events).
            pool = self.host.new_pool("http", cfg.pool, "http", EnginePool, http=cfg, http_log=self.log,
                                      detach_paths=gateway.detach_paths if gateway is not None else ())
            assert isinstance(pool, EnginePool)
            if gateway is not None:
                pool.on_detach = gateway.on_detach
            self.pool = pool
        else:
            self.pool = self.host.new_pool("http", cfg.pool, "http")
        await self.pool.start()  # BootFailure: the arbiter reports it
        front: HttpServer | EngineHttpServer
        if isinstance(self.pool, EnginePool):
            front = EngineHttpServer(cfg, self.pool, self.log)
        else:
            front = HttpServer(cfg, self.pool, self.log)
            front.gateway = gateway
        try:
            await front.start()
        except OSError as exc:  # (stop() stops the pool)
            raise PluginError(f"http.address: cannot listen on {cfg.address}: {exc.strerror}") from None
        self.front = front
        self.limiter = self.start_active_limit()

    def metrics_snapshot(self) -> dict[str, Any] | None:
        """The http_metrics series' values now (None: http_metrics is not in http.middleware):
        {"requests": {status: {"count", "sum", "buckets"}}, "bounds", "no_free_workers", "queue",
        "uptime"}. Called at scrape time only; the counting is the front's."""
        if not metrics_enabled(self.cfg.middleware) or self.pool is None or self.front is None:
            return None
        if isinstance(self.pool, EnginePool):
            snap = self.pool.engine.metrics()
            queue = int(self.pool.engine.stats()["queued"])
        else:
            assert isinstance(self.front, HttpServer) and self.front.metrics is not None
            snap = self.front.metrics.snapshot()
            queue = len(self.pool.waiters)
        if snap is None:
            return None
        snap["queue"] = queue
        snap["uptime"] = self.uptime.seconds()
        return snap

    def started_fields(self) -> dict[str, Any]:
        """For the arbiter's "fastrr started" line (tests and tools read `front`)."""
        return {"workers": self.cfg.pool.num_workers, "relay": self.host.config.server.relay,
                "front": self.front_name}

    @property
    def front_name(self) -> str:
        return "c" if isinstance(self.pool, EnginePool) else "python"

    def start_active_limit(self) -> ActiveLimitController | None:
        """http.pool.active_limit: a fixed cap, or (auto) the controller that caps the
        running workers at one more than the cores while the server saturates them."""
        assert self.pool is not None
        pool = self.pool
        limit = self.cfg.pool.active_limit
        if limit == 0:
            return None
        if limit > 0:
            pool.set_active_limit(limit)
            return None
        log = self.host.logger("pool")

        def on_change(n: int, share: float) -> None:
            if n:
                log.debug("cores saturated: at most this many workers run requests at once", active_limit=n,
                          cpu_share=round(share, 2))
            else:
                log.debug("active worker limit lifted", cpu_share=round(share, 2))

        controller = ActiveLimitController(lambda: list(pool.workers), pool.set_active_limit, on_change)
        controller.start()
        return controller

    async def stop(self) -> None:
        ws = self.host.plugins.get("websockets")
        if ws is not None:
            ws.going_away()  # type: ignore[attr-defined]  # close 1001 while the requests drain
        if self.pool is None:
            return
        if self.limiter is not None:
            await self.limiter.stop()
            self.pool.set_active_limit(0)  # draining: every worker may finish the queue
        if self.front is not None:
            await self.front.stop()
        await self.pool.stop()
