"""The plugin host: what every plugin is, and what the arbiter hands it.

A plugin (RoadRunner's shape, roadrunner/container/plugins.go) is a class in
its own folder, fastrr/<name>/plugin.py, with the same faces:

- `section` / `parse_config`: its `.rr.yaml` section (absent: the plugin is
  off) read by its config.py, defaults first, then validation naming the key;
- `register(rpc)`: the RPC methods it serves (`<name>.<Method>`);
- `start()` / `stop()`: started in the order of fastrr/plugins.py, stopped in
  reverse; `start` raising `PluginError` or `BootFailure` stops start-up with
  one line naming the plugin;
- `pools()`: the worker pools it owns, which informer/resetter, `fastrr
  workers`, `fastrr reset` and SIGHUP then cover;
- `health()` / `ready()`: optional checks the status plugin probes.

Shared machinery comes from the `Host`, never by importing sideways: the
config, a logger per plugin, the RPC registry, a pool factory (its own
`RR_MODE` and pool section), and `fatal` for errors after start-up.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from fastrr import RR_COMPAT_VERSION
from fastrr.log import Logger
from fastrr.pool.config import PoolConfig
from fastrr.pool.pool import WorkerPool, worker_env
from fastrr.pool.states import State
from fastrr.server.notify import Notifier

if TYPE_CHECKING:
    from fastrr.config import Config
    from fastrr.config.schema import ConfigContext
    from fastrr.config.section import Section
    from fastrr.rpc.services import Services


class PluginError(Exception):
    """A plugin cannot start (the text names what, and why)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


class Host:
    """What the arbiter shares with every plugin."""

    def __init__(self, config: Config, log: Logger, services: Services, fatal: Callable[[str], None]):
        self.config = config
        self.log = log
        self.services = services
        self.fatal = fatal
        self.plugins: dict[str, Plugin] = {}
        # Set at the first stop signal, before any plugin stops (the status probes answer "not ready").
        self.stopping = False
        self.notify = Notifier(None)  # sd_notify (server/notify.py); the arbiter sets the real one

    def logger(self, name: str) -> Logger:
        return self.log.named(name)

    def pool_env(self, mode: str) -> dict[str, str]:
        """The environment of a pool's workers: RR_MODE, RR_RELAY, RR_RPC, server.env."""
        cfg = self.config
        return worker_env(dict(os.environ), cfg.server.relay, cfg.rpc_listen, cfg.server.env, mode,
                          RR_COMPAT_VERSION)

    def new_pool(self, name: str, pool_cfg: PoolConfig, mode: str, cls: type[WorkerPool] = WorkerPool,
                 **kwargs: Any) -> WorkerPool:
        """A worker pool for plugin `name`, running `pool.command` or `server.command` with `RR_MODE=mode`.
        It is listed to informer/resetter at once (its plugin must also return it from pools())."""
        cfg = self.config
        pool = cls(name, pool_cfg, cfg.server.command, self.pool_env(mode), cfg.server.relay,
                   self.logger("pool" if name == "http" else f"{name}.pool"), self.fatal, **kwargs)
        self.services.pools[name] = pool
        return pool


class Plugin:
    name: ClassVar[str]
    section: ClassVar[str]

    def __init__(self, host: Host, cfg: Any):
        self.host = host
        self.cfg = cfg
        self.log = host.logger(self.name)

    @classmethod
    def enabled(cls, raw: dict[str, Any]) -> bool:
        """On when its section is in the config (a plugin may widen that)."""
        return cls.section in raw

    @classmethod
    def parse_config(cls, section: Section, ctx: ConfigContext) -> Any:
        raise NotImplementedError

    def register(self, rpc: Services) -> None:
        """Add this plugin's RPC methods (none by default)."""

    def pools(self) -> dict[str, WorkerPool]:
        return {}

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    def health(self) -> tuple[int, str] | None:
        """Liveness for the status plugin (/health, status.Status): (HTTP code, why),
        or None when this plugin has no check. Called on the event loop: keep it cheap."""
        return None

    def ready(self) -> tuple[int, str] | None:
        """Readiness for the status plugin (/ready, status.Ready), like `health`."""
        return None

    def kill(self) -> None:
        """Forced exit (a second stop signal): kill every worker now."""
        for pool in self.pools().values():
            for worker in list(pool.workers.values()):
                worker.kill()


def pool_health(pool: WorkerPool | None) -> tuple[int, str]:
    """200 while any worker of the pool is alive (ready or working), as RoadRunner's http/jobs Status()."""
    if pool is None:
        return 503, "the worker pool is not started"
    if any(w.state in (State.READY, State.WORKING) for w in pool.workers.values()):
        return 200, ""
    return 503, f"no {pool.name} worker is alive"


def pool_ready(pool: WorkerPool | None) -> tuple[int, str]:
    """200 while any worker is idle and able to take a job now, as RoadRunner's Ready()."""
    if pool is None:
        return 503, "the worker pool is not started"
    sync = getattr(pool, "sync_from_engine", None)
    if sync is not None:
        sync()  # the C engine knows which of its workers are busy
    if any(w.state is State.READY and not w.exited for w in pool.workers.values()):
        return 200, ""
    return 503, f"no {pool.name} worker is ready"
