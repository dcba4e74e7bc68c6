"""`fastrr bench --apps jobs`: the jobs plugin end to end, push → PHP consumer → ack.

One `fastrr serve` per driver (memory, boltdb) × consumers (1, 2, 4), a jobs section only
(bench/apps/jobs/consumer.php acks every job), laid out as the HTTP servers (pinned: fastrr
and its consumers on the server CPU; this process, the producer, on the load CPU). All are
started and warmed up, then measured in interleaved rounds (`schedule`). One run: read
informer.Jobs and /proc; push N jobs in one jobs.PushBatch (serialized beforehand); poll
informer.Jobs until all N are acked; read again, and informer.JobsLatency.

jobs/s is N / (all acked − start of the push). A batch of N is a burst: a job's push-to-ack
latency is mostly its wait behind the jobs ahead of it (p50 ≈ half the run, p99 nearly all).
"""
from __future__ import annotations

import datetime as _dt
import math
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from fastrr.benchmark import env, procs, runner, servers, stats
from fastrr.benchmark.apps import APPS_DIR, ROOT
from fastrr.benchmark.report import format_jobs_sample as format_sample
from fastrr.benchmark.runner import Options
from fastrr.jobs import proto
from fastrr.rpc.client import RpcClient, RpcError, RpcUnreachable
from fastrr.rpc.codec import FLAG_PROTO

NAME = "jobs"
PIPELINE = "bench"
DRIVERS = ("memory", "boltdb")
CONSUMERS = (1, 2, 4)
CONSUMER_SCRIPT = APPS_DIR / "jobs" / "consumer.php"
METRICS = ("jobs_per_s", "seconds", "push_ms", "php_us", "server_us", "cpu_us", "server_cores", "p50_ms",
           "p99_ms", "max_ms", "retried", "polls", "foreign_server_cores", "other_load_cores", "ctx_switches")
POLL_MIN, POLL_MAX = 0.002, 0.05  # seconds between two informer.Jobs polls


def split_apps(names: str | None) -> tuple[str | None, bool, bool]:
    """--apps → (the HTTP apps for apps.select, run HTTP?, run jobs?). None (the default
    run) stays HTTP only; 'all' is every HTTP app and jobs; 'jobs' alone runs no HTTP app."""
    if not names:
        return None, True, False
    if names.strip() == "all":
        return "all", True, True
    parts = [n.strip() for n in names.split(",") if n.strip()]
    http = [n for n in parts if n != NAME]
    return (",".join(http) or None), bool(http), NAME in parts


@dataclass
class Plan:
    drivers: tuple[str, ...] = DRIVERS
    consumers: tuple[int, ...] = CONSUMERS
    jobs: int = 10_000
    payload_bytes: int = 32
    warmup_jobs: int = 10_000  # one unrecorded batch of the same size per server first (the heap grows to it)
    settle_jobs: int = 1_000   # unrecorded, before each measured batch (caches, after the other servers ran)
    repeats: int = 3
    timeout: float = 120.0  # seconds for one batch to be acked before the point fails
    max_foreign: float = 0.15  # pinned: run again when others took more of the server core (as the HTTP bench)
    retries: int = 2

    @classmethod
    def from_options(cls, options: Options) -> Plan:
        return cls(repeats=options.repeats, max_foreign=options.max_foreign, retries=options.retries)

    def points(self) -> list[tuple[str, int]]:
        return [(d, c) for d in self.drivers for c in self.consumers]

    def estimate_seconds(self, n_layouts: int = 1, startup: float = 1.5, rate: float = 12000.0) -> float:
        """Start-up, warm-up and the measured batches at `rate` jobs/s (one core here: 10–30k)."""
        per_point = startup + (self.warmup_jobs + self.repeats * (self.settle_jobs + self.jobs)) / rate
        return n_layouts * len(self.points()) * per_point


def payload(size: int) -> bytes:
    """A fixed JSON payload of exactly `size` bytes (at least 8)."""
    size = max(8, size)
    return b'{"p":"' + b"x" * (size - 8) + b'"}'


def batch(n: int, body: bytes, pipeline: str = PIPELINE, name: str = "bench.Ack") -> bytes:
    """A serialized jobs.PushBatch request of `n` jobs with fresh UUIDs."""
    req = proto.PushBatchRequest()
    for _ in range(n):
        job = req.jobs.add(job=name, id=str(uuid.uuid4()), payload=body)
        job.options.pipeline = pipeline
    return bytes(req.SerializeToString())


