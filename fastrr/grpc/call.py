"""One unary call on one grpc worker: the frame RoadRunner sends, and what the answer means.

Request (roadrunner-server/grpc proxy.go `makePayload`): FLAGS = CODEC_JSON,
options `[len(context)]`, payload = context || the request's protobuf bytes,
untouched. The context is `{"service":"pkg.Svc","method":"M","context":{...}}`
where `context` is the incoming metadata (lower-case keys, lists of strings,
sorted by key as Go's json.Marshal writes a map) plus `:peer.address` and,
with TLS, `:peer.auth-type` = "tls" (Go's TLSInfo.AuthType()).

Answer (proxy.go `invoke`, `responseMetadata`), worker frame → the call:
- body + `{}` or an empty context → OK, the body;
- body + a flat `{"k":"v"}` (roadrunner-php/grpc before 2024-09) → OK, every
  pair a response header;
- body + `{"headers":"<json>","trailers":"<json>"}` → OK; string values become
  headers / trailers (others are logged and skipped);
- a context with `"error": base64 google.rpc.Status` → that status, details in
  grpc-status-details-bin;
- an ERROR frame → status.py `from_worker_error` (INTERNAL, or
  `code|:|msg|:|details`);
- a context that is not a JSON object of strings → UNKNOWN (Go returns the
  json error raw);
- a STREAM frame → UNKNOWN "streaming is not supported", the worker replaced;
- the worker crashed or broke the protocol → INTERNAL (Go: the pool error
  through wrapError);
- exec_ttl, or the client's deadline passed → DEADLINE_EXCEEDED, the worker
  killed and respawned (RoadRunner says INTERNAL for exec_ttl);
- no free worker within allocate_timeout, queue full, stopping → UNAVAILABLE
  (RoadRunner: INTERNAL), which clients may retry, as HTTP's 503.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import grpc

from fastrr import _core
from fastrr.grpc.status import CallError, from_status_bytes, from_worker_error
from fastrr.log import Logger
from fastrr.pool.worker import WorkerProtocolError

if TYPE_CHECKING:
    from fastrr.pool.worker import Worker

# What grpcio accepts as a metadata key; "grpc-" keys are the transport's own.
_KEY = re.compile(r"[0-9a-z_.\-]+\Z")
_VALUE = re.compile(r"[\x20-\x7e]*\Z")
Metadata = tuple[tuple[str, str | bytes], ...]


def context_head(service: str, method: str) -> bytes:
    """The fixed start of every context of one method (built once per method)."""
    return f'{{"service":{json.dumps(service)},"method":{json.dumps(method)},"context":'.encode()


def request_context(service: str, method: str, metadata: Any, peer: str, tls: bool,
                    head: bytes | None = None) -> bytes:
    """The worker's context JSON for one call."""
    md: dict[str, list[str]] = {}
    for key, value in metadata or ():
        md.setdefault(key, []).append(value if isinstance(value, str) else value.decode("utf-8", "replace"))
    md[":peer.address"] = [peer_address(peer)]
    if tls:
        md[":peer.auth-type"] = ["tls"]
    inner = json.dumps(md, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()
    return (head or context_head(service, method)) + inner + b"}"


def peer_address(peer: str) -> str:
    """grpcio's "ipv4:127.0.0.1:5000" / "ipv6:[::1]:5000" as Go's net.Addr.String() writes it."""
    for prefix in ("ipv4:", "ipv6:", "unix:", "unix-abstract:"):
        if peer.startswith(prefix):
            rest = peer[len(prefix):]
            return unquote(rest) if "%" in rest else rest
    return peer


class GrpcCall:
    """The pool's Job protocol (pool/worker.py) for one call; the handler awaits `future`,
    which gets (options, payload) or a CallError. `cancelled`: nobody waits any more."""

    __slots__ = ("request_frame", "cancelled", "retries", "queued_at", "future")

    def __init__(self, frame: bytes, loop: asyncio.AbstractEventLoop):
        self.request_frame = frame
        self.cancelled = False
        self.retries = 0
        self.queued_at = 0.0
        self.future: asyncio.Future[tuple[int, tuple[int, ...], bytes]] = loop.create_future()

    def _fail(self, error: CallError) -> None:
        if not self.cancelled and not self.future.done():
            self.future.set_exception(error)

    def on_worker_frame(self, worker: Worker, flags: int, byte10: int, options: tuple[int, ...],
                        payload: bytes) -> bool:
        if byte10 & _core.STREAM:
            self._fail(CallError(grpc.StatusCode.UNKNOWN, "streaming is not supported"))
            raise WorkerProtocolError("a grpc worker answered with a stream frame (streaming is not supported)")
        if not flags & _core.FLAG_ERROR and len(options) != 1:
            raise WorkerProtocolError(f"options length should be equal 1 (body offset), got {len(options)}")
        if not self.cancelled and not self.future.done():
            self.future.set_result((flags, options, payload))
        return True

    def on_worker_lost(self, worker: Worker, status: int, reason: str) -> None:
        code = grpc.StatusCode.DEADLINE_EXCEEDED if status == 504 else grpc.StatusCode.INTERNAL
        self._fail(CallError(code, f"worker {worker.pid}: {reason}"))

    def on_no_worker(self, reason: str) -> None:
        self._fail(CallError(grpc.StatusCode.UNAVAILABLE, reason))


class Answer:
    """A worker's reply read into what grpcio sends."""

    __slots__ = ("body", "headers", "trailers", "error")

    def __init__(self) -> None:
        self.body = b""
        self.headers: Metadata = ()
        self.trailers: Metadata = ()
        self.error: CallError | None = None


def read_answer(flags: int, options: tuple[int, ...], payload: bytes, log: Logger) -> Answer:
    answer = Answer()
    if flags & _core.FLAG_ERROR:
        answer.error = from_worker_error(payload.decode("utf-8", "surrogateescape"))
        return answer
    cut = options[0]
    if cut > len(payload):
        answer.error = CallError(grpc.StatusCode.INTERNAL, f"worker answer's context length {cut} is past "
                                                           f"its payload ({len(payload)} bytes)")
        return answer
    answer.body = payload[cut:]
    if cut == 0 or (cut == 2 and payload[:2] == b"{}"):
        return answer
    try:
        ctx = json.loads(payload[:cut])
        if not isinstance(ctx, dict) or not all(isinstance(v, str) for v in ctx.values()):
            raise ValueError("expected a JSON object of string values")
    except ValueError as exc:
        answer.error = CallError(grpc.StatusCode.UNKNOWN, f"worker answer's context: {exc}")
        return answer
    if "headers" not in ctx and "trailers" not in ctx:
        answer.headers = _metadata(ctx.items(), log)  # the legacy flat map: all of it, as Go does
    else:
        answer.headers = _metadata(_packed(ctx.get("headers"), "headers", log), log)
        answer.trailers = _metadata(_packed(ctx.get("trailers"), "trailers", log), log)
    if "error" in ctx:
        try:
            answer.error = from_status_bytes(base64.b64decode(ctx["error"], validate=True))
        except (binascii.Error, ValueError) as exc:
            answer.error = CallError(grpc.StatusCode.UNKNOWN, f"worker answer's error is not a base64 "
                                                              f"google.rpc.Status: {exc}")
        except Exception as exc:  # protobuf's DecodeError
            answer.error = CallError(grpc.StatusCode.UNKNOWN, f"worker answer's error does not decode: {exc}")
    return answer


def _packed(text: str | None, what: str, log: Logger) -> list[tuple[str, str]]:
    """The new library's `headers`/`trailers`: a JSON object as a string; string values only."""
    if not text:
        return []
    try:
        values = json.loads(text)
        if not isinstance(values, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        log.error(f"worker answer's {what} do not decode, ignored", error=str(exc))
        return []
    pairs = []
    for key, value in values.items():
        if isinstance(value, str):
            pairs.append((key, value))
        else:
            log.warn(f"skipping a response {what[:-1]} with a non-string value", key=key, value=repr(value)[:100])
    return pairs


def _metadata(pairs: Any, log: Logger) -> Metadata:
    out: list[tuple[str, str | bytes]] = []
    for key, value in pairs:
        name = str(key).lower()  # metadata.New / Pairs lower-case keys
        if not _KEY.match(name) or name.startswith("grpc-"):
            log.warn("skipping response metadata with an invalid or reserved key", key=name)
            continue
        if name.endswith("-bin"):
            out.append((name, value.encode("utf-8", "surrogateescape")))
        elif _VALUE.match(value):
            out.append((name, value))
        else:
            log.warn("skipping response metadata whose value is not printable ASCII", key=name)
    return tuple(out)
