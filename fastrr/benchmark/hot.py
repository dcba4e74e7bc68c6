"""The hot ceiling: each framework app booted once and the benchmark request served in a loop
inside one PHP process (bench/hot/<app>.php; the script's header says what it runs).

No server, no pipe, no HTTP: what PHP alone costs per request on one core, the most any server
could get out of that core with this app. `fastrr bench` runs it in the same run as the servers,
after both were stopped, on the server's core (pinned) with the same php.ini (opcache on, CLI
included) and the app's environment, `repeats` times per mode:

  worker  the fastrr worker's own per-request code over an in-memory relay (the target's ceiling:
          request decoding, the framework, terminate, the per-request resets, response encoding)
  bare    the framework's kernel alone (no fastrr code, no resets beyond the framework's own)

The runs are interleaved with the servers' measurements: after each round (fpm and fastrr back to
back) at 64 connections, one run per mode, with both servers up but idle, so that fastrr/hot is
paired per round like fastrr/fpm and a machine whose speed drifts (a shared VM) moves both alike.
Each run is checked like a server's answer (app.check on its last response). The report puts
fastrr's req/s next to it (fastrr/hot) and its CPU µs per call next to fastrr's per-request CPU.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastrr.benchmark import phpside, procs, stats
from fastrr.benchmark.apps import APPS, App
from fastrr.benchmark.env import Layout
from fastrr.benchmark.servers import php_binary

MODES = ("worker", "bare")
METRICS = ("ceiling_rps", "calls_per_s", "cpu_us", "wall_us", "calls", "foreign_server_cores", "boot_s")
# The ceiling is 1 s of CPU over the CPU µs per call: what one core gives PHP alone. The loop's
# wall-clock rate (calls_per_s) is the same on a quiet core, and lower when others took the core.
CEILING = "ceiling_rps"
WARMUP_CALLS = 300


def command(app: App, ini: Path, layout: Layout, mode: str, *, seconds: float = 0.0, iterations: int = 0,
            warmup: int = WARMUP_CALLS, frame: Path | None = None) -> list[str]:
    if app.hot_script is None:
        raise ValueError(f"{app.name} has no hot-ceiling script")
    argv = [*layout.server_prefix, php_binary(), "-c", str(ini), str(app.hot_script), "--mode", mode,
            "--warmup", str(warmup)]
    argv += ["--iterations", str(iterations)] if iterations else ["--seconds", f"{seconds:g}"]
    if frame is not None:
        argv += ["--frame", str(frame)]
    return argv


def parse(stdout: str) -> dict[str, Any]:
    """The script's one JSON line (the last line that parses as an object)."""
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict) and "calls_per_s" in doc:
                return doc
    raise RuntimeError(f"no result line in the hot script's output: {stdout[-300:]!r}")


def run_once(app: App, ini: Path, layout: Layout, mode: str, env: dict[str, str] | None = None, *,
             seconds: float = 0.0, iterations: int = 0, warmup: int = WARMUP_CALLS, frame: Path | None = None,
             timeout: float = 120.0) -> dict[str, Any]:
    """One run of the hot script; its result with `problem` set when the answer fails the app's check."""
    argv = command(app, ini, layout, mode, seconds=seconds, iterations=iterations, warmup=warmup, frame=frame)
    cpus = [int(c) for c in layout.server_cpus.split(",")] if layout.server_cpus else []
    core0 = procs.cpu_busy_seconds(cpus) if cpus else 0.0
    child0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    try:
        out = subprocess.run(argv, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"hot {app.name} ({mode}): no result after {timeout:.0f} s") from None
    core1 = procs.cpu_busy_seconds(cpus) if cpus else 0.0
    child1, elapsed = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic() - t0
    own = (child1.ru_utime - child0.ru_utime) + (child1.ru_stime - child0.ru_stime)  # the whole PHP process
    if out.returncode != 0:
        raise RuntimeError(f"hot {app.name} ({mode}) exited with {out.returncode}: {out.stderr.strip()[-600:]}")
    doc = parse(out.stdout)
    # pinned: what other processes took of the core while the PHP process ran (boot included)
    doc["foreign_server_cores"] = (max(0.0, (core1 - core0) - own) / elapsed if cpus and elapsed > 0
                                   else float("nan"))
    doc[CEILING] = 1e6 / float(doc["cpu_us"]) if float(doc.get("cpu_us") or 0) > 0 else float("nan")
    problem = app.check(int(doc.get("status", 0)), str(doc.get("body", "")).encode())
    if problem:
        doc["problem"] = problem
    doc["stderr_tail"] = out.stderr.strip()[-300:]
    return doc


