"""PNG plots of a results document (matplotlib, the optional `bench` extra).

rps.png      req/s per app and connection count, fpm vs fastrr, min–max whiskers, ratio on top
latency.png  latency percentiles per app (log scale), one line per server × connections
cpu.png      server CPU µs per request at one connection count, split front / PHP
hot.png      the framework apps: fpm, fastrr and the hot ceiling (worker code / kernel alone), req/s
jobs.png     the jobs benchmark: jobs/s by consumers, one line per driver; CPU µs per job beside it
"""

from __future__ import annotations

import math
from pathlib import Path

from fastrr.benchmark import hot
from fastrr.benchmark.report import jobs_summary, summary

COLORS = {"fpm": "#d9822b", "fastrr": "#2b6cb0"}
LIGHT = {"fpm": "#f3c48f", "fastrr": "#9cc3ea"}
LABELS = {"fpm": "nginx + php-fpm", "fastrr": "fastrr"}
MARKERS = ["o", "s", "^", "D", "v"]
PERCENTILES = ("p50", "p75", "p90", "p99", "p99.9")

INSTALL_HINT = "pip install 'fastrr[bench]' (or: pip install matplotlib)"


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _subtitle(doc: dict) -> str:
    e = doc["environment"]
    o = doc["options"]
    return (f"{e.get('date', '')[:10]} · {e.get('cpu', '?')}, {e.get('cpus', '?')} CPUs · {e.get('php', '')} · "
            f"{o['workers']} workers/children · median of {o['repeats']} × {o['duration']:g} s, whiskers min–max")


def _apps(points: list[dict]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for p in points:
        seen.setdefault(p["app"], p.get("title", p["app"]))
    return list(seen.items())


def _modes(doc: dict) -> list[str]:
    out: list[str] = []
    for p in doc["points"]:
        if p["mode"] not in out:
            out.append(p["mode"])
    return out


def _size(n_apps: int, n_rows: int) -> tuple[float, float]:
    return max(3.6 * n_apps + 0.6, 8.0), 3.4 * n_rows + 1.1


def _frame(fig, axes, doc: dict, title: str, ncol: int) -> None:  # type: ignore[no-untyped-def]
    """Title and subtitle on top, one legend for all panels at the bottom."""
    height = fig.get_size_inches()[1]
    rows = 1 + (len(axes[0][0].get_legend_handles_labels()[1]) - 1) // ncol
    top = 1 - 0.55 / height  # room for the two text lines, in figure coordinates
    bottom = (0.1 + 0.2 * rows) / height
    fig.suptitle(title, x=0.01, y=1 - 0.12 / height, ha="left", va="top", fontweight="bold")
    fig.text(0.01, 1 - 0.42 / height, _subtitle(doc), fontsize=8, color="#555", va="top")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=ncol, frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, bottom, 1, top))


