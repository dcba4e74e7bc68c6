"""What `fastrr bench` does with its options (the click command itself is in fastrr/cli.py)."""

from __future__ import annotations

import datetime as _dt
import os
import sys
from pathlib import Path
from typing import Any

from fastrr import paths
from fastrr.benchmark import env, hot, jobs, jobs_broker, metrics_cost, plot, report, runner
from fastrr.benchmark import kv as kvbench
from fastrr.benchmark.apps import ROOT
from fastrr.benchmark.env import SetupError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _ints(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise SetupError(f"--connections: expected a comma list of numbers, got {text!r}") from None
    if not values or min(values) < 1:
        raise SetupError(f"--connections: expected positive numbers, got {text!r}")
    return values


def _console() -> Any:
    try:
        from rich.console import Console
    except ImportError:
        return None
    console = Console()
    if not console.is_terminal:  # a log file: do not squeeze the table into 80 columns
        console = Console(width=200)
    return console


def _say(console: Any, text: str) -> None:
    if console is not None:
        console.print(text, highlight=False)
    else:
        print(text, flush=True)


def compare_files(a: Path, b: Path, console: Any) -> int:
    doc_a, doc_b = report.load_json(a), report.load_json(b)
    rows, agree, total = report.compare(doc_a, doc_b)
    head = ["mode", "app", "conn", "server", "metric", "first", "second", "Δ median", "within noise"]
    fa, fb = (d["environment"].get("code_fingerprint") for d in (doc_a, doc_b))
    if fa != fb:
        _say(console, f"note: the runs measured different code (fingerprints {fa} and {fb}): differences "
                      "are not only noise")
    if console is None:
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        for row in [head, *rows]:
            print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    else:
        from rich.table import Table

        table = Table(*head, title=f"first: {a}  second: {b}", title_justify="left")
        for row in rows:
            table.add_row(*row, style=None if row[-1] == "yes" else "red")
        console.print(table)
    _say(console, f"{agree} of {total} figures agree within the noise the runs report "
                  "(min–max ranges overlap, or medians within the larger relative spread, at least 5%).")
    return EXIT_OK


def write_outputs(doc: dict, out_dir: Path, plots: bool, console: Any, history: bool = True) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    images: list[Path] = []
    if plots and doc.get("points"):
        if plot.available():
            images = plot.plot_all(doc, out_dir)
        else:
            _say(console, f"plots skipped: matplotlib is not installed; {plot.INSTALL_HINT}")
    doc["images"] = [p.name for p in images]
    report.write_json(doc, out_dir / "results.json")
    (out_dir / "results.md").write_text("# fastrr vs nginx + php-fpm\n\n" + report.markdown(doc))
    written += [out_dir / "results.json", out_dir / "results.md", *images]
    if history:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        kind = "quick" if doc["options"].get("quick") else "full"
        report.write_json(doc, paths.results_dir() / "history" / f"{stamp}-{kind}.json")
    return written


def write_jobs_outputs(doc: dict, out_dir: Path, plots: bool, console: Any, history: bool = True) -> list[Path]:
    """jobs.json, jobs.md and jobs.png: next to the HTTP run's files, never over them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images: list[Path] = []
    if plots and doc.get("jobs"):
        if plot.available():
            image = plot.plot_jobs(doc, out_dir / "jobs.png")
            images = [image] if image is not None else []
        else:
            _say(console, f"plots skipped: matplotlib is not installed; {plot.INSTALL_HINT}")
    doc["images"] = [p.name for p in images]
    report.write_json(doc, out_dir / "jobs.json")
    (out_dir / "jobs.md").write_text("# fastrr jobs: push → PHP consumer → ack\n\n" + report.jobs_markdown(doc))
    if history:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        kind = "quick" if doc["options"].get("quick") else "full"
        report.write_json(doc, paths.results_dir() / "history" / f"{stamp}-jobs-{kind}.json")
    return [out_dir / "jobs.json", out_dir / "jobs.md", *images]


def finish(doc: dict, out_dir: Path, *, plots: bool, console: Any, history: bool, update_readme: bool) -> bool:
    """Writes, shows and (when asked) puts into README.md one results document; True when it has failures.
    An HTTP document replaces the bench block, a jobs document the bench-jobs block, a kv document the
    bench-kv block: none touches the others."""
    if jobs_broker.is_broker(doc):
        written = jobs_broker.write_outputs(doc, out_dir, history=history, plots=plots)
        print(jobs_broker.plain_table(doc))
    elif kvbench.is_kv(doc):
        written = kvbench.write_outputs(doc, out_dir, history=history)
        print(kvbench.plain_table(doc))
    elif metrics_cost.is_metrics(doc):
        written = metrics_cost.write_outputs(doc, out_dir, history=history)
        print(metrics_cost.plain_table(doc))
    elif report.is_jobs(doc):
        written = write_jobs_outputs(doc, out_dir, plots, console, history=history)
        if console is not None:
            report.jobs_terminal(doc, console)
        else:
            print(report.jobs_plain_table(doc))
    else:
        written = write_outputs(doc, out_dir, plots, console, history=history)
        if console is not None:
            report.terminal(doc, console)
        else:
            print(report.plain_table(doc))
    for path in written:
        _say(console, f"wrote {_rel(path)}")
    if update_readme and not paths.in_checkout():
        _say(console, "unchanged: README.md (--update-readme writes a checkout's README; this fastrr is installed)")
    elif update_readme:
        readme = ROOT / "README.md"
        if jobs_broker.is_broker(doc):
            changed = jobs_broker.update_readme(readme, doc, _rel(out_dir))
            where = "the bench-jobs-broker markers"
        elif kvbench.is_kv(doc):
            changed = kvbench.update_readme(readme, doc)
            where = "the bench-kv markers"
        elif metrics_cost.is_metrics(doc):
            changed = metrics_cost.update_readme(readme, doc)
            where = "the bench-metrics markers"
        elif report.is_jobs(doc):
            changed = report.update_readme_jobs(readme, doc, _rel(out_dir))
            where = "the bench-jobs markers"
        else:
            changed = report.update_readme(readme, doc, _rel(out_dir))
            where = ("the bench-frameworks markers" if hot.frameworks_only(doc)
                     else "the bench markers" + (" and the bench-frameworks markers" if doc.get("hot") else ""))
        _say(console, f"{'updated' if changed else 'unchanged'}: {_rel(readme)} (section between {where})")
    return bool(doc.get("failures"))


def main(*, quick: bool = False, apps: str | None = None, connections: str | None = None,
         repeats: int | None = None, duration: int | None = None, warmup: int | None = None,
         workers: int | None = None, pin: str | None = None, threads: int | None = None, out: str | None = None,
         profile: bool = False, update_readme: bool = False, report_file: str | None = None,
         compare: tuple[str, str] | None = None, no_plots: bool = False, plain: bool = False,
         engine: str | None = None, relay: str | None = None, max_foreign: float | None = None,
         active_limit: str | None = None) -> int:
    console = None if plain else _console()
    if compare:
        return compare_files(Path(compare[0]), Path(compare[1]), console)
    done = {"plots": not no_plots, "console": console, "update_readme": update_readme}
    failed = False
    try:
        options = runner.Options.make(quick, apps=apps, connections=_ints(connections), repeats=repeats,
                                      duration=duration, warmup=warmup, workers=workers, pin=pin, threads=threads,
                                      out=Path(out) if out else None, profile=profile or None, engine=engine,
                                      relay=relay, max_foreign=max_foreign, active_limit=active_limit)
        if report_file:
            doc = report.load_json(Path(report_file))
            failed = finish(doc, Path(out) if out else Path(report_file).parent, history=False, **done)
            return EXIT_FAILED if failed else EXIT_OK
        options.apps, broker_drivers = jobs_broker.split_apps(options.apps)
        requested = options.apps
        options.apps, run_metrics = metrics_cost.split_apps(requested)
        options.apps, run_kv = kvbench.split_apps(options.apps)
        options.apps, run_grpc = report.split_side_app(options.apps, GRPC_NAME, in_all=False)
        if (run_kv or run_metrics or broker_drivers or run_grpc) and options.apps is None:  # those alone
            run_http = run_jobs = False
        else:
            options.apps, run_http, run_jobs = jobs.split_apps(options.apps)
        plan = jobs.Plan.from_options(options)
        kv_plan = kvbench.Plan.from_options(options)
        metrics_plan = metrics_cost.Plan.from_options(options)
        if run_http:
            try:
                runner.apps_mod.select(options.apps)  # unknown names fail before anything starts
            except ValueError as exc:
                raise ValueError(f"{exc}, {jobs.NAME}, {kvbench.NAME}, {metrics_cost.NAME} (or all)") from None
        if not plot.available() and not no_plots:
            _say(console, f"note: no PNG plots without matplotlib; {plot.INSTALL_HINT}")
        if run_http:
            selected = runner.apps_mod.select(options.apps)
            n_hot = sum(1 for a in selected if a.hot_script is not None)
            estimate = options.estimate_seconds(len(selected), len(options.layouts()), n_hot=n_hot)
            n_apps = len(selected)
            _say(console, f"fastrr bench{' --quick' if quick else ''}: {n_apps} apps × connections "
                          f"{','.join(map(str, options.connections))} × {options.repeats} repeats × 2 servers, "
                          f"{options.duration:g} s each (+{options.warmup:g} s warm-up): about "
                          f"{estimate / 60:.1f} min")
        if run_jobs:
            _say(console, f"fastrr bench{' --quick' if quick else ''} jobs: drivers {','.join(plan.drivers)} × "
                          f"consumers {','.join(map(str, plan.consumers))} × {plan.repeats} repeats of "
                          f"{plan.jobs:,} jobs: about {plan.estimate_seconds(len(options.layouts())) / 60:.1f} min")
        if run_kv:
            _say(console, f"fastrr bench{' --quick' if quick else ''} kv: php-redis, fastrr memory, fastrr redis × "
                          f"clients {','.join(map(str, kv_plan.clients))} × {kv_plan.repeats} repeats of "
                          f"{kv_plan.seconds:g} s: about "
                          f"{kv_plan.estimate_seconds(len(options.layouts())) / 60:.1f} min")
        if run_http:
            doc = runner.run(options, log=lambda text: _say(console, text), plain_progress=plain)
            failed |= finish(doc, options.out_dir, history=True, **done)
        if run_jobs:
            doc = jobs.run(options, log=lambda text: _say(console, text), plain_progress=plain, plan=plan)
            failed |= finish(doc, options.out_dir, history=True, **done)
        if run_metrics:
            doc = metrics_cost.run(options, log=lambda text: _say(console, text), plain_progress=plain,
                                   plan=metrics_plan)
            failed |= finish(doc, options.out_dir, history=True, **done)
        if run_kv:
            doc = kvbench.run(options, log=lambda text: _say(console, text), plain_progress=plain, plan=kv_plan)
            failed |= finish(doc, options.out_dir, history=True, **done)
        if run_grpc:
            failed |= run_grpc_bench(options, quick=quick, update_readme=bool(done.get("update_readme")),
                                     console=console)
        if broker_drivers:
            broker_plan = jobs_broker.Plan.from_options(options, broker_drivers)
            _say(console, f"fastrr bench{' --quick' if quick else ''} "
                          f"{','.join(jobs_broker.PREFIX + d for d in broker_drivers)}: {broker_plan.repeats} "
                          f"rounds of {broker_plan.jobs:,} jobs: about {broker_plan.estimate_seconds() / 60:.1f} min")
            doc = jobs_broker.run(options, broker_plan, log=lambda text: _say(console, text))
            failed |= finish(doc, options.out_dir, history=True, **done)
    except SetupError as exc:
        _say(console, f"error: {exc}")
        return EXIT_USAGE
    except ValueError as exc:
        _say(console, f"error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say(console, "interrupted: all servers stopped")
        return EXIT_INTERRUPTED
    return EXIT_FAILED if failed else EXIT_OK


GRPC_NAME = "grpc"
GRPC_BEGIN = ("<!-- bench-grpc:begin (generated by `fastrr bench --apps grpc --update-readme`; "
              "edit outside these markers) -->")
GRPC_END = "<!-- bench-grpc:end -->"
GRPC_HEADING = "### gRPC benchmark"


def run_grpc_bench(options: runner.Options, *, quick: bool, update_readme: bool, console: Any) -> bool:
    """`--apps grpc`: unary calls/s at 1, 16, 64 streams (h2load) next to the same pool's HTTP/1.1
    hello, in one run (fastrr/grpc/bench.py). The table is printed, written to grpc.md and, with
    --update-readme, put between the bench-grpc markers. True when it failed."""
    from fastrr.grpc import bench as grpcbench

    seconds = 2 if quick else max(1, int(options.duration))
    _say(console, f"fastrr bench grpc: streams 1,16,64 × {options.repeats} rounds × {seconds} s, gRPC and HTTP/1.1")
    try:
        rows = grpcbench.run([1, 16, 64], seconds, workers=2, rounds=options.repeats)
    except (OSError, SystemExit, RuntimeError) as exc:
        _say(console, f"grpc benchmark failed: {exc}")
        return True
    stamp = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")
    body = (f"Run {stamp} · {env.cpu_model()}, {os.cpu_count()} CPUs · server and its workers pinned to CPU 0, "
            f"h2load on CPU 1, 2 workers per pool, median of {options.repeats} rounds of {seconds} s.\n\n"
            + grpcbench.table(rows) + "\n")
    options.out_dir.mkdir(parents=True, exist_ok=True)
    (options.out_dir / "grpc.md").write_text("# fastrr gRPC vs HTTP/1.1 on one pool\n\n" + body)
    print(grpcbench.table(rows))
    if update_readme and paths.in_checkout():
        changed = report._write_block(ROOT / "README.md", GRPC_BEGIN, GRPC_END, body, heading=GRPC_HEADING)
        _say(console, f"{'updated' if changed else 'unchanged'}: README.md (section between the bench-grpc markers)")
    return False


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
