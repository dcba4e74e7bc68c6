"""`fastrr bench --apps jobs-amqp` (any `jobs-<broker driver>`): jobs end to end on a real broker.

Per broker driver, in the same run and interleaved rounds (jobs.schedule):
- fastrr: one `fastrr serve` with a pipeline of that driver and 4 PHP consumers
  (bench/apps/jobs/consumer.php, ack only); a batch of N jobs pushed in one jobs.PushBatch
  (fastrr publishes them, with confirms), then informer.Jobs polled until all N are acked:
  exactly the `--apps jobs` measurement (jobs.JobsServer.run_batch), on a broker.
- for amqp also the plain PHP peer: 4 PHP processes with Debian's php-amqplib consuming the
  same kind of queue (durable, persistent messages) with the same work per message (read the
  job's name and id, ack) and no application server: bench/apps/jobs/amqplib_consumer.php.
  This process publishes the N messages (RoadRunner's headers, with confirms) and polls the
  consumers' ack counts. Both sides keep at most 40 jobs unacked: the fastrr pipeline's
  prefetch 40, the plain consumers' basic.qos 10 each.

Figures per job: PHP CPU (the consumers), the server's CPU (fastrr's process, which also
publishes; none for the plain loop), the broker's (the broker process on this machine, e.g.
RabbitMQ's beam.smp, from schedstat: it is shared and not pinned, so other users of it
show up there), and jobs/s = N / (push start → last ack). Pinned as the other benchmarks:
fastrr, its consumers and the plain consumers on the server CPU, this producer on the load
CPU. Bounded: N jobs per batch, `repeats` rounds, each batch within `timeout`.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from fastrr import paths
from fastrr.benchmark import env, jobs, procs, report, runner, servers, stats
from fastrr.benchmark.apps import APPS_DIR, ROOT
from fastrr.benchmark.runner import Options
from fastrr.jobs.drivers import BROKERS

BENCHMARK = "jobs-broker"
PREFIX = "jobs-"
AMQP_ADDR = "amqp://guest:guest@127.0.0.1:5672/"
REDIS_ADDR = "127.0.0.1:6379"
CONSUMERS = 4
UNACKED = 40  # jobs out at once, both sides (fastrr: pipeline prefetch; plain: basic.qos per consumer × 4)
PLAIN_SCRIPT = APPS_DIR / "jobs" / "amqplib_consumer.php"
PLAIN_PEERS = ("amqp",)  # drivers that have a plain-PHP peer here
BROKER_PROCESSES = {"amqp": "beam.smp", "redis": "redis-server", "nats": "nats-server", "beanstalk": "beanstalkd"}
METRICS = ("jobs_per_s", "seconds", "php_us", "server_us", "broker_us", "cpu_us", "push_ms",
           "foreign_server_cores", "other_load_cores")
SIDE_FASTRR, SIDE_PLAIN = "fastrr", "php-amqplib"


def split_apps(names: str | None) -> tuple[str | None, tuple[str, ...]]:
    """--apps → (the rest, for the other benchmarks; the broker drivers of `jobs-<driver>` entries)."""
    if not names or names.strip() == "all":
        return names, ()
    parts = [n.strip() for n in names.split(",") if n.strip()]
    drivers = tuple(p[len(PREFIX):] for p in parts if p.startswith(PREFIX))
    for driver in drivers:
        if driver not in BROKERS:
            raise ValueError(f"unknown jobs benchmark '{PREFIX}{driver}': the broker drivers are "
                             f"{', '.join(PREFIX + b for b in BROKERS)}")
    rest = [p for p in parts if not p.startswith(PREFIX)]
    return (",".join(rest) or None), drivers


def is_broker(doc: Mapping[str, Any]) -> bool:
    return doc.get("benchmark") == BENCHMARK


@dataclass
class Plan:
    drivers: tuple[str, ...] = ("amqp",)
    consumers: int = CONSUMERS
    jobs: int = 5_000
    payload_bytes: int = 32
    warmup_jobs: int = 1_000
    settle_jobs: int = 200
    repeats: int = 3
    timeout: float = 120.0
    max_foreign: float = 0.15
    retries: int = 1

    @classmethod
    def from_options(cls, options: Options, drivers: tuple[str, ...]) -> Plan:
        if options.quick:
            return cls(drivers=drivers, jobs=2_000, warmup_jobs=500, repeats=options.repeats,
                       max_foreign=options.max_foreign, retries=0)
        return cls(drivers=drivers, repeats=options.repeats, max_foreign=options.max_foreign)

    def points(self) -> list[tuple[str, str]]:
        return [(d, side) for d in self.drivers
                for side in ((SIDE_FASTRR, SIDE_PLAIN) if d in PLAIN_PEERS else (SIDE_FASTRR,))]

    def estimate_seconds(self, rate: float = 3000.0, startup: float = 2.0) -> float:
        per_point = startup + (self.warmup_jobs + self.repeats * (self.settle_jobs + self.jobs)) / rate
        return len(self.points()) * per_point


def broker_pipeline(driver: str, uid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The bench pipeline on `driver`'s broker (names unique to this run) and the top-level
    sections it needs."""
    if driver == "amqp":
        queue = f"fastrr-bench-{uid}"
        return ({"driver": "amqp", "config": {"queue": queue, "routing_key": queue, "exchange": queue,
                                              "durable": True, "prefetch": UNACKED,
                                              "delete_queue_on_stop": True, "exchange_auto_delete": True}},
                {"amqp": {"addr": AMQP_ADDR}})
    if driver == "redis":
        return ({"driver": "redis", "config": {"prefix": f"fastrr:bench:{{{uid}}}", "prefetch": UNACKED,
                                               "delete_on_stop": True}},
                {"redis": {"addrs": [REDIS_ADDR]}})
    return {"driver": driver, "config": {"prefetch": UNACKED}}, {}


