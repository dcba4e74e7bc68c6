"""The arbiter: boots the pool, opens the HTTP listener, owns signals and shutdown.

Signal handlers only record what happened; the `run` coroutine acts on it
(gunicorn's shape). First TERM/INT/QUIT: graceful stop (stop accepting, drain
in-flight requests within http.shutdown_timeout, stop workers). A second one:
kill the workers and exit 1 at once. HUP: rolling reset of every pool (what
RoadRunner users expect of a reload). TTIN/TTOU: one worker more/fewer.

The RPC plugin starts before the pools (workers may call it while booting)
and only when the config has an `rpc` section, as in RoadRunner.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from fastrr import RR_COMPAT_VERSION
from fastrr.config import Config
from fastrr.http.engine import EngineHttpServer, engine_blockers
from fastrr.http.engine_pool import EnginePool
from fastrr.http.server import HttpServer
from fastrr.log import Logger
from fastrr.pool.active_limit import ActiveLimitController
from fastrr.pool.pool import BootFailure, PoolError, WorkerPool, worker_env
from fastrr.rpc import RpcServer, Services

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_BOOT = 3


class Arbiter:
    def __init__(self, config: Config, log: Logger, pidfile: str | None = None):
        self.config = config
        self.log = log
        self.pidfile = pidfile
        self.exit_code = EXIT_OK
        self.pool: WorkerPool | None = None
        self.http: HttpServer | EngineHttpServer | None = None
        self.rpc: RpcServer | None = None
        self._stop: asyncio.Event | None = None
        self._signals = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def handle_reset(self) -> None:
        """SIGHUP: rolling reset of every pool, in the background."""
        if self.pool is None or self._signals:
            return
        self.log.info("SIGHUP received, resetting workers")
        self._background(self._reset(self.pool))

    async def _reset(self, pool: WorkerPool) -> None:
        try:
            await pool.reset()
        except PoolError as exc:
            self.log.error("reset failed", plugin=pool.name, error=str(exc))

    def handle_scale(self, signum: int) -> None:
        """SIGTTIN: one worker more; SIGTTOU: one fewer (gunicorn's signals)."""
        if self.pool is None or self._signals:
            return
        try:
            if signum == signal.SIGTTIN:
                self.pool.add_worker()
            else:
                self.pool.remove_worker()
        except PoolError as exc:
            self.log.warn(str(exc))

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def start_active_limit(self) -> ActiveLimitController | None:
        """http.pool.active_limit: a fixed cap, or (auto) the controller that caps the
        running workers at one more than the cores while the server saturates them."""
        assert self.pool is not None and self.config.http is not None
        pool = self.pool
        limit = self.config.http.pool.active_limit
        if limit == 0:
            return None
        if limit > 0:
            pool.set_active_limit(limit)
            return None
        log = self.log.named("pool")

        def on_change(n: int, share: float) -> None:
            if n:
                log.debug("cores saturated: at most this many workers run requests at once", active_limit=n,
                          cpu_share=round(share, 2))
            else:
                log.debug("active worker limit lifted", cpu_share=round(share, 2))

        controller = ActiveLimitController(lambda: list(pool.workers), pool.set_active_limit, on_change)
        controller.start()
        return controller

    def handle_signal(self, signum: int) -> None:
        self._signals += 1
        if self._signals == 1:
            self.log.info("stop signal received, stopping gracefully",
                          signal=signal.Signals(signum).name, grace_timeout=self.config.http.shutdown_timeout
                          if self.config.http else 0)
            assert self._stop is not None
            self._stop.set()
            return
        self.log.warn("exit forced")
        if self.pool is not None:
            for worker in list(self.pool.workers.values()):
                worker.kill()
        os._exit(EXIT_RUNTIME)

    def fatal(self, message: str) -> None:
        self.log.error(message)
        print(f"error: {message}", file=sys.stderr, flush=True)
        self.exit_code = EXIT_BOOT
        assert self._stop is not None
        self._stop.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            loop.add_signal_handler(signum, self.handle_signal, signum)
        loop.add_signal_handler(signal.SIGHUP, self.handle_reset)
        for signum in (signal.SIGTTIN, signal.SIGTTOU):
            loop.add_signal_handler(signum, self.handle_scale, signum)
        cfg = self.config
        assert cfg.http is not None
        env = worker_env(dict(os.environ), cfg.server.relay, cfg.rpc_listen, cfg.server.env, "http",
                         RR_COMPAT_VERSION)
        # The C engine runs the HTTP/1.1 data path (EnginePool hands it the
        # workers) unless http.engine says python or a setting only the Python
        # front has is on; asking for "c" explicitly then earns a warning.
        use_engine = cfg.http.engine != "python"
        if use_engine and (blockers := engine_blockers(cfg.http, cfg.server.relay)):
            use_engine = False
            if cfg.http.engine == "c":
                self.log.warn("http.engine: c does not support these settings, using the python front",
                              settings=blockers)
            else:
                self.log.debug("using the python front", settings=blockers)
        if use_engine:
            self.pool = EnginePool("http", cfg.http.pool, cfg.server.command, env, cfg.server.relay,
                                   self.log.named("pool"), self.fatal, http=cfg.http,
                                   http_log=self.log.named("http"))
        else:
            self.pool = WorkerPool("http", cfg.http.pool, cfg.server.command, env, cfg.server.relay,
                                   self.log.named("pool"), self.fatal)
        if cfg.rpc_listen:
            self.rpc = RpcServer(cfg.rpc_listen, Services({"http": self.pool}, cfg.raw), self.log.named("rpc"))
            try:
                await self.rpc.start()
            except OSError as exc:
                message = f"rpc.listen: cannot listen on {cfg.rpc_listen}: {exc.strerror or exc}"
                self.log.error(message)
                print(f"error: {message}", file=sys.stderr, flush=True)
                return EXIT_RUNTIME
        if self.pidfile:
            with open(self.pidfile, "w") as fh:
                fh.write(str(os.getpid()))
        try:
            boot = asyncio.ensure_future(self.pool.start())
            stop = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait({boot, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not boot.done():
                boot.cancel()
                await self.pool.stop()
                return self.exit_code
            stop.cancel()
            try:
                boot.result()
            except BootFailure as exc:
                self.log.error(str(exc))
                print(f"error: {exc}", file=sys.stderr, flush=True)
                await self.pool.stop()
                return EXIT_BOOT
            if isinstance(self.pool, EnginePool):
                self.http = EngineHttpServer(cfg.http, self.pool, self.log.named("http"))
            else:
                self.http = HttpServer(cfg.http, self.pool, self.log.named("http"))
            try:
                await self.http.start()
            except OSError as exc:
                message = f"http.address: cannot listen on {cfg.http.address}: {exc.strerror}"
                self.log.error(message)
                print(f"error: {message}", file=sys.stderr, flush=True)
                await self.pool.stop()
                return EXIT_RUNTIME
            limiter = self.start_active_limit()
            self.log.info("fastrr started", workers=cfg.http.pool.num_workers, relay=cfg.server.relay,
                          front="c" if isinstance(self.pool, EnginePool) else "python", pid=os.getpid())
            await self._stop.wait()
            if limiter is not None:
                await limiter.stop()
                self.pool.set_active_limit(0)  # draining: every worker may finish the queue
            await self.http.stop()
            await self.pool.stop()
            self.log.info("fastrr stopped")
            return self.exit_code
        finally:
            if self.rpc is not None:
                await self.rpc.stop()
            if self.pidfile:
                try:
                    os.unlink(self.pidfile)
                except OSError:
                    pass
