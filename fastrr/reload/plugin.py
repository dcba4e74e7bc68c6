"""The reload plugin (dev mode): a change of a watched file resets the workers
of the plugin that watches it, rolling, so no request fails meanwhile.

One watchfiles watcher per `reload.services.<plugin>` entry (inotify, not
RoadRunner's polling) feeds `pending`. One loop turns bursts into resets:
the first change opens a window of `interval`; every change within it joins
the same reset (a `git checkout` of 500 files resets once); changes that
arrive while a reset runs open the next window, so exactly one more reset
follows, after the running one. The plugin starts last (fastrr/plugins.py),
so the pools it resets exist, and stops first.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from fastrr.config.schema import ConfigContext
from fastrr.config.section import Section
from fastrr.pool.pool import PoolError, WorkerPool
from fastrr.reload.config import ReloadConfig, WatchConfig, parse_reload
from fastrr.server.plugin import Plugin, PluginError

SHOWN_FILES = 10  # a reset's log line names this many of the changed files
WATCH_STEP_MS = 50  # watchfiles yields a batch after this long without a new change...
WATCH_DEBOUNCE_MS = 200  # ...or after this long at most


class ReloadPlugin(Plugin):
    name = "reload"
    section = "reload"
    cfg: ReloadConfig

    @classmethod
    def parse_config(cls, section: Section, ctx: ConfigContext) -> Any:
        return parse_reload(section, ctx)

    def __init__(self, host: Any, cfg: ReloadConfig):
        super().__init__(host, cfg)
        self.pending: dict[str, set[str]] = {}  # plugin -> changed paths not reset yet
        self.stopping = False
        self._wake: asyncio.Event | None = None
        self._stop_watching: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reset: asyncio.Task[None] | None = None
        self._awatch: Any = None

    async def start(self) -> None:
        from watchfiles import awatch  # (imported only when reload is on: it brings anyio along)

        self._awatch = awatch

        self._wake = asyncio.Event()
        self._stop_watching = asyncio.Event()
        watches = [w for w in self.cfg.watches.values() if self._resettable(w)]
        for watch in watches:
            for i, path in enumerate(watch.dirs):
                if not os.path.exists(path):
                    raise PluginError(f"{watch.key}.dirs[{i}]: no such file or directory: {path}")
        for watch in watches:
            self.log.info("watching for changes", plugin=watch.plugin, dirs=watch.dirs, recursive=watch.recursive,
                          patterns=watch.patterns, ignore=watch.ignore, interval=self.cfg.interval)
            self._tasks.append(asyncio.ensure_future(self._watch(watch)))
        if self._tasks:
            self._tasks.append(asyncio.ensure_future(self._run()))
            # Each watcher sets up its inotify watches in its task's first step: let that run now,
            # so a change made once "fastrr started" is logged is seen.
            await asyncio.sleep(0)

    def _resettable(self, watch: WatchConfig) -> bool:
        plugin = self.host.plugins.get(watch.plugin)
        if plugin is None:
            return False  # (config.py warned: not running, or not a fastrr plugin)
        if not plugin.pools():
            self.log.warn(f"{watch.key}: the {watch.plugin} plugin has no workers, nothing to reload")
            return False
        return True

    async def stop(self) -> None:
        self.stopping = True
        if self._stop_watching is not None:
            self._stop_watching.set()  # the watcher threads see it within a step
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        # A reset under way is left to finish: the pool's own stop (next) ends it.

    # -- watching ----------------------------------------------------------------

    async def _watch(self, watch: WatchConfig) -> None:
        polling = False
        while not self.stopping:
            # force_polling None: watchfiles reads $WATCHFILES_FORCE_POLLING (for mounts that send no
            # inotify events, e.g. Docker Desktop's); True after inotify failed.
            batches = self._awatch(*watch.dirs, watch_filter=lambda _change, path: watch.wants(path),
                                   debounce=WATCH_DEBOUNCE_MS, step=WATCH_STEP_MS, stop_event=self._stop_watching,
                                   recursive=watch.recursive, force_polling=True if polling else None,
                                   ignore_permission_denied=True)
            try:
                async for changes in batches:
                    self._changed(watch.plugin, {path for _change, path in changes})
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. the inotify watch limit (fs.inotify.max_user_watches)
                if polling:
                    self.log.error("file watcher failed, changes are not watched any more", plugin=watch.plugin,
                                   error=str(exc))
                    return
                self.log.warn("file watcher failed, polling the files instead", plugin=watch.plugin,
                              error=str(exc))
                polling = True

    def _changed(self, plugin: str, paths: set[str]) -> None:
        self.log.debug("files changed", plugin=plugin, files=sorted(self._shown(paths))[:SHOWN_FILES])
        self.pending.setdefault(plugin, set()).update(paths)
        assert self._wake is not None
        self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.cfg.interval)  # the rest of the burst joins this reset
            self._wake.clear()
            batch, self.pending = self.pending, {}
            # Shielded: stopping cancels the waiting, not a reset half done (the pools' stop ends that).
            self._reset = asyncio.ensure_future(self._reset_all(batch))
            try:
                await asyncio.shield(self._reset)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug here must not end the watching
                self.log.error("reload failed", error=repr(exc))

    # -- resetting ---------------------------------------------------------------

    async def _reset_all(self, batch: dict[str, set[str]]) -> None:
        resets = []
        for plugin, paths in sorted(batch.items()):
            pools = self._pools(plugin)
            self.log.info("files changed, resetting workers", plugin=plugin, changed=len(paths),
                          files=sorted(self._shown(paths))[:SHOWN_FILES], pools=sorted(pools))
            resets.extend(self._reset_pool(pool) for pool in pools.values())
        with self.host.notify.reloading():  # sd_notify RELOADING=1 ... READY=1, as for SIGHUP
            await asyncio.gather(*resets)

    def _pools(self, plugin: str) -> dict[str, WorkerPool]:
        owner = self.host.plugins.get(plugin)
        return owner.pools() if owner is not None else {}

    async def _reset_pool(self, pool: WorkerPool) -> None:
        try:
            await pool.reset()
        except PoolError as exc:
            if self.stopping or pool.stopping:
                self.log.debug("reset ended by the stop", pool=pool.name, error=str(exc))
            else:
                # Typically a file saved with a syntax error: the next save tries again.
                self.log.error("reset failed: the old workers keep serving until the next change",
                               pool=pool.name, error=str(exc))

    def _shown(self, paths: set[str]) -> list[str]:
        base = self.host.config.workdir
        return [os.path.relpath(p, base) if p.startswith(base + os.sep) else p for p in paths]
