"""The service plugin's RPC (protobuf service.v1, as roadrunner-php/services calls it),
and its face to informer/resetter.

| method             | argument | answer                                                    |
|--------------------|----------|-----------------------------------------------------------|
| service.Create     | Create   | Response{ok}: started `process_num` copies                |
| service.Terminate  | Service  | Response{ok}: stopped (SIGINT, then SIGKILL) and removed  |
| service.Restart    | Service  | Response{ok}: every copy stopped and started again        |
| service.Status     | Service  | Status of the last copy (deprecated in RoadRunner)        |
| service.Statuses   | Service  | Statuses: one per copy                                    |
| service.List       | Service  | List: the service names                                   |
| informer.Workers   | "service"| rows of the running copies (pid, memory, CPU%, command)   |
| resetter.Reset     | "service"| every service restarted (RoadRunner's Reset)              |

Error texts are RoadRunner's where it has one (`no such service: X`,
`service already exists: X`, `the service with X name should have at least 1
process`). A copy that is not running (waiting for its restart, or stopped for
good) answers in Statuses, and in Status, with its last pid and a `status`
message saying why, instead of failing the whole call as RoadRunner's Status does.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import psutil
from google.protobuf.message import DecodeError

from fastrr.config.units import ConfigError
from fastrr.pool.pool import PoolError
from fastrr.rpc.codec import RpcError
from fastrr.rpc.services import Services
from fastrr.service import proto
from fastrr.service.config import (
    DEFAULT_RESTART_SEC,
    DEFAULT_TIMEOUT_STOP_SEC,
    ServiceConfig,
    check_name,
    parse_service_command,
)
from fastrr.service.process import Service, ServiceError, ServiceProcess, usage

if TYPE_CHECKING:
    from fastrr.service.plugin import ServicePlugin

OK = proto.Response(ok=True).SerializeToString()


def _parse(cls: Any, body: bytes, method: str) -> Any:
    msg = cls()
    try:
        msg.ParseFromString(body)
    except DecodeError as exc:
        raise RpcError(f"{method}: malformed {cls.DESCRIPTOR.name} message: {exc}") from None
    return msg


def process_status(proc: ServiceProcess) -> Any:
    status = proto.Status(pid=proc.pid, command=proc.service.command_line)
    if not proc.running:
        status.status.message = proc.not_running_reason()
        return status
    try:
        cpu, rss = usage(proc.pid)
    except psutil.Error as exc:
        status.status.message = f"process_state: {exc}"
        return status
    status.cpu_percent = cpu
    status.memory_usage = rss
    return status


def create_config(msg: Any) -> ServiceConfig:
    """A Create message as a service config, with RoadRunner's defaults for zeros."""
    name = msg.name
    if not name:
        raise RpcError("service.Create: the service name is empty")
    if msg.process_num <= 0:
        raise RpcError(f"the service with {name} name should have at least 1 process")
    if msg.exec_timeout < 0:
        raise RpcError(f"service.Create: service {name}: exec_timeout must not be negative (got {msg.exec_timeout})")
    try:
        check_name("service.Create: name", name)
        command = parse_service_command(f"service.Create: service {name}: command", msg.command)
    except ConfigError as exc:
        raise RpcError(str(exc)) from None
    return ServiceConfig(
        name=name, command=command, process_num=msg.process_num, exec_timeout=float(msg.exec_timeout),
        remain_after_exit=msg.remain_after_exit, restart_sec=float(msg.restart_sec) or DEFAULT_RESTART_SEC,
        timeout_stop_sec=float(msg.timeout_stop_sec) or DEFAULT_TIMEOUT_STOP_SEC,
        service_name_in_log=msg.service_name_in_logs, env={k.upper(): v for k, v in msg.env.items()})


