"""The measurement plan and its execution.

For every layout (pinned and/or unpinned) and app: start nginx + php-fpm and
fastrr for that app, check that both give the expected answer, then for each
connection count run `repeats` rounds; in each round both servers are measured
back to back (order alternating between rounds), each measurement preceded by
its own warm-up. Both servers are stopped before the next app starts.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastrr import paths
from fastrr.benchmark import apps as apps_mod
from fastrr.benchmark import env, floor, hot, phpside, procs, profile, servers, stats, wrk
from fastrr.benchmark.apps import ROOT, App

SCHEMA = 1
METRICS = ("rps", "p50", "p75", "p90", "p99", "p99.9", "mean_ms", "cpu_us", "front_us", "php_us", "server_cores",
           "rss_mib", "pss_mib", "non_2xx", "socket_errors", "requests", "other_load_cores", "wrk_cpu_us",
           "ctx_switches", "foreign_server_cores", "attempts")
SERVER_KINDS = ("fpm", "fastrr")
RESULTS_DIR = paths.results_dir()


@dataclass
class Options:
    quick: bool = False
    apps: str | None = None
    connections: tuple[int, ...] = (8, 64, 256)
    repeats: int = 3
    duration: float = 5.0                # seconds per measurement (wrk: whole seconds)
    warmup: float = 1.0                  # seconds of load before each measurement, not recorded
    workers: int = 4
    pin: str = "pinned"                 # pinned | unpinned | both
    threads: int = 1
    out: Path | None = None
    profile: bool = False
    max_foreign: float = 0.15            # pinned: measure again when others took more of the server core
    retries: int = 2                     # at most this many extra attempts per measurement
    engine: str | None = None            # fastrr's http.engine (auto | python | c); None: the server's default
    relay: str | None = None             # fastrr's server.relay (pipes | shm | ...); None: the default (pipes)
    active_limit: str | None = None      # fastrr's http.pool.active_limit (auto | off | N); None: the default
    hot: bool = True                     # the framework apps' hot ceiling (hot.py), `duration` s per run

    @classmethod
    def make(cls, quick: bool = False, **given: Any) -> Options:
        """Defaults for a full run (≤ 10 min) or --quick (≤ 2 min); explicit values win."""
        base = cls(quick=quick, repeats=2, duration=1.0, warmup=1.0) if quick else cls()
        for key, value in given.items():
            if value is not None:
                setattr(base, key, value)
        return base

    @property
    def out_dir(self) -> Path:
        """--out, else bench/results/full (quick); a run of framework apps only (`--apps
        laravel,symfony,slim`) goes to results/frameworks (frameworks-quick), beside the main run."""
        if self.out:
            return self.out
        name = "quick" if self.quick else "full"
        try:
            selected = apps_mod.select(self.apps) if self.apps else []
        except ValueError:
            selected = []
        if selected and all(a.hot_script is not None for a in selected):
            name = "frameworks-quick" if self.quick else "frameworks"
        return RESULTS_DIR / name

    def fastrr_config(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.engine:
            extra["http"] = {"engine": self.engine}
        if self.active_limit:
            extra.setdefault("http", {})["pool"] = {"active_limit": self.active_limit}
        if self.relay:
            extra["server"] = {"relay": self.relay}
        return extra

    def layouts(self) -> list[env.Layout]:
        modes = ["pinned", "unpinned"] if self.pin == "both" else [self.pin]
        return [env.layout_for(mode) for mode in modes]

    def estimate_seconds(self, n_apps: int, n_layouts: int, startup: float = 1.5, n_hot: int = 0) -> float:
        per_point = len(SERVER_KINDS) * self.repeats * (self.duration + self.warmup + 0.1)
        per_app = per_point * len(self.connections) + startup
        floor_run = self.repeats * (self.duration + self.warmup + 0.1)
        hot_runs = hot.estimate_seconds(n_hot, self.repeats, self.duration) if self.hot else 0.0
        return n_layouts * (n_apps * per_app + hot_runs) + floor_run


def server_order(repeat: int) -> tuple[str, ...]:
    """fpm first in even repeats, fastrr first in odd ones: neither always gets the warmer machine."""
    return SERVER_KINDS if repeat % 2 == 0 else tuple(reversed(SERVER_KINDS))


def measure(server: servers.Server, app: App, connections: int, layout: env.Layout,
            options: Options) -> dict[str, float]:
    """Warm-up, then one measured wrk run; returns the sample (latencies in ms, CPU in µs per request)."""
    url = server.url(app.path)
    script = apps_mod.WRK_SCRIPTS / app.wrk_script

    def argv(duration: float) -> list[str]:
        return wrk.command(url, connections=connections, duration=duration, threads=options.threads,
                           script=script, script_args=app.wrk_args, prefix=layout.load_prefix)

    # Memory: sampling walks /proc of every process of the tree (PSS: their page
    # tables, under their mmap lock) on the load generator's core, and showed up
    # in the latency wrk measures (hello c64, fastrr p99 1.25 → 1.8 ms with a PSS
    # sampler at 4 Hz; fpm's p99 rose too). So the peaks are sampled during the
    # warm-up, under the same load, and the measured run reads RSS only at its
    # start and end.
    with procs.MemorySampler(server.roots) as warm_mem:
        if options.warmup > 0:
            wrk.run(argv(options.warmup), options.warmup)
    server_cpus = [int(c) for c in layout.server_cpus.split(",")] if layout.server_cpus else []
    cpu0, front0 = server.cpu_seconds()
    switches0 = procs.context_switches(server.roots)
    busy0 = procs.system_busy_seconds()
    core0 = procs.cpu_busy_seconds(server_cpus) if server_cpus else 0.0
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    with procs.MemorySampler(server.roots, interval=None, pss=False) as mem:
        res = wrk.run(argv(options.duration), options.duration)
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    busy1 = procs.system_busy_seconds()
    core1 = procs.cpu_busy_seconds(server_cpus) if server_cpus else 0.0
    cpu1, front1 = server.cpu_seconds()
    switches1 = procs.context_switches(server.roots)
    n = max(res.requests, 1)
    server_cpu, front_cpu = cpu1 - cpu0, front1 - front0
    harness_cpu = (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime)
    other = (busy1 - busy0) - server_cpu - res.wrk_cpu_s - harness_cpu
    sample: dict[str, float] = {
        "rps": res.rps,
        "requests": float(res.requests),
        "mean_ms": res.mean_ms,
        "cpu_us": server_cpu / n * 1e6,
        "front_us": front_cpu / n * 1e6,
        "php_us": (server_cpu - front_cpu) / n * 1e6,
        "server_cores": server_cpu / res.duration_s if res.duration_s else math.nan,
        "rss_mib": max(mem.peak.rss, warm_mem.peak.rss) / 2**20,
        "pss_mib": warm_mem.peak.pss / 2**20,
        "non_2xx": float(res.non_2xx),
        "socket_errors": float(res.socket_errors),
        "other_load_cores": max(0.0, other) / res.duration_s if res.duration_s else math.nan,
        "wrk_cpu_us": res.wrk_cpu_s / n * 1e6,
        "ctx_switches": (switches1 - switches0) / n,
        # pinned only: CPU other processes took on the server's own core (what disturbs the result most)
        "foreign_server_cores": (max(0.0, (core1 - core0) - server_cpu) / res.duration_s
                                 if server_cpus and res.duration_s else math.nan),
        "attempts": 1.0,
    }
    for pct in ("50", "75", "90", "99", "99.9"):
        sample[f"p{pct}"] = res.latency_ms.get(pct, math.nan)
    return sample


def check_app(app: App, fpm: servers.Server, fastrr: servers.Server) -> tuple[list[str], bool]:
    """Both servers answer the benchmark request correctly; (problems, same body)."""
    problems = []
    bodies = []
    for server in (fpm, fastrr):
        try:
            status, body = servers.request(server.port, app)
        except OSError as exc:
            problems.append(f"{server.label}: {exc}")
            continue
        bodies.append(body)
        problem = app.check(status, body)
        if problem:
            problems.append(f"{server.label}: {problem}")
    return problems, len(bodies) == 2 and bodies[0] == bodies[1]


def point_record(layout: env.Layout, app: App, conns: int, samples: dict[str, list[dict[str, float]]]) -> dict:
    rec: dict[str, Any] = {"mode": layout.mode, "app": app.name, "title": app.title, "connections": conns,
                           "servers": {}, "ratios": {}}
    for kind, rows in samples.items():
        rec["servers"][kind] = {
            "samples": rows,
            "summary": {k: v.to_dict() for k, v in stats.summarize(rows, METRICS).items()},
        }
    a, b = samples.get("fastrr", []), samples.get("fpm", [])
    for key in ("rps", "p50", "p90", "p99", "cpu_us"):
        rec["ratios"][key] = stats.paired_ratios([s[key] for s in a], [s[key] for s in b]).to_dict()
    return rec


TARGETS = (
    # (app, metric, comparison, threshold, text): checked at 64 connections, pinned (as anchors.md);
    # "hot" is fastrr's req/s over the app's hot ceiling (worker mode), not a ratio to fpm
    ("hello", "rps", ">=", 3.0, "hello ≥ 3x fpm req/s"),
    ("hello", "p99", "<=", 1 / 3, "hello p99 ≤ 1/3 of fpm's"),
    ("slim", "rps", ">=", 6.0, "Slim ≥ 6x fpm req/s"),
    ("slim", "hot", ">=", 0.65, "Slim ≥ 0.65 of its hot ceiling"),
    ("laravel", "hot", ">=", 0.65, "Laravel ≥ 0.65 of its hot ceiling"),
    ("laravel", "p99", "<=", 1 / 3, "Laravel p99 ≤ 1/3 of fpm's"),
    ("symfony", "hot", ">=", 0.65, "Symfony ≥ 0.65 of its hot ceiling"),
    ("symfony", "p99", "<=", 1 / 3, "Symfony p99 ≤ 1/3 of fpm's"),
)


def evaluate_targets(points: Sequence[dict], connections: int = 64) -> list[dict]:
    out = []
    modes = [p["mode"] for p in points]
    mode = "pinned" if "pinned" in modes else (modes[0] if modes else "pinned")
    for app, metric, op, threshold, text in TARGETS:
        rec = next((p for p in points if p["app"] == app and p["connections"] == connections and p["mode"] == mode),
                   None)
        measured = rec["ratios"].get(metric) if rec is not None else None
        if rec is None or measured is None:
            # the default apps' targets are always listed; the others when their app ran
            if app in apps_mod.DEFAULT_APPS or app in {p["app"] for p in points}:
                out.append({"target": text, "measured": None, "met": None, "mode": mode,
                            "connections": connections})
            continue
        value = stats.Spread.from_dict(measured)
        met = value.median >= threshold if op == ">=" else value.median <= threshold
        out.append({"target": text, "measured": value.to_dict(), "met": bool(met), "mode": mode,
                    "connections": connections})
    return out


class _PlainProgress:
    """Fallback without rich: a line per step."""

    def __init__(self, total: float):
        self.total = total
        self.done = 0.0
        self.t0 = time.monotonic()

    def advance(self, seconds: float, description: str) -> None:
        self.done += seconds
        pct = min(100.0, 100.0 * self.done / self.total) if self.total else 100.0
        print(f"[{pct:5.1f}% {time.monotonic() - self.t0:5.0f}s] {description}", flush=True)

    def log(self, text: str) -> None:
        print(text, flush=True)

    def describe(self, description: str) -> None:
        pass


class _RichProgress:
    def __init__(self, progress: Any, task: Any):
        self.progress = progress
        self.task = task

    def advance(self, seconds: float, description: str) -> None:
        self.progress.update(self.task, advance=seconds, description=description)

    def describe(self, description: str) -> None:
        self.progress.update(self.task, description=description)

    def log(self, text: str) -> None:
        self.progress.console.print(text, highlight=False)


@contextlib.contextmanager
def progress_bar(total: float, plain: bool = False) -> Iterator[Any]:
    try:
        if plain:
            raise ImportError
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
    except ImportError:
        yield _PlainProgress(total)
        return
    columns = (SpinnerColumn(), TextColumn("{task.description:<34}"), BarColumn(), TaskProgressColumn(),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("starting", total=total)
        yield _RichProgress(progress, task)
        progress.update(task, completed=total, description="done")


@contextlib.contextmanager
def harness_affinity(layout: env.Layout) -> Iterator[None]:
    """The harness (sampling threads included) runs on the load generator's CPU, away from the servers."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    old = os.sched_getaffinity(0)
    try:
        if layout.load_cpus is not None:
            os.sched_setaffinity(0, {int(c) for c in layout.load_cpus.split(",")})
        yield
    finally:
        os.sched_setaffinity(0, old)


