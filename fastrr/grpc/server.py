"""The gRPC listener: grpcio's asyncio server with one raw-bytes handler per proto method.

grpcio terminates HTTP/2, applies the limits and hands each call's request
message as bytes (no deserializer is set, so nothing here decodes protobuf:
PHP does); a handler frames it for a grpc worker (call.py) and sends back
the worker's bytes, metadata and status. What maps to what:

- max_recv_msg_size (MB) → grpc.max_receive_message_length (MaxRecvMsgSize);
- max_send_msg_size (MB) → grpc.max_send_message_length, and a check of the
  worker's reply here (MaxSendMsgSize);
- max_concurrent_streams → grpc.max_concurrent_streams;
- max_connection_idle / _age / _age_grace → grpc.max_connection_idle_ms /
  _age_ms / _age_grace_ms, left unset (infinity) when 0 (keepalive.ServerParameters);
- ping_time / timeout → grpc.keepalive_time_ms / grpc.keepalive_timeout_ms
  (keepalive Time / Timeout);
- tls → ssl_server_credentials (TLS 1.2+, ALPN h2; credentials.NewTLS).

Both over-size directions end in RESOURCE_EXHAUSTED, as in grpc-go. A method
that is in no proto file never reaches a handler: grpcio answers
UNIMPLEMENTED itself, no worker involved. Streaming methods are registered
as unary, as RoadRunner does (one request message in, one reply out).

`grpc.tls.client_auth_type`: grpcio can either require and verify a client
certificate or not ask for one, so `require_and_verify_client_cert` and
`require_any_client_cert` both require a certificate verified against
`root_ca` (the second is stricter than Go's), and `request_client_cert` /
`verify_client_cert_if_given` ask for none (start-up warns about both).
"""

from __future__ import annotations

import asyncio
import bisect
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from fastrr import _core
from fastrr.grpc.call import GrpcCall, context_head, read_answer, request_context
from fastrr.grpc.config import GrpcConfig
from fastrr.grpc.protos import Protos
from fastrr.grpc.status import CallError
from fastrr.log import Logger
from fastrr.pool.states import State

if TYPE_CHECKING:
    from fastrr.pool.pool import WorkerPool

# rr_grpc_request_duration_seconds: client_golang's default buckets, as RoadRunner's histogram has
BUCKETS = (.005, .01, .025, .05, .1, .25, .5, 1.0, 2.5, 5.0, 10.0)
# grpc-go's codes.Code.String(), the status_code label RoadRunner's metrics use
GO_CODE_NAMES = {
    grpc.StatusCode.OK: "OK", grpc.StatusCode.CANCELLED: "Canceled", grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument", grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound", grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied", grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition", grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange", grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal", grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss", grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}
Handler = Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]


def channel_options(cfg: GrpcConfig) -> list[tuple[str, int]]:
    opts = [
        ("grpc.max_receive_message_length", cfg.max_recv_msg_size),
        ("grpc.max_send_message_length", cfg.max_send_msg_size),
        ("grpc.max_concurrent_streams", cfg.max_concurrent_streams),
        ("grpc.keepalive_time_ms", int(cfg.ping_time * 1000)),
        ("grpc.keepalive_timeout_ms", int(cfg.timeout * 1000)),
        # grpcio sets SO_REUSEPORT by default: a second server on a taken port would
        # share it silently; RoadRunner's listener fails, so does this one.
        ("grpc.so_reuseport", 0),
    ]
    for key, value in (("grpc.max_connection_idle_ms", cfg.max_connection_idle),
                       ("grpc.max_connection_age_ms", cfg.max_connection_age),
                       ("grpc.max_connection_age_grace_ms", cfg.max_connection_age_grace)):
        if value > 0:
            opts.append((key, int(value * 1000)))
    return opts


class TlsError(Exception):
    """grpc.tls names files that are not a usable certificate, key or CA bundle."""


