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
- Soft limits (ttl, idle_ttl, max_worker_memory, max_jobs, reset) never kill a
  busy worker: it gets `retire_reason` and is stopped when its request ends.
  Only exec_ttl (a hard limit) kills mid-request.
- Warm replacement (ttl, idle_ttl, max_worker_memory): the replacement is
  spawned first and the old worker keeps serving - idle ones at the bottom of
  `free`, so other workers go first - until the replacement has passed its
  PID handshake; only then is the old one stopped (at once when idle, after
  its request when busy). If the replacement dies before it is ready (or
  workers are failing to boot anyway) the old worker is retired without one,
  as before, and the pool respawns with backoff. One warm replacement runs at
  a time: workers due for ttl/idle_ttl meanwhile keep serving and are replaced
  in turn (`_deferred`), once the old worker of the current one has exited
  (one over memory is replaced the old way then). So `num_workers` stays the
  steady-state count and the pool briefly holds num_workers + 1 processes
  (a rolling reset, or a replacement the old way next to a warm one, adds to
  that, as before).
  max_jobs stays exact (a worker never serves more than max_jobs requests,
  `debug` means a fresh worker per request): it is retired right after its
  last request and its replacement boots meanwhile, as before. With the C
  engine (http/engine_pool.py) a worker over max_worker_memory after a request
  is held by the engine until Python decides; a warm retirement resumes it,
  so it serves on there too.
- A rolling reset starts each replacement *before* retiring an old worker, so
  capacity never drops below `target`; replacements ("surge" workers) that
  fail to boot abort the reset and leave the old workers serving.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import time
from collections import deque
from collections.abc import Callable

from fastrr import _core
from fastrr.config import PoolConfig
from fastrr.log import Logger
from fastrr.pool.leak import LEAK_LABEL, LeakTrend, leaking
from fastrr.pool.relay import FdRelay
from fastrr.pool.ring import new_ring, ring_env
from fastrr.pool.states import LIVE, State
from fastrr.pool.worker import PAGE_SIZE, Job, Worker, handshake_answer

MAX_BOOT_FAILURES = 5
MAX_STOP_RETRIES = 8
MAX_WORKERS = 2048
TICK = 0.1
JITTER = 0.1  # max_jobs and ttl are shortened by up to 10% per worker
EARLY_EXIT_SECONDS = 5.0  # a worker leaving by itself this soon after its handshake counts as a failed boot
# Soft limits whose worker keeps serving until its replacement is ready (see module doc).
WARM_REASONS = frozenset({State.TTL_REACHED, State.IDLE_TTL_REACHED, State.MAX_MEMORY_REACHED})


class BootFailure(Exception):
    """Workers cannot start; the message carries the last worker's stderr."""


class PoolError(Exception):
    """An operator request the pool cannot carry out (the text says why)."""


