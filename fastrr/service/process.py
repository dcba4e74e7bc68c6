"""Supervised commands: a `Service` is `process_num` copies of one command, each
a `ServiceProcess` that runs it, relays its output and restarts it.

Rules of this file:
- Every run is the leader of its own process group (`process_group=0`), and
  signals go to the whole group, so a shell's children stop with it; when a
  leader exits by itself, what is left of its group is stopped as at shutdown
  before the next run starts, so restarts never pile up orphans. (A child that
  calls setsid() leaves the group and is out of reach, as under RoadRunner.)
- Stopping is RoadRunner's: SIGINT, then SIGKILL after `timeout_stop_sec`.
  `exec_timeout` SIGKILLs the group at once, as Go's CommandContext does.
- The leader is reaped through a pidfd on the loop (as pool/worker.py does);
  subprocess.Popen rather than asyncio's subprocesses because uvloop's cannot
  switch `user`.
- Restarts (remain_after_exit) wait `restart_sec`. A run that fails fast (a
  non-zero exit within STABLE_RUN seconds, or a spawn error) doubles the wait
  each time, up to MAX_BACKOFF (or restart_sec if larger); a run that lasts, or
  exits 0, resets it. RoadRunner restarts every restart_sec forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections import deque
from typing import Any

import psutil

from fastrr.log import Logger
from fastrr.pool.output import read_lines
from fastrr.service.config import ServiceConfig, process_env

STABLE_RUN = 10.0  # seconds: a run that lasted this long was not a crash loop
MAX_BACKOFF = 60.0  # seconds: the longest wait between restarts of a failing command
MAX_LINE = 64 * 1024  # longer output lines are logged in pieces
GROUP_POLL = 0.05  # seconds between checks that a stopped group is empty
KILL_GRACE = 5.0  # seconds to wait for the leader after SIGKILL (a process in D state)


class ServiceError(Exception):
    """A service cannot be started (the text names it and why)."""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _user_args(user: str) -> dict[str, Any]:
    """Popen arguments to run as `user` (its primary and supplementary groups),
    as RoadRunner's ExecuteFromUser; nothing when that is who we are already."""
    if not user:
        return {}
    entry = pwd.getpwnam(user)
    if entry.pw_uid == os.geteuid():
        return {}
    return {"user": entry.pw_uid, "group": entry.pw_gid,
            "extra_groups": os.getgrouplist(entry.pw_name, entry.pw_gid)}


def usage(pid: int) -> tuple[float, int]:
    """(CPU %, RSS bytes) as gopsutil reports them: CPU time over the process's
    lifetime. Raises psutil.Error when the process cannot be read."""
    proc = psutil.Process(pid)
    with proc.oneshot():
        times = proc.cpu_times()
        rss = proc.memory_info().rss
        created = proc.create_time()
    elapsed = time.time() - created
    return ((times.user + times.system) / elapsed * 100 if elapsed > 0 else 0.0), rss