class ServiceRpc:
    def __init__(self, plugin: ServicePlugin):
        self.plugin = plugin
        # Create/Terminate/Restart/Reset one at a time (RoadRunner's rpc mutex): a
        # Terminate awaits the stop, and a Create of the same name must wait for it.
        self.changing = asyncio.Lock()

    def register(self, rpc: Services) -> None:
        for method, handler in (("Create", self.create), ("Terminate", self.terminate), ("Restart", self.restart),
                                ("Status", self.status), ("Statuses", self.statuses), ("List", self.list)):
            rpc.register(f"service.{method}", handler, proto=True)
        rpc.processes["service"] = ServiceInformer(self)

    def _service(self, body: bytes, method: str) -> Service:
        name = _parse(proto.Service, body, method).name
        service = self.plugin.services.get(name)
        if service is None:
            known = ", ".join(sorted(self.plugin.services)) or "none"
            raise RpcError(f"no such service: {name} (services: {known})")
        return service

    async def create(self, body: bytes) -> bytes:
        cfg = create_config(_parse(proto.Create, body, "service.Create"))
        async with self.changing:
            if cfg.name in self.plugin.services:
                raise RpcError(f"service already exists: {cfg.name}")
            self.plugin.log.debug("create service", name=cfg.name, command=cfg.command,
                                  process_num=cfg.process_num, restart_sec=cfg.restart_sec)
            service = Service(cfg, self.plugin.log)
            try:
                service.start()
            except ServiceError as exc:
                raise RpcError(str(exc)) from None
            self.plugin.services[cfg.name] = service
        return OK

    async def terminate(self, body: bytes) -> bytes:
        async with self.changing:
            service = self._service(body, "service.Terminate")
            del self.plugin.services[service.cfg.name]
            await service.stop()
        return OK

    async def restart(self, body: bytes) -> bytes:
        async with self.changing:
            service = self._service(body, "service.Restart")
            await self._restart(service)
        return OK

    async def _restart(self, service: Service) -> None:
        try:
            await service.restart()
        except ServiceError as exc:
            # As RoadRunner: a service that cannot start again is gone.
            self.plugin.services.pop(service.cfg.name, None)
            raise RpcError(str(exc)) from None

    async def status(self, body: bytes) -> bytes:
        service = self._service(body, "service.Status")
        if not service.processes:
            return proto.Status(command=service.command_line).SerializeToString()
        return process_status(service.processes[-1]).SerializeToString()  # type: ignore[no-any-return]

    async def statuses(self, body: bytes) -> bytes:
        service = self._service(body, "service.Statuses")
        answer = proto.Statuses()
        for proc in service.processes:
            answer.status.append(process_status(proc))
        return answer.SerializeToString()  # type: ignore[no-any-return]

    async def list(self, body: bytes) -> bytes:
        _parse(proto.Service, body, "service.List")
        return proto.List(services=sorted(self.plugin.services)).SerializeToString()  # type: ignore[no-any-return]


class ServiceInformer:
    """What informer and resetter ask of a plugin with workers (the faces of a
    WorkerPool they use), for services: `fastrr workers` / `rr workers` list
    them, `fastrr reset` restarts them."""

    name = "service"

    def __init__(self, rpc: ServiceRpc):
        self.rpc = rpc

    def workers_info(self) -> list[dict[str, Any]]:
        rows = []
        for service in self.rpc.plugin.services.values():
            for proc in service.processes:
                row = proc.info()
                if row is not None:
                    rows.append(row)
        return rows

    def stats(self) -> dict[str, Any]:
        services = self.rpc.plugin.services.values()
        exits = sorted((e for s in services for e in s.recent_exits), key=lambda e: e["at"])
        return {"services": len(self.rpc.plugin.services),
                "processes": sum(len(s.processes) for s in services),
                "running": sum(p.running for s in services for p in s.processes), "exits": exits[-8:]}

    def add_worker(self) -> None:
        raise PoolError("service: a service runs process_num copies; use service.Create for more")

    def remove_worker(self) -> None:
        raise PoolError("service: a service runs process_num copies; use service.Terminate to stop one")

    async def reset(self) -> None:
        async with self.rpc.changing:
            errors = []
            for service in list(self.rpc.plugin.services.values()):
                try:
                    await self.rpc._restart(service)
                except RpcError as exc:
                    errors.append(str(exc))
            if errors:
                raise PoolError("; ".join(errors))