class BrokerCpu:
    """CPU seconds of the broker's process on this machine (read only; None: not found)."""

    def __init__(self, driver: str):
        name = BROKER_PROCESSES.get(driver, "")
        self.pids = [p.pid for p in psutil.process_iter(["name"]) if name and p.info["name"] == name]

    def seconds(self) -> float | None:
        values = [procs.run_seconds(pid) for pid in self.pids]
        return None if not values or None in values else sum(v for v in values if v is not None)


def with_broker(sample: dict[str, float], before: float | None, after: float | None, n: int) -> dict[str, float]:
    """The broker's CPU per job into `sample`, and out of its disturbance figures: the broker
    works for this run (unpinned, it may run on the server core too)."""
    if before is None or after is None:
        sample["broker_us"] = float("nan")
        return sample
    used = after - before
    sample["broker_us"] = used / n * 1e6
    cores = used / sample["seconds"] if sample["seconds"] > 0 else 0.0
    for key in ("foreign_server_cores", "other_load_cores"):
        if sample.get(key) == sample.get(key):  # not NaN (unpinned has no server-core figure)
            sample[key] = max(0.0, sample[key] - cores)
    return sample


def machine_reading(cpus: list[int], pids: list[int]) -> tuple[float, float, float, int]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return (procs.cpu_busy_seconds(cpus) if cpus else 0.0, procs.system_busy_seconds(),
            me.ru_utime + me.ru_stime, procs.context_switches(pids))


class FastrrSide:
    """fastrr with a `driver` pipeline: jobs.JobsServer, plus the broker's CPU around each batch."""

    def __init__(self, driver: str, plan: Plan, base: Path, ini: Path, layout: env.Layout, reaper: procs.Reaper,
                 code: Path):
        pipe, top = broker_pipeline(driver, uuid.uuid4().hex[:10])
        self.server = jobs.JobsServer(driver, plan.consumers, base, ini, layout, reaper, code, pipe, top)
        self.broker = BrokerCpu(driver)

    def wait_ready(self) -> None:
        self.server.wait_ready()

    def run_batch(self, body: bytes, n: int, timeout: float) -> dict[str, float]:
        b0 = self.broker.seconds()
        sample = self.server.run_batch(body, n, timeout)
        return with_broker(sample, b0, self.broker.seconds(), n)

    def stop(self) -> None:
        self.server.stop()


