"""The worker pool: free list, wait queue, respawn with backoff, boot-loop detection.

Invariants:
- `free` holds only READY workers with no job; it is a stack, so the most
  recently used (cache-warm) worker serves next.
- `waiters` is FIFO; cancelled jobs (client gone) are skipped, never run.
- The number of live workers (booting, ready, working) is brought back to
  `target` after every exit, unless the pool is stopping. Respawns after boot
  failures back off exponentially; MAX_BOOT_FAILURES in a row are fatal.
- Timers: one ticker per pool handles allocate_timeout, exec_ttl, boot_timeout
  and the supervisor; no per-request timer exists.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
from collections import deque
from collections.abc import Callable

from fastrr import _core
from fastrr.config import PoolConfig
from fastrr.log import Logger
from fastrr.pool.relay import FdRelay
from fastrr.pool.states import LIVE, State
from fastrr.pool.worker import Job, Worker

MAX_BOOT_FAILURES = 5
MAX_STOP_RETRIES = 8
TICK = 0.1


class BootFailure(Exception):
    """Workers cannot start; the message carries the last worker's stderr."""


class WorkerPool:
    def __init__(self, name: str, cfg: PoolConfig, command: list[str], env: dict[str, str],
                 relay: str, log: Logger, on_fatal: Callable[[str], None]):
        self.name = name
        self.cfg = cfg
        self.command = cfg.command or command
        self.env = env
        self.relay_dsn = relay
        self.log = log
        self.worker_log = log.named("server")
        self.on_fatal = on_fatal
        self.loop = asyncio.get_running_loop()
        self.workers: dict[int, Worker] = {}
        self.free: list[Worker] = []
        self.waiters: deque[Job] = deque()
        self.target = cfg.num_workers
        self.boot_failures = 0
        self.last_boot_error = ""
        self.stopping = False
        self.handshake_frame = _core.encode_frame(_core.FLAG_CONTROL | _core.FLAG_JSON,
                                                  b'{"pid":%d}' % os.getpid())
        self._respawn_timer: asyncio.TimerHandle | None = None
        self._ticker: asyncio.TimerHandle | None = None
        self._listener: socket.socket | None = None
        self._ready_waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._last_watch = 0.0
        self.recycled: dict[str, int] = {}

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        if self.relay_dsn != "pipes":
            self._listen_relay()
        self._ready_waiter = self.loop.create_future()
        for _ in range(self.target):
            self._spawn()
        self._ticker = self.loop.call_later(TICK, self._tick)
        await self._ready_waiter

    def _spawn(self) -> None:
        try:
            proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=self.env, process_group=0)
        except OSError as exc:
            self._boot_failed(f"cannot start worker {' '.join(self.command)!r}: {exc}")
            return
        max_jobs = self.cfg.max_jobs
        if self.cfg.debug:
            max_jobs = 1
        elif max_jobs > 10:
            # Jitter so workers started together do not all restart together.
            max_jobs -= random.randint(0, max_jobs // 10)
        worker = Worker(self, proc, max_jobs)
        self.workers[worker.pid] = worker
        if self.relay_dsn == "pipes":
            worker.attach_pipes()
            worker.send_handshake()
        self.log.debug("worker spawned", pid=worker.pid)

    def _live_count(self) -> int:
        return sum(1 for w in self.workers.values() if w.state in LIVE and w.retire_reason is None)

    def _maintain(self) -> None:
        self._respawn_timer = None
        if self.stopping:
            return
        missing = self.target - self._live_count()
        if missing <= 0:
            return
        if self.boot_failures:
            delay = min(0.05 * 2 ** self.boot_failures, 5.0)
            self._respawn_timer = self.loop.call_later(delay, self._spawn_missing)
        else:
            self._spawn_missing()

    def _spawn_missing(self) -> None:
        self._respawn_timer = None
        if self.stopping:
            return
        for _ in range(self.target - self._live_count()):
            self._spawn()

    async def stop(self) -> None:
        """Stop every worker gracefully; busy ones finish their request first."""
        self.stopping = True
        if self._respawn_timer is not None:
            self._respawn_timer.cancel()
        while self.waiters:
            self.waiters.popleft().on_no_worker("server is shutting down")
        self.free.clear()
        for worker in list(self.workers.values()):
            if worker.job is None:
                worker.stop(State.STOPPED)
        if self.workers:
            self._drained = self.loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._drained), self.cfg.destroy_timeout)
            except TimeoutError:
                self.log.warn("workers did not stop in time, killing them",
                              pids=sorted(self.workers))
                for worker in list(self.workers.values()):
                    worker.kill()
                await asyncio.wait_for(asyncio.shield(self._drained), 5.0)
        if self._ticker is not None:
            self._ticker.cancel()
        if self._listener is not None:
            self.loop.remove_reader(self._listener.fileno())
            self._listener.close()
            if self.relay_dsn.startswith("unix://"):
                try:
                    os.unlink(self.relay_dsn[7:])
                except OSError:
                    pass

    # -- scheduling --------------------------------------------------------------

    def submit(self, job: Job) -> None:
        if self.free:
            self.free.pop().exec(job)
            return
        if self.stopping:
            job.on_no_worker("server is shutting down")
            return
        if self.cfg.max_queue_size and len(self.waiters) >= self.cfg.max_queue_size:
            job.on_no_worker(f"request queue is full (max_queue_size {self.cfg.max_queue_size})")
            return
        job.queued_at = self.loop.time()
        self.waiters.append(job)

    def release(self, worker: Worker) -> None:
        if worker.retire_reason is not None or self.stopping:
            worker.stop()
            return
        if worker.max_jobs and worker.execs >= worker.max_jobs:
            self._retire(worker, State.MAX_JOBS_REACHED)
            return
        worker.state = State.READY
        worker.last_used = self.loop.time()
        waiters = self.waiters
        while waiters:
            job = waiters.popleft()
            if not job.cancelled:
                worker.exec(job)
                return
            job.on_no_worker("client went away while queued")
        self.free.append(worker)

    def _retire(self, worker: Worker, reason: State) -> None:
        self.recycled[reason.label] = self.recycled.get(reason.label, 0) + 1
        if worker in self.free:
            self.free.remove(worker)
        worker.stop(reason)
        self._maintain()

    def on_stop_requested(self, worker: Worker, job: Job) -> None:
        self.log.debug("worker asked to be stopped, retrying its request", pid=worker.pid)
        self._retire(worker, State.INVALID)
        job.retries += 1
        if job.retries > MAX_STOP_RETRIES:
            job.on_worker_lost(worker, 502, "workers kept asking to stop; giving up on this request")
        else:
            self.submit(job)

    # -- worker events -------------------------------------------------------------

    def on_worker_ready(self, worker: Worker) -> None:
        self.boot_failures = 0
        self.log.debug("worker ready", pid=worker.pid,
                       boot_ms=round((self.loop.time() - worker.spawned_at) * 1000, 1))
        if self._ready_waiter is not None and not self._ready_waiter.done():
            ready = sum(1 for w in self.workers.values() if w.state in (State.READY, State.WORKING))
            if ready >= self.target:
                self._ready_waiter.set_result(None)
        self.release(worker)

    def on_worker_exit(self, worker: Worker) -> None:
        self.workers.pop(worker.pid, None)
        if worker in self.free:
            self.free.remove(worker)
        booting = worker.state is State.INACTIVE and worker.retire_reason is None
        if booting and not self.stopping:
            self._boot_failed(f"worker {worker.pid} exited with code {worker.exit_code} before it was ready"
                              f" ({worker.last_error or 'no handshake'}); stderr: {worker.describe_stderr()}")
        elif worker.state is not State.STOPPING and not self.stopping:
            self.log.warn("worker exited unexpectedly, respawning", pid=worker.pid,
                          code=worker.exit_code, stderr=list(worker.stderr_tail)[-5:])
        else:
            self.log.debug("worker stopped", pid=worker.pid, code=worker.exit_code)
        if self.stopping:
            if not self.workers and self._drained is not None and not self._drained.done():
                self._drained.set_result(None)
            return
        self._maintain()

    def _boot_failed(self, message: str) -> None:
        self.boot_failures += 1
        self.last_boot_error = message
        self.log.error("worker failed to boot", attempt=self.boot_failures, error=message)
        if self.boot_failures >= MAX_BOOT_FAILURES:
            text = f"workers of {self.name} failed to boot {self.boot_failures} times in a row; last error: {message}"
            if self._ready_waiter is not None and not self._ready_waiter.done():
                self._ready_waiter.set_exception(BootFailure(text))
            else:
                self.on_fatal(text)
            self.stopping = True
            return
        self._maintain()

    # -- timers ------------------------------------------------------------------

    def _tick(self) -> None:
        now = self.loop.time()
        self._ticker = self.loop.call_later(TICK, self._tick)
        waiters = self.waiters
        deadline = now - self.cfg.allocate_timeout
        while waiters and (waiters[0].cancelled or waiters[0].queued_at <= deadline):
            job = waiters.popleft()
            if job.cancelled:
                job.on_no_worker("client went away while queued")
            else:
                busy = [w.pid for w in self.workers.values() if w.job is not None]
                job.on_no_worker(f"no free worker within allocate_timeout "
                                 f"({self.cfg.allocate_timeout:g}s); busy workers: {busy}")
        exec_ttl = self.cfg.exec_ttl
        for worker in list(self.workers.values()):
            if worker.job is not None:
                if exec_ttl and now - worker.exec_started > exec_ttl:
                    self.log.warn("exec_ttl reached, killing worker", pid=worker.pid, exec_ttl=exec_ttl)
                    self.recycled["execTTLReached"] = self.recycled.get("execTTLReached", 0) + 1
                    worker.fail_job(504, f"exec_ttl ({exec_ttl:g}s) exceeded", State.EXEC_TTL_REACHED)
            elif worker.state is State.INACTIVE and now - worker.spawned_at > self.cfg.boot_timeout:
                worker.last_error = f"no PID handshake within boot_timeout ({self.cfg.boot_timeout:g}s)"
                worker.kill()
        if now - self._last_watch >= self.cfg.watch_tick:
            self._last_watch = now
            self._supervise(now)

    def _supervise(self, now: float) -> None:
        cfg = self.cfg
        if not (cfg.ttl or cfg.idle_ttl or cfg.max_worker_memory):
            return
        for worker in list(self.workers.values()):
            if worker.state not in (State.READY, State.WORKING) or worker.retire_reason is not None:
                continue
            reason = None
            if cfg.ttl and now - worker.spawned_at > cfg.ttl:
                reason = State.TTL_REACHED
            elif cfg.idle_ttl and worker.job is None and worker.execs and now - worker.last_used > cfg.idle_ttl:
                reason = State.IDLE_TTL_REACHED
            elif cfg.max_worker_memory and rss_bytes(worker.pid) > cfg.max_worker_memory * 1024 * 1024:
                reason = State.MAX_MEMORY_REACHED
            if reason is None:
                continue
            if worker.job is None:
                self._retire(worker, reason)
            else:
                # Never kill a busy worker for a soft limit: retire it after its request.
                worker.retire_reason = reason
                self.recycled[reason.label] = self.recycled.get(reason.label, 0) + 1
                self._maintain()

    # -- socket relays -------------------------------------------------------------

    def _listen_relay(self) -> None:
        dsn = self.relay_dsn
        if dsn.startswith("unix://"):
            path = dsn[7:]
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(path)
        else:
            host, _, port = dsn[6:].rpartition(":")
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host.strip("[]"), int(port)))
        sock.listen(512)
        sock.setblocking(False)
        self._listener = sock
        self.loop.add_reader(sock.fileno(), self._accept_relay)

    def _accept_relay(self) -> None:
        assert self._listener is not None
        try:
            conn, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        PendingSocketWorker(self, conn)

    def claim_socket(self, pid: int, conn: PendingSocketWorker) -> bool:
        worker = self.workers.get(pid)
        if worker is None or worker.relay is not None or worker.state is not State.INACTIVE:
            return False
        worker.attach_socket(conn.relay, conn.reader, conn.sock)
        return True


