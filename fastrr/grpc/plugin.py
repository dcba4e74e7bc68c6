"""The grpc plugin: PHP gRPC services behind grpcio (RoadRunner's grpc plugin, rr-plugins.md §1).

Start: read the proto files (protos.py; a bad one stops start-up naming it),
boot the `grpc.pool` workers (RR_MODE=grpc, plus `grpc.env`), then open the
listener with the proto services, grpc.health.v1 and reflection. The pool is
"grpc" for informer.*, `fastrr workers`, resetter.Reset("grpc") / `fastrr
reset grpc` and the rr_grpc_* worker series; the request series
(rr_grpc_request_total, _request_duration_seconds, _requests_queue) come
from `metrics_snapshot`.

Graceful stop (RoadRunner: health NOT_SERVING, then GracefulStop): health
turns NOT_SERVING, the listener takes no new calls, the calls running get up
to the pool's `destroy_timeout` to finish (then they are cancelled), and
only then do the workers stop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastrr.config.schema import ConfigContext
from fastrr.config.section import Section
from fastrr.grpc.config import GrpcConfig, parse_grpc
from fastrr.pool.pool import WorkerPool
from fastrr.server.plugin import Plugin, PluginError, pool_health, pool_ready

if TYPE_CHECKING:
    from fastrr.grpc.health import HealthServicer
    from fastrr.grpc.server import GrpcServer


class GrpcPlugin(Plugin):
    name = "grpc"
    section = "grpc"
    cfg: GrpcConfig

    @classmethod
    def parse_config(cls, section: Section, ctx: ConfigContext) -> Any:
        return parse_grpc(section, ctx.cpu_count)

    def __init__(self, host: Any, cfg: GrpcConfig):
        super().__init__(host, cfg)
        self.pool: WorkerPool | None = None
        self.server: GrpcServer | None = None
        self.health_servicer: HealthServicer | None = None
        self.serving = False

    def pools(self) -> dict[str, WorkerPool]:
        return {"grpc": self.pool} if self.pool is not None else {}

    def health(self) -> tuple[int, str]:
        return pool_health(self.pool)

    def ready(self) -> tuple[int, str]:
        return pool_ready(self.pool)

    def is_serving(self) -> bool:
        return self.serving and not self.host.stopping and pool_health(self.pool)[0] == 200

    async def start(self) -> None:
        # grpcio is imported only by a config that has a grpc section (every CLI command loads the plugin list)
        from fastrr.grpc.health import HealthServicer, health_handler, reflection_handlers
        from fastrr.grpc.protos import ProtoError, load
        from fastrr.grpc.server import GrpcServer, TlsError

        cfg = self.cfg
        try:
            protos = load(cfg.proto)
        except ProtoError as exc:
            raise PluginError(f"grpc.proto: {exc}") from None
        if not protos.services:
            raise PluginError(f"grpc.proto: no service in {', '.join(cfg.proto)}")
        self.pool = self.host.new_pool("grpc", cfg.pool, "grpc")
        self.pool.env.update(cfg.env)
        server = GrpcServer(cfg, protos, self.pool, self.log)
        self.health_servicer = HealthServicer(self.is_serving)
        server.add_generic(health_handler(self.health_servicer))
        for handler in reflection_handlers(protos):
            server.add_generic(handler)
        try:
            server.bind()  # before any worker exists: a taken port fails with nothing to clean up
        except TlsError as exc:
            raise PluginError(f"grpc.tls: {exc}") from None
        except OSError as exc:
            raise PluginError(f"grpc.listen: {exc}") from None
        self.server = server  # stop() closes it, also after a failed boot
        await self.pool.start()  # BootFailure: the arbiter reports it
        await server.start()  # calls are taken from here on
        self.serving = True
        self.log.info("grpc started", listen=cfg.listen, tls=cfg.tls is not None, workers=self.pool.target,
                      services={name: [m.name for m in s.methods] for name, s in sorted(protos.services.items())})

    async def stop(self) -> None:
        self.serving = False
        if self.health_servicer is not None:
            self.health_servicer.shutdown()
        if self.server is not None:
            grace = self.pool.cfg.destroy_timeout if self.pool is not None else 0.0
            running = self.server.stats.queue
            if running:
                self.log.info("grpc stopping: waiting for the calls running", running=running, grace=grace)
            await self.server.stop(grace)
        if self.pool is not None:
            await self.pool.stop()

    def metrics_snapshot(self) -> dict[str, Any] | None:
        return self.server.metrics_snapshot() if self.server is not None else None