def config(driver: str, consumers: int, rpc_port: int, command: Sequence[str], db_file: Path,
           pipeline: Mapping[str, Any] | None = None, top: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The server's config; `pipeline` replaces the bench pipeline's (a broker's, jobs_broker.py)
    and `top` adds top-level sections (the broker's connection: `amqp:`, `redis:`)."""
    pipe: dict[str, Any] = dict(pipeline) if pipeline else {"driver": driver}
    if driver == "boltdb" and not pipeline:
        pipe["config"] = {"file": str(db_file)}
    return {
        **(top or {}),
        "version": "3",
        "server": {"command": list(command)},
        "rpc": {"listen": f"tcp://127.0.0.1:{rpc_port}"},
        "logs": {"level": "warn", "mode": "production"},
        "jobs": {"consume": [PIPELINE], "pool": {"num_workers": consumers, "max_jobs": 0},
                 "pipelines": {PIPELINE: pipe}},
    }


def counters(rows: Sequence[Mapping[str, Any]], pipeline: str = PIPELINE) -> dict[str, int]:
    """The pipeline's row of informer.Jobs as {pushed, acked, retried, active, reserved}."""
    for row in rows:
        if row.get("Pipeline") == pipeline:
            return {k.lower(): int(row.get(k) or 0) for k in ("Pushed", "Acked", "Retried", "Active", "Reserved")}
    raise RuntimeError(f"informer.Jobs has no pipeline {pipeline!r}: {list(rows)!r}")


def next_poll(done: int, total: int, elapsed: float) -> float:
    """Seconds until the next poll: a quarter of the time the rate so far says is left,
    within [POLL_MIN, POLL_MAX]; few polls (each costs fastrr an RPC) but a close end."""
    if done <= 0 or elapsed <= 0:
        return POLL_MIN * 5
    left = (total - done) * elapsed / done
    return min(POLL_MAX, max(POLL_MIN, left / 4))


def make_sample(n: int, seconds: float, push_s: float, cpu: Mapping[str, float], latency: Mapping[str, Any],
                counts: Mapping[str, float], machine: Mapping[str, float | None]) -> dict[str, float]:
    """One measured batch. `cpu`: CPU seconds of the PHP consumers ("php") and fastrr's process
    ("server"), precise (schedstat), and from clock ticks ("php_ticks", "server_ticks": 10 ms steps,
    to cross-check). `latency`: informer.JobsLatency (seconds; stored in ms). `counts`: retried,
    polls, context switches. `machine`: CPU seconds of the server core ("core", None unpinned), of
    the whole machine ("busy") and of this process ("producer"), for what others took meanwhile."""
    jobs, nan = max(n, 1), float("nan")
    php, server = cpu["php"], cpu["server"]
    core, busy = machine.get("core"), machine.get("busy")
    return {
        "jobs": float(n), "seconds": seconds, "push_ms": push_s * 1e3,
        "jobs_per_s": n / seconds if seconds > 0 else nan,
        "php_us": php / jobs * 1e6, "server_us": server / jobs * 1e6, "cpu_us": (php + server) / jobs * 1e6,
        "php_us_ticks": cpu.get("php_ticks", nan) / jobs * 1e6,
        "server_us_ticks": cpu.get("server_ticks", nan) / jobs * 1e6, "cpu_precise": cpu.get("precise", nan),
        "server_cores": (php + server) / seconds if seconds > 0 else nan,
        **{f"{k}_ms": float(latency.get(k, nan)) * 1e3 for k in ("p50", "p99", "max")},
        "latency_count": float(latency.get("count", 0)), "retried": float(counts.get("retried", 0)),
        "polls": float(counts.get("polls", 0)), "ctx_switches": counts.get("switches", nan) / jobs,
        "foreign_server_cores": max(0.0, core - php - server) / seconds if core is not None and seconds > 0 else nan,
        "other_load_cores": (max(0.0, busy - php - server - (machine.get("producer") or 0.0)) / seconds
                             if busy is not None and seconds > 0 else nan),
    }


def cpu_delta(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, float]:
    """CPU seconds between two JobsServer.cpu_readings: precise where both readings have the
    schedstat sums and the same consumers ran throughout, else the clock-tick figures."""
    ticks = {"php_ticks": (after["tree"] - after["front"]) - (before["tree"] - before["front"]),
             "server_ticks": after["front"] - before["front"]}
    precise = (before["workers"] == after["workers"] and None not in (before["php"], after["php"],
                                                                      before["server"], after["server"]))
    if precise:
        return {"php": after["php"] - before["php"], "server": after["server"] - before["server"], **ticks,
                "precise": 1.0}
    return {"php": ticks["php_ticks"], "server": ticks["server_ticks"], **ticks, "precise": 0.0}


def point_record(mode: str, driver: str, consumers: int, samples: list[dict[str, float]]) -> dict[str, Any]:
    return {"mode": mode, "driver": driver, "consumers": consumers, "samples": samples,
            "summary": {k: v.to_dict() for k, v in stats.summarize(samples, METRICS).items()}}


class JobsServer:
    """One `fastrr serve` with the bench pipeline, its RPC client, and its CPU from /proc."""

    def __init__(self, driver: str, consumers: int, base: Path, ini: Path, layout: env.Layout,
                 reaper: procs.Reaper, code_root: Path = ROOT, pipeline: Mapping[str, Any] | None = None,
                 top: Mapping[str, Any] | None = None):
        base.mkdir(parents=True)
        self.driver, self.consumers, self.layout = driver, consumers, layout
        self.port = servers.free_port()
        script = code_root / CONSUMER_SCRIPT.relative_to(ROOT)
        cfg = base / ".rr.yaml"
        cfg.write_text(yaml.safe_dump(config(driver, consumers, self.port,
                                             [servers.php_binary(), "-c", str(ini), str(script)],
                                             base / "jobs.db", pipeline, top), sort_keys=False))
        self.log = base / "fastrr.out"
        child_env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(code_root),
                                                                             os.environ.get("PYTHONPATH")) if p)}
        self.reaper = reaper
        self.proc = reaper.add(procs.spawn([*layout.server_prefix, sys.executable, "-m", "fastrr", "serve", "-c",
                                            str(cfg)], cwd=code_root, log=self.log, env=child_env))
        self.client: Any = None

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the pipeline consumes and every consumer has started."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fastrr exited with code {self.proc.returncode} during start-up\n{self.tail()}")
            try:
                if self.client is None:
                    self.client = RpcClient(f"tcp://127.0.0.1:{self.port}", timeout=30.0)
                rows = self.client.call("informer.Jobs", "jobs")
                ready = any(r.get("Pipeline") == PIPELINE and r.get("Ready") for r in rows)
                workers = len(procs.descendants(self.proc.pid))
                if ready and workers >= self.consumers:
                    return
                last = f"pipeline ready: {ready}, {workers} of {self.consumers} consumers"
            except (RpcUnreachable, RpcError, OSError) as exc:
                if self.client is not None:
                    self.client.close()
                    self.client = None
                last = str(exc) or type(exc).__name__
            time.sleep(0.1)
        raise RuntimeError(f"fastrr jobs ({self.driver}, {self.consumers} consumers) not ready after "
                           f"{timeout:.0f} s ({last})\n{self.tail()}")

    def cpu_readings(self) -> dict[str, Any]:
        """CPU seconds so far: from clock ticks, of the tree ("tree", exited workers included) and
        of fastrr's process ("front"); from schedstat, of the consumers ("php") and fastrr ("server")."""
        pid = self.proc.pid
        workers = sorted(p.pid for p in procs.descendants(pid))
        php = [procs.run_seconds(w) for w in workers]
        return {"tree": procs.tree_cpu_seconds([pid]), "front": procs.process_cpu_seconds(pid),
                "workers": workers, "server": procs.run_seconds(pid),
                "php": None if None in php or not php else sum(p for p in php if p is not None)}

    def run_batch(self, body: bytes, n: int, timeout: float) -> dict[str, float]:
        """Push one serialized batch of `n` jobs and wait until they are all acked; the sample."""
        pid, client = self.proc.pid, self.client
        cpus = [int(c) for c in self.layout.server_cpus.split(",")] if self.layout.server_cpus else []

        def machine() -> tuple[float, float, float, int]:
            me = resource.getrusage(resource.RUSAGE_SELF)
            return (procs.cpu_busy_seconds(cpus) if cpus else 0.0, procs.system_busy_seconds(),
                    me.ru_utime + me.ru_stime, procs.context_switches([pid]))

        client.call("informer.JobsLatency", True)  # clears what earlier batches left
        before, cpu0, m0 = counters(client.call("informer.Jobs", "jobs")), self.cpu_readings(), machine()
        t0 = time.perf_counter()
        client.call("jobs.PushBatch", body, flags=FLAG_PROTO)
        t_push, polls = time.perf_counter() - t0, 0
        while True:
            now = counters(client.call("informer.Jobs", "jobs"))
            polls += 1
            done, elapsed = now["acked"] - before["acked"], time.perf_counter() - t0
            if done >= n:
                break
            if elapsed > timeout or self.proc.poll() is not None:
                raise RuntimeError(f"{done} of {n} jobs acked after {elapsed:.1f} s ({self.driver}, "
                                   f"{self.consumers} consumers)\n{self.tail()}")
            time.sleep(next_poll(done, n, elapsed))
        seconds = time.perf_counter() - t0
        m1, cpu = machine(), cpu_delta(cpu0, self.cpu_readings())
        return make_sample(n, seconds, t_push, cpu, client.call("informer.JobsLatency", True),
                           {"retried": now["retried"] - before["retried"], "polls": polls, "switches": m1[3] - m0[3]},
                           {"core": m1[0] - m0[0] if cpus else None, "busy": m1[1] - m0[1], "producer": m1[2] - m0[2]})

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        self.reaper.stop(self.proc)


