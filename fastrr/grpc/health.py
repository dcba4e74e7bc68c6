"""grpc.health.v1.Health and server reflection on the grpc listener.

Health (RoadRunner's health_server.go): one status for the whole plugin,
whatever service name the request carries; `List` answers `{"grpc": status}`
and `Watch` streams every change. SERVING while the plugin is started, not
stopping, and a worker of its pool is alive (pool_health, the same rule as
/health); NOT_SERVING otherwise. RoadRunner also answers NOT_SERVING during a
reset, because its reset destroys the pool; fastrr's reset is rolling (never
below `num_workers`), so it stays SERVING.

Reflection: grpc.reflection.v1alpha.ServerReflection from grpcio-reflection,
over a descriptor pool holding the proto files' full descriptors, and the same
servicer under grpc.reflection.v1 (its messages are the same bytes), so
grpcurl and other tools that ask v1 first list and describe the services.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha._async import ReflectionServicer

from fastrr.grpc.protos import Protos

HEALTH = "grpc.health.v1.Health"
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
REFLECTION_V1ALPHA = "grpc.reflection.v1alpha.ServerReflection"
WATCH_POLL = 0.5  # seconds between two looks at the pool for Watch streams
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthServicer(health_pb2_grpc.HealthServicer):
    def __init__(self, serving: Callable[[], bool]):
        self.serving = serving
        # Set at a stop: Watch streams send NOT_SERVING and end, as RoadRunner's
        # Shutdown() does, so that they do not hold the graceful stop for its whole grace.
        self.closed = asyncio.Event()

    def status(self) -> int:
        return SERVING if self.serving() and not self.closed.is_set() else NOT_SERVING

    def shutdown(self) -> None:
        self.closed.set()

    async def Check(self, request: health_pb2.HealthCheckRequest,  # noqa: N802 (the rpc's name)
                    context: grpc.aio.ServicerContext) -> health_pb2.HealthCheckResponse:
        return health_pb2.HealthCheckResponse(status=self.status())  # type: ignore[arg-type]

    async def List(self, request: health_pb2.HealthListRequest,  # noqa: N802
                   context: grpc.aio.ServicerContext) -> health_pb2.HealthListResponse:
        answer = health_pb2.HealthListResponse()
        answer.statuses["grpc"].status = self.status()  # type: ignore[assignment]
        return answer

    async def Watch(self, request: health_pb2.HealthCheckRequest,  # noqa: N802
                    context: grpc.aio.ServicerContext) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        last = -1
        while True:
            status = self.status()
            if status != last:
                last = status
                yield health_pb2.HealthCheckResponse(status=status)  # type: ignore[arg-type]
            if self.closed.is_set():
                return
            try:
                await asyncio.wait_for(self.closed.wait(), WATCH_POLL)
            except TimeoutError:
                pass


def health_handler(servicer: HealthServicer) -> grpc.GenericRpcHandler:
    req, resp = health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
    return grpc.method_handlers_generic_handler(HEALTH, {
        "Check": grpc.unary_unary_rpc_method_handler(servicer.Check, req.FromString, resp.SerializeToString),
        "List": grpc.unary_unary_rpc_method_handler(servicer.List, health_pb2.HealthListRequest.FromString,
                                                    health_pb2.HealthListResponse.SerializeToString),
        "Watch": grpc.unary_stream_rpc_method_handler(servicer.Watch, req.FromString, resp.SerializeToString),
    })


def reflection_handlers(protos: Protos) -> list[grpc.GenericRpcHandler]:
    pool = descriptor_pool.DescriptorPool()
    files = list(protos.files)  # imports first, as protoc listed them
    names = {f.name for f in files}
    for module in (health_pb2, reflection_pb2):  # so the tools can describe these two as well
        own = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
        if own.name not in names:
            files.append(own)
    for file in files:
        pool.Add(file)
    services = [*sorted(protos.services), HEALTH, REFLECTION_V1, REFLECTION_V1ALPHA]
    servicer = ReflectionServicer(services, pool=pool)
    method = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo, reflection_pb2.ServerReflectionRequest.FromString,
        reflection_pb2.ServerReflectionResponse.SerializeToString)
    return [grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": method})
            for name in (REFLECTION_V1ALPHA, REFLECTION_V1)]
