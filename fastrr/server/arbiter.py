"""The arbiter: starts the plugins in order, owns signals and shutdown.

Signal handlers only record what happened; the `run` coroutine acts on it
(gunicorn's shape). First TERM/INT/QUIT: graceful stop (every plugin in
reverse start order: the HTTP front drains in-flight requests within
http.shutdown_timeout, the jobs consumers finish theirs within the pool's
destroy_timeout, ...). A second one: kill the workers and exit 1 at once.
HUP: rolling reset of every pool (what RoadRunner users expect of a reload).
TTIN/TTOU: one worker more/fewer in the http pool (else the first pool).
Under systemd ($NOTIFY_SOCKET) each step is told with sd_notify (notify.py).

Plugins come from fastrr/plugins.py; one is on when its section is in the
config (server/plugin.py says what a plugin is).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from fastrr.config import Config
from fastrr.log import Logger
from fastrr.pool.pool import BootFailure, PoolError, WorkerPool
from fastrr.rpc import Services
from fastrr.server.notify import Notifier
from fastrr.server.plugin import Host, Plugin, PluginError

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_BOOT = 3


class Arbiter:
    def __init__(self, config: Config, log: Logger, pidfile: str | None = None):
        from fastrr.plugins import PLUGINS

        self.config = config
        self.log = log
        self.pidfile = pidfile
        self.exit_code = EXIT_OK
        self.services = Services({}, config.raw)
        self.host = Host(config, log, self.services, self.fatal)
        # sd_notify (before any pool copies the environment: workers must not inherit NOTIFY_SOCKET)
        self.notify = self.host.notify = Notifier.from_environment(os.environ, log)
        self.services.reloading = self.notify.reloading
        self.plugins: list[Plugin] = [cls(self.host, config.sections[cls.name])
                                      for cls in PLUGINS if cls.name in config.sections]
        for plugin in self.plugins:
            self.host.plugins[plugin.name] = plugin
            plugin.register(self.services)
        self._started: list[Plugin] = []
        self._stop: asyncio.Event | None = None
        self._signals = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def pools(self) -> dict[str, WorkerPool]:
        pools: dict[str, WorkerPool] = {}
        for plugin in self._started:
            pools.update(plugin.pools())
        return pools

    def handle_reset(self) -> None:
        """SIGHUP: rolling reset of every pool, in the background."""
        if self._signals:
            return
        pools = self.pools()
        if not pools:
            with self.notify.reloading():  # a notify-reload unit waits for RELOADING=1, READY=1
                return
        self.log.info("SIGHUP received, resetting workers", plugins=sorted(pools))
        self._background(self._reset_all(list(pools.values())))

    async def _reset_all(self, pools: list[WorkerPool]) -> None:
        with self.notify.reloading():
            await asyncio.gather(*(self._reset(pool) for pool in pools))

    async def _reset(self, pool: WorkerPool) -> None:
        try:
            await pool.reset()
        except PoolError as exc:
            self.log.error("reset failed", plugin=pool.name, error=str(exc))

    def handle_scale(self, signum: int) -> None:
        """SIGTTIN: one worker more; SIGTTOU: one fewer (gunicorn's signals)."""
        pools = self.pools()
        pool = pools.get("http") or next(iter(pools.values()), None)
        if pool is None or self._signals:
            return
        try:
            if signum == signal.SIGTTIN:
                pool.add_worker()
            else:
                pool.remove_worker()
        except PoolError as exc:
            self.log.warn(str(exc))

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def handle_signal(self, signum: int) -> None:
        self._signals += 1
        if self._signals == 1:
            self._begin_stop()
            http = self.config.http
            self.log.info("stop signal received, stopping gracefully",
                          signal=signal.Signals(signum).name, grace_timeout=http.shutdown_timeout if http else 0)
            assert self._stop is not None
            self._stop.set()
            return
        self.log.warn("exit forced")
        for plugin in self.plugins:
            plugin.kill()
        os._exit(EXIT_RUNTIME)

    def _begin_stop(self) -> None:
        """From now on the status probes answer "not ready" and systemd hears STOPPING=1."""
        if not self.host.stopping:
            self.host.stopping = True
            self.notify.stopping()

    def fatal(self, message: str) -> None:
        self.log.error(message)
        print(f"error: {message}", file=sys.stderr, flush=True)
        self.exit_code = EXIT_BOOT
        assert self._stop is not None
        self._stop.set()

    def _start_failed(self, plugin: Plugin, exc: BaseException) -> int:
        if isinstance(exc, BootFailure):
            code = EXIT_BOOT
        elif isinstance(exc, PluginError):
            code = exc.exit_code
        else:
            code = EXIT_RUNTIME
            self.log.error("plugin failed to start", plugin=plugin.name, error=repr(exc))
            exc = PluginError(f"{plugin.name}: {exc!r}")
        self.log.error(str(exc), plugin=plugin.name)
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return code

    async def _start_all(self) -> int | None:
        """Start the plugins in order; an exit code when start-up ends early."""
        assert self._stop is not None
        for plugin in self.plugins:
            boot = asyncio.ensure_future(plugin.start())
            stop = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait({boot, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if not boot.done():
                boot.cancel()  # a stop signal during boot
                self._started.append(plugin)
                return self.exit_code
            self._started.append(plugin)
            exc = boot.exception()
            if exc is not None:
                return self._start_failed(plugin, exc)
        return None

    async def _stop_all(self) -> None:
        for plugin in reversed(self._started):
            try:
                await plugin.stop()
            except Exception as exc:  # one plugin's failure must not keep the others running
                self.log.error("plugin failed to stop", plugin=plugin.name, error=repr(exc))
        self._started.clear()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            loop.add_signal_handler(signum, self.handle_signal, signum)
        loop.add_signal_handler(signal.SIGHUP, self.handle_reset)
        for signum in (signal.SIGTTIN, signal.SIGTTOU):
            loop.add_signal_handler(signum, self.handle_scale, signum)
        if self.pidfile:
            with open(self.pidfile, "w") as fh:
                fh.write(str(os.getpid()))
        self.notify.start_watchdog()
        try:
            code = await self._start_all()
            if code is not None:
                return code
            self.notify.ready()
            fields: dict[str, Any] = {}
            http = self.host.plugins.get("http")
            if http is not None:
                fields.update(http.started_fields())  # type: ignore[attr-defined]
            self.log.info("fastrr started", plugins=[p.name for p in self.plugins], **fields, pid=os.getpid())
            await self._stop.wait()
            self._begin_stop()  # (a fatal error stops without a signal)
            await self._stop_all()
            self.log.info("fastrr stopped")
            return self.exit_code
        finally:
            self._begin_stop()
            await self._stop_all()
            self.notify.close()
            if self.pidfile:
                try:
                    os.unlink(self.pidfile)
                except OSError:
                    pass