def schedule(n_points: int, repeats: int) -> list[tuple[int, int]]:
    """(repeat, point) in run order: every point once per round, the order reversed every other
    round, so a slow spell of the machine spreads over the points instead of hitting one."""
    return [(rep, i) for rep in range(repeats)
            for i in (range(n_points) if rep % 2 == 0 else reversed(range(n_points)))]


FAILURES = (RuntimeError, OSError, env.SetupError)


def disturbance(sample: Mapping[str, float]) -> float:
    """Cores other processes took during a run: on the server core, or anywhere (on this 2-vCPU VM
    a busy CPU 1 slowed CPU 0's jobs by a third with nothing foreign on CPU 0 itself)."""
    values = [sample.get(k, math.nan) for k in ("foreign_server_cores", "other_load_cores")]
    return max((v for v in values if not math.isnan(v)), default=0.0)


def measure_undisturbed(server: JobsServer, plan: Plan, settle: bytes, measured: bytes,
                        log: Callable[[str], None]) -> dict[str, float]:
    """One run (after `settle`); again, with fresh batches, up to `retries` times while others
    took more than `max_foreign` cores (disturbance). Keeps the least disturbed."""
    def once(settle: bytes, measured: bytes) -> dict[str, float]:
        if plan.settle_jobs:
            server.run_batch(settle, plan.settle_jobs, plan.timeout)
        return server.run_batch(measured, plan.jobs, plan.timeout)

    best, attempts = once(settle, measured), 1
    while disturbance(best) > plan.max_foreign and attempts <= plan.retries:
        log(f"    disturbed: other processes took {disturbance(best):.2f} cores; measuring again")
        body = payload(plan.payload_bytes)
        again = once(batch(plan.settle_jobs, body), batch(plan.jobs, body))
        attempts += 1
        if disturbance(again) < disturbance(best):
            best = again
    best["attempts"] = float(attempts)
    return best