def write_frame(app: App, directory: Path) -> Path:
    """The request frame fastrr's front sends for wrk's request, for the script's --frame."""
    path = directory / f"hot-{app.name}.frame"
    path.write_bytes(phpside.request_frame(app))
    return path


def summarize(app: App, layout_mode: str, seconds: float, samples: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The runs of each mode (one per repeat): samples, medians (min–max), opcache, problems."""
    out: dict[str, Any] = {"app": app.name, "mode": layout_mode, "seconds": seconds, "modes": {}}
    for mode, rows in samples.items():
        out["modes"][mode] = {
            "samples": rows,
            "summary": {k: v.to_dict() for k, v in stats.summarize(rows, METRICS).items()},
            "opcache": all(r.get("opcache") for r in rows), "jit": any(r.get("jit") for r in rows),
            "problems": [r["problem"] for r in rows if "problem" in r],
        }
    return out


def attach_hot(points: Sequence[dict], result: dict) -> None:
    """fastrr/hot and the hot figures into each point: paired per round at the connection count
    the hot runs went with (run i after round i), else each fastrr sample over the median."""
    worker = result["modes"].get("worker")
    if not worker:
        return
    ceiling = stats.Spread.from_dict(worker["summary"][CEILING]).median
    per_round = [s[CEILING] for s in worker["samples"]]
    hot_us = [s["cpu_us"] for s in worker["samples"]]
    hot_us_median = stats.Spread.from_dict(worker["summary"]["cpu_us"]).median
    for p in points:
        rates = [s["rps"] for s in p["servers"]["fastrr"]["samples"]]
        cpu = [s["cpu_us"] for s in p["servers"]["fastrr"]["samples"]]
        if p["connections"] == result.get("connections") and len(per_round) == len(rates):
            p["ratios"]["hot"] = stats.paired_ratios(rates, per_round).to_dict()
            p["ratios"]["hot_cpu"] = stats.paired_ratios(hot_us, cpu).to_dict()
        else:
            p["ratios"]["hot"] = stats.spread(stats.ratio(r, ceiling) for r in rates).to_dict()
            p["ratios"]["hot_cpu"] = stats.spread(stats.ratio(hot_us_median, c) for c in cpu).to_dict()
        p["hot"] = {mode: {k: m["summary"][k] for k in (CEILING, "calls_per_s", "cpu_us")}
                    for mode, m in result["modes"].items()}
        p["hot_rps"], p["hot_us"] = ceiling, hot_us_median  # the worker-mode medians, at a glance


class Runs:
    """One app's hot-ceiling runs during its turn in runner._Session (`session`): one run per mode after each measured
    round, with the servers up but idle; a failure is recorded once and ends them."""

    def __init__(self, session: Any, app: App, layout: Layout, app_env: dict[str, str], frame: Path):
        self.session, self.app, self.layout, self.app_env, self.frame = session, app, layout, app_env, frame
        self.samples: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
        self.error: str | None = None

    def round(self, rep: int) -> None:
        if self.error is not None:
            return
        o, bar = self.session.options, self.session.bar
        for mode in MODES:
            bar.describe(f"{self.app.name} · hot ceiling · {mode}")
            try:
                res = self.run_undisturbed(mode)
            except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
                self.error = str(exc)
                self.session.doc["failures"].append({"mode": self.layout.mode, "app": f"{self.app.name} (hot)",
                                                     "error": self.error})
                bar.log(f"  FAILED hot ceiling {self.app.name}: {exc}")
                return
            self.samples[mode].append(res)
            bar.advance(o.duration + 0.4, f"{self.app.name} · hot")
            problem = f"  PROBLEM: {res['problem']}" if "problem" in res else ""
            bar.log(f"  {self.app.name:<6} hot {mode:<6} {res[CEILING]:>8,.0f} req/s ceiling  {res['cpu_us']:.0f} "
                    f"µs/call (wall clock {res['calls_per_s']:,.0f} calls/s){problem}")

    def run_undisturbed(self, mode: str) -> dict[str, Any]:
        """One run; again (as measure_undisturbed, from the same retry budget) while other
        processes took more than `max_foreign` of the server core. Keeps the least disturbed."""
        o, session = self.session.options, self.session

        def once() -> dict[str, Any]:
            return run_once(self.app, session.ini, self.layout, mode, self.app_env, seconds=o.duration,
                            frame=self.frame)

        best, attempts = once(), 1
        while (best["foreign_server_cores"] > o.max_foreign and attempts <= o.retries
               and session.retry_budget >= o.duration):
            session.bar.log(f"    disturbed: other processes took {best['foreign_server_cores']:.0%} of the server "
                            "core; running the hot loop again")
            t0 = time.monotonic()
            again = once()
            session.retry_budget -= time.monotonic() - t0
            attempts += 1
            if again["foreign_server_cores"] < best["foreign_server_cores"]:
                best = again
        best["attempts"] = attempts
        return best

    def finish(self, points: Sequence[dict], conns: int) -> None:
        if not any(self.samples.values()):
            return
        result = summarize(self.app, self.layout.mode, self.session.options.duration, self.samples)
        result["connections"] = conns
        self.session.doc.setdefault("hot", []).append(result)
        attach_hot(points, result)


def estimate_seconds(n_apps: int, repeats: int, seconds: float, boot: float = 0.4) -> float:
    return n_apps * repeats * len(MODES) * (seconds + boot)


# ---- the report: one row per framework app, next to its servers -------------------------------

FRAMEWORKS_BEGIN = ("<!-- bench-frameworks:begin (generated by `fastrr bench --apps laravel,symfony,slim "
                    "--update-readme`; edit outside these markers) -->")
FRAMEWORKS_END = "<!-- bench-frameworks:end -->"
FRAMEWORKS_HEADING = "### Framework apps against their hot ceiling"
TABLE_HEAD = ("app", "fpm req/s", "fastrr req/s", "fastrr/fpm", "hot ceiling req/s (bare)", "fastrr/hot",
              "p99 ms fpm / fastrr", "PHP CPU µs/req fpm / fastrr / hot (bare)", "front CPU µs/req nginx / fastrr")


def _spread(doc: dict | None) -> stats.Spread:
    if not doc:
        return stats.NAN_SPREAD
    return stats.Spread.from_dict({k: (float("nan") if v is None else v) for k, v in doc.items()})


def _num(x: float, digits: int = 0) -> str:
    return "–" if x != x else f"{x:,.{digits}f}"  # x != x: NaN


def _summary(point: dict, kind: str, metric: str) -> stats.Spread:
    return _spread(point["servers"].get(kind, {}).get("summary", {}).get(metric))


def rows(doc: dict, connections: int = 64) -> list[dict[str, Any]]:
    """Per app with a hot ceiling (first layout): its point at `connections` (else the nearest) and the figures."""
    out = []
    for rec in doc.get("hot") or []:
        pts = [p for p in doc.get("points", []) if p["app"] == rec["app"] and p["mode"] == rec["mode"]]
        if not pts:
            continue
        p = min(pts, key=lambda q: abs(q["connections"] - connections))
        worker, bare = rec["modes"].get("worker", {}), rec["modes"].get("bare", {})

        def hot_metric(m: dict, key: str) -> float:
            return _spread(m.get("summary", {}).get(key)).median

        out.append({
            "app": rec["app"], "mode": rec["mode"], "connections": p["connections"],
            "fpm_rps": _summary(p, "fpm", "rps"), "fastrr_rps": _summary(p, "fastrr", "rps"),
            "ratio": _spread(p["ratios"].get("rps")), "fastrr_hot": _spread(p["ratios"].get("hot")),
            "hot_cpu": (_spread(p["ratios"]["hot_cpu"]).median if "hot_cpu" in p["ratios"]  # older documents:
                        else hot_metric(worker, "cpu_us") / _summary(p, "fastrr", "cpu_us").median),
            "hot_rps": _spread(worker.get("summary", {}).get(CEILING) or worker.get("summary", {}).get("calls_per_s")),
            "bare_rps": hot_metric(bare, CEILING if CEILING in bare.get("summary", {}) else "calls_per_s"),
            "hot_us": hot_metric(worker, "cpu_us"), "bare_us": hot_metric(bare, "cpu_us"),
            "p99_fpm": _summary(p, "fpm", "p99").median, "p99_fastrr": _summary(p, "fastrr", "p99").median,
            "p99_ratio": _spread(p["ratios"].get("p99")).median,
            "php_fpm": _summary(p, "fpm", "php_us").median, "php_fastrr": _summary(p, "fastrr", "php_us").median,
            "front_fpm": _summary(p, "fpm", "front_us").median,
            "front_fastrr": _summary(p, "fastrr", "front_us").median,
            "problems": [*worker.get("problems", []), *bare.get("problems", [])],
            "opcache": bool(worker.get("opcache")) and bool(bare.get("opcache", True)),
        })
    return out


def _cells(r: dict[str, Any]) -> list[str]:
    def rng(s: stats.Spread, fmt: Any) -> str:
        return fmt(s.median) if s.n < 2 else f"{fmt(s.median)} ({fmt(s.min)}–{fmt(s.max)})"

    def ratio(x: float) -> str:
        return "–" if x != x else f"{x:.2f}x"

    return [r["app"] + (" ⚠" if r["problems"] else ""), rng(r["fpm_rps"], _num), rng(r["fastrr_rps"], _num),
            rng(r["ratio"], ratio), f"{rng(r['hot_rps'], _num)} ({_num(r['bare_rps'])})",
            f"{rng(r['fastrr_hot'], ratio)} (CPU {ratio(r['hot_cpu'])})",
            f"{_num(r['p99_fpm'], 1)} / {_num(r['p99_fastrr'], 1)} ({ratio(r['p99_ratio'])})",
            f"{_num(r['php_fpm'])} / {_num(r['php_fastrr'])} / {_num(r['hot_us'])} ({_num(r['bare_us'])})",
            f"{_num(r['front_fpm'])} / {_num(r['front_fastrr'])}"]


def opcache_line(doc: dict) -> str:
    """What the opcache probes said, per side (the same for every app when all is well)."""
    parts = []
    for rec in doc.get("opcache") or []:
        fpm, cli = rec.get("fpm", {}), rec.get("fastrr_cli", {})
        parts.append(f"{rec['app']}: php-fpm {'on' if fpm.get('enabled') else 'OFF'} "
                     f"({fpm.get('cached_scripts', '?')} scripts cached, {fpm.get('hits', '?'):,} hits), "
                     f"fastrr workers' php-cli {'on' if cli.get('enabled') else 'OFF'}"
                     if isinstance(fpm.get("hits"), int) else f"{rec['app']}: probe failed ({fpm or cli})")
    return "; ".join(parts)


def markdown_lines(doc: dict) -> list[str]:
    rs = rows(doc)
    if not rs:
        return []
    conns = sorted({r["connections"] for r in rs})
    lines = [f"Framework apps against their hot ceiling ({rs[0]['mode']}, {', '.join(map(str, conns))} connections; "
             "medians with min–max): the hot ceiling is the app booted once and the same request served in a "
             "loop in one PHP process on the server's core, through the fastrr worker's own code over an "
             "in-memory relay (bench/hot/; in brackets: the framework's kernel alone, no fastrr code and no "
             "per-request resets), as req/s = 1 s of CPU ÷ its CPU µs per call; one run after each round, "
             "so fastrr/hot = fastrr's req/s over it, paired per round; in brackets the same by CPU: the hot "
             "loop's µs per request over fastrr's whole server tree's (front and workers), which other load on "
             "the core does not lower (req/s it does: on a busy machine the first is pessimistic). "
             "PHP CPU µs/req: php-fpm children, fastrr's PHP workers, the hot loop; front: nginx, fastrr's "
             "process.", "",
             "| " + " | ".join(TABLE_HEAD) + " |", "|---" + "|---:" * (len(TABLE_HEAD) - 1) + "|"]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rs]
    lines.append("")
    op = opcache_line(doc)
    if op:
        lines += [f"opcache (asked inside php-fpm, and of the workers' php-cli with the bench php.ini): {op}.", ""]
    for r in rs:
        for problem in r["problems"][:1]:
            lines.append(f"- ⚠ hot {r['app']}: {problem}")
    return lines


def plain_lines(doc: dict) -> list[str]:
    rs = rows(doc)
    if not rs:
        return []
    table = [list(TABLE_HEAD), *[_cells(r) for r in rs]]
    widths = [max(len(row[i]) for row in table) for i in range(len(TABLE_HEAD))]
    return ["hot ceiling:"] + ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                         for i, (c, w) in enumerate(zip(row, widths, strict=True)))
                               for row in table]


PLOT_NAME = "hot.png"


def frameworks_only(doc: dict) -> bool:
    """The run measured only apps that have a hot ceiling (`--apps laravel,symfony,slim`)."""
    ran = {p["app"] for p in doc.get("points", [])}
    return bool(ran) and all(name in APPS and APPS[name].hot_script is not None for name in ran)


def readme_body(doc: dict, image_prefix: str, environment: str, targets: Sequence[str]) -> str:
    """The bench-frameworks block: environment, the table, the hot-ceiling targets, the plot."""
    lines = markdown_lines(doc)
    if not lines:
        return ""
    body = f"Environment: {environment}\n\n" + "\n".join(lines).rstrip() + "\n"
    names = {r["app"] for r in rows(doc)}
    ours = [t for t in targets if any(t.lower().startswith(n) for n in names)]
    if ours:
        body += "\nTargets:\n\n" + "".join(f"- {t}\n" for t in ours)
    if PLOT_NAME in doc.get("images", []):
        body += f"\n![hot]({image_prefix}{PLOT_NAME})\n"
    return body