class ServiceProcess:
    """One copy of a service's command, kept running by its own task."""

    def __init__(self, service: Service, index: int):
        self.service = service
        self.cfg = service.cfg
        self.index = index
        self.loop = asyncio.get_running_loop()
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = 0
        self.created = 0.0  # wall time of the current run's start
        self.started = 0.0  # loop time of the same
        self.exit_code: int | None = None  # of the last run, None while running
        self.restart_at: float | None = None  # loop time of the next restart, while waiting for it
        self.failures = 0  # fast failures in a row (the backoff exponent)
        self.stopping = False
        self.timed_out = False
        self.tail: deque[str] = deque(maxlen=5)  # last output lines, for informer.Stats
        self._exit: asyncio.Future[int] | None = None
        self._pidfd = -1
        self._timer: asyncio.TimerHandle | None = None
        self._partial: dict[int, bytes] = {}
        self._interrupted = False  # SIGINT sent to this run's group
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._exit is not None and not self._exit.done()

    def start(self) -> None:
        """First run (OSError when the command cannot be started), then supervise."""
        self.spawn()
        self._task = self.loop.create_task(self._supervise())

    def spawn(self) -> None:
        cfg = self.cfg
        proc = subprocess.Popen(cfg.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=process_env(cfg), process_group=0,
                                **_user_args(cfg.user))
        self.proc = proc
        self.pid = proc.pid
        self.created = time.time()
        self.started = self.loop.time()
        self.exit_code = None
        self.timed_out = False
        self._interrupted = False
        self._exit = self.loop.create_future()
        self._pidfd = os.pidfd_open(proc.pid)
        self.loop.add_reader(self._pidfd, self._on_exit)
        for pipe in (proc.stdout, proc.stderr):
            assert pipe is not None
            fd = pipe.fileno()
            os.set_blocking(fd, False)
            self._partial[fd] = b""
            self.loop.add_reader(fd, self._read_output, fd)
        if cfg.exec_timeout > 0:
            self._timer = self.loop.call_later(cfg.exec_timeout, self._exec_timeout)
        self.service.log.info("service was started", name=cfg.name, command=self.service.command_line,
                              pid=proc.pid)

    # -- a run ------------------------------------------------------------------

    def _on_exit(self) -> None:
        assert self.proc is not None and self._exit is not None
        code = self.proc.poll()
        if code is None:
            return
        self.loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.exit_code = code
        self._exit.set_result(code)

    def _exec_timeout(self) -> None:
        self._timer = None
        if not self.running:
            return
        self.timed_out = True
        self.service.log.warn("service exec_timeout reached, killing it", name=self.cfg.name, pid=self.pid,
                              exec_timeout=self.cfg.exec_timeout)
        _signal_group(self.pid, signal.SIGKILL)

    def _read_output(self, fd: int, final: bool = False) -> None:
        """Log the output line by line (stdout and stderr alike, as RoadRunner does)."""
        lines, final = read_lines(fd, self._partial, final, MAX_LINE)
        if final:
            self.loop.remove_reader(fd)
        log = self.service.output_log
        for raw in lines:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                self.tail.append(line)
                log.info(line, pid=self.pid)

    def _close_output(self) -> None:
        """After a run: log what is left in the pipes and close them (a child that
        left the group may hold them open; it no longer gets heard)."""
        if self.proc is None:
            return
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is None:
                continue
            fd = pipe.fileno() if not pipe.closed else -1
            if fd in self._partial:
                self._read_output(fd, final=True)
            with contextlib.suppress(OSError):
                pipe.close()

    async def _end_group(self) -> None:
        """Stop this run's process group: SIGINT, then SIGKILL after timeout_stop_sec
        if the leader or any other member is still there."""
        pgid = self.pid
        if not self.running and not _group_alive(pgid):
            return
        deadline = self.loop.time() + self.cfg.timeout_stop_sec
        if not self._interrupted:
            self._interrupted = True
            _signal_group(pgid, signal.SIGINT)
        while self.loop.time() < deadline and (self.running or _group_alive(pgid)):
            if self.running:
                assert self._exit is not None
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._exit), deadline - self.loop.time())
            else:
                await asyncio.sleep(GROUP_POLL)
        if self.running or _group_alive(pgid):
            self.service.log.warn("service did not stop within timeout_stop_sec, killing its process group",
                                  name=self.cfg.name, pid=pgid, timeout_stop_sec=self.cfg.timeout_stop_sec)
            _signal_group(pgid, signal.SIGKILL)
        if self.running:
            assert self._exit is not None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._exit), KILL_GRACE)

    # -- supervision ------------------------------------------------------------

    def _restart_delay(self, code: int, ran: float, spawn_failed: bool = False) -> float:
        failed = spawn_failed or (code != 0 and not self.timed_out and ran < STABLE_RUN)
        self.failures = self.failures + 1 if failed else 0
        base = self.cfg.restart_sec
        if self.failures <= 1:
            return base
        return min(base * 2 ** (self.failures - 1), max(base, MAX_BACKOFF))

    async def _supervise(self) -> None:
        cfg = self.cfg
        while True:
            assert self._exit is not None
            # shielded: stop() cancels this task, and the run's future must outlive that
            code = await asyncio.shield(self._exit)
            ran = self.loop.time() - self.started
            await self._end_group()  # what the leader left behind
            self._close_output()
            if self.stopping:  # kill(): a forced exit, or a Create rolled back
                return
            self.service.record_exit(self, code, ran)
            if not cfg.remain_after_exit:
                return
            delay = self._restart_delay(code, ran)
            while True:
                fields: dict[str, Any] = {"name": cfg.name, "restart_in": round(delay, 3)}
                if self.failures > 1:
                    fields["failures_in_a_row"] = self.failures
                    self.service.log.warn("service keeps failing, restarting it later (backoff)", **fields)
                else:
                    self.service.log.info("service will be restarted", **fields)
                self.restart_at = self.loop.time() + delay
                await asyncio.sleep(delay)
                self.restart_at = None
                try:
                    self.spawn()
                    break
                except OSError as exc:
                    self.service.log.error("service restart failed", name=cfg.name, command=cfg.command,
                                           error=exc.strerror or str(exc))
                    delay = self._restart_delay(-1, 0.0, spawn_failed=True)

    async def stop(self) -> None:
        self.stopping = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.restart_at = None
        if self.proc is not None:
            await self._end_group()
            self._close_output()

    def kill(self) -> None:
        """A forced exit: SIGKILL the group now, nothing awaited."""
        self.stopping = True
        if self.proc is not None:
            _signal_group(self.pid, signal.SIGKILL)

    # -- state ------------------------------------------------------------------

    def info(self) -> dict[str, Any] | None:
        """An `informer.Workers` row (RoadRunner's keys; status 1, no execs), None when not running."""
        if not self.running:
            return None
        try:
            cpu, rss = usage(self.pid)
        except psutil.Error:
            return None
        return {"pid": self.pid, "status": 1, "numExecs": 0, "created": int(self.created * 1e9),
                "memoryUsage": rss, "CPUPercent": cpu, "command": self.service.command_line, "statusStr": ""}

    def not_running_reason(self) -> str:
        if self.proc is None:
            return "process_state: the process was never started"
        code = self.exit_code or 0
        how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        if self.restart_at is not None:
            left = max(0.0, self.restart_at - self.loop.time())
            return f"process_state: the process {how}, restarting in {left:.1f}s"
        return f"process_state: the process {how} and is not restarted (remain_after_exit is false)"