class PendingSocketWorker:
    """A connection on the relay socket that has not told us its PID yet."""

    def __init__(self, pool: WorkerPool, conn: socket.socket):
        self.pool = pool
        self.sock = conn
        if conn.family != socket.AF_UNIX:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = _core.FrameReader(1 << 31)
        self.relay = FdRelay(pool.loop, conn.fileno(), conn.fileno(), self._on_data, self._on_eof, owns_fds=False)
        self.relay.write(pool.handshake_frame)

    def _on_data(self, data: bytes) -> None:
        try:
            frames = self.reader.feed(data)
            if not frames:
                return
            flags, _, _, payload = frames[0]
            pid = json.loads(payload).get("pid") if flags & _core.FLAG_CONTROL else None
        except (_core.FrameError, ValueError, AttributeError) as exc:
            self.pool.log.warn("bad handshake on the relay socket", error=str(exc))
            self._close()
            return
        if not isinstance(pid, int) or not self.pool.claim_socket(pid, self):
            self.pool.log.warn("worker connected with unknown pid, closing", pid=pid)
            self._close()

    def _on_eof(self, reason: str) -> None:
        self._close()

    def _close(self) -> None:
        self.relay.close()
        self.sock.close()


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def worker_env(base: dict[str, str], relay: str, rpc: str | None, extra: dict[str, str],
               mode: str, version: str) -> dict[str, str]:
    env = dict(base)
    env["RR_RELAY"] = relay
    if rpc:
        env["RR_RPC"] = rpc
    env.update(extra)
    env["RR_VERSION"] = version
    env["RR_MODE"] = mode
    return env