def measure_layout(plan: Plan, layout: env.Layout, base: Path, ini: Path, reaper: procs.Reaper, code_root: Path,
                   bodies: dict[str, list[bytes]], bar: Any, doc: dict[str, Any]) -> None:
    """Every point's server started and warmed up, then the runs interleaved (schedule); the
    servers not being measured sit idle meanwhile (about 0.2 % of the core each)."""
    points = plan.points()
    live: dict[int, JobsServer] = {}
    samples: dict[int, list[dict[str, float]]] = {i: [] for i in range(len(points))}
    per_run = plan.estimate_seconds(1, startup=0.0) / max(1, len(points) * plan.repeats)

    def fail(i: int, exc: Exception) -> None:
        driver, consumers = points[i]
        doc["failures"].append({"mode": layout.mode, "app": f"jobs {driver} ×{consumers}", "error": str(exc)})
        bar.log(f"  FAILED {layout.mode} jobs {driver} ×{consumers}: {exc}")
        server = live.pop(i, None)
        if server is not None:
            server.stop()

    try:
        for i, (driver, consumers) in enumerate(points):
            bar.describe(f"jobs · starting {driver} ×{consumers}")
            try:
                live[i] = JobsServer(driver, consumers, base / f"{driver}-{consumers}", ini, layout, reaper,
                                     code_root)
                live[i].wait_ready()
                if plan.warmup_jobs:
                    live[i].run_batch(bodies["warmup"][0], plan.warmup_jobs, plan.timeout)
            except FAILURES as exc:
                fail(i, exc)
        for rep, i in schedule(len(points), plan.repeats):
            driver, consumers = points[i]
            what = f"jobs · {driver} ×{consumers} · {rep + 1}/{plan.repeats}"
            bar.describe(what)
            if i in live:
                try:
                    sample = measure_undisturbed(live[i], plan, bodies["settle"][rep], bodies["measured"][rep],
                                                 bar.log)
                    samples[i].append(sample)
                    bar.log(f"  {layout.mode} jobs {rep + 1}/{plan.repeats} " + format_sample(driver, consumers,
                                                                                            sample))
                except FAILURES as exc:
                    fail(i, exc)
            bar.advance(per_run, what)
    finally:
        for server in live.values():
            server.stop()
    for i, (driver, consumers) in enumerate(points):
        if samples[i]:
            doc["jobs"].append(point_record(layout.mode, driver, consumers, samples[i]))