def server_credentials(cfg: GrpcConfig, log: Logger) -> grpc.ServerCredentials | None:
    tls = cfg.tls
    if tls is None:
        return None
    # grpc core only says "Failed to bind" for a bad PEM file: OpenSSL, through
    # the ssl module, names the problem first.
    check = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        check.load_cert_chain(tls.cert, tls.key)
        if tls.root_ca:
            check.load_verify_locations(cafile=tls.root_ca)
    except (ssl.SSLError, OSError) as exc:
        raise TlsError(f"cannot load cert {tls.cert!r} / key {tls.key!r}"
                       f"{f' / root_ca {tls.root_ca!r}' if tls.root_ca else ''}: {exc}") from None
    with open(tls.key, "rb") as fh:
        key = fh.read()
    with open(tls.cert, "rb") as fh:
        cert = fh.read()
    root = None
    require = False
    mode = tls.client_auth_type
    if mode in ("require_and_verify_client_cert", "require_any_client_cert"):
        with open(tls.root_ca, "rb") as fh:
            root = fh.read()
        require = True
        if mode == "require_any_client_cert":
            log.warn("grpc.tls.client_auth_type require_any_client_cert: grpcio also verifies the client "
                     "certificate against root_ca")
    elif mode != "no_client_cert":
        log.warn(f"grpc.tls.client_auth_type {mode}: grpcio cannot ask for an optional client certificate, "
                 "none is requested")
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=root, require_client_auth=require)


def bind_address(listen: str) -> str:
    if listen.startswith("unix://"):
        return "unix:" + listen[7:]
    host, _, port = listen[6:].rpartition(":")
    return f"{host or '[::]'}:{port}"


