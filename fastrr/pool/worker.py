"""One PHP worker process: spawn, PID handshake, request exchange, stop, exit.

Rules of this file:
- A worker has at most one job (an in-flight request). `job` is set by `exec`
  and cleared before the pool hears about the worker again.
- Every way a worker can end (EOF, protocol error, exec_ttl, kill, exit) goes
  through `lost` / `_on_exit`, so a job is always answered exactly once and the
  pool always hears about the exit exactly once.
- The process is reaped through a pidfd on the loop; stderr is relayed line by
  line with the worker's PID.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from collections import deque
from typing import TYPE_CHECKING, Protocol

from fastrr import _core
from fastrr.pool.leak import LeakTrend
from fastrr.pool.output import read_lines
from fastrr.pool.relay import FdRelay, enlarge_pipe
from fastrr.pool.states import RECYCLE_REASONS, State

if TYPE_CHECKING:
    from fastrr.pool.pool import WorkerPool

STOP_REQUEST = b'{"stop":true}'
CONTROL_STOP = _core.encode_frame(_core.FLAG_CONTROL | _core.FLAG_JSON, STOP_REQUEST)
PONG = _core.encode_frame(0, b"", (), _core.PONG)
STREAM_STOP = _core.encode_frame(0, b"", (), _core.STOP)
MAX_FRAME = 1 << 31


class Job(Protocol):
    """What the pool runs on a worker: an HTTP request (the connection itself)."""

    request_frame: bytes
    cancelled: bool
    retries: int
    queued_at: float

    def on_worker_frame(self, worker: Worker, flags: int, byte10: int,
                        options: tuple[int, ...], payload: bytes) -> bool: ...

    def on_worker_lost(self, worker: Worker, status: int, reason: str) -> None: ...

    def on_no_worker(self, reason: str) -> None: ...


def handshake_answer(flags: int, payload: bytes) -> tuple[int | None, bool]:
    """(PID, raw_forms) of a worker's answer to the PID handshake; PID None when it is not one.
    raw_forms is fastrr's own key beside the PID (Worker::setHandshakeOption, HttpServer.parses_form)."""
    try:
        answer = json.loads(payload) if flags & _core.FLAG_CONTROL else None
        pid = answer.get("pid") if answer is not None else None
    except (ValueError, AttributeError):
        return None, False
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None, False
    return pid, answer.get("raw_forms") is True


class WorkerProtocolError(Exception):
    """The worker sent something the protocol does not allow; it gets replaced."""


