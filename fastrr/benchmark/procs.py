"""Process trees: start servers so they can always be stopped, and account their CPU and memory.

Every server process is started in its own session (a terminal's Ctrl-C reaches
only the harness, which then stops them in order) with a parent-death signal, so
even a SIGKILLed harness does not leave servers behind. Stopping is by the PIDs we
started and the descendants we saw, never by name.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except OSError:
        pass


def spawn(argv: Sequence[str], *, cwd: str | Path | None = None, log: Path | None = None,
          env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a server process in a new session; output to `log` (or discarded)."""
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True, preexec_fn=_die_with_parent)
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def tree(pids: Iterable[int]) -> list[psutil.Process]:
    """The processes rooted at `pids` (roots first), skipping those already gone."""
    out: list[psutil.Process] = []
    seen: set[int] = set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
        except psutil.NoSuchProcess:
            continue
        for proc in [root, *descendants(pid)]:
            if proc.pid not in seen:
                seen.add(proc.pid)
                out.append(proc)
    return out


def cpu_seconds(procs: Iterable[psutil.Process], *, include_reaped: bool = True) -> float:
    """User + system CPU seconds of `procs`.

    With `include_reaped`, each process also brings the CPU of its children that
    have exited and been waited for (cutime/cstime): a worker that is recycled
    during a measurement still counts, once, in its parent's figure.
    """
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        total += t.user + t.system
        if include_reaped:
            total += t.children_user + t.children_system
    return total


def tree_cpu_seconds(pids: Iterable[int]) -> float:
    return cpu_seconds(tree(pids))


def process_cpu_seconds(pid: int) -> float:
    """CPU of one process alone (e.g. fastrr's front), without its children."""
    try:
        return cpu_seconds([psutil.Process(pid)], include_reaped=False)
    except psutil.NoSuchProcess:
        return 0.0


def system_busy_seconds() -> float:
    """CPU seconds all processes on the machine were busy (from /proc/stat), to tell foreign load apart."""
    with open("/proc/stat") as fh:
        fields = fh.readline().split()[1:]
    ticks = [int(x) for x in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    # guest time is already included in user/nice
    busy = sum(ticks[:8]) - idle
    return busy / os.sysconf("SC_CLK_TCK")


@dataclass
class MemoryPeak:
    rss: int = 0
    pss: int = 0
    samples: int = 0


class MemorySampler:
    """Samples the summed RSS (and PSS) of process trees a few times a second; keeps the peaks.

    RSS sums count shared pages (opcache's shared memory, libraries) once per
    process; PSS divides them among the sharers, so it is the fairer total when
    comparing many fpm children with a few workers.
    """

    def __init__(self, pids: Sequence[int], interval: float = 0.25, pss: bool = True):
        self.pids = list(pids)
        self.interval = interval
        self.want_pss = pss
        self.peak = MemoryPeak()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def sample(self) -> None:
        rss = pss = 0
        for proc in tree(self.pids):
            try:
                if self.want_pss:
                    info = proc.memory_full_info()
                    rss += info.rss
                    pss += getattr(info, "pss", 0)
                else:
                    rss += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
            except psutil.AccessDenied:
                self.want_pss = False
        self.peak.rss = max(self.peak.rss, rss)
        self.peak.pss = max(self.peak.pss, pss)
        self.peak.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def stop_tree(proc: subprocess.Popen[bytes], timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Stop a process started by `spawn` and everything it started.

    The descendants are listed before the signal (fastrr puts its workers in
    their own process group, so signalling the session's group alone would not
    reach them); whatever is still alive after `timeout` gets SIGKILL.
    """
    kids = descendants(proc.pid)
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 2.0
    for kid in kids:
        try:
            kid.wait(max(0.0, deadline - time.monotonic()))
        except (psutil.TimeoutExpired, psutil.NoSuchProcess):
            pass
    for victim in [*kids]:
        try:
            victim.kill()
        except psutil.NoSuchProcess:
            pass
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait(5)


@dataclass
class Reaper:
    """Remembers every process the harness started; `stop_all` stops them, newest first.

    Used as a context manager around a whole run, so Ctrl-C, SIGTERM or an
    exception anywhere leaves nothing running.
    """

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def add(self, proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
        stop_tree(proc, timeout)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self, timeout: float = 10.0) -> None:
        while self.procs:
            self.stop(self.procs[-1], timeout)

    def __enter__(self) -> Reaper:
        self._old_term = signal.getsignal(signal.SIGTERM)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _raise_interrupt)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop_all()
        finally:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, self._old_term)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
