"""The status plugin: /health, /ready and /jobs on `status.address`, and the status.* RPC.

It starts right after rpc, before the plugins it probes, so while their
workers boot /ready already answers "not ready"; it stops after them, so
during a graceful stop it keeps answering until they have drained. From the
first stop signal (Host.stopping) /ready and /jobs answer the unavailable
code, /health stays 200 "service is shutting down" (RoadRunner's answers: a
load balancer takes the instance out on /ready, while an orchestrator's
liveness probe on /health does not kill it mid-drain).

Which plugins have checks: those overriding Plugin.health / Plugin.ready
(http and jobs: their worker pools, see server/plugin.py pool_health).
"""

from __future__ import annotations

import os
import socket
from typing import Any

from fastrr.config.schema import ConfigContext
from fastrr.config.section import Section
from fastrr.rpc.services import Services
from fastrr.server.endpoint import TEXT, Answer, EndpointServer, Request
from fastrr.server.plugin import Plugin, PluginError
from fastrr.status.checks import JOBS_NOT_FOUND, SHUTTING_DOWN, Checker, Probe, jobs_report
from fastrr.status.config import StatusConfig, parse_status

NOT_FOUND = Answer(404, b"404 page not found\n", TEXT)  # Go's ServeMux text


class StatusPlugin(Plugin):
    name = "status"
    section = "status"
    cfg: StatusConfig

    @classmethod
    def parse_config(cls, section: Section, ctx: ConfigContext) -> Any:
        return parse_status(section)

    def __init__(self, host: Any, cfg: StatusConfig):
        super().__init__(host, cfg)
        unavailable = cfg.unavailable_status_code
        self.checkers = {"health": Checker("health", unavailable, self.log),
                         "ready": Checker("ready", unavailable, self.log)}
        self.listener: EndpointServer | None = None

    def register(self, rpc: Services) -> None:
        from fastrr.status.rpc import StatusRpc

        StatusRpc(self).register(rpc)

    def probes(self, kind: str) -> dict[str, Probe]:
        """Plugin name -> its `kind` hook ("health" or "ready"), in start order."""
        base = getattr(Plugin, kind)
        return {name: getattr(plugin, kind) for name, plugin in self.host.plugins.items()
                if getattr(type(plugin), kind) is not base}

    def answer(self, request: Request) -> Answer:
        """Any method is served, as Go's ServeMux does."""
        unavailable = self.cfg.unavailable_status_code
        stopping = self.host.stopping
        path, query = request.path, request.query
        if path == "*":  # OPTIONS * (asks what the server can do)
            return Answer(200, b"", TEXT) if request.method == "OPTIONS" else Answer(400, b"400 Bad Request\n", TEXT)
        if path in ("/health", "/ready"):
            kind = "health" if path == "/health" else "ready"
            if stopping:
                return Answer(200 if kind == "health" else unavailable, SHUTTING_DOWN.encode(), TEXT)
            return self.checkers[kind].answer(self.probes(kind), query.get("plugin"))
        if path == "/jobs":
            return self.jobs(stopping)
        return NOT_FOUND

    def jobs(self, stopping: bool) -> Answer:
        unavailable = self.cfg.unavailable_status_code
        if stopping:
            return Answer(unavailable, SHUTTING_DOWN.encode(), TEXT)
        jobs = self.host.plugins.get("jobs")
        if jobs is None:
            return Answer(unavailable, JOBS_NOT_FOUND.encode(), TEXT)
        try:
            rows = jobs.states()  # type: ignore[attr-defined]
        except Exception as exc:
            self.log.error("status: jobs state failed", error=repr(exc))
            return Answer(unavailable, JOBS_NOT_FOUND.encode(), TEXT)
        return Answer(200, jobs_report(rows))

    async def start(self) -> None:
        cfg = self.cfg
        # check_timeout bounds how long a probe may take to send its request (RoadRunner's read timeouts).
        listener = EndpointServer(cfg.host, cfg.port, self.answer, self.log, name="status",
                                  read_timeout=cfg.check_timeout, max_head=8192)
        try:
            await listener.start()
        except OSError as exc:  # (asyncio wraps the bind error: its errno says it plainly)
            why = os.strerror(exc.errno) if exc.errno and not isinstance(exc, socket.gaierror) else str(exc)
            raise PluginError(f"status.address: cannot listen on {cfg.address}: {why}") from None
        self.listener = listener
        self.log.info("status listening", address=cfg.address, unavailable_status_code=cfg.unavailable_status_code)

    async def stop(self) -> None:
        if self.listener is not None:
            await self.listener.stop()
            self.listener = None
