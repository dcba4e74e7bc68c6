"""The jobs plugin: pipelines (drivers), the consumer pool (RR_MODE=jobs), producer RPC.

Start: boot the consumers, open every pipeline's driver (push works from
then on, for producer-only pipelines too), then run the `consume` ones.
The HTTP plugin starts after this one, so handlers can push from their
first request.

Graceful stop, in this order (RoadRunner stops the drivers first and loses
or redelivers what is in flight, rr-jobs.md §4 "Shutdown"):
1. every driver stops handing out jobs;
2. queued jobs no worker has started go back to their pipeline (released:
   no attempt counted; durable drivers keep them for the next start);
3. jobs already running finish, within the pool's `destroy_timeout`;
4. the consumers stop (a job still running is then killed with its worker
   and retried, which a durable driver keeps for the next start);
5. the drivers close.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from fastrr.config.schema import ConfigContext
from fastrr.config.section import Section
from fastrr.config.units import ConfigError
from fastrr.jobs.config import JobsConfig, PipelineConfig, parse_jobs, pipeline_from_values
from fastrr.jobs.drivers import driver_class
from fastrr.jobs.drivers.base import Driver, DriverError
from fastrr.jobs.job import Delivery, Job
from fastrr.jobs.queue import Dispatcher
from fastrr.pool.pool import WorkerPool
from fastrr.rpc.codec import RpcError
from fastrr.rpc.services import Services
from fastrr.server.plugin import Plugin, PluginError, pool_health, pool_ready

DEAD_LETTER_RETRY = 5.0  # seconds before a job whose dead-letter push failed is tried again


class JobsPlugin(Plugin):
    name = "jobs"
    section = "jobs"
    cfg: JobsConfig

    @classmethod
    def parse_config(cls, section: Section, ctx: ConfigContext) -> Any:
        return parse_jobs(section, ctx.cpu_count, ctx.top)

    def __init__(self, host: Any, cfg: JobsConfig):
        super().__init__(host, cfg)
        self.pool: WorkerPool | None = None
        self.dispatcher: Dispatcher | None = None
        self.drivers: dict[str, Driver] = {}
        self.started = False
        self.push_ok = self.push_err = 0  # jobs, for rr_jobs_push_{ok,err} (counted in rpc.py)

    def register(self, rpc: Services) -> None:
        from fastrr.jobs.rpc import JobsRpc

        JobsRpc(self).register(rpc)

    def pools(self) -> dict[str, WorkerPool]:
        return {"jobs": self.pool} if self.pool is not None else {}

    def health(self) -> tuple[int, str]:
        return pool_health(self.pool)

    def ready(self) -> tuple[int, str]:
        """RoadRunner's readiness (a consumer is free), and, unlike RoadRunner, not
        ready while a pipeline's broker is unreachable: its driver redials forever,
        and /ready says so instead of answering 200 while pushes fail (rr-jobs.md §5,
        #1857). Liveness (/health) stays the pool's: a broker outage is no reason
        to restart this instance."""
        code, text = pool_ready(self.pool)
        if code != 200:
            return code, text
        down = [f"pipeline {name} ({d.name}): {d.error}" for name, d in sorted(self.drivers.items()) if d.error]
        return (503, "; ".join(down)) if down else (200, "")

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.cfg
        self.pool = self.host.new_pool("jobs", cfg.pool, "jobs")
        await self.pool.start()  # BootFailure: the arbiter reports it
        self.dispatcher = Dispatcher(self.pool, cfg.pipeline_size, self.log, self.give_up)
        for pipe in cfg.pipelines.values():
            await self.open_pipeline(pipe, f"jobs.pipelines.{pipe.name}")
        for name in cfg.consume:
            await self.drivers[name].run()
        self.started = True
        self.log.info("jobs started", pipelines=sorted(self.drivers), consuming=list(cfg.consume),
                      workers=self.pool.target)

    async def open_pipeline(self, pipe: PipelineConfig, where: str) -> Driver:
        assert self.dispatcher is not None
        driver = driver_class(pipe.driver)(pipe, self.dispatcher, self.log, self.host.config.workdir,
                                           broker=self.cfg.brokers.get(pipe.driver))
        try:
            await asyncio.wait_for(driver.open(), self.cfg.timeout)
        except DriverError as exc:
            raise PluginError(f"{where}: {exc}") from None
        except TimeoutError:
            raise PluginError(f"{where}: the {pipe.driver} driver did not open within "
                              f"jobs.timeout ({self.cfg.timeout:g}s)") from None
        self.drivers[pipe.name] = driver
        self.dispatcher.wakers.append(driver.wake)
        return driver

    async def stop(self) -> None:
        self.started = False
        dispatcher, pool = self.dispatcher, self.pool
        if dispatcher is not None:
            for driver in self.drivers.values():
                await self._quietly(driver.pause(), driver, "pause")
            dispatcher.accepting = False
            back = dispatcher.take_back()
            if pool is not None:
                while pool.waiters:  # submitted, no worker yet: never started
                    pool.waiters.popleft().on_no_worker("server is shutting down")
            running = dispatcher.running
            if running or back:
                self.log.info("jobs stopping: unstarted jobs returned to their pipelines, waiting for running ones",
                              returned=back, running=running)
            if running and pool is not None:
                timeout = pool.cfg.destroy_timeout
                if not await dispatcher.idle(timeout):
                    self.log.warn("jobs still running after destroy_timeout: their workers are stopped and "
                                  "the jobs retried", running=dispatcher.running, destroy_timeout=timeout)
        if pool is not None:
            await pool.stop()
        for driver in self.drivers.values():
            await self._quietly(driver.close(), driver, "close")

    async def _quietly(self, coro: Any, driver: Driver, what: str) -> None:
        try:
            await asyncio.wait_for(coro, self.cfg.timeout)
        except (DriverError, TimeoutError) as exc:
            self.log.error(f"pipeline failed to {what}", pipeline=driver.pipe.name, error=str(exc) or "timeout")

    # -- what failed for good -----------------------------------------------------------

    def give_up(self, delivery: Delivery, why: str) -> None:
        """Dead letter pipeline when the pipeline has one, else drop (logged)."""
        job = delivery.job
        target = self.drivers.get(delivery.driver.pipe.dead_letter) if delivery.driver.pipe.dead_letter else None
        assert self.dispatcher is not None
        if target is None:
            self.dispatcher.dropped += 1
            self.log.error(f"job dropped: {why}", id=job.id, job=job.name, pipeline=job.pipeline)
            delivery.drop()
            return
        copy = dataclasses.replace(job, pipeline=target.pipe.name, priority=target.pipe.priority, delay=0.0,
                                   attempts=0, auto_ack=False,
                                   headers={**job.headers, "x-dead-letter-reason": [why],
                                            "x-dead-letter-pipeline": [job.pipeline]})

        async def move() -> None:
            try:
                await asyncio.wait_for(target.push([copy]), self.cfg.timeout)
            except (DriverError, TimeoutError) as exc:
                self.log.error("dead letter push failed, the job will be retried", id=job.id,
                               pipeline=job.pipeline, dead_letter=target.pipe.name, error=str(exc) or "timeout")
                delivery.retry(DEAD_LETTER_RETRY, failed=False)
                return
            self.log.error(f"job moved to its dead letter pipeline: {why}", id=job.id, job=job.name,
                           pipeline=job.pipeline, dead_letter=target.pipe.name)
            delivery.drop()

        asyncio.ensure_future(move())

    # -- operations (rpc.py, the CLI) ---------------------------------------------------------

    def driver(self, name: str) -> Driver:
        if not self.started:
            raise RpcError("the jobs plugin is not running (starting or stopping)")
        driver = self.drivers.get(name)
        if driver is None:
            raise RpcError(f"no such pipeline, requested: {name}")
        return driver

    async def push(self, jobs: list[Job]) -> None:
        """Push in order, each run of jobs for one pipeline in one driver call."""
        start = 0
        while start < len(jobs):
            end = start + 1
            while end < len(jobs) and jobs[end].pipeline == jobs[start].pipeline:
                end += 1
            driver = self.driver(jobs[start].pipeline)
            try:
                await asyncio.wait_for(driver.push(jobs[start:end]), self.cfg.timeout)
            except DriverError as exc:
                raise RpcError(str(exc)) from None
            except TimeoutError:
                raise RpcError(f"pipeline {driver.pipe.name}: push timed out after jobs.timeout "
                               f"({self.cfg.timeout:g}s)") from None
            start = end

    async def pause(self, names: list[str]) -> None:
        for name in names:
            driver = self.driver(name)
            if not driver.running:
                raise RpcError(f"pipeline {name} is not consuming, nothing to pause")
            await driver.pause()
            assert self.dispatcher is not None
            back = self.dispatcher.take_back(name)
            self.log.info("pipeline paused", pipeline=name, returned=back)

    async def resume(self, names: list[str]) -> None:
        for name in names:
            driver = self.driver(name)
            if driver.running:
                raise RpcError(f"pipeline {name} is already consuming")
            await driver.run()
            self.log.info("pipeline consuming", pipeline=name)

    async def declare(self, values: dict[str, str]) -> None:
        if not self.started:
            raise RpcError("the jobs plugin is not running (starting or stopping)")
        name = values.get("name") or values.get("queue") or ""
        if not name:
            raise RpcError("jobs.Declare: the pipeline map needs a name (key \"name\")")
        if name in self.drivers:
            raise RpcError(f"pipeline already exists: {name}")
        try:
            pipe = pipeline_from_values(name, dict(values), f"jobs.Declare[{name}]", strict=True)
        except ConfigError as exc:
            raise RpcError(str(exc)) from None
        if pipe.dead_letter and pipe.dead_letter not in self.drivers:
            raise RpcError(f"jobs.Declare[{name}].dead_letter: no pipeline named {pipe.dead_letter!r}")
        pipe.declared = True
        try:
            driver = await self.open_pipeline(pipe, f"jobs.Declare[{name}]")
        except PluginError as exc:
            raise RpcError(str(exc)) from None
        self.log.info("pipeline declared", pipeline=name, driver=pipe.driver)
        if name in self.cfg.consume:  # as RoadRunner: else PHP calls Resume
            await driver.run()

    async def destroy(self, names: list[str]) -> list[str]:
        for name in names:
            self.driver(name)  # all known, or none is destroyed (the caller could not tell which were)
        done = []
        for name in names:
            driver = self.driver(name)
            await driver.pause()
            assert self.dispatcher is not None
            self.dispatcher.take_back(name)
            await self._quietly(driver.close(), driver, "close")
            del self.drivers[name]
            if driver.wake in self.dispatcher.wakers:
                self.dispatcher.wakers.remove(driver.wake)
            done.append(name)
            self.log.info("pipeline destroyed", pipeline=name)
        return done

    def states(self) -> list[dict[str, Any]]:
        """One row per pipeline (jobs.Stat, informer.Jobs, `fastrr jobs stat`)."""
        rows = []
        dispatcher = self.dispatcher
        for name, driver in sorted(self.drivers.items()):
            counts = driver.state()  # the counts, and `ready` false while a broker is redialed
            queued = dispatcher.queued_by.get(name, 0) if dispatcher else 0
            running = dispatcher.running_by.get(name, 0) if dispatcher else 0
            rows.append({
                "pipeline": name, "driver": driver.name, "queue": driver.queue_name,
                # waiting to run (in the driver or the shared queue), not due yet, running now
                "active": counts["active"] + queued, "delayed": counts["delayed"], "reserved": running,
                "ready": counts["ready"], "priority": driver.pipe.priority, "error": driver.error,
                "pushed": driver.pushed, "acked": driver.acked, "retried": driver.retried,
                "failed": driver.failed,
            })
        return rows