def plot_rps(doc: dict, path: Path) -> Path:
    plt = _plt()
    modes = _modes(doc)
    apps = _apps(doc["points"])
    fig, axes = plt.subplots(len(modes), len(apps), figsize=_size(len(apps), len(modes)), squeeze=False)
    width = 0.38
    for r, mode in enumerate(modes):
        for c, (app, title) in enumerate(apps):
            ax = axes[r][c]
            pts = [p for p in doc["points"] if p["mode"] == mode and p["app"] == app]
            xs = list(range(len(pts)))
            for k, kind in enumerate(("fpm", "fastrr")):
                s = [summary(p, kind, "rps") for p in pts]
                med = [x.median for x in s]
                err = [[max(0.0, x.median - x.min) for x in s], [max(0.0, x.max - x.median) for x in s]]
                ax.bar([x + (k - 0.5) * width for x in xs], med, width, color=COLORS[kind], label=LABELS[kind],
                       yerr=err, capsize=3, error_kw={"elinewidth": 1, "ecolor": "#333"})
            for x, p in zip(xs, pts, strict=True):
                ratio = p["ratios"]["rps"]["median"]
                top = max(summary(p, k, "rps").max for k in ("fpm", "fastrr"))
                if ratio is not None and not math.isnan(ratio) and not math.isnan(top):
                    ax.annotate(f"{ratio:.2f}×", (x, top), xytext=(0, 4), textcoords="offset points",
                                ha="center", fontsize=9, fontweight="bold", color="#1a365d")
            ax.set_xticks(xs, [f"{p['connections']} conn" for p in pts])
            ax.set_title(title if len(modes) == 1 else f"{title} ({mode})", fontsize=11)
            ax.margins(y=0.15)
            ax.grid(axis="y", alpha=0.3)
            ax.set_axisbelow(True)
            ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v >= 1000 else f"{v:g}"))
            if c == 0:
                ax.set_ylabel("requests / s (higher is better)")
    _frame(fig, axes, doc, "Throughput: fastrr vs nginx + php-fpm (ratio = fastrr / fpm)", ncol=2)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_latency(doc: dict, path: Path) -> Path:
    plt = _plt()
    modes = _modes(doc)
    apps = _apps(doc["points"])
    fig, axes = plt.subplots(len(modes), len(apps), figsize=_size(len(apps), len(modes)), squeeze=False)
    for r, mode in enumerate(modes):
        for c, (app, title) in enumerate(apps):
            ax = axes[r][c]
            pts = [p for p in doc["points"] if p["mode"] == mode and p["app"] == app]
            for i, p in enumerate(pts):
                for kind in ("fpm", "fastrr"):
                    ys = [summary(p, kind, m).median for m in PERCENTILES]
                    ax.plot(range(len(PERCENTILES)), ys, color=COLORS[kind], marker=MARKERS[i % len(MARKERS)],
                            linestyle="-" if kind == "fastrr" else "--", linewidth=1.4, markersize=5,
                            label=f"{LABELS[kind]}, {p['connections']} conn")
            ax.set_yscale("log")
            ax.set_xticks(range(len(PERCENTILES)), [m.replace("p", "") + "%" for m in PERCENTILES])
            ax.set_title(title if len(modes) == 1 else f"{title} ({mode})", fontsize=11)
            ax.grid(alpha=0.3, which="both")
            ax.set_xlabel("percentile")
            if c == 0:
                ax.set_ylabel("latency, ms (log; lower is better)")
    _frame(fig, axes, doc, "Latency percentiles (solid: fastrr, dashed: nginx + php-fpm)", ncol=3)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_cpu(doc: dict, path: Path, connections: int = 64) -> Path | None:
    plt = _plt()
    mode = _modes(doc)[0]
    pts = [p for p in doc["points"] if p["mode"] == mode and p["connections"] == connections]
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(1.9 * len(pts) + 2.5, 4.2))
    width = 0.38
    for k, kind in enumerate(("fpm", "fastrr")):
        xs = [i + (k - 0.5) * width for i in range(len(pts))]
        front = [summary(p, kind, "front_us").median for p in pts]
        php = [summary(p, kind, "php_us").median for p in pts]
        front_label = "nginx" if kind == "fpm" else "fastrr front (Python + C)"
        php_label = "php-fpm children" if kind == "fpm" else "fastrr PHP workers"
        ax.bar(xs, front, width, color=LIGHT[kind], label=front_label, edgecolor=COLORS[kind])
        ax.bar(xs, php, width, bottom=front, color=COLORS[kind], label=php_label)
        for x, f, ph in zip(xs, front, php, strict=True):
            if not (math.isnan(f) or math.isnan(ph)):
                ax.annotate(f"{f + ph:.0f}", (x, f + ph), xytext=(0, 3), textcoords="offset points", ha="center",
                            fontsize=8)
    ax.set_xticks(range(len(pts)), [p.get("title", p["app"]) for p in pts], fontsize=9)
    ax.set_ylabel("server CPU µs per request (lower is better)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(frameon=False, fontsize=8, ncol=2)
    ax.margins(y=0.12)
    ax.set_title(f"Where the server CPU goes ({mode}, {connections} connections)", loc="left", fontweight="bold")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_all(doc: dict, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    if not doc.get("points"):
        return []
    paths = [plot_rps(doc, out_dir / "rps.png"), plot_latency(doc, out_dir / "latency.png")]
    cpu = plot_cpu(doc, out_dir / "cpu.png")
    if cpu is not None:
        paths.append(cpu)
    hot_png = plot_hot(doc, out_dir / hot.PLOT_NAME)
    if hot_png is not None:
        paths.append(hot_png)
    return paths


def plot_hot(doc: dict, path: Path) -> Path | None:
    """Per framework app: req/s of nginx + php-fpm, fastrr and the hot ceiling (the worker's code in
    a loop, and the kernel alone), on a log scale; fastrr/hot and fastrr/fpm written above."""
    rows = hot.rows(doc)
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(2.6 * len(rows) + 2.5, 4.4))
    bars = (("fpm_rps", "nginx + php-fpm", COLORS["fpm"]), ("fastrr_rps", "fastrr", COLORS["fastrr"]),
            ("hot_rps", "hot ceiling (worker code, in-process, CPU-bound)", "#2f855a"),
            ("bare_rps", "hot, kernel alone", "#9ae6b4"))
    width = 0.2
    for k, (key, label, color) in enumerate(bars):
        xs = [i + (k - 1.5) * width for i in range(len(rows))]
        values = [r[key].median if hasattr(r[key], "median") else r[key] for r in rows]
        ax.bar(xs, values, width, color=color, label=label)
    for i, r in enumerate(rows):
        top = max(v for v in (r["hot_rps"].median, r["bare_rps"], r["fastrr_rps"].median) if not math.isnan(v))
        text = (f"fastrr/hot {r['fastrr_hot'].median:.2f}x\nfastrr/fpm {r['ratio'].median:.1f}x"
                if not math.isnan(r["fastrr_hot"].median) else "")
        ax.annotate(text, (i, top), xytext=(0, 6), textcoords="offset points", ha="center", fontsize=8,
                    fontweight="bold", color="#1a365d")
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)), [f"{r['app']} (c{r['connections']})" for r in rows])
    ax.set_ylabel("requests / s, one core (log; higher is better)")
    ax.grid(axis="y", alpha=0.3, which="both")
    ax.set_axisbelow(True)
    ax.margins(y=0.25)
    ax.legend(frameon=False, fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    ax.set_title(f"Framework apps: servers against the hot ceiling ({rows[0]['mode']})", loc="left",
                 fontweight="bold")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


JOB_COLORS = {"memory": "#2b6cb0", "boltdb": "#2f855a"}


def plot_jobs(doc: dict, path: Path) -> Path | None:
    """Left: jobs/s by number of consumers, one line per driver (and layout), whiskers min–max.
    Right: CPU µs per job of the PHP consumers (solid) and fastrr's process (dashed)."""
    points = doc.get("jobs", [])
    if not points:
        return None
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 4.4))
    modes = list(dict.fromkeys(p["mode"] for p in points))
    drivers = list(dict.fromkeys(p["driver"] for p in points))
    for mode in modes:
        for i, driver in enumerate(drivers):
            pts = sorted((p for p in points if p["mode"] == mode and p["driver"] == driver),
                         key=lambda p: p["consumers"])
            if not pts:
                continue
            xs = [p["consumers"] for p in pts]
            label = driver if len(modes) == 1 else f"{driver} ({mode})"
            color = JOB_COLORS.get(driver, f"C{i}")
            style = "-" if mode == modes[0] else ":"
            rate = [jobs_summary(p, "jobs_per_s") for p in pts]
            err = [[max(0.0, s.median - s.min) for s in rate], [max(0.0, s.max - s.median) for s in rate]]
            left.errorbar(xs, [s.median for s in rate], yerr=err, color=color, linestyle=style, marker="o",
                          capsize=3, label=label)
            for x, s in zip(xs, rate, strict=True):
                if not math.isnan(s.median):
                    left.annotate(f"{s.median / 1000:.1f}k", (x, s.median), xytext=(6, 4),
                                  textcoords="offset points", ha="left", fontsize=8, color=color)
            right.plot(xs, [jobs_summary(p, "php_us").median for p in pts], color=color, linestyle="-",
                       marker="o", label=f"{label}: PHP consumers")
            right.plot(xs, [jobs_summary(p, "server_us").median for p in pts], color=color, linestyle="--",
                       marker="s", label=f"{label}: fastrr process")
    consumers = sorted({p["consumers"] for p in points})
    for ax in (left, right):
        ax.set_xticks(consumers, [str(c) for c in consumers])
        ax.set_xlabel("PHP consumers (jobs.pool.num_workers)")
        ax.grid(alpha=0.3)
        ax.set_axisbelow(True)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.12)  # room for the labels above the points
        ax.legend(frameon=False, fontsize=8)
    left.set_ylabel("jobs / s, push to all acked (higher is better)")
    left.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v >= 1000 else f"{v:g}"))
    right.set_ylabel("CPU µs per job (lower is better)")
    e, plan = doc["environment"], doc.get("plan", {})
    fig.suptitle("fastrr jobs: push → PHP consumer → ack", x=0.01, ha="left", fontweight="bold")
    lay = "; ".join(x["description"].replace("wrk", "producer") for x in doc.get("layouts", []))
    fig.text(0.01, 0.905, f"{e.get('date', '')[:10]} · {e.get('cpu', '?')}, {e.get('cpus', '?')} CPUs · {lay} · "
             f"{e.get('php', '')} · {plan.get('jobs', 0):,} jobs of {plan.get('payload_bytes', '?')} B in one "
             f"PushBatch · median of {plan.get('repeats', '?')}, whiskers min–max", fontsize=8, color="#555")
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_jobs_broker(doc: dict, path: Path) -> Path | None:
    """jobs on a broker: left, jobs/s per pipeline and side (whiskers min–max); right, CPU µs
    per job stacked: PHP consumers, the server (fastrr; none for plain PHP consumers), the broker."""
    points = doc.get("points", [])
    if not points:
        return None
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 4.4))
    labels = [f"{p['driver']}\n{p['side']}" + (f" ({p['mode']})" if len({q['mode'] for q in points}) > 1 else "")
              for p in points]
    xs = list(range(len(points)))
    rate = [jobs_summary(p, "jobs_per_s") for p in points]
    colors = ["C0" if p["side"] == "fastrr" else "C1" for p in points]
    left.bar(xs, [s.median for s in rate], color=colors,
             yerr=[[max(0.0, s.median - s.min) for s in rate], [max(0.0, s.max - s.median) for s in rate]],
             capsize=3)
    for x, s in zip(xs, rate, strict=True):
        if not math.isnan(s.median):
            left.annotate(f"{s.median:,.0f}", (x, s.median), xytext=(0, 4), textcoords="offset points",
                          ha="center", fontsize=8)
    left.set_ylabel("jobs / s, push to all acked (higher is better)")
    bottom = [0.0] * len(points)
    for metric, name, color in (("php_us", "PHP consumers", "#4C72B0"), ("server_us", "server (fastrr)", "#DD8452"),
                                ("broker_us", "broker", "#55A868")):
        values = []
        for p in points:
            v = jobs_summary(p, metric).median
            values.append(0.0 if math.isnan(v) or (metric == "server_us" and p["side"] != "fastrr") else v)
        right.bar(xs, values, bottom=bottom, color=color, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    right.set_ylabel("CPU µs per job (lower is better)")
    right.legend(frameon=False, fontsize=8)
    for ax in (left, right):
        ax.set_xticks(xs, labels, fontsize=8)
        ax.grid(alpha=0.3, axis="y")
        ax.set_axisbelow(True)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.12)
    e, plan = doc["environment"], doc.get("plan", {})
    fig.suptitle("fastrr jobs on a broker: push → PHP consumer → ack", x=0.01, ha="left", fontweight="bold")
    fig.text(0.01, 0.905, f"{e.get('date', '')[:10]} · {e.get('cpu', '?')}, {e.get('cpus', '?')} CPUs · "
             f"{e.get('php', '')} · {plan.get('jobs', 0):,} jobs per batch, {plan.get('consumers', '?')} PHP "
             f"consumers · median of {plan.get('repeats', '?')}, whiskers min–max", fontsize=8, color="#555")
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