class WorkerPool:
    def __init__(self, name: str, cfg: PoolConfig, command: list[str], env: dict[str, str],
                 relay: str, log: Logger, on_fatal: Callable[[str], None]):
        self.name = name
        self.cfg = cfg
        self.command = cfg.command or command
        if cfg.debug_state:
            # The workers' state-leak check (php/src/Debug/StateWatch.php) is on
            # only when this is in their environment: off, PHP does nothing for it.
            env = {**env, "FASTRR_DEBUG_STATE": "1"}
            if cfg.debug_state_classes:
                env["FASTRR_DEBUG_STATE_CLASSES"] = ",".join(cfg.debug_state_classes)
        self.env = env
        self.relay_dsn = relay
        self.log = log
        self.worker_log = log.named("server")
        self.on_fatal = on_fatal
        self.loop = asyncio.get_running_loop()
        self.workers: dict[int, Worker] = {}
        self.free: list[Worker] = []
        self.waiters: deque[Job] = deque()
        # http.pool.active_limit (active_limit.py): at most this many workers hold a job; 0: no limit
        self.active_limit = 0
        self.target = cfg.num_workers
        self.boot_failures = 0
        # The latest ready worker's raw_forms (a pool's workers run one script): HttpServer.parses_form.
        self.raw_forms = False
        self.early_exits = 0  # workers in a row that left by themselves right after their handshake
        self.last_boot_error = ""
        # The last workers that ended without being asked to (for informer.Stats / `fastrr workers`).
        self.recent_exits: deque[dict[str, object]] = deque(maxlen=8)
        self.stopping = False
        self.handshake_frame = _core.encode_frame(_core.FLAG_CONTROL | _core.FLAG_JSON,
                                                  b'{"pid":%d}' % os.getpid())
        self._respawn_timer: asyncio.TimerHandle | None = None
        self._ticker: asyncio.TimerHandle | None = None
        self._listener: socket.socket | None = None
        self._ready_waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._last_watch = 0.0
        # Workers replaced, by reason (State labels, plus "reset").
        self.recycled: dict[str, int] = {}
        self.generation = 0
        self._reset_lock = asyncio.Lock()
        self._changed: list[asyncio.Future[None]] = []  # woken on every ready/exit
        self._memory_limit = cfg.max_worker_memory * 1024 * 1024
        self._warned_memory = False
        # Leak-trend recycling (leak.py): fed from the RSS sample release() takes
        # anyway for max_worker_memory, so it costs no extra read.
        self._leak = cfg.leak_recycle and self._memory_limit > 0
        # Warm replacement: the old worker whose replacement is under way (until it
        # has exited), and workers due for one meanwhile, with their reason and label.
        self._warming: Worker | None = None
        self._deferred: dict[Worker, tuple[State, str]] = {}

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        if self.relay_dsn not in ("pipes", "shm"):
            self._listen_relay()
        self._ready_waiter = self.loop.create_future()
        for _ in range(self.target):
            self._spawn()
        self._ticker = self.loop.call_later(TICK, self._tick)
        await self._ready_waiter

    def _spawn(self) -> Worker | None:
        ring = new_ring() if self.relay_dsn == "shm" else None  # shm relay: fastrr/pool/ring.py
        try:
            proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=ring_env(self.env, ring) if ring else self.env,
                                    process_group=0, pass_fds=(ring.memfd, ring.eventfd) if ring else ())
        except OSError as exc:
            if ring is not None:
                ring.close()
            self._boot_failed(f"cannot start worker {' '.join(self.command)!r}: {exc}")
            return None
        max_jobs = self.cfg.max_jobs
        if self.cfg.debug:
            max_jobs = 1
        elif max_jobs > 10:
            # Jitter so workers started together do not all restart together.
            max_jobs -= random.randint(0, int(max_jobs * JITTER))
        ttl = self.cfg.ttl * (1 - random.random() * JITTER)
        worker = Worker(self, proc, max_jobs, ttl, self.generation)
        self.workers[worker.pid] = worker
        if self.relay_dsn == "pipes":
            worker.attach_pipes()
            worker.send_handshake()
        elif ring is not None:
            worker.attach_ring(ring)
            worker.send_handshake()
        else:
            worker.watch_stdout()
        self.log.debug("worker spawned", pid=worker.pid)
        return worker

    def _live_count(self) -> int:
        return sum(1 for w in self.workers.values() if w.state in LIVE and w.retire_reason is None)

    def _maintain(self) -> None:
        if self.stopping or self._respawn_timer is not None:
            return  # (a respawn is already scheduled: it spawns whatever is missing then)
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
        """Stop every worker: the stop frame, SIGKILL for whatever is left after
        stop_timeout (or destroy_timeout when shorter). The HTTP front drained
        first (http.shutdown_timeout), so a worker still busy now runs a request
        whose client was cut: it may finish within that time, not beyond."""
        self.stopping = True
        self._notify()
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
                await asyncio.wait_for(asyncio.shield(self._drained),
                                       min(self.cfg.destroy_timeout, self.cfg.stop_timeout))
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

    def set_active_limit(self, limit: int) -> None:
        """At most `limit` workers run a job at once (0: no limit); a higher limit starts queued jobs now."""
        self.active_limit = max(0, limit)
        self._dispatch_waiters()

    def _may_start(self) -> bool:
        """Below the active limit? Counted only while one is set (a walk over the workers)."""
        if not self.active_limit:
            return True
        return sum(1 for w in self.workers.values() if w.job is not None) < self.active_limit

    def _dispatch_waiters(self) -> None:
        """Free workers take queued jobs while the limit allows. Without a limit jobs only queue
        when no worker is free; with one, a slot also frees when a busy worker exits."""
        waiters = self.waiters
        while self.free and waiters and self._may_start():
            job = waiters.popleft()
            if job.cancelled:
                job.on_no_worker("client went away while queued")
            else:
                self.free.pop().exec(job)

    def submit(self, job: Job) -> None:
        if self.free and self._may_start():
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
        if worker.exited:
            return  # its last answer was read after its process had gone (Worker._on_exit)
        if self.stopping or (worker.retire_reason is not None and worker.successor is None):
            worker.stop()
            return
        if worker.max_jobs and worker.execs >= worker.max_jobs:
            self._retire(worker, State.MAX_JOBS_REACHED)
            return
        # A worker waiting for its warm replacement serves on (it is retired already).
        replaced = worker.successor is not None or worker in self._deferred
        # RoadRunner looks at memory only on the watch tick; a leaky request
        # should not get another one. One read of /proc/<pid>/statm, and only
        # when a limit is configured; the leak trend reuses that sample.
        # (One that only waits its turn for a warm replacement is still held to the limit.)
        if worker.successor is None and self._memory_limit:
            rss = worker.rss()
            if self._over_memory(worker, rss):
                self._retire(worker, State.MAX_MEMORY_REACHED)
                if worker.state is State.STOPPING or worker.exited:
                    return
                replaced = True  # until its replacement is ready
            elif self._leak and rss and not replaced:
                trend = worker.trend
                if trend is None:
                    trend = worker.trend = LeakTrend(self.cfg.leak_window)
                found = leaking(trend, rss // PAGE_SIZE, PAGE_SIZE, self._memory_limit,
                                self.cfg.leak_min_climb * 1024 * 1024, self.cfg.leak_horizon)
                if found is not None:
                    self.leak_found(worker, found[0], found[1], rss)
                    replaced = worker.successor is not None or worker in self._deferred
        worker.state = State.READY
        worker.last_used = self.loop.time()
        waiters = self.waiters
        while waiters and self._may_start():
            job = waiters.popleft()
            if not job.cancelled:
                worker.exec(job)
                return
            job.on_no_worker("client went away while queued")
        if replaced:
            self.free.insert(0, worker)  # the others serve first
        else:
            self.free.append(worker)

    def _retire(self, worker: Worker, reason: State, label: str | None = None) -> None:
        """Replace `worker`. For WARM_REASONS the replacement is spawned first
        and `worker` serves on until it is ready (see the module doc); otherwise,
        or when that cannot be done, it is stopped now when idle, after its
        request when busy, while its replacement boots."""
        label = label or reason.label
        if reason in WARM_REASONS and not self.stopping:
            # Over memory while a warm replacement is under way (for it or another
            # worker) it goes the old way instead: the C engine holds such a worker,
            # serving nothing with it, until it is stopped or resumed. A leak trend
            # is not over the limit yet: it waits its turn like ttl.
            memory = reason is State.MAX_MEMORY_REACHED and label != LEAK_LABEL
            if not memory and (worker.successor is not None or worker in self._deferred):
                return  # already being replaced
            if self._warming is None:
                if not self.boot_failures and self._retire_warm(worker, reason, label):
                    return
                if label == LEAK_LABEL:
                    return  # only ever warm; max_worker_memory stays the hard stop
            elif not memory:
                self._deferred[worker] = (reason, label)
                self.log.debug("worker due for replacement, waiting for the one under way",
                               pid=worker.pid, reason=label, replacing=self._warming.pid)
                return
        self._deferred.pop(worker, None)
        worker.successor = None  # a replacement under way stays (it is counted live)
        if worker.retire_reason is None:  # not counted yet (a warm one that now must stop at once is)
            self.recycled[label] = self.recycled.get(label, 0) + 1
        self.log.debug("recycling worker", pid=worker.pid, reason=label, busy=worker.job is not None)
        if worker.job is not None:
            worker.retire_reason = reason
        else:
            if worker in self.free:
                self.free.remove(worker)
            worker.stop(reason)
        self._maintain()

    def _retire_warm(self, worker: Worker, reason: State, label: str) -> bool:
        """Spawn `worker`'s replacement; `worker` is stopped once it is ready."""
        successor = self._spawn()
        if successor is None:
            return False  # cannot even start a process (logged): retire it the old way
        self.recycled[label] = self.recycled.get(label, 0) + 1
        if label == LEAK_LABEL and worker.leak_report is not None:
            rate, left, rss = worker.leak_report
            self.log.warn("worker memory keeps climbing, recycling it before max_worker_memory", pid=worker.pid,
                          kb_per_request=round(rate / 1024, 1), projected_requests=left,
                          rss_mb=round(rss / 1048576, 1), max_worker_memory=self.cfg.max_worker_memory,
                          window=self.cfg.leak_window, replacement=successor.pid)
        else:
            self.log.debug("recycling worker once its replacement is ready", pid=worker.pid, reason=label,
                           busy=worker.job is not None, replacement=successor.pid)
        worker.retire_reason = reason  # no longer counted live: the successor is
        worker.successor = successor
        successor.replaces = worker
        self._warming = worker
        if worker in self.free:
            self.free.remove(worker)
            self.free.insert(0, worker)
        return True

    def leak_found(self, worker: Worker, rate: float, left: int, rss: int) -> None:
        """`worker`'s RSS climbs steadily (leak.py): `rate` bytes per request, the limit
        `left` requests away. It is replaced warm, never two at once in a pool: while
        another warm replacement runs it waits its turn (_deferred); when workers fail
        to boot it is left alone (max_worker_memory still stops it)."""
        if self.stopping or self.boot_failures or worker.exited or worker.retire_reason is not None \
                or worker.successor is not None or worker in self._deferred:
            return
        worker.leak_report = (rate, left, rss)
        self._retire(worker, State.MAX_MEMORY_REACHED, LEAK_LABEL)

    def _replacement_ready(self, successor: Worker) -> None:
        """A warm replacement passed its handshake: the worker it replaces goes."""
        old, successor.replaces = successor.replaces, None
        if old is None or old.successor is not successor:
            return
        old.successor = None
        if old.exited or old.state is State.STOPPING:
            return
        self.log.debug("replacement ready, stopping the old worker", pid=old.pid, replacement=successor.pid,
                       busy=old.job is not None)
        if old.job is None:
            if old in self.free:
                self.free.remove(old)
            old.stop(old.retire_reason)
        # busy: release() stops it after its request (retire_reason, no successor)

    def _replacement_failed(self, successor: Worker) -> None:
        """A warm replacement exited before it was ready: retire the old worker
        without one (what happened before warm replacement); _maintain respawns."""
        old, successor.replaces = successor.replaces, None
        if old is None or old.successor is not successor:
            return
        old.successor = None
        if self.stopping or old.exited or old.state is State.STOPPING:
            return
        self.log.warn("replacement worker exited before it was ready, retiring the old worker without one",
                      pid=old.pid, replacement=successor.pid, reason=(old.retire_reason or State.STOPPED).label)
        if old.job is None:
            if old in self.free:
                self.free.remove(old)
            old.stop(old.retire_reason)

    def _start_deferred(self) -> None:
        """The previous warm replacement is over: start the next one that is due."""
        while self._deferred and self._warming is None and not self.stopping:
            worker = next(iter(self._deferred))
            reason, label = self._deferred.pop(worker)
            if worker.exited or worker.retire_reason is not None or worker.state not in (State.READY,
                                                                                         State.WORKING):
                continue
            self._retire(worker, reason, label)

    def resend(self, worker: Worker, job: Job) -> bool:
        """A request its worker never read (it exited first): to another worker, within the
        retries a $worker->stop() re-run has. False: answer it as lost."""
        if job.cancelled or self.stopping or job.retries >= MAX_STOP_RETRIES:
            return False
        job.retries += 1
        self.log.debug("request sent to another worker: its worker exited before reading it", pid=worker.pid)
        self.submit(job)
        return True

    def on_stop_requested(self, worker: Worker, job: Job) -> None:
        self.log.debug("worker asked to be stopped, retrying its request", pid=worker.pid)
        self._retire(worker, State.INVALID)
        job.retries += 1
        if job.cancelled:
            # The client went away meanwhile: nobody would read the answer, so
            # the request is not run again (a queued one would be skipped too).
            job.on_no_worker("client went away before the retry")
        elif job.retries > MAX_STOP_RETRIES:
            job.on_worker_lost(worker, 502, "workers kept asking to stop; giving up on this request")
        else:
            self.submit(job)

    # -- worker events -------------------------------------------------------------

    def on_worker_ready(self, worker: Worker) -> None:
        worker.ready_at = self.loop.time()
        self.raw_forms = worker.raw_forms
        if not self.early_exits:  # after early exits, only a worker that stays proves the code good (_tick)
            self.boot_failures = 0
        self.log.debug("worker ready", pid=worker.pid,
                       boot_ms=round((self.loop.time() - worker.spawned_at) * 1000, 1))
        if self._ready_waiter is not None and not self._ready_waiter.done():
            ready = sum(1 for w in self.workers.values() if w.state in (State.READY, State.WORKING))
            if ready >= self.target:
                self._ready_waiter.set_result(None)
        self.release(worker)
        if worker.replaces is not None:
            self._replacement_ready(worker)
        self._notify()

    def withdraw(self, worker: Worker) -> None:
        """Off the free list until its exit is handled (its relay broke while it was idle)."""
        if worker in self.free:
            self.free.remove(worker)

    def on_worker_exit(self, worker: Worker) -> None:
        self.workers.pop(worker.pid, None)
        if worker in self.free:
            self.free.remove(worker)
        if self.active_limit:
            self.loop.call_soon(self._dispatch_waiters)  # its slot is free (after its job's answer)
        self._deferred.pop(worker, None)
        if worker.replaces is not None:
            self._replacement_failed(worker)
        worker.successor = None
        booting = worker.state is State.INACTIVE and worker.retire_reason is None
        code = worker.exit_code
        unexpected = not self.stopping and worker.state is not State.STOPPING and not worker.killed
        if unexpected or (booting and not self.stopping):
            self.recent_exits.append({"pid": worker.pid, "code": code, "at": int(time.time() * 1e9),
                                      "error": worker.last_error, "stderr": list(worker.stderr_tail)[-3:]})
        if booting and worker.surge and not self.stopping:
            # A reset's replacement: the reset reports it; the old workers keep serving.
            self.last_boot_error = (f"worker {worker.pid} {worker.describe_exit()} before it was ready"
                                    f" ({worker.last_error or 'no handshake'}); stderr: {worker.describe_stderr()}")
            self.log.error("new worker failed to boot during reset", pid=worker.pid, error=self.last_boot_error)
        elif booting and not self.stopping:
            message = (f"worker {worker.pid} {worker.describe_exit()} before it was ready"
                       f" ({worker.last_error or 'no handshake'}); stderr: {worker.describe_stderr()}")
            # Killed from outside (an operator, the OOM killer) while booting: back
            # off as for a failure, but do not count it towards giving up.
            outside = code is not None and code < 0 and not worker.killed
            self._boot_failed(message, fatal=not outside)
        elif unexpected and code is not None and code >= 0 and not worker.lost_request \
                and worker.state is not State.WORKING and not worker.execs \
                and self.loop.time() - worker.ready_at < EARLY_EXIT_SECONDS:
            # It passed the handshake, then left by itself, idle, without serving
            # anything: a script that does not loop on waitRequest(), or one that
            # dies right after booting. Respawning it at once would spin forever:
            # it backs off and gives up like a failed boot.
            self.early_exits += 1
            self._boot_failed(f"worker {worker.pid} exited with code {code} right after it was ready, before "
                              f"serving any request (does the script loop on waitRequest()?); "
                              f"stderr: {worker.describe_stderr()}")
        elif unexpected:
            self.log.warn("worker exited unexpectedly, respawning", pid=worker.pid,
                          code=code, stderr=list(worker.stderr_tail)[-5:])
        else:
            self.log.debug("worker stopped", pid=worker.pid, code=code)
        self._notify()
        if self.stopping:
            if not self.workers and self._drained is not None and not self._drained.done():
                self._drained.set_result(None)
            return
        self._maintain()
        if self._warming is worker:
            self._warming = None
            self._start_deferred()

    def _boot_failed(self, message: str, fatal: bool = True) -> None:
        self.boot_failures += 1
        self.last_boot_error = message
        self.log.error("worker failed to boot", attempt=self.boot_failures, error=message)
        if fatal and self.boot_failures >= MAX_BOOT_FAILURES:
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
                    label = State.EXEC_TTL_REACHED.label
                    self.recycled[label] = self.recycled.get(label, 0) + 1
                    worker.fail_job(504, f"exec_ttl ({exec_ttl:g}s) exceeded", State.EXEC_TTL_REACHED)
            elif worker.state is State.INACTIVE and now - worker.spawned_at > self.cfg.boot_timeout:
                worker.last_error = f"no PID handshake within boot_timeout ({self.cfg.boot_timeout:g}s)"
                worker.kill()
        if self.early_exits and any(w.state in (State.READY, State.WORKING) and w.retire_reason is None
                                    and now - w.ready_at >= EARLY_EXIT_SECONDS for w in self.workers.values()):
            self.early_exits = self.boot_failures = 0
        if now - self._last_watch >= self.cfg.watch_tick:
            self._last_watch = now
            self._supervise(now)

    def _supervise(self, now: float) -> None:
        """RoadRunner's watcher (pool.supervisor): ttl counts from spawn,
        idle_ttl from the last request (workers that never served are left
        alone), max_worker_memory is the worker's RSS in MB."""
        cfg = self.cfg
        if not (cfg.ttl or cfg.idle_ttl or self._memory_limit):
            return
        for worker in list(self.workers.values()):
            if worker.state not in (State.READY, State.WORKING) or worker.retire_reason is not None:
                continue
            reason = None
            if worker.ttl and now - worker.spawned_at > worker.ttl:
                reason = State.TTL_REACHED
            elif cfg.idle_ttl and worker.job is None and worker.execs and now - worker.last_used > cfg.idle_ttl:
                reason = State.IDLE_TTL_REACHED
            elif self._memory_limit and self._over_memory(worker):
                reason = State.MAX_MEMORY_REACHED
            if reason is not None:
                self._retire(worker, reason)

    def _over_memory(self, worker: Worker, rss: int = -1) -> bool:
        """RSS (read now unless given) over max_worker_memory, for a worker that has started a request.

        A fresh worker already over the limit is left alone (with one warning
        per pool): replacing it would only start another one just as big, in a
        loop that never serves anything.
        """
        if rss < 0:
            rss = worker.rss()
        if rss <= self._memory_limit:
            return False
        # (execs and state cover workers whose requests the C engine runs.)
        if worker.exec_started or worker.execs or worker.state is State.WORKING:
            return True
        if not self._warned_memory:
            self._warned_memory = True
            self.log.warn("a fresh worker is already over max_worker_memory; workers will be replaced after "
                          "every request", pid=worker.pid, rss_mb=round(rss / 1048576, 1),
                          max_worker_memory=self.cfg.max_worker_memory)
        return False

    # -- operator actions (RPC informer/resetter, signals) ---------------------------

    def workers_info(self) -> list[dict[str, object]]:
        """`informer.Workers` rows for every process of this pool, booting and
        stopping ones included, sorted by PID."""
        return [self.workers[pid].info() for pid in sorted(self.workers)]

    def stats(self) -> dict[str, object]:
        return {"target": self.target, "workers": len(self.workers), "ready": len(self.free),
                "queued": len(self.waiters), "recycled": dict(self.recycled), "generation": self.generation,
                "exits": list(self.recent_exits)}

    def add_worker(self) -> None:
        """One more worker (`informer.AddWorker`, SIGTTIN)."""
        if self.stopping:
            raise PoolError(f"pool {self.name} is stopping")
        if self.target >= MAX_WORKERS:
            raise PoolError(f"pool {self.name} already has the maximum of {MAX_WORKERS} workers")
        self.target += 1
        self.log.info("adding a worker", pool=self.name, num_workers=self.target)
        self._maintain()

    def remove_worker(self) -> None:
        """One worker fewer (`informer.RemoveWorker`, SIGTTOU): an idle one is
        stopped now, otherwise a busy one after its request. The last worker stays."""
        if self.stopping:
            raise PoolError(f"pool {self.name} is stopping")
        candidates = [w for w in self.workers.values() if w.state in LIVE and w.retire_reason is None]
        if self.target <= 1 or not candidates:
            raise PoolError(f"pool {self.name} cannot go below one worker")
        self.target -= 1
        self.log.info("removing a worker", pool=self.name, num_workers=self.target)
        # Prefer the least recently used idle worker, then a booting one, then the busy one started last.
        idle = [w for w in self.free if w.retire_reason is None]  # not one waiting for its replacement
        if idle:
            victim = idle[0]
        else:
            booting = [w for w in candidates if w.state is State.INACTIVE]
            victim = booting[0] if booting else max(candidates, key=lambda w: w.exec_started)
        if victim.job is not None:
            victim.retire_reason = State.STOPPED
        else:
            if victim in self.free:
                self.free.remove(victim)
            victim.stop(State.STOPPED)

    async def reset(self) -> None:
        """Rolling reset (`resetter.Reset`, `fastrr reset`, SIGHUP): every
        worker that exists when the call starts is replaced by a fresh one.

        In batches of about a quarter of the pool: start the replacements, wait
        until they are ready, then retire as many old workers (idle ones stop at
        once, busy ones after their request). Returns once every old worker has
        exited; bounded by reset_timeout, after which old workers still busy are
        killed. Raises PoolError when replacements cannot boot (the old workers
        then keep serving) or the pool stops meanwhile. Calls are serialised.
        """
        async with self._reset_lock:
            if self.stopping:
                raise PoolError(f"pool {self.name} is stopping")
            self.generation += 1
            generation = self.generation
            deadline = self.loop.time() + self.cfg.reset_timeout
            self.log.info("resetting workers", pool=self.name, generation=generation)
            try:
                await self._replace_older(generation, deadline)
            finally:
                self._maintain()  # whatever happened, get back to `target`
            self.log.info("workers reset", pool=self.name, generation=generation)

    def _older(self, generation: int) -> list[Worker]:
        return [w for w in self.workers.values()
                if w.generation < generation and w.state in LIVE and w.retire_reason is None]

    async def _replace_older(self, generation: int, deadline: float) -> None:
        batch = max(1, (self.target + 3) // 4)
        while old := self._older(generation):
            fresh = [w for w in (self._spawn() for _ in range(min(batch, len(old)))) if w is not None]
            if not fresh:
                raise PoolError(f"reset of {self.name} aborted, the old workers keep serving: "
                                f"{self.last_boot_error}")
            for w in fresh:
                w.surge = True
            booted = _all_booted(fresh)
            await self._wait_for(booted, deadline)
            for w in fresh:
                w.surge = False
            if self.stopping:
                raise PoolError(f"pool {self.name} stopped during the reset")
            ready = [w for w in fresh if not w.exited and w.state in (State.READY, State.WORKING)]
            # Retire the idle old workers first: they go at once.
            old = sorted(self._older(generation), key=lambda w: w.job is not None)
            for worker in old[:len(ready)]:
                self._retire(worker, State.INVALID, "reset")
            if len(ready) < len(fresh):
                for w in fresh:
                    if w.state is State.INACTIVE and not w.exited:
                        w.stop()  # still booting at the deadline
                raise PoolError(f"reset of {self.name} aborted, the old workers keep serving: new workers did not "
                                f"get ready ({self.last_boot_error or 'reset_timeout reached'})")
        # Drain: wait for the retired old workers to finish their requests and exit.
        draining = [w for w in self.workers.values() if w.generation < generation]
        await self._wait_for(lambda: all(w.exited for w in draining), deadline)
        stuck = [w for w in draining if not w.exited]
        if stuck:
            self.log.warn("reset_timeout reached, killing old workers still busy",
                          pids=[w.pid for w in stuck], reset_timeout=self.cfg.reset_timeout)
            for w in stuck:
                w.kill()

    async def _wait_for(self, done: Callable[[], bool], deadline: float) -> None:
        """Wait until `done()` (re-checked after every worker ready/exit) or the deadline."""
        while not done() and not self.stopping:
            left = deadline - self.loop.time()
            if left <= 0:
                return
            fut = self.loop.create_future()
            self._changed.append(fut)
            try:
                await asyncio.wait_for(fut, left)
            except TimeoutError:
                return

    def _notify(self) -> None:
        changed, self._changed = self._changed, []
        for fut in changed:
            if not fut.done():
                fut.set_result(None)

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
        worker.attach_socket(conn.relay, conn.reader, conn.sock, conn.raw_forms)
        return True


def _all_booted(workers: list[Worker]) -> Callable[[], bool]:
    return lambda: all(w.exited or w.state is not State.INACTIVE for w in workers)


class PendingSocketWorker:
    """A connection on the relay socket that has not told us its PID yet."""

    def __init__(self, pool: WorkerPool, conn: socket.socket):
        self.pool = pool
        self.sock = conn
        if conn.family != socket.AF_UNIX:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = _core.FrameReader(1 << 31)
        self.raw_forms = False  # from the handshake answer (worker.handshake_answer)
        self.relay = FdRelay(pool.loop, conn.fileno(), conn.fileno(), self._on_data, self._on_eof, owns_fds=False)
        self.relay.write(pool.handshake_frame)

    def _on_data(self, data: bytes) -> None:
        try:
            frames = self.reader.feed(data)
            if not frames:
                return
            flags, _, _, payload = frames[0]
        except _core.FrameError as exc:
            self.pool.log.warn("bad handshake on the relay socket", error=str(exc))
            self._close()
            return
        pid, self.raw_forms = handshake_answer(flags, payload)
        if pid is None or not self.pool.claim_socket(pid, self):
            self.pool.log.warn("worker connected with unknown pid, closing", pid=pid)
            self._close()

    def _on_eof(self, reason: str) -> None:
        self._close()

    def _close(self) -> None:
        self.relay.close()
        self.sock.close()


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