class CallStats:
    """rr_grpc_* request series, counted per call (the metrics plugin reads them at scrape time)."""

    def __init__(self) -> None:
        self.queue = 0  # calls in flight (rr_grpc_requests_queue)
        self.total: dict[tuple[str, str], int] = {}  # (grpc_method, status_code) -> calls
        # grpc_method -> [per-bucket counts (+Inf last), sum of seconds]
        self.durations: dict[str, tuple[list[int], list[float]]] = {}

    def record(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        key = (method, GO_CODE_NAMES.get(code, "Unknown"))
        self.total[key] = self.total.get(key, 0) + 1
        entry = self.durations.get(method)
        if entry is None:
            entry = self.durations[method] = ([0] * (len(BUCKETS) + 1), [0.0])
        entry[0][bisect.bisect_left(BUCKETS, seconds)] += 1
        entry[1][0] += seconds


class GrpcServer:
    def __init__(self, cfg: GrpcConfig, protos: Protos, pool: WorkerPool, log: Logger):
        self.cfg = cfg
        self.protos = protos
        self.pool = pool
        self.log = log
        self.loop = asyncio.get_running_loop()
        self.stats = CallStats()
        self.tls = cfg.tls is not None
        self.server = grpc.aio.server(options=channel_options(cfg))
        for service in protos.services.values():
            handlers = {m.name: grpc.unary_unary_rpc_method_handler(self._handler(service.name, m.name))
                        for m in service.methods}
            self.server.add_registered_method_handlers(service.name, handlers)
            streaming = [m.name for m in service.methods if m.client_streaming or m.server_streaming]
            if streaming:
                log.warn("streaming methods are served as unary calls, as RoadRunner does", service=service.name,
                         methods=streaming)

    def add_generic(self, handler: grpc.GenericRpcHandler) -> None:
        self.server.add_generic_rpc_handlers((handler,))

    def bind(self) -> None:
        """Listen (grpcio binds here, before start); TlsError, or OSError for the address."""
        address = bind_address(self.cfg.listen)
        creds = server_credentials(self.cfg, self.log)
        try:
            port = (self.server.add_secure_port(address, creds) if creds is not None
                    else self.server.add_insecure_port(address))
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {self.cfg.listen}: {exc}") from None
        if not port and not address.startswith("unix:"):
            raise OSError(f"cannot listen on {self.cfg.listen}")

    async def start(self) -> None:
        await self.server.start()

    async def stop(self, grace: float) -> None:
        """No new calls from now on; the ones running get `grace` seconds, then are cancelled."""
        await self.server.stop(grace)

    # -- one call ---------------------------------------------------------------------

    def _handler(self, service: str, method: str) -> Handler:
        full = f"/{service}/{method}"
        head = context_head(service, method)

        async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            started = time.monotonic()
            code: grpc.StatusCode | None = grpc.StatusCode.OK
            stats = self.stats
            stats.queue += 1
            try:
                return await self._call(service, method, head, request, context)
            except CallError as exc:
                elapsed = time.monotonic() - started
                self.log.error("method call was finished with error", method=full, code=exc.code.name,
                               error=exc.message[:500], elapsed_ms=round(elapsed * 1e3, 1))
                # counted before abort sends the status: a client that saw it sees it counted
                stats.queue -= 1
                stats.record(full, exc.code, elapsed)
                code = None
                trailers = tuple(context.trailing_metadata() or ())
                if exc.details_bin:
                    trailers += (("grpc-status-details-bin", exc.details_bin),)
                await context.abort(exc.code, exc.message, trailing_metadata=trailers)
                raise  # (abort raises)
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except grpc.aio.AbortError:
                raise
            except Exception as exc:  # a fault of ours: grpcio answers UNKNOWN, the log says why
                code = grpc.StatusCode.UNKNOWN
                self.log.error("grpc call failed in the server", method=full, error=repr(exc))
                raise
            finally:
                if code is not None:
                    stats.queue -= 1
                    stats.record(full, code, time.monotonic() - started)

        return unary

    async def _call(self, service: str, method: str, head: bytes, request: bytes,
                    context: grpc.aio.ServicerContext) -> bytes:
        ctx = request_context(service, method, context.invocation_metadata(), context.peer(), self.tls, head)
        call = GrpcCall(_core.encode_frame(_core.FLAG_JSON, ctx + request, (len(ctx),)), self.loop)
        left = context.time_remaining()
        # A timer rather than asyncio.wait_for, which costs a Task per call; grpcio
        # also cancels the handler at the deadline, whichever comes first.
        timer = None if left is None else self.loop.call_later(max(left, 0.0), self._expire, call)
        self.pool.submit(call)
        try:
            flags, options, payload = await call.future
        except asyncio.CancelledError:
            left = context.time_remaining()
            self._abandon(call, deadline=left is not None and left <= 0)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        answer = read_answer(flags, options, payload, self.log)
        if answer.headers:
            await context.send_initial_metadata(answer.headers)
        if answer.trailers:
            context.set_trailing_metadata(answer.trailers)
        if answer.error is not None:
            raise answer.error
        if len(answer.body) > self.cfg.max_send_msg_size:
            # grpc-go's sendMsg check, with its words; grpcio's own would say less
            limit = self.cfg.max_send_msg_size
            raise CallError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                            f"grpc: trying to send message larger than max ({len(answer.body)} vs. {limit})")
        return answer.body

    def _expire(self, call: GrpcCall) -> None:
        if not call.future.done():
            call.future.set_exception(CallError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded"))
            self._abandon(call, deadline=True)

    def _abandon(self, call: GrpcCall, deadline: bool) -> None:
        """Nobody waits for `call` any more. Past its deadline a worker running it is
        killed and respawned, as exec_ttl does (RoadRunner's pool derives the exec
        context from the call's); a call the client cancelled lets its worker finish."""
        call.cancelled = True
        if not deadline:
            return
        for worker in list(self.pool.workers.values()):
            if worker.job is call:
                self.log.warn("call deadline exceeded, killing its worker", pid=worker.pid)
                label = State.EXEC_TTL_REACHED.label
                self.pool.recycled[label] = self.pool.recycled.get(label, 0) + 1
                worker.fail_job(504, "the call's deadline passed", State.EXEC_TTL_REACHED)
                return

    def metrics_snapshot(self) -> dict[str, Any]:
        return {"queue": self.stats.queue, "total": dict(self.stats.total), "bounds": BUCKETS,
                "durations": {m: (list(c), s[0]) for m, (c, s) in self.stats.durations.items()}}