class Worker:
    def __init__(self, pool: WorkerPool, proc: subprocess.Popen[bytes], max_jobs: int, ttl: float = 0.0,
                 generation: int = 0):
        self.pool = pool
        self.loop = pool.loop
        self.proc = proc
        self.pid = proc.pid
        self.state = State.INACTIVE
        self.created = time.time()
        self.spawned_at = self.loop.time()
        self.last_used = self.spawned_at
        self.ready_at = 0.0  # loop time of the PID handshake
        self.raw_forms = False  # its handshake asked for form bodies as PHP's SAPIs get them
        self.exec_started = 0.0
        self.execs = 0
        self.max_jobs = max_jobs
        self.ttl = ttl  # the supervisor's ttl for this worker (jittered), 0: none
        self.generation = generation  # bumped by every reset: older workers are replaced
        self.surge = False  # spawned by a rolling reset on top of the pool's size
        # Warm replacement (pool._retire): the worker booting to take this one's
        # place, and on that worker the one it replaces.
        self.successor: Worker | None = None
        self.replaces: Worker | None = None
        self.killed = False  # we sent SIGKILL (exec_ttl, boot_timeout, protocol error, stop timeout)
        self.job: Job | None = None
        self.relay: FdRelay | None = None
        self.socket: socket.socket | None = None  # socket relays only
        self.reader = _core.FrameReader(MAX_FRAME)
        self.stderr_tail: deque[str] = deque(maxlen=40)
        self._partial: dict[int, bytes] = {}  # output fd -> its unfinished last line
        self.retire_reason: State | None = None
        self.lost_request = False  # a request was on it when it broke or exited
        self.last_error = ""
        self.exit_code: int | None = None
        self.exited = False
        self.kill_timer: asyncio.TimerHandle | None = None  # SIGKILL after stop_timeout (stop())
        # exec_ttl: the job whose worker we killed, answered once the process is gone.
        self._doomed: tuple[Job, int, str] | None = None
        self._statm_fd = -1  # /proc/<pid>/statm, opened on the first rss() call
        # Leak-trend recycling (pool.release, Python front only; the C engine keeps its own):
        # the RSS fit, and (bytes/request, requests to the limit, RSS) once it found a climb.
        self.trend: LeakTrend | None = None
        self.leak_report: tuple[float, int, int] | None = None
        self._pidfd = os.pidfd_open(self.pid)
        self.loop.add_reader(self._pidfd, self._on_exit)
        assert proc.stderr is not None
        self._watch_output(proc.stderr.fileno())

    # -- relay -----------------------------------------------------------------

    def attach_pipes(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        enlarge_pipe(self.proc.stdin.fileno())
        self.relay = FdRelay(self.loop, self.proc.stdout.fileno(), self.proc.stdin.fileno(),
                             self._on_data, self._relay_broken, owns_fds=False)

    def watch_stdout(self) -> None:
        """Socket relays: stdout carries no frames, so it is logged like stderr
        (a worker writing to an unread pipe would block once it is full, and
        PHP's "Could not open input file" goes there)."""
        assert self.proc.stdout is not None
        self._watch_output(self.proc.stdout.fileno())

    def attach_socket(self, relay: FdRelay, reader: _core.FrameReader, sock: socket.socket,
                      raw_forms: bool = False) -> None:
        self.raw_forms = raw_forms
        relay.on_data = self._on_data
        relay.on_eof = self._relay_broken
        self.relay = relay
        self.socket = sock
        self.reader = reader
        self._became_ready()

    def attach_ring(self, ring: _core.Ring) -> None:
        """shm relay: ring + pipes until the handshake shows which one the worker took."""
        from fastrr.pool.ring import ShmRelay

        self.relay = ShmRelay(self, ring)  # type: ignore[assignment]

    def send_handshake(self) -> None:
        assert self.relay is not None
        self.relay.write(self.pool.handshake_frame)

    # -- frames ----------------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        try:
            frames = self.reader.feed(data)
        except _core.FrameError as exc:
            self.lost(str(exc))
            return
        if frames is None:
            return
        for flags, byte10, options, payload in frames:
            if self.job is not None:
                self._on_job_frame(flags, byte10, options, payload)
            elif self.state is State.INACTIVE:
                self._on_handshake(flags, payload)
            elif self.state is not State.STOPPING:
                self.lost(f"unexpected frame from an idle worker (flags {flags:#04x})")
            if self.exited or (self.relay is not None and self.relay.closed):
                return

    def _on_handshake(self, flags: int, payload: bytes) -> None:
        pid, raw_forms = handshake_answer(flags, payload)
        if pid is None:
            self.lost(f"invalid PID handshake answer (flags {flags:#04x}): {payload[:200]!r}")
            return
        self.raw_forms = raw_forms
        self._became_ready()

    def _became_ready(self) -> None:
        self.state = State.READY
        self.last_used = self.loop.time()
        self.pool.on_worker_ready(self)

    def _on_job_frame(self, flags: int, byte10: int, options: tuple[int, ...], payload: bytes) -> None:
        job = self.job
        assert job is not None
        if flags & _core.FLAG_CONTROL:
            self.lost(f"unexpected control frame during a request: {payload[:200]!r}")
            return
        if not flags & _core.FLAG_ERROR and options == (13,) and payload == STOP_REQUEST:
            # $worker->stop(): replace this worker and run the request elsewhere.
            self.job = None
            self.pool.on_stop_requested(self, job)
            return
        try:
            done = job.on_worker_frame(self, flags, byte10, options, payload)
        except WorkerProtocolError as exc:
            self.lost(str(exc))
            return
        if done:
            self.job = None
            self.execs += 1
            self.pool.release(self)
        else:
            # Streams: exec_ttl applies to each chunk, as in RoadRunner.
            self.exec_started = self.loop.time()

    def exec(self, job: Job) -> None:
        assert self.relay is not None and self.job is None
        self.job = job
        self.state = State.WORKING
        self.exec_started = self.loop.time()
        self.relay.write(job.request_frame)

    def send(self, frame: bytes) -> None:
        if self.relay is not None:
            self.relay.write(frame)

    # -- ending ----------------------------------------------------------------

    def stop(self, reason: State | None = None) -> None:
        """Graceful stop: the CONTROL stop frame, SIGKILL after stop_timeout."""
        if self.exited or self.state is State.STOPPING:
            return
        if reason is not None:
            self.retire_reason = reason
        if self.relay is None or self.state is State.INACTIVE:
            self.state = State.STOPPING
            self.kill()
            return
        self.state = State.STOPPING
        self.relay.write(CONTROL_STOP)
        self.kill_timer = self.loop.call_later(self.pool.cfg.stop_timeout, self.kill)

    def kill(self, cleanup: bool = False) -> None:
        """SIGKILL the worker's process group. `cleanup`: the worker is already
        going (its relay hit EOF), so this is not our decision to end it."""
        if self.exited:
            return
        if not cleanup:
            self.killed = True
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def fail_job(self, status: int, reason: str, state: State) -> None:
        """Kill the worker mid-request (exec_ttl): the client gets `status`.

        The answer waits until the process is gone and the pool has spawned its
        replacement, so a client that saw the error also sees the new worker;
        a process that does not die within a second does not delay it further.
        """
        job, self.job = self.job, None
        self.state = state
        self.last_error = reason
        self.kill()
        if job is not None:
            self._doomed = (job, status, reason)
            self.loop.call_later(1.0, self._answer_doomed)

    def _answer_doomed(self) -> None:
        if self._doomed is not None:
            job, status, reason = self._doomed
            self._doomed = None
            job.on_worker_lost(self, status, reason)

    def _never_read(self, job: Job) -> bool:
        """The worker left without reading any of its request: every byte written for it is
        still in the pipe. Such a request never ran and may go to another worker (a worker
        that answered and exited took the next request before its exit was seen)."""
        relay = self.relay
        left = relay.unread() if isinstance(relay, FdRelay) else None
        if left is None:
            return False
        queued, not_written = left
        return queued >= len(job.request_frame) - not_written

    def _relay_broken(self, reason: str) -> None:
        self.lost(reason, eof=True)

    def lost(self, reason: str, eof: bool = False) -> None:
        """The relay broke or the worker broke the protocol: kill and report once."""
        if self.relay is not None:
            self.relay.close()
        self.pool.withdraw(self)  # an idle worker whose relay broke must not get the next request
        job, self.job = self.job, None
        self.lost_request = self.lost_request or job is not None
        if self.state is not State.STOPPING and not self.killed:
            self.last_error = reason
            if self.state is not State.INACTIVE:
                self.state = State.ERRORED
            self.pool.log.error("worker failed", pid=self.pid, reason=reason)
        if job is not None and not (self._never_read(job) and self.pool.resend(self, job)):
            job.on_worker_lost(self, 502, reason)
        self.kill(cleanup=eof)

    def _on_exit(self) -> None:
        code = self.proc.poll()
        if code is None:
            return
        self.exited = True
        self.exit_code = code
        self.loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        if self._statm_fd >= 0:
            os.close(self._statm_fd)
            self._statm_fd = -1
        if self.kill_timer is not None:
            self.kill_timer.cancel()
        for fd in list(self._partial):
            self._read_output(fd, final=True)
        drain = getattr(self.relay, "drain", None)
        if drain is not None and self.job is not None:
            drain()  # its answer may be complete in the pipe (answered, then exit())
        if self.relay is not None:
            self.relay.close()
        if self.socket is not None:
            self.socket.close()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        job, self.job = self.job, None
        if job is not None and not (self._never_read(job) and self.pool.resend(self, job)):
            self.lost_request = True
            job.on_worker_lost(self, 502, f"worker exited with code {code} during the request")
        self.pool.on_worker_exit(self)
        self._answer_doomed()

    def _watch_output(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self._partial[fd] = b""
        self.loop.add_reader(fd, self._read_output, fd)

    def _read_output(self, fd: int, final: bool = False) -> None:
        """Relay the worker's stderr (and stdout on socket relays) line by line with its PID."""
        lines, final = read_lines(fd, self._partial, final)
        if final:
            self.loop.remove_reader(fd)
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip("\r")
            if line:
                if self.state is State.INACTIVE and line.startswith("Could not open input file"):
                    self.last_error = line  # a socket relay's worker says so on stdout
                self.stderr_tail.append(line)
                self.pool.worker_log.info(line, pid=self.pid)

    def describe_stderr(self) -> str:
        return " | ".join(self.stderr_tail) if self.stderr_tail else "(no output on stderr)"

    def describe_exit(self) -> str:
        """How the process ended, for messages: a SIGKILL of ours is not the worker's exit code."""
        if self.killed:
            return "was stopped by fastrr"
        return f"exited with code {self.exit_code}"

    # -- accounting ------------------------------------------------------------

    def rss(self) -> int:
        """Resident set size in bytes (0 once gone). The supervisor calls this
        after every request when max_worker_memory is set, so it re-reads a
        /proc file kept open (one pread, ~1.5 µs) instead of opening it each time."""
        if self._statm_fd < 0:
            if self.exited:
                return 0
            try:
                self._statm_fd = os.open(f"/proc/{self.pid}/statm", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return 0
        try:
            return int(os.pread(self._statm_fd, 128, 0).split()[1]) * PAGE_SIZE
        except (OSError, ValueError, IndexError):
            return 0

    @property
    def status(self) -> State:
        """The state an operator sees: a worker being recycled by the
        supervisor shows why until it is gone (maxJobsReached, ttlReached,
        idleTTLReached, maxMemoryReached, as RoadRunner marks it), also while it
        finishes its request or waits for its warm replacement; a busy worker
        replaced for another reason (it asked to stop, a reset) is `invalid`."""
        reason = self.retire_reason
        if reason is not None and not self.exited:
            if reason in RECYCLE_REASONS:
                return reason
            if self.state is State.WORKING:
                return State.INVALID
        return self.state

    def info(self) -> dict[str, object]:
        """One row of `informer.Workers`, with RoadRunner's field names
        (fastrr adds `lastError`)."""
        status = self.status
        return {
            "pid": self.pid,
            "status": int(status),
            "numExecs": self.execs,
            "created": int(self.created * 1e9),
            "memoryUsage": self.rss(),
            "CPUPercent": cpu_percent(self.pid, self.created),
            "command": " ".join(self.proc.args) if isinstance(self.proc.args, list) else str(self.proc.args),
            "statusStr": status.label,
            "lastError": self.last_error,
        }


PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_percent(pid: int, created: float) -> float:
    """CPU time over lifetime in percent, as gopsutil's Process.CPUPercent that
    `rr workers` shows (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        cpu_seconds = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    except (OSError, ValueError, IndexError):
        return 0.0
    elapsed = time.time() - created
    return round(cpu_seconds / elapsed * 100, 4) if elapsed > 0 else 0.0