def format_sample(kind: str, s: dict[str, float]) -> str:
    extra = ""
    if s.get("non_2xx") or s.get("socket_errors"):
        extra = f"  [non-2xx {s['non_2xx']:.0f}, socket errors {s['socket_errors']:.0f}]"
    front = f" (front {s['front_us']:.0f})" if kind == "fastrr" else ""
    foreign = s.get("foreign_server_cores", math.nan)
    where = f" (on the server core {foreign:.2f})" if not math.isnan(foreign) else ""
    return (f"{kind:>6} {s['rps']:>8,.0f} req/s  p50 {s['p50']:.2f} p99 {s['p99']:.2f} ms  "
            f"{s['cpu_us']:.0f} µs/req{front}  other load {s['other_load_cores']:.2f}{where}{extra}")


def _portable_path(path: Path) -> str:
    """A path for the results file that says nothing about this machine: relative to the
    tree when inside it, else only its last component."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return f".../{path.name}"


def run(options: Options, log: Callable[[str], None] = print, plain_progress: bool = False) -> dict:
    """Runs the whole benchmark and returns the results document (see report.py for its use)."""
    env.ensure_packages(log)
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise env.SetupError(f"{tool} not found after installing packages")
    selected = apps_mod.select(options.apps)
    layouts = options.layouts()
    started = time.time()
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "started": _dt.datetime.fromtimestamp(started).astimezone().isoformat(timespec="seconds"),
        "options": {k: (_portable_path(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()},
        "environment": env.describe_machine(ROOT, servers.php_binary(), servers.fpm_binary()),
        "layouts": [{"mode": lay.mode, "description": lay.describe()} for lay in layouts],
        "points": [], "checks": [], "failures": [], "profiles": [],
    }
    total = options.estimate_seconds(len(selected), len(layouts), startup=0.0,
                                     n_hot=sum(1 for a in selected if a.hot_script is not None))
    with tempfile.TemporaryDirectory(prefix="fastrr-bench-") as tmpdir, procs.Reaper() as reaper, \
            progress_bar(total, plain_progress) as bar:
        session = _Session(options, doc, bar, reaper, Path(tmpdir), len(layouts) > 1, planned_seconds=total)
        doc["environment"]["code_fingerprint"] = env.code_fingerprint(session.code)
        selected = [app.rebased(session.code) for app in selected]
        for layout in layouts:
            (session.tmp / layout.mode).mkdir()
            with harness_affinity(layout):
                bar.log(f"[{layout.mode}] {layout.describe()}; {options.workers} fpm children / fastrr workers")
                for app in selected:
                    session.run_app(app, layout, profile_front=options.profile and layout is layouts[0])
        bar.describe("machine floor (bare C epoll server)")
        with harness_affinity(layouts[0]):
            doc["floor"] = session.floor(layouts[0])
        if options.profile:
            bar.describe("PHP side alone (worker fed from a file)")
            doc["php_side"] = session.php_side(selected, layouts[0])
    doc["finished"] = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    doc["duration_s"] = round(time.time() - started, 1)
    doc["environment"]["loadavg_end"] = list(os.getloadavg())
    doc["targets"] = evaluate_targets(doc["points"])
    return doc


class _Session:
    """One run's state: the results document, the progress bar, the temp dir and the reaper."""

    def __init__(self, options: Options, doc: dict, bar: Any, reaper: procs.Reaper, tmp: Path, show_mode: bool,
                 planned_seconds: float, snapshot: bool = True):
        self.options = options
        self.doc = doc
        self.bar = bar
        self.reaper = reaper
        self.tmp = tmp
        self.show_mode = show_mode
        self.ini = servers.write_php_ini(tmp)
        self.code = env.snapshot_code(ROOT, tmp / "code") if snapshot else ROOT
        self.per_measure = options.duration + options.warmup
        self.app_env: dict[tuple[str, str], dict[str, str]] = {}
        # Re-measuring disturbed samples may add at most 15 % to the planned time.
        self.retry_budget = 0.15 * planned_seconds

    def run_app(self, app: App, layout: env.Layout, profile_front: bool) -> None:
        """Both servers up, checked, measured at every connection count, stopped; a failure is recorded."""
        o, bar = self.options, self.bar
        base = self.tmp / layout.mode
        started: list[servers.Server] = []
        points_before = len(self.doc["points"])
        app_env: dict[str, str] = {}
        try:
            if app.prepare is not None and app.app_dir is not None:
                bar.describe(f"{app.name} · building caches")
                app_env = app.prepare(app.app_dir, base / f"app-{app.name}",
                                      [servers.php_binary(), "-c", str(self.ini)])
            self.app_env[(layout.mode, app.name)] = app_env
            bar.describe(f"{app.name} · starting servers")
            probe = self.code / "bench" / "hot" / "opcache.php"
            fpm = servers.start_fpm(app, base, self.ini, layout, o.workers, self.reaper, env=app_env,
                                    probe=probe if probe.is_file() else None)
            started.append(fpm)
            fastrr = servers.start_fastrr(app, base, self.ini, layout, o.workers, self.reaper,
                                          extra_config=o.fastrr_config(), code_root=self.code, app_env=app_env)
            started.append(fastrr)
            problems, same = check_app(app, fpm, fastrr)
            self.doc["checks"].append({"mode": layout.mode, "app": app.name, "problems": problems,
                                       "same_body": same})
            if problems:
                raise RuntimeError("; ".join(problems))
            if not same:
                bar.log(f"  note: {app.name}: fpm and fastrr bodies differ (both pass the check)")
            hot_runs = self.hot_runs(app, layout, app_env, base)
            hot_conns = 64 if 64 in o.connections else o.connections[0]
            for conns in o.connections:
                after = hot_runs.round if hot_runs is not None and conns == hot_conns else None
                samples = self.measure_point(app, layout, conns, {"fpm": fpm, "fastrr": fastrr}, after_round=after)
                self.doc["points"].append(point_record(layout, app, conns, samples))
            self.probe_opcache(app, layout, fpm, probe)
            if hot_runs:
                hot_runs.finish(self.doc["points"][points_before:], hot_conns)
            if profile_front:
                bar.describe(f"{app.name} · py-spy on fastrr's front")
                prof = profile.profile_front(fastrr.front[0], fastrr.url(app.path), app, layout,
                                             o.out_dir / "profiles")
                self.doc["profiles"].append(prof)
                bar.describe(f"{app.name} · perf on fastrr's front")
                on_cpu = profile.perf_front(fastrr.front[0], fastrr.url(app.path), app, layout,
                                            o.out_dir / "profiles")
                self.doc.setdefault("perf", []).append(on_cpu)
                for p in (prof, on_cpu):
                    if "error" in p:
                        bar.log(f"  profile: {p['error']}")
        except (RuntimeError, wrk.WrkError, OSError) as exc:
            self.doc["failures"].append({"mode": layout.mode, "app": app.name, "error": str(exc)})
            bar.log(f"  FAILED {layout.mode} {app.name}: {exc}")
            missing = len(o.connections) - (len(self.doc["points"]) - points_before)
            bar.advance(missing * self.per_measure * o.repeats * len(SERVER_KINDS), f"{app.name} · failed")
        finally:
            for server in reversed(started):
                for proc in reversed(server.processes):
                    self.reaper.stop(proc)

    def probe_opcache(self, app: App, layout: env.Layout, fpm: servers.Server, probe: Path) -> None:
        """opcache as php-fpm has it (a request through the app's pool) and as the fastrr workers'
        command line has it (php-cli with the same php.ini); both go into the results."""
        if not probe.is_file():
            return
        rec: dict[str, Any] = {"mode": layout.mode, "app": app.name}
        try:
            status, body = servers.request(fpm.port, app, path=servers.OPCACHE_PROBE_PATH)
            rec["fpm"] = json.loads(body) if status == 200 else {"error": f"HTTP {status}"}
        except (OSError, ValueError) as exc:
            rec["fpm"] = {"error": str(exc)}
        try:
            out = subprocess.run([*layout.server_prefix, *servers.worker_command(app, self.ini)[:-1], str(probe)],
                                 capture_output=True, text=True, timeout=30)
            rec["fastrr_cli"] = json.loads(out.stdout.strip().splitlines()[-1])
        except (OSError, ValueError, IndexError, subprocess.SubprocessError) as exc:
            rec["fastrr_cli"] = {"error": str(exc)}
        self.doc.setdefault("opcache", []).append(rec)
        for side in ("fpm", "fastrr_cli"):
            if not rec[side].get("enabled"):
                self.bar.log(f"  WARNING {app.name}: opcache is not on for {side}: {rec[side]}")

    def hot_runs(self, app: App, layout: env.Layout, app_env: dict[str, str], base: Path) -> hot.Runs | None:
        """The app's hot-ceiling runs for this turn, or None (no script, --no-hot, a wheel without bench/hot)."""
        if not self.options.hot or app.hot_script is None:
            return None
        if not app.hot_script.is_file():
            self.bar.log(f"  hot ceiling of {app.name} skipped: no bench/hot in this fastrr (a wheel without it)")
            return None
        return hot.Runs(self, app, layout, app_env, hot.write_frame(app, base))

    def measure_point(self, app: App, layout: env.Layout, conns: int, by_kind: dict[str, servers.Server],
                      after_round: Callable[[int], None] | None = None) -> dict[str, list[dict[str, float]]]:
        """`repeats` rounds, both servers back to back in each, the order alternating;
        `after_round(rep)` after each round (the hot-ceiling runs)."""
        o = self.options
        samples: dict[str, list[dict[str, float]]] = {k: [] for k in SERVER_KINDS}
        for rep in range(o.repeats):
            for kind in server_order(rep):
                what = f"{app.name} · c{conns} · {kind} · {rep + 1}/{o.repeats}"
                self.bar.describe(what)
                sample = self.measure_undisturbed(by_kind[kind], app, conns, layout)
                samples[kind].append(sample)
                self.bar.advance(self.per_measure, what)
                mode = f"{layout.mode} " if self.show_mode else ""
                self.bar.log(f"  {mode}{app.name:<6} c{conns:<3} {rep + 1}/{o.repeats} " + format_sample(kind, sample))
            if after_round is not None:
                after_round(rep)
        return samples

    def measure_undisturbed(self, server: servers.Server, app: App, conns: int, layout: env.Layout) -> dict:
        """One measurement; again (up to `retries` times, within the retry budget) while other
        processes took more than `max_foreign` of the server's core. Keeps the least disturbed."""
        o = self.options
        best = measure(server, app, conns, layout, o)
        attempts = 1
        while (best["foreign_server_cores"] > o.max_foreign and attempts <= o.retries
               and self.retry_budget >= self.per_measure):
            self.bar.log(f"    disturbed: other processes took {best['foreign_server_cores']:.0%} of the server "
                         "core; measuring again")
            t0 = time.monotonic()
            again = measure(server, app, conns, layout, o)
            self.retry_budget -= time.monotonic() - t0
            attempts += 1
            if again["foreign_server_cores"] < best["foreign_server_cores"]:
                best = again
        best["attempts"] = float(attempts)
        return best

    def floor(self, layout: env.Layout, connections: int = 64) -> dict[str, Any]:
        """bench/floor.c on the hello request, `repeats` times, as the servers were measured."""
        app = apps_mod.APPS["hello"]
        server = None
        try:
            binary = floor.build(self.tmp)
            server = floor.start(binary, app, layout, self.reaper, self.tmp / "floor.log")
            samples = [measure(server, app, connections, layout, self.options) for _ in range(self.options.repeats)]
        except (RuntimeError, wrk.WrkError, OSError) as exc:
            self.bar.log(f"  floor: {exc}")
            return {"error": str(exc)}
        finally:
            if server is not None:
                for proc in server.processes:
                    self.reaper.stop(proc)
        result = {"mode": layout.mode, "connections": connections, **floor.summary(samples)}
        self.bar.log(f"  floor (bare C epoll server, hello, c{connections}): {result['rps']:,.0f} req/s, "
                     f"{result['cpu_us']:.1f} µs/req")
        return result

    def php_side(self, apps: Sequence[App], layout: env.Layout) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for app in apps:
            try:
                out[app.name] = phpside.measure(app, self.ini, layout, 2000 if self.options.quick else 20000,
                                                env=self.app_env.get((layout.mode, app.name)))
            except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
                out[app.name] = {"error": str(exc)}
        return out

