"""The jobs plugin's RPC methods, as roadrunner-php/jobs calls them (rr-jobs.md §3).

| method          | request (jobs.v1)  | answer            |
|-----------------|--------------------|-------------------|
| jobs.Push       | PushRequest        | Empty             |
| jobs.PushBatch  | PushBatchRequest   | Empty             |
| jobs.Pause      | Pipelines          | Empty             |
| jobs.Resume     | Pipelines          | Empty             |
| jobs.List       | Empty (or b"")     | Pipelines         |
| jobs.Declare    | DeclareRequest     | Empty             |
| jobs.Destroy    | Pipelines          | Pipelines         |
| jobs.Stat       | Empty              | Stats             |
| informer.Jobs   | "jobs" (JSON)      | [{Pipeline, Driver, Queue, Active, Delayed, ...}]  |
| informer.JobsLatency | (ignored)     | fastrr's: push-to-ack p50/p99 since the last call |

Errors are RPC errors whose text names the method and the pipeline or
field. PushBatch pushes in order and stops at the first bad job, keeping
the earlier ones (RoadRunner's behaviour); unlike RoadRunner it also
refuses an empty id there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.protobuf.message import DecodeError

from fastrr.jobs import proto
from fastrr.jobs.job import Job
from fastrr.rpc.codec import RpcError
from fastrr.rpc.services import Services

if TYPE_CHECKING:
    from fastrr.jobs.plugin import JobsPlugin

EMPTY = proto.Empty().SerializeToString()


def _parse(cls: Any, body: bytes, method: str) -> Any:
    msg = cls()
    try:
        msg.ParseFromString(body)
    except (DecodeError, RuntimeWarning) as exc:
        raise RpcError(f"{method}: malformed {cls.DESCRIPTOR.full_name} message: {exc}") from None
    return msg


class JobsRpc:
    def __init__(self, plugin: JobsPlugin):
        self.plugin = plugin

    def register(self, rpc: Services) -> None:
        for name in ("Push", "PushBatch", "Pause", "Resume", "List", "Declare", "Destroy", "Stat"):
            rpc.register(f"jobs.{name}", getattr(self, name.lower()), proto=True)
        rpc.register("informer.Jobs", self.informer_jobs)
        rpc.register("informer.JobsLatency", self.latency)

    def _job(self, pb: Any, method: str, index: int | None = None) -> Job:
        where = method if index is None else f"{method}: jobs[{index}]"
        if not pb.id:
            raise RpcError(f"{where}: empty ID field not allowed")
        pipeline = pb.options.pipeline
        if not pipeline:
            raise RpcError(f"{where}: job {pb.id} has no options.pipeline")
        driver = self.plugin.driver(pipeline)
        limit = self.plugin.cfg.max_payload_size
        if len(pb.payload) > limit:
            raise RpcError(f"{where}: job {pb.id} payload is {len(pb.payload)} bytes, over "
                           f"jobs.max_payload_size ({limit >> 20} MB); pipeline {pipeline}")
        return Job(id=pb.id, name=pb.job, payload=pb.payload, pipeline=pipeline,
                   headers={k: list(v.value) for k, v in pb.headers.items() if len(v.value)},
                   priority=pb.options.priority or driver.pipe.priority,
                   delay=float(max(0, pb.options.delay)), auto_ack=pb.options.auto_ack,
                   topic=pb.options.topic)

    async def push(self, body: bytes) -> bytes:
        req = _parse(proto.PushRequest, body, "jobs.Push")
        if not req.HasField("job"):
            raise RpcError("jobs.Push: the request has no job")
        try:
            await self.plugin.push([self._job(req.job, "jobs.Push")])
        except RpcError:
            self.plugin.push_err += 1
            raise
        self.plugin.push_ok += 1
        return EMPTY

    async def pushbatch(self, body: bytes) -> bytes:
        req = _parse(proto.PushBatchRequest, body, "jobs.PushBatch")
        jobs: list[Job] = []
        error: RpcError | None = None
        for i, pb in enumerate(req.jobs):
            try:
                jobs.append(self._job(pb, "jobs.PushBatch", i))
            except RpcError as exc:
                error = exc
                break
        if jobs:
            try:
                await self.plugin.push(jobs)
            except RpcError:
                self.plugin.push_err += len(jobs)
                raise
            self.plugin.push_ok += len(jobs)
        if error is not None:
            self.plugin.push_err += 1
            raise error
        return EMPTY

    def _names(self, body: bytes, method: str) -> list[str]:
        names = list(_parse(proto.Pipelines, body, method).pipelines)
        if not names:
            raise RpcError(f"{method}: no pipelines named")
        return names

    async def pause(self, body: bytes) -> bytes:
        await self.plugin.pause(self._names(body, "jobs.Pause"))
        return EMPTY

    async def resume(self, body: bytes) -> bytes:
        await self.plugin.resume(self._names(body, "jobs.Resume"))
        return EMPTY

    async def list(self, body: bytes) -> bytes:
        return proto.Pipelines(pipelines=sorted(self.plugin.drivers)).SerializeToString()

    async def declare(self, body: bytes) -> bytes:
        req = _parse(proto.DeclareRequest, body, "jobs.Declare")
        await self.plugin.declare(dict(req.pipeline))
        return EMPTY

    async def destroy(self, body: bytes) -> bytes:
        done = await self.plugin.destroy(self._names(body, "jobs.Destroy"))
        return proto.Pipelines(pipelines=done).SerializeToString()

    async def stat(self, body: bytes) -> bytes:
        stats = proto.Stats()
        for row in self.plugin.states():
            stats.stats.add(pipeline=row["pipeline"], driver=row["driver"], queue=row["queue"],
                            active=row["active"], delayed=row["delayed"], reserved=row["reserved"],
                            ready=row["ready"], priority=max(0, row["priority"]))
        return stats.SerializeToString()

    async def informer_jobs(self, arg: Any) -> list[dict[str, Any]]:
        """RoadRunner's keys (jobs.State has no JSON tags), then fastrr's counters."""
        name = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else arg
        if name not in ("jobs", None, True, ""):
            raise RpcError(f"informer.Jobs: no jobs plugin named {name!r} (expected \"jobs\")")
        out = []
        for row in self.plugin.states():
            out.append({"Pipeline": row["pipeline"], "Driver": row["driver"], "Queue": row["queue"],
                        "Active": row["active"], "Delayed": row["delayed"], "Reserved": row["reserved"],
                        "Ready": row["ready"], "Priority": row["priority"], "ErrorMessage": row["error"],
                        "Pushed": row["pushed"], "Acked": row["acked"], "Retried": row["retried"],
                        "Failed": row["failed"]})
        return out

    async def latency(self, arg: Any) -> dict[str, Any]:
        """fastrr's own: push-to-ack latency over the jobs acked since the last call
        (the benchmark's p99); the samples are cleared."""
        dispatcher = self.plugin.dispatcher
        samples = sorted(dispatcher.latencies) if dispatcher is not None else []
        if dispatcher is not None:
            dispatcher.latencies = []

        def pct(p: float) -> float:
            return samples[min(len(samples) - 1, int(p * len(samples)))] if samples else 0.0

        return {"count": len(samples), "p50": pct(0.5), "p99": pct(0.99), "max": samples[-1] if samples else 0.0,
                "failed": dispatcher.failed if dispatcher else 0, "dropped": dispatcher.dropped if dispatcher else 0}
