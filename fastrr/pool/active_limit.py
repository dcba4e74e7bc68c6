"""How many workers may run a request at once: all of them, unless the
server's own processes already keep every core it may use busy (then one
more than those cores).

Why: with more workers than cores, CPU-bound requests make the core rotate
through the PHP processes, and each request then starts on caches and TLB
entries another process just evicted. Measured on Slim 3 with 4 workers on
one core (bench/micro/worker_rotation.py): 67 µs of worker CPU per request
against 30 µs with one worker. When the cores are saturated anyway, running
fewer requests at once loses no throughput and wins that back; when workers
wait on I/O (a database, a sleep), the cores are not saturated and every
worker runs.

`ActiveLimit` is the policy, fed one CPU sample per period: the front's and
the workers' CPU time over the period, as a share of the cores the server may
run on (its affinity). Saturated (≥ SATURATED) for CONFIRM periods in a row →
the limit drops to the core count plus one; any period below RELAXED → all
workers again at once. The lift is immediate because a limit that is too low
costs latency, while one too high only costs some efficiency.

Why one more than the cores: with exactly one worker per core the front and
that worker take turns, one wake-up each way per request and nothing to
batch; with one spare, the next request already waits in a worker's pipe
while another runs, and the front answers several per wake-up. On one core
(`fastrr bench --quick --connections 64 --active-limit 1|2|off`, req/s):
API 14.0k | 16.8k | 16.5k, Slim 16.6k | 16.1k | 11.5k, hello 57k | 64k | 63k.

`ActiveLimitController` samples the CPU (precise per-process run time from
/proc/<pid>/schedstat for workers, process_time() for the front's threads)
and applies the limit through a callback (the engine's `set_active_limit`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable

PERIOD = 0.25      # seconds between samples
SATURATED = 0.90   # share of the allowed cores the server's processes used
RELAXED = 0.75
CONFIRM = 2        # saturated periods in a row before limiting


def allowed_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class ActiveLimit:
    """The policy alone (no I/O): `update()` per period, the limit in `.limit` (0 = none)."""

    def __init__(self, cores: int, confirm: int = CONFIRM):
        self.cores = max(1, cores)
        self.confirm = confirm
        self.limit = 0
        self._saturated_runs = 0

    def update(self, busy_seconds: float, period: float, workers: int) -> bool:
        """One period's CPU (front + workers); True when the limit changed."""
        capped = self.cores + 1
        if workers <= capped or period <= 0:
            return self._set(0)  # nothing to gain: the cap would let every worker run
        share = busy_seconds / (period * self.cores)
        if share >= SATURATED:
            self._saturated_runs += 1
            if self._saturated_runs >= self.confirm:
                return self._set(capped)
            return False
        self._saturated_runs = 0
        if share < RELAXED:
            return self._set(0)
        return False

    def _set(self, limit: int) -> bool:
        if limit == self.limit:
            return False
        self.limit = limit
        return True


def process_run_seconds(pid: int) -> float | None:
    """CPU time of a single-threaded process, in seconds (ns precision); None when it is gone."""
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as fh:
            return int(fh.read().split(maxsplit=1)[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


class ActiveLimitController:
    """Samples every PERIOD and calls `apply(limit)` (0 = no limit) when the policy changes its mind."""

    def __init__(self, pids: Callable[[], Iterable[int]], apply: Callable[[int], None],
                 on_change: Callable[[int, float], None] | None = None, cores: int | None = None,
                 period: float = PERIOD, run_seconds: Callable[[int], float | None] = process_run_seconds,
                 front_seconds: Callable[[], float] = time.process_time,
                 clock: Callable[[], float] = time.monotonic):
        self.pids = pids
        self.apply = apply
        self.on_change = on_change
        self.policy = ActiveLimit(cores or allowed_cores())
        self.period = period
        self.run_seconds = run_seconds
        self.front_seconds = front_seconds
        self.clock = clock
        self._task: asyncio.Task[None] | None = None
        self._last: dict[int, float] = {}

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def _sample_workers(self) -> tuple[float, int]:
        """CPU the live workers used since the last sample; a new worker counts from its first sample."""
        used, now = 0.0, {}
        for pid in self.pids():
            t = self.run_seconds(pid)
            if t is None:
                continue
            now[pid] = t
            if pid in self._last:
                used += max(0.0, t - self._last[pid])
        self._last = now
        return used, len(now)

    async def _run(self) -> None:
        front = self.front_seconds()
        self._sample_workers()
        wall = self.clock()
        while True:
            await asyncio.sleep(self.period)
            front_now, wall_now = self.front_seconds(), self.clock()
            workers_used, workers = self._sample_workers()
            busy = (front_now - front) + workers_used
            period = wall_now - wall
            front, wall = front_now, wall_now
            if self.policy.update(busy, period, workers):
                self.apply(self.policy.limit)
                if self.on_change is not None:
                    self.on_change(self.policy.limit, busy / (period * self.policy.cores))
