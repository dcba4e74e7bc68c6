"""The status RPC (rr-plugins.md §4.4), protobuf status.v1 as RoadRunner's api-go has it.

| method        | argument                 | answer                                    |
|---------------|--------------------------|-------------------------------------------|
| status.Status | Request{plugin}          | Response{code: the plugin's health code}  |
| status.Ready  | Request{plugin}          | Response{code: its readiness code}        |

A plugin without that check: `checker_rpc_status: no such plugin: X`
(`checker_rpc_ready: ...` for Ready), RoadRunner's text. fastrr also fills
`message` with why a check fails (RoadRunner leaves it empty). The codes are
the plugin's own, also during a graceful shutdown (as RoadRunner's RPC).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.protobuf.message import DecodeError

from fastrr.rpc.codec import RpcError
from fastrr.rpc.protobuf import build_messages
from fastrr.rpc.services import Services

if TYPE_CHECKING:
    from fastrr.status.plugin import StatusPlugin

_classes = build_messages("status.v1", {
    "Request": [("plugin", 1, "string", False)],
    "Response": [("code", 1, "int64", False), ("message", 2, "string", False)],
})
Request = _classes["Request"]
Response = _classes["Response"]


class StatusRpc:
    def __init__(self, plugin: StatusPlugin):
        self.plugin = plugin

    def register(self, rpc: Services) -> None:
        rpc.register("status.Status", self.status, proto=True, fast=self.status_now)
        rpc.register("status.Ready", self.ready, proto=True, fast=self.ready_now)

    def _answer(self, body: bytes, kind: str, op: str) -> bytes:
        req = Request()
        try:
            req.ParseFromString(body)
        except DecodeError as exc:
            raise RpcError(f"{op}: malformed status.v1.Request message: {exc}") from None
        hook = self.plugin.probes(kind).get(req.plugin)
        if hook is None:
            raise RpcError(f"{op}: no such plugin: {req.plugin}")
        try:
            result = hook()
        except Exception as exc:
            raise RpcError(f"{op}: {exc}") from None
        if result is None:  # (probes() lists only plugins whose hook answers)
            return Response().SerializeToString()  # type: ignore[no-any-return]
        code, why = result
        return Response(code=code, message=why).SerializeToString()  # type: ignore[no-any-return]

    # The checks never wait, so the answer is made in the RPC connection's callback (fast=).
    def status_now(self, body: bytes) -> bytes:
        return self._answer(body, "health", "checker_rpc_status")

    def ready_now(self, body: bytes) -> bytes:
        return self._answer(body, "ready", "checker_rpc_ready")

    async def status(self, body: Any) -> bytes:
        return self.status_now(body)

    async def ready(self, body: Any) -> bytes:
        return self.ready_now(body)
