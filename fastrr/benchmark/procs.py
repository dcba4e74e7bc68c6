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


def run_seconds(pid: int, root: str = "/proc") -> float | None:
    """On-CPU seconds of the live threads of process `pid`, to the nanosecond: the scheduler's
    own sum from /proc/<pid>/task/*/schedstat. /proc/<pid>/stat rounds to clock ticks (10 ms),
    too coarse for a run of under a second. Threads that exited are not in it, nor are
    children. None when the process is gone or the kernel does not keep the sum (all zeros)."""
    try:
        tids = os.listdir(f"{root}/{pid}/task")
    except OSError:
        return None
    total = 0
    for tid in tids:
        try:
            with open(f"{root}/{pid}/task/{tid}/schedstat") as fh:
                total += int(fh.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9 if total else None


def context_switches(pids: Iterable[int]) -> int:
    """Voluntary + involuntary context switches of the live processes in the trees."""
    total = 0
    for proc in tree(pids):
        try:
            c = proc.num_ctx_switches()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        total += c.voluntary + c.involuntary
    return total


def system_busy_seconds(stat_line: str | None = None) -> float:
    """CPU seconds the machine spent running processes (user, nice, system) or lost
    to the hypervisor (steal), from /proc/stat; used to tell foreign load apart.

    irq/softirq time is left out: loopback traffic of the benchmark itself is
    processed there, and /proc/<pid>/stat does not attribute it to anyone.
    """
    if stat_line is None:
        with open("/proc/stat") as fh:
            stat_line = fh.readline()
    ticks = [int(x) for x in stat_line.split()[1:]] + [0] * 8
    user, nice, system, steal = ticks[0], ticks[1], ticks[2], ticks[7]  # guest is already inside user
    return (user + nice + system + steal) / os.sysconf("SC_CLK_TCK")


def cpu_busy_seconds(cpus: Iterable[int], stat_text: str | None = None) -> float:
    """The same as system_busy_seconds, for the given CPUs only (the `cpuN` lines)."""
    if stat_text is None:
        with open("/proc/stat") as fh:
            stat_text = fh.read()
    wanted = {f"cpu{c}" for c in cpus}
    return sum(system_busy_seconds(line) for line in stat_text.splitlines() if line.split(" ", 1)[0] in wanted)


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

    def __init__(self, pids: Sequence[int], interval: float | None = 0.25, pss: bool = True):
        """`interval` None: no sampling thread, one sample on entry and one on exit."""
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
        if self.interval is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.interval is not None:
            self._stop.set()
            self._thread.join()
        self.sample()


def stop_tree(proc: subprocess.Popen[bytes], timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Stop a process started by `spawn` and everything it started.

    The descendants are listed before the signal: fastrr puts its workers in
    their own process group, so signalling the session's group does not reach
    them (fastrr stops them itself on SIGTERM). Whatever outlives its parent
    gets SIGTERM, then SIGKILL; the parent gets SIGKILL after `timeout`.
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
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait(5)
    survivors = [k for k in kids if _alive(k)]
    for kid in survivors:
        try:
            kid.send_signal(sig)
        except psutil.NoSuchProcess:
            pass
    alive = _wait_gone(survivors, 2.0)
    for kid in alive:
        try:
            kid.kill()
        except psutil.NoSuchProcess:
            pass
    _wait_gone(alive, 2.0)


def _wait_gone(victims: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Until none is alive (zombies count as gone: who reaps an orphan is not up to us)."""
    deadline = time.monotonic() + timeout
    alive = [v for v in victims if _alive(v)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [v for v in alive if _alive(v)]
    return alive


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


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