class Service:
    """A named service: its copies and what the informer shows of them."""

    def __init__(self, cfg: ServiceConfig, log: Logger):
        self.cfg = cfg
        self.log = log
        self.output_log = log.named(f"service.{cfg.name}") if cfg.service_name_in_log else log
        self.processes: list[ServiceProcess] = []
        self.recent_exits: deque[dict[str, Any]] = deque(maxlen=8)
        env_path = process_env(cfg).get("PATH")
        program = shutil.which(cfg.command[0], path=env_path) or cfg.command[0]
        # What Go's exec.Cmd.String() shows: the resolved program and the arguments.
        self.command_line = " ".join([program, *cfg.command[1:]])

    def start(self) -> None:
        """Start every copy; if one cannot start, none is left running (ServiceError)."""
        for index in range(self.cfg.process_num):
            proc = ServiceProcess(self, index)
            try:
                proc.start()
            except OSError as exc:
                for started in self.processes:
                    started.kill()
                self.processes.clear()
                raise ServiceError(f"service {self.cfg.name}: cannot start {' '.join(self.cfg.command)!r}: "
                                   f"{exc.strerror or exc}") from None
            self.processes.append(proc)

    async def stop(self) -> None:
        if self.processes:
            await asyncio.gather(*(proc.stop() for proc in self.processes))
            self.log.info("service was stopped", name=self.cfg.name, command=self.command_line)
        self.processes.clear()

    async def restart(self) -> None:
        """Every copy stopped, then started anew with the same config (RoadRunner's Restart)."""
        await self.stop()
        self.start()

    def kill(self) -> None:
        for proc in self.processes:
            proc.kill()

    def record_exit(self, proc: ServiceProcess, code: int, ran: float) -> None:
        fields = {"name": self.cfg.name, "pid": proc.pid, "code": code, "ran_s": round(ran, 3)}
        if code == 0 and not proc.timed_out:
            self.log.info("service exited", **fields)
            return
        self.log.warn("service exited", **fields)
        detail = (f"exec_timeout {self.cfg.exec_timeout:g}s reached" if proc.timed_out
                  else " | ".join(list(proc.tail)[-3:]))
        self.recent_exits.append({"pid": proc.pid, "code": code, "at": int(time.time() * 1e9),
                                  "error": f"service {self.cfg.name}" + (f": {detail}" if detail else "")})
