"""The HTTP plugin on the C engine (`http.engine: c`): listener and graceful drain.

The per-connection data path - accept, parse, bodies, forms, framing,
dispatch, responses, streams, keep-alive, deadlines - runs in the engine's
own thread (csrc/engine*.c) without the GIL; this class only binds the
socket, hands it over, and drains on stop. The worker side is EnginePool
(engine_pool.py). The behaviour is the Python front's (connection.py,
server.py): the same answers, texts and log lines.

What the engine does not do stays on the Python front: `engine_blockers`
names the settings that need it, and the arbiter then uses the Python front.
Of the middleware, `static` alone is served here, and `http_metrics` is
counted here (in engine memory, csrc/engine_loop.c metrics_observe) (EnginePool answers the
engine's "static" events with the Python StaticMiddleware; see
engine_pool.py); any other middleware in the list keeps the Python front.
"""

from __future__ import annotations

import asyncio
import socket

from fastrr.config import HttpConfig
from fastrr.http.engine_pool import EnginePool, static_only
from fastrr.http.request_metrics import without
from fastrr.log import Logger


def engine_blockers(cfg: HttpConfig, relay: str = "pipes") -> list[str]:
    """The settings that need the Python front (empty: the engine can serve)."""
    blockers = []
    if relay == "shm":
        blockers.append("server.relay: shm")
    filters = without(cfg.middleware)  # http_metrics is counted by the engine itself
    if filters and not static_only(filters):
        blockers.append("http.middleware")  # static alone is the engine's (engine_pool.py)
    if getattr(cfg, "ssl", None) is not None:
        blockers.append("http.ssl")
    http2 = getattr(cfg, "http2", None)
    if http2 is not None and getattr(http2, "h2c", False):
        blockers.append("http.http2.h2c")
    return blockers


class EngineHttpServer:
    def __init__(self, cfg: HttpConfig, pool: EnginePool, log: Logger):
        self.cfg = cfg
        self.pool = pool
        self.log = log
        self.engine = pool.engine
        self.sock: socket.socket | None = None
        self.stopping = False

    async def start(self) -> None:
        host, _, port = self.cfg.address.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, int(port)))
            sock.listen(4096)
            sock.setblocking(False)
            self.engine.listen(sock.fileno())
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.log.info("http server listening", address=self.cfg.address, engine="c")

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (bounded), close the rest."""
        self.stopping = True
        drained = self.pool.http_drained()
        self.engine.stop_accepting()
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        try:
            await asyncio.wait_for(asyncio.shield(drained), self.cfg.shutdown_timeout)
        except TimeoutError:
            self.log.warn("shutdown timeout reached with requests in flight",
                          in_flight=self.engine.stats()["in_flight"])
        self.engine.abort_connections()