class PlainAmqpSide:
    """4 php-amqplib consumer processes on a durable queue of their own; this process publishes."""

    def __init__(self, plan: Plan, base: Path, ini: Path, layout: env.Layout, reaper: procs.Reaper, code: Path):
        import aiormq

        base.mkdir(parents=True)
        self.aiormq = aiormq
        self.queue = f"fastrr-bench-plain-{uuid.uuid4().hex[:10]}"
        self.layout, self.reaper, self.plan = layout, reaper, plan
        self.loop = asyncio.new_event_loop()
        self.conn: Any = None
        self.channel: Any = None
        self.loop.run_until_complete(self._open())
        self.count_files = [base / f"acked.{i}" for i in range(plan.consumers)]
        script = code / PLAIN_SCRIPT.relative_to(ROOT)
        self.procs = []
        for i, count_file in enumerate(self.count_files):
            child_env = {**os.environ, "QUEUE": self.queue, "COUNT_FILE": str(count_file),
                         "PREFETCH": str(max(1, UNACKED // plan.consumers))}
            self.procs.append(reaper.add(procs.spawn([*layout.server_prefix, servers.php_binary(), "-c", str(ini),
                                                      str(script)], cwd=code, log=base / f"consumer{i}.out",
                                                     env=child_env)))
        self.broker = BrokerCpu("amqp")
        self.logs = [base / f"consumer{i}.out" for i in range(plan.consumers)]

    async def _open(self) -> None:
        self.conn = self.aiormq.Connection(AMQP_ADDR)
        await self.conn.connect()
        self.channel = await self.conn.channel(publisher_confirms=True)
        await self.channel.queue_declare(self.queue, durable=True)

    def acked(self) -> int:
        total = 0
        for path in self.count_files:
            try:
                total += int(path.read_text() or 0)
            except (OSError, ValueError):
                return -1  # not started, or between two writes: ask again
        return total

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.acked() < 0:
            dead = [p for p in self.procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"php-amqplib consumers not ready: {self.tail()}")
            time.sleep(0.05)

    def tail(self) -> str:
        return " | ".join(p.read_text(errors="replace").strip()[-300:] for p in self.logs if p.exists())

    async def _publish(self, messages: list[tuple[bytes, Any]]) -> None:
        for start in range(0, len(messages), 500):  # confirms pipelined, 500 in flight
            await asyncio.gather(*(self.channel.basic_publish(body, exchange="", routing_key=self.queue,
                                                              properties=props, mandatory=True)
                                   for body, props in messages[start:start + 500]))

    def run_batch(self, body: bytes, n: int, timeout: float) -> dict[str, float]:
        """`body` is fastrr's PushBatch (unused here: the same payload is published directly)."""
        from pamqp import commands as spec

        payload = jobs.payload(self.plan.payload_bytes)
        messages = [(payload, spec.Basic.Properties(delivery_mode=2, content_type="application/octet-stream",
                                                    headers={"rr_id": str(uuid.uuid4()), "rr_job": "bench.Ack",
                                                             "rr_pipeline": jobs.PIPELINE}))
                    for _ in range(n)]
        cpus = [int(c) for c in self.layout.server_cpus.split(",")] if self.layout.server_cpus else []
        pids = [p.pid for p in self.procs]
        while (before := self.acked()) < 0:
            time.sleep(0.002)
        php0 = [procs.run_seconds(pid) for pid in pids]
        b0, m0 = self.broker.seconds(), machine_reading(cpus, pids)
        t0 = time.perf_counter()
        self.loop.run_until_complete(self._publish(messages))
        t_push = time.perf_counter() - t0
        while True:
            done, elapsed = self.acked() - before, time.perf_counter() - t0
            if done >= n:
                break
            if elapsed > timeout or any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"php-amqplib: {done} of {n} acked after {elapsed:.1f} s: {self.tail()}")
            time.sleep(jobs.next_poll(max(done, 0), n, elapsed))
        seconds = time.perf_counter() - t0
        php1 = [procs.run_seconds(pid) for pid in pids]
        b1, m1 = self.broker.seconds(), machine_reading(cpus, pids)
        php = sum(b - a for a, b in zip(php0, php1, strict=True) if a is not None and b is not None)
        sample = jobs.make_sample(n, seconds, t_push, {"php": php, "server": 0.0}, {}, {"switches": m1[3] - m0[3]},
                                  {"core": m1[0] - m0[0] if cpus else None, "busy": m1[1] - m0[1],
                                   "producer": m1[2] - m0[2]})
        sample["producer_us"] = (m1[2] - m0[2]) / n * 1e6
        return with_broker(sample, b0, b1, n)

    def stop(self) -> None:
        for proc in self.procs:
            self.reaper.stop(proc)

        async def close() -> None:
            try:
                await self.channel.queue_delete(self.queue)
            finally:
                await self.conn.close()

        try:
            self.loop.run_until_complete(close())
        except (OSError, self.aiormq.exceptions.AMQPError) as exc:
            print(f"php-amqplib: could not delete {self.queue}: {exc}", file=sys.stderr)
        async def wind_down() -> None:  # the client's reader and writer tasks
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        self.loop.run_until_complete(wind_down())
        self.loop.close()


Side = FastrrSide | PlainAmqpSide


def start_side(driver: str, side: str, plan: Plan, base: Path, ini: Path, layout: env.Layout,
               reaper: procs.Reaper, code: Path) -> Side:
    if side == SIDE_PLAIN:
        return PlainAmqpSide(plan, base, ini, layout, reaper, code)
    return FastrrSide(driver, plan, base, ini, layout, reaper, code)


def measure_layout(plan: Plan, layout: env.Layout, base: Path, ini: Path, reaper: procs.Reaper, code: Path,
                   doc: dict[str, Any], log: Callable[[str], None]) -> None:
    points = plan.points()
    live: dict[int, Side] = {}
    samples: dict[int, list[dict[str, float]]] = {i: [] for i in range(len(points))}
    body = jobs.payload(plan.payload_bytes)
    warm, settle = jobs.batch(plan.warmup_jobs, body), jobs.batch(plan.settle_jobs, body)
    measured = [jobs.batch(plan.jobs, body) for _ in range(plan.repeats)]

    def fail(i: int, exc: BaseException) -> None:
        driver, side = points[i]
        doc["failures"].append({"mode": layout.mode, "app": f"{PREFIX}{driver} {side}", "error": str(exc)})
        log(f"  FAILED {layout.mode} {PREFIX}{driver} {side}: {exc}")
        gone = live.pop(i, None)
        if gone is not None:
            gone.stop()

    try:
        for i, (driver, side) in enumerate(points):
            try:
                live[i] = start_side(driver, side, plan, base / f"{driver}-{side}", ini, layout, reaper, code)
                live[i].wait_ready()
                if plan.warmup_jobs:
                    live[i].run_batch(warm, plan.warmup_jobs, plan.timeout)
            except (*jobs.FAILURES, ImportError) as exc:
                fail(i, exc)
        for rep, i in jobs.schedule(len(points), plan.repeats):
            if i not in live:
                continue
            driver, side = points[i]
            try:
                sample = jobs.measure_undisturbed(live[i], plan, settle, measured[rep], log)  # type: ignore[arg-type]
            except jobs.FAILURES as exc:
                fail(i, exc)
                continue
            samples[i].append(sample)
            log(f"  {layout.mode} {PREFIX}{driver} {side:<11} {rep + 1}/{plan.repeats} "
                f"{sample['jobs_per_s']:8,.0f} jobs/s  PHP {sample['php_us']:6.1f} µs/job  server "
                f"{sample['server_us']:6.1f} µs/job  broker {sample['broker_us']:6.1f} µs/job")
    finally:
        for server in live.values():
            server.stop()
    for i, (driver, side) in enumerate(points):
        if samples[i]:
            doc["points"].append({"mode": layout.mode, "driver": driver, "side": side,
                                  "consumers": plan.consumers, "samples": samples[i],
                                  "summary": {k: v.to_dict() for k, v in stats.summarize(samples[i],
                                                                                        METRICS).items()}})


def run(options: Options, plan: Plan, log: Callable[[str], None] = print) -> dict[str, Any]:
    layouts = options.layouts()
    started = time.time()
    doc: dict[str, Any] = {
        "schema": runner.SCHEMA, "benchmark": BENCHMARK,
        "started": _dt.datetime.fromtimestamp(started).astimezone().isoformat(timespec="seconds"),
        "options": {"quick": options.quick, "pin": options.pin, "repeats": plan.repeats},
        "plan": asdict(plan), "unacked": UNACKED,
        "environment": env.describe_machine(ROOT, servers.php_binary(), servers.php_binary()),
        "layouts": [{"mode": lay.mode, "description": lay.describe().replace("wrk", "producer")}
                    for lay in layouts],
        "points": [], "failures": [],
    }
    with tempfile.TemporaryDirectory(prefix="fastrr-bench-jobs-broker-") as tmpdir, procs.Reaper() as reaper:
        tmp = Path(tmpdir)
        ini = servers.write_php_ini(tmp)
        code = env.snapshot_code(ROOT, tmp / "code")
        doc["environment"]["code_fingerprint"] = env.code_fingerprint(code)
        for layout in layouts:
            with runner.harness_affinity(layout):
                log(f"[{layout.mode}] {', '.join(PREFIX + d for d in plan.drivers)}: "
                    f"{layout.describe().replace('wrk', 'producer')}; {plan.jobs:,} jobs of {plan.payload_bytes} B "
                    f"per batch, {plan.consumers} PHP consumers, at most {UNACKED} unacked, {plan.repeats} rounds")
                measure_layout(plan, layout, tmp / layout.mode, ini, reaper, code, doc, log)
    doc["finished"] = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    doc["duration_s"] = round(time.time() - started, 1)
    return doc


def _cell(summary: Mapping[str, Any], key: str, digits: int = 1) -> str:
    s = summary.get(key) or {}
    median = s.get("median")
    if median is None or median != median:
        return "–"
    if key == "jobs_per_s":
        return f"{median:,.0f} ({s.get('min', median):,.0f}–{s.get('max', median):,.0f})"
    return f"{median:.{digits}f}"


def table_rows(doc: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for p in doc.get("points", []):
        s = p["summary"]
        server = _cell(s, "server_us") if p["side"] == SIDE_FASTRR else "none"
        rows.append([p["mode"], f"{PREFIX}{p['driver']}", p["side"], str(p["consumers"]), _cell(s, "jobs_per_s"),
                     _cell(s, "php_us"), server, _cell(s, "broker_us"), str(len(p["samples"]))])
    return rows


HEADERS = ["layout", "pipeline", "side", "PHP procs", "jobs/s median (min–max)", "PHP CPU µs/job",
           "server CPU µs/job", "broker CPU µs/job", "runs"]


BEGIN = ("<!-- bench-jobs-broker:begin (generated by `fastrr bench --apps jobs-amqp,jobs-redis --update-readme`; "
         "edit outside these markers) -->")
END = "<!-- bench-jobs-broker:end -->"
HEADING = "### Jobs on a broker benchmark"
IMAGE = "jobs-broker.png"


def environment_line(doc: Mapping[str, Any]) -> str:
    e = doc["environment"]
    lay = "; ".join(f"{x['mode']}: {x['description']}" for x in doc.get("layouts", []))
    return (f"{doc['started'][:16].replace('T', ' ')} · {e.get('cpu', '?')} · {e.get('cpus', '?')} CPUs · "
            f"{e.get('php', '?')} · fastrr {e.get('fastrr', '?')} · {lay}")


def markdown(doc: Mapping[str, Any], image: str | None = None) -> str:
    lines = [f"Environment: {environment_line(doc)}", ""] if doc.get("environment") else []
    lines += ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(doc)]
    notes = [f"{doc['plan']['jobs']:,} jobs per batch, {doc['plan']['repeats']} rounds, at most {doc['unacked']} "
             "unacked on both sides; the broker is the machine's shared, unpinned one."]
    for fail in doc.get("failures", []):
        notes.append(f"FAILED {fail['app']}: {fail['error'][:300]}")
    if image:
        notes += ["", f"![jobs on a broker]({image})"]
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def update_readme(readme: Path, doc: Mapping[str, Any], out_dir: str) -> bool:
    """The table (and the plot, when it was drawn) between the bench-jobs-broker markers."""
    image = f"{out_dir}/{IMAGE}" if (ROOT / out_dir / IMAGE).exists() else None
    return report._write_block(readme, BEGIN, END, markdown(doc, image), heading=HEADING)


def plain_table(doc: Mapping[str, Any]) -> str:
    rows = [HEADERS, *table_rows(doc)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    text = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    return "\n".join(text) + "\n" + "\n".join(f"FAILED {f['app']}: {f['error'][:300]}"
                                               for f in doc.get("failures", []))


def write_outputs(doc: dict[str, Any], out_dir: Path, history: bool = True, plots: bool = True) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    report.write_json(doc, out_dir / "jobs-broker.json")
    (out_dir / "jobs-broker.md").write_text("# fastrr jobs on a broker vs plain PHP consumers\n\n" + markdown(doc))
    written = [out_dir / "jobs-broker.json", out_dir / "jobs-broker.md"]
    if plots and doc.get("points"):
        from fastrr.benchmark import plot

        if plot.available() and plot.plot_jobs_broker(dict(doc), out_dir / IMAGE):
            written.append(out_dir / IMAGE)
    if history:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        kind = "quick" if doc["options"].get("quick") else "full"
        report.write_json(doc, paths.results_dir() / "history" / f"{stamp}-jobs-broker-{kind}.json")
    return written