def run(options: Options, log: Callable[[str], None] = print, plain_progress: bool = False,
        plan: Plan | None = None) -> dict[str, Any]:
    """The jobs benchmark; returns its own results document (report.py renders it)."""
    plan = plan or Plan.from_options(options)
    env.ensure_packages(log, {k: v for k, v in env.DEBIAN_PACKAGES.items() if k in ("php8.2-cli", "php8.2-opcache")})
    layouts = options.layouts()
    started = time.time()
    doc: dict[str, Any] = {
        "schema": runner.SCHEMA, "benchmark": NAME,
        "started": _dt.datetime.fromtimestamp(started).astimezone().isoformat(timespec="seconds"),
        "options": {"quick": options.quick, "pin": options.pin, "repeats": plan.repeats},
        "plan": asdict(plan),
        "environment": env.describe_machine(ROOT, servers.php_binary(), servers.php_binary()),  # no fpm here
        "layouts": [{"mode": lay.mode, "description": lay.describe()} for lay in layouts],
        "jobs": [], "failures": [],
    }
    total = plan.estimate_seconds(len(layouts), startup=0.0)
    # Payloads are built before any server starts: the producer's own work stays out of the runs.
    body = payload(plan.payload_bytes)
    bodies = {"warmup": [batch(plan.warmup_jobs, body)],
              "settle": [batch(plan.settle_jobs, body) for _ in range(plan.repeats)],
              "measured": [batch(plan.jobs, body) for _ in range(plan.repeats)]}
    with tempfile.TemporaryDirectory(prefix="fastrr-bench-jobs-") as tmpdir, procs.Reaper() as reaper, \
            runner.progress_bar(total, plain_progress) as bar:
        tmp = Path(tmpdir)
        ini = servers.write_php_ini(tmp)
        code = env.snapshot_code(ROOT, tmp / "code")
        doc["environment"]["code_fingerprint"] = env.code_fingerprint(code)
        doc["environment"]["jobs_file_fs"] = env.filesystem(tmp)
        for layout in layouts:
            with runner.harness_affinity(layout):
                bar.log(f"[{layout.mode}] jobs: {layout.describe().replace('wrk', 'producer')}; {plan.jobs:,} jobs "
                        f"of {plan.payload_bytes} B in one PushBatch, {plan.repeats} rounds over the points")
                measure_layout(plan, layout, tmp / layout.mode, ini, reaper, code, bodies, bar, doc)
    doc["finished"] = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    doc["duration_s"] = round(time.time() - started, 1)
    doc["environment"]["loadavg_end"] = list(os.getloadavg())
    return doc
