"""The worker pool when the C engine (`fastrr._core.Engine`) runs the data path.

Python keeps everything about processes: spawn, PID handshake, stderr, exit
detection, backoff and boot failures, the supervisor, reset and scaling. Once a
worker has passed its handshake it is handed to the engine, which from then on
does all of its I/O: requests, responses, streams, PING/PONG, STOP, and the
CONTROL stop frame. Python never sees a request.

How the base WorkerPool keeps working without being edited:
- An engine-owned worker's `relay` is an `EngineRelay`. `Worker.stop()` writes
  CONTROL_STOP through it, which asks the engine to send the stop frame: now if
  the worker is idle, else after the request it runs (the kill timer is then
  held until the frame went out, as a busy worker is never killed for a soft
  limit). Its `close()` - which `Worker._on_exit` calls before it closes the
  pipes - tells the engine the process is gone; the engine answers the request
  the worker had (502), and forgets it. The engine works on dups of the fds,
  so whatever Python does with its own copies cannot hurt it.
- Engine-owned workers have `job is None` (Python never sees requests): the base
  pool never schedules them (`free` and `waiters` stay empty), never applies
  exec_ttl to them (the engine does), and stops them through the relay like any
  idle worker. Their `execs`/`last_used`/state are refreshed from the engine
  before the supervisor and the informer look at them.
- Engine events call back into the pool, as the Python front's paths would:
  failed -> Worker.lost, stop_requested -> _retire(INVALID), exec_ttl -> kill,
  max_jobs -> _retire, max_memory -> _retire after _over_memory agrees.

Events (tuples from `Engine.poll_events`, read when `engine.event_fd` is readable):
  ("failed", pid, reason, io, busy, execs)
                                the relay broke (io) or the worker broke the protocol;
                                busy: a request was on it; execs: requests it completed
  ("stop_requested", pid)       $worker->stop(); the engine re-ran the request elsewhere
  ("exec_ttl", pid, reason)     the engine answers 504 once the process is gone
  ("max_jobs", pid) / ("max_memory", pid)   held after its request, awaiting stop/resume
  ("leak_trend", pid, {rate, rss, left})  its RSS climbs steadily (fastrr/pool/leak.py, same
                                fit in C on the max_worker_memory sample); not held: it
                                serves on while pool.leak_found replaces it warm
  ("stop_sent", pid)            a deferred stop frame went out: start the kill timer
  ("drained",)                  after stop_accepting(): nothing in flight any more
  ("log", level, message, fields) / ("access", fields)   lines for the http logger
  ("upload_start", token, content_type) / ("upload_data", token, bytes) /
  ("upload_end", token) / ("upload_drop", token)   a multipart body, see below
  ("static", token, request)    a GET/HEAD that a static file may answer, see below
  ("detach", fd, request, leftover)   a GET for one of `detach_paths`, handed over: see below

Multipart bodies are parsed by the Python front's MultipartReceiver (files
stream to temp files), so the engine streams them here: upload_start ->
upload_go (or upload_fail: no boundary), each upload_data -> upload_ack (the
engine keeps at most 1 MiB unacknowledged and stops reading the socket
meanwhile: memory stays flat), upload_end -> upload_done(fields, uploads) ->
the engine sends the request; upload_drop when the worker is done (or the
request is gone) -> remove the temp files -> upload_release: the engine held
the answer until then (1 s at most), so a client never sees the files after
its response. Only multipart requests pay these round trips.

Static files (`http.middleware: [static]`, the one middleware the engine
serves): the engine checks each GET/HEAD cheaply itself (csrc/engine_static.c:
the normalised path names a regular file per stat(), its extension is not
forbidden / is allowed), so a miss costs one stat() and goes to PHP without
Python. A possible hit comes here as a "static" event with the request head (a
real `_core.Request`); StaticMiddleware - the Python front's, unchanged, the one
place that decides - resolves the file again (realpath, open, conditionals,
ranges) and answers: static_serve(token, status, head, body, fd, offset, count)
(the engine adds Connection and the blank line, and sends the file with
sendfile from its own dup of fd, so Python closes the file right away),
static_miss(token) (the request goes to PHP as if the engine had found
nothing) or static_abort(token) (the middleware raised: the connection is
closed, as asyncio does when data_received raises). These three are queued
without waiting for the engine thread (unlike every other command). The engine
keeps the connection busy meanwhile; a client gone meanwhile makes the answer a
no-op.

Detached connections (WebSockets, Server-Sent Events: the plugins that run
them on this event loop): the pool's `detach_paths` (bytes, given at
construction; the engine gets them when it starts) are exact request paths,
the target before any '?', not decoded. A GET without a body (no
Content-Length > 0, not chunked) for one of them never goes to PHP: once the
answers to the requests before it on its connection are written (pipelining
order holds), the engine takes the socket out of its epoll, forgets the
connection (no access line, no idle/read timers, not waited for by drain,
not closed by stop_accepting or abort_connections) and sends ("detach", fd,
request, leftover): fd a non-blocking, close-on-exec dup of the client socket
that is now the receiver's to close, request the head as a `_core.Request`,
leftover the bytes the client sent after the head (a WebSocket client may
send its first frame right behind the handshake). `on_detach(fd, request,
leftover)` gets it (and owns fd from that call on, even when it raises);
with no callback set the fd is closed, which drops the connection. A HEAD,
another method, or a GET with a body on such a path goes to PHP as usual;
other requests cost a method compare and a length test (nothing at all
without detach_paths).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from fastrr import _core
from fastrr.config import HttpConfig, PoolConfig
from fastrr.http.middleware import RequestInfo
from fastrr.http.middleware.static import StaticMiddleware
from fastrr.http.request_metrics import enabled as metrics_enabled
from fastrr.http.request_metrics import without
from fastrr.http.response import Response, reason_phrase
from fastrr.http.uploads import MultipartError, MultipartReceiver, UploadPolicy, boundary_from_content_type
from fastrr.log import Logger
from fastrr.pool.pool import MAX_STOP_RETRIES, WorkerPool
from fastrr.pool.states import State
from fastrr.pool.worker import CONTROL_STOP, Worker

# What the engine answers when the process of a busy worker is gone.
EXITED = "worker exited with code {code} during the request"


def static_only(middleware: list[str]) -> bool:
    """The middleware list the engine serves itself: exactly `static`."""
    return list(middleware) == ["static"]


def static_head(resp: Response, http_minor: int, head_request: bool) -> tuple[bytes, bytes]:
    """Response.encode_http1 for a local answer, without Connection and the
    blank line (the engine adds them, knowing keep-alive and shutdown at send
    time): (status line + header lines, in-memory body)."""
    status = resp.status
    out = [f"HTTP/1.{http_minor} {status} {reason_phrase(status)}\r\n"]
    out.extend(f"{name}: {value}\r\n" for name, value in resp.headers)
    body = b""
    if status >= 200 and status not in (204, 304):
        out.append(f"Content-Length: {resp.body_length}\r\n")
        if not head_request:
            body = resp.body
    return "".join(out).encode("latin-1", "replace"), body


def access_line_outputs(log: Logger) -> tuple[list[int], str]:
    """Where the engine writes the per-request line itself (csrc/engine_log.c
    formats it as LogSink.emit does): the fds of the log's streams, and its
    encoding. ([], ...) -> the line comes to Python as an "access" event."""
    sink = log.sink
    fds = []
    for stream in sink.streams:
        try:
            stream.flush()
            fds.append(stream.fileno())
        except (AttributeError, OSError, ValueError):
            return [], "console"  # not a real file (a test's StringIO): events
    if sink.mode == "raw":
        return fds, "raw"
    return fds, "json" if sink.encoding == "json" else "console"


class EngineRelay:
    """Stands in for the FdRelay of a worker the engine owns (see module doc)."""

    __slots__ = ("pool", "worker", "rfd", "wfd", "closed", "pending")

    def __init__(self, pool: EnginePool, worker: Worker, rfd: int, wfd: int):
        self.pool = pool
        self.worker = worker
        self.rfd = rfd
        self.wfd = wfd
        self.closed = False
        self.pending: list[Any] = []

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        if data != CONTROL_STOP:
            # Only Worker.stop() writes to an engine-owned worker; anything else
            # would be the Python front trying to run a request here.
            self.pool.log.error("write to an engine-owned worker refused", pid=self.worker.pid, size=len(data))
            return
        if self.pool.engine.stop_worker(self.worker.pid) == 1:
            # Busy: the frame goes after its request. Worker.stop() arms the kill
            # timer right after this returns; hold it until the frame is out.
            self.pool.deferred_stops.add(self.worker.pid)
            self.pool.loop.call_soon(self.pool.hold_kill_timer, self.worker)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.pool.engine_forget(self.worker)


class EnginePool(WorkerPool):
    def __init__(self, name: str, cfg: PoolConfig, command: list[str], env: dict[str, str],
                 relay: str, log: Logger, on_fatal: Callable[[str], None], *, http: HttpConfig,
                 http_log: Logger, detach_paths: Sequence[bytes] = ()):
        super().__init__(name, cfg, command, env, relay, log, on_fatal)
        # Request paths whose GETs are handed to Python (see the module doc); fixed at start.
        self.detach_paths: tuple[bytes, ...] = tuple(detach_paths)
        self.on_detach: Callable[[int, _core.Request, bytes], None] | None = None
        self.http_cfg = http
        self.http_log = http_log
        self.deferred_stops: set[int] = set()
        self.upload_policy = UploadPolicy.from_config(http.uploads)
        self.uploads: dict[int, MultipartReceiver] = {}
        self._http_drained: asyncio.Future[None] | None = None
        access = 0
        if http_log.enabled(20):
            access = 2 if http.access_logs else 1
        log_fds, log_encoding = access_line_outputs(http_log)
        self.static: StaticMiddleware | None = None
        static_kw: dict[str, Any] = {}
        if static_only(without(http.middleware)):
            self.static = StaticMiddleware(http.static, http_log)
            static_kw = {"static_dir": self.static.root, "static_forbid": sorted(self.static.forbid),
                         "static_allow": sorted(self.static.allow)}
        self.engine = _core.Engine(
            max_header_size=http.max_header_size, max_body=http.max_body_bytes,
            max_request_size=http.max_request_size, read_timeout=http.read_timeout,
            idle_timeout=http.idle_timeout, allocate_timeout=cfg.allocate_timeout,
            exec_ttl=cfg.exec_ttl, max_queue_size=cfg.max_queue_size,
            internal_error_code=http.internal_error_code, debug=cfg.debug, raw_body=http.raw_body,
            log_level=http_log.sink.level, access_log=access, max_stop_retries=MAX_STOP_RETRIES,
            max_worker_memory=cfg.max_worker_memory * 1024 * 1024, proto=http.codec == "proto",
            log_fds=log_fds, log_encoding=log_encoding, metrics=metrics_enabled(http.middleware), **static_kw,
            leak_window=cfg.leak_window if self._leak else 0, leak_min_climb=cfg.leak_min_climb * 1024 * 1024,
            leak_horizon=cfg.leak_horizon, detach_paths=self.detach_paths,
        )
        self.engine_raw_forms = False
        self.loop.add_reader(self.engine.event_fd, self.on_engine_events)

    # -- handing workers over ------------------------------------------------------

    def release(self, worker: Worker) -> None:
        if isinstance(worker.relay, EngineRelay):
            return  # never happens: the engine releases its own workers
        if worker.retire_reason is not None or self.stopping:
            worker.stop()
            return
        relay = worker.relay
        assert relay is not None
        relay.close()  # Python stops reading; the fds stay open (owns_fds=False)
        worker.relay = EngineRelay(self, worker, relay.rfd, relay.wfd)  # type: ignore[assignment]
        worker.state = State.READY
        worker.last_used = self.loop.time()
        if self.raw_forms != self.engine_raw_forms:
            self.engine_raw_forms = self.raw_forms
            self.engine.set_raw_forms(self.raw_forms)  # before the worker can take a request
        self.engine.add_worker(worker.pid, relay.rfd, relay.wfd, worker.max_jobs)

    def engine_forget(self, worker: Worker) -> None:
        """The worker's fds are about to close (its process exited, or Python gave up on it)."""
        reason = EXITED.format(code=worker.exit_code) if worker.exited else "worker relay closed"
        self.deferred_stops.discard(worker.pid)
        if not self.engine.closed:
            # How it ended (requests completed, busy or not) decides how the pool
            # replaces it (pool.on_worker_exit). While the engine still has it:
            # its figures now; remove_worker then reads what it wrote before it
            # went, and a "failed" event the engine queued (now, or before we
            # got here) carries the final figures: take it before returning.
            self.sync_from_engine()
            self.engine.remove_worker(worker.pid, reason)
            self.on_engine_events()

    def hold_kill_timer(self, worker: Worker) -> None:
        if worker.pid in self.deferred_stops and worker.kill_timer is not None:
            worker.kill_timer.cancel()
            worker.kill_timer = None

    # -- engine events ---------------------------------------------------------------

    def on_engine_events(self) -> None:
        for event in self.engine.poll_events():
            try:
                self._on_event(event)
            except Exception as exc:  # one bad event must not stop the others
                self.log.error("engine event failed", event=event[0], error=repr(exc))

    def _on_event(self, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind == "log":
            _, level, message, fields = event
            emit = {10: self.http_log.debug, 20: self.http_log.info, 30: self.http_log.warn}.get(
                level, self.http_log.error)
            emit(message, **fields)
            return
        if kind == "access":
            self._access(event[1])
            return
        if kind == "drained":
            if self._http_drained is not None and not self._http_drained.done():
                self._http_drained.set_result(None)
            return
        if kind.startswith("upload_"):
            self._on_upload(kind, event)
            return
        if kind == "static":
            self._on_static(event[1], event[2])
            return
        if kind == "detach":
            self._on_detach(event[1], event[2], event[3])
            return
        worker = self.workers.get(event[1])
        if worker is None:
            return
        if kind == "failed":
            # Worker.lost: logs "worker failed" unless stopping, kills; an I/O
            # failure (EOF) is the worker's own end, not our decision.
            worker.execs = max(worker.execs, event[5])
            worker.lost_request = worker.lost_request or event[4]
            worker.lost(event[2], eof=event[3])
        elif kind == "stop_requested":
            self.log.debug("worker asked to be stopped, retrying its request", pid=worker.pid)
            self._retire(worker, State.INVALID)
        elif kind == "exec_ttl":
            exec_ttl = self.cfg.exec_ttl
            self.log.warn("exec_ttl reached, killing worker", pid=worker.pid, exec_ttl=exec_ttl)
            label = State.EXEC_TTL_REACHED.label
            self.recycled[label] = self.recycled.get(label, 0) + 1
            worker.state = State.EXEC_TTL_REACHED
            worker.last_error = event[2]
            worker.kill()
        elif kind == "max_jobs":
            worker.execs = max(worker.execs, worker.max_jobs)
            self._retire(worker, State.MAX_JOBS_REACHED)
        elif kind == "max_memory":
            worker.exec_started = worker.exec_started or self.loop.time()  # it has served
            if worker.successor is not None:
                # already warm-replaced (pool.py): it serves on until its successor is ready
                self.engine.resume_worker(worker.pid)
            elif self._over_memory(worker):
                self._retire(worker, State.MAX_MEMORY_REACHED)
                if worker.successor is not None:  # the retirement is warm: serve on meanwhile
                    self.engine.resume_worker(worker.pid)
            else:
                self.engine.resume_worker(worker.pid)
        elif kind == "leak_trend":
            info = event[2]
            self.leak_found(worker, info["rate"], info["left"], info["rss"])
        elif kind == "stop_sent":
            self.deferred_stops.discard(worker.pid)
            if not worker.exited:
                if worker.kill_timer is not None:
                    worker.kill_timer.cancel()
                worker.kill_timer = self.loop.call_later(self.cfg.stop_timeout, worker.kill)

    def _on_upload(self, kind: str, event: tuple[Any, ...]) -> None:
        """connection.py's multipart path, driven by the engine (see module doc)."""
        token = event[1]
        if kind == "upload_start":
            try:
                boundary = boundary_from_content_type(event[2])
            except MultipartError as exc:
                self.engine.upload_fail(token, exc.status, exc.reason)
                return
            self.uploads[token] = MultipartReceiver(self.upload_policy, boundary)
            self.engine.upload_go(token)
            return
        if kind == "upload_drop":
            receiver = self.uploads.pop(token, None)
            if receiver is not None:
                receiver.cleanup()
            if not self.engine.closed:
                self.engine.upload_release(token)  # the answer was held for this
            return
        receiver = self.uploads.get(token)
        if receiver is None:
            return  # failed already; the engine dropped it
        if kind == "upload_data":
            data = event[2]
            try:
                receiver.feed(data)
            except MultipartError as exc:
                self._drop_upload(token)
                self.engine.upload_fail(token, exc.status, exc.reason)
                return
            self.engine.upload_ack(token, len(data))
        elif kind == "upload_end":
            try:
                receiver.finish()
                fields, uploads = receiver.fields_json(), receiver.uploads_json()
            except MultipartError as exc:
                self._drop_upload(token)
                self.engine.upload_fail(token, 400, exc.reason)  # as connection.py's _encode
                return
            self.engine.upload_done(token, fields, uploads)

    def _on_static(self, token: int, req: _core.Request) -> None:
        """connection.py _encode's pipeline.request + _send_response, for a
        request the engine found a file for (see module doc)."""
        engine = self.engine
        if engine.closed:
            return
        head_request = req.method == "HEAD"
        resp = None
        try:
            assert self.static is not None
            resp = self.static.request(RequestInfo(req, "", "http", f"HTTP/1.{req.http_minor}"))
            if resp is None:
                engine.static_miss(token)
                return
            head, body = static_head(resp, req.http_minor, head_request)
            file = resp.file
            if file is not None and resp.has_body(head_request) and file.count > 0:
                engine.static_serve(token, resp.status, head, body, file.file, file.offset, file.count)
            else:
                engine.static_serve(token, resp.status, head, body)
        except Exception as exc:
            self.http_log.error("static file failed", target=req.target, error=repr(exc))
            if not engine.closed:
                engine.static_abort(token)
        finally:
            if resp is not None:
                resp.close()  # the engine sends from its own dup

    def _on_detach(self, fd: int, req: _core.Request, leftover: bytes) -> None:
        """A connection handed over by the engine (see module doc): the callback owns fd."""
        callback = self.on_detach
        if callback is None:
            os.close(fd)  # nobody takes it: the client sees the connection close
            return
        callback(fd, req, leftover)

    def _drop_upload(self, token: int) -> None:
        receiver = self.uploads.pop(token, None)
        if receiver is not None:
            receiver.cleanup()

    def _access(self, f: dict[str, Any]) -> None:
        """HttpServer.log_access, from the fields the engine sends."""
        target = f["target"]
        fields = {
            "status": f["status"], "method": f["method"], "URI": target,
            "URL": target if "://" in target else f"http://{f['host'] or ''}{target}",
            "remote_address": f["peer"],
            "start": datetime.fromtimestamp(f["started_wall"], UTC).isoformat(timespec="microseconds"),
            "elapsed": f["elapsed"],
        }
        if "user_agent" not in f:
            self.http_log.info("http log", **fields)
            return
        fields.update({
            "query": target.partition("?")[2], "content_len": f["content_length"], "host": f["host"] or "",
            "user_agent": f["user_agent"], "referer": f["referer"],
            "time_local": time.strftime("%d/%b/%y:%H:%M:%S %z", time.localtime(f["started_wall"])),
        })
        self.http_log.info("http access log", **fields)

    # -- what Python reads about workers --------------------------------------------

    def sync_from_engine(self) -> dict[str, Any]:
        """Refresh execs, last use and busy/idle of the engine's workers."""
        if self.engine.closed:
            return {}
        stats = self.engine.stats()
        for pid, info in stats["workers"].items():
            worker = self.workers.get(pid)
            if worker is None:
                continue
            worker.execs = info["execs"]
            worker.exec_started = info["exec_started"] or worker.exec_started
            if info["execs"]:
                worker.last_used = info["last_used"]
            if worker.state in (State.READY, State.WORKING):
                worker.state = State.WORKING if info["state"] == "working" else State.READY
        return stats

    def _supervise(self, now: float) -> None:
        cfg = self.cfg
        if cfg.ttl or cfg.idle_ttl or self._memory_limit:
            self.sync_from_engine()
        super()._supervise(now)

    def set_active_limit(self, limit: int) -> None:
        """The engine schedules requests: the limit is its (see fastrr/pool/active_limit.py)."""
        self.active_limit = max(0, limit)
        self.engine.set_active_limit(self.active_limit)

    def workers_info(self) -> list[dict[str, object]]:
        self.sync_from_engine()
        return super().workers_info()

    def stats(self) -> dict[str, object]:
        out = super().stats()
        engine = self.sync_from_engine()
        if engine:
            out["ready"] = sum(1 for w in engine["workers"].values() if w["state"] == "ready")
            out["queued"] = engine["queued"]
        return out

    # -- shutdown --------------------------------------------------------------------

    def http_drained(self) -> asyncio.Future[None]:
        """A future set by the engine's drained event (after stop_accepting)."""
        self._http_drained = self.loop.create_future()
        return self._http_drained

    async def stop(self) -> None:
        try:
            await super().stop()  # stop frames go out through the engine
        finally:
            if not self.engine.closed:
                self.loop.remove_reader(self.engine.event_fd)
                for event in self.engine.close():
                    if event[0] == "detach":
                        os.close(event[1])  # handed over as the server stops: nobody serves it now
                        continue
                    if event[0] in ("upload_start", "upload_data", "upload_end", "static"):
                        continue  # the engine is gone: nothing can answer these
                    try:
                        self._on_event(event)
                    except Exception as exc:
                        self.log.error("engine event failed", event=event[0], error=repr(exc))
            for token in list(self.uploads):
                self._drop_upload(token)
