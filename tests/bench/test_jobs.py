"""The jobs benchmark's logic (fastrr/benchmark/jobs.py) and its reports, from synthetic numbers.

Nothing here starts a server or times anything."""

from __future__ import annotations

import json
import math

import pytest

from fastrr.benchmark import cli, env, jobs, plot, procs, report, runner
from fastrr.jobs import proto

from .conftest import make_doc


def jobs_sample(rate: float, php: float = 9.0, server: float = 25.0, retried: float = 0.0) -> dict[str, float]:
    n = 10_000
    cpu = {"php": php * n / 1e6, "server": server * n / 1e6, "php_ticks": php * n / 1e6,
           "server_ticks": server * n / 1e6}
    return jobs.make_sample(n, n / rate, 0.07, cpu, {"count": n, "p50": 0.17, "p99": 0.28, "max": 0.3},
                            {"retried": retried, "polls": 14, "switches": 2 * n}, {"core": None, "busy": None})


def make_jobs_doc(scale: float = 1.0) -> dict:
    points = []
    for driver, base in (("memory", 30_000), ("boltdb", 10_000)):
        for consumers in (1, 2, 4):
            rate = base * scale / (1 + 0.1 * consumers)
            samples = [jobs_sample(rate * f) for f in (0.98, 1.0, 1.02)]
            points.append(jobs.point_record("pinned", driver, consumers, samples))
    return {
        "schema": runner.SCHEMA, "benchmark": "jobs", "started": "2026-01-01T10:00:00+00:00",
        "options": {"quick": False, "pin": "pinned", "repeats": 3},
        "plan": {"drivers": ["memory", "boltdb"], "consumers": [1, 2, 4], "jobs": 10_000, "payload_bytes": 32,
                 "warmup_jobs": 10_000, "settle_jobs": 1_000, "repeats": 3, "timeout": 120.0},
        "environment": {"date": "2026-01-01T10:00:00+00:00", "cpu": "Test CPU", "cpus": 2, "os": "Debian",
                        "kernel": "6.1", "python": "3.11", "php": "PHP 8.2.0", "fastrr": "abc123",
                        "code_fingerprint": "f00", "jobs_file_fs": "ext4"},
        "layouts": [{"mode": "pinned", "description": "server on CPU 0, wrk on CPU 1"}],
        "jobs": points, "failures": [],
    }


@pytest.mark.parametrize(("given", "expected"), [
    (None, (None, True, False)),               # the default run stays HTTP only
    ("", (None, True, False)),
    ("all", ("all", True, True)),
    ("jobs", (None, False, True)),
    ("hello,jobs", ("hello", True, True)),
    ("jobs, slim ,hello", ("slim,hello", True, True)),
    ("hello,slim", ("hello,slim", True, False)),
])
def test_split_apps(given, expected):
    assert jobs.split_apps(given) == expected


def test_plan_follows_options_and_fits_its_budget():
    quick = jobs.Plan.from_options(runner.Options.make(quick=True))
    full = jobs.Plan.from_options(runner.Options.make())
    assert quick.repeats == 2 and full.repeats == 3
    assert jobs.Plan.from_options(runner.Options.make(repeats=5)).repeats == 5
    assert full.points() == [(d, c) for d in ("memory", "boltdb") for c in (1, 2, 4)]
    assert full.jobs == 10_000 and full.payload_bytes == 32
    assert quick.estimate_seconds() <= 120 and full.estimate_seconds() <= 180


def test_schedule_interleaves_rounds_alternating_the_order():
    assert jobs.schedule(3, 3) == [(0, 0), (0, 1), (0, 2), (1, 2), (1, 1), (1, 0), (2, 0), (2, 1), (2, 2)]
    assert jobs.schedule(6, 1) == [(0, i) for i in range(6)]
    assert jobs.schedule(2, 0) == []


def test_payload_and_batch():
    assert len(jobs.payload(32)) == 32 and json.loads(jobs.payload(32))
    assert len(jobs.payload(1)) == 8
    req = proto.PushBatchRequest()
    req.ParseFromString(jobs.batch(50, jobs.payload(32)))
    assert len(req.jobs) == 50
    assert len({j.id for j in req.jobs}) == 50
    assert all(j.options.pipeline == jobs.PIPELINE and j.payload == jobs.payload(32) and j.job for j in req.jobs)


def test_config_is_jobs_only(tmp_path):
    mem = jobs.config("memory", 2, 6001, ["php", "consumer.php"], tmp_path / "jobs.db")
    assert "http" not in mem
    assert mem["rpc"] == {"listen": "tcp://127.0.0.1:6001"}
    assert mem["jobs"]["consume"] == [jobs.PIPELINE]
    assert mem["jobs"]["pool"] == {"num_workers": 2, "max_jobs": 0}
    assert mem["jobs"]["pipelines"][jobs.PIPELINE] == {"driver": "memory"}
    bolt = jobs.config("boltdb", 4, 6001, ["php", "consumer.php"], tmp_path / "jobs.db")
    assert bolt["jobs"]["pipelines"][jobs.PIPELINE]["config"] == {"file": str(tmp_path / "jobs.db")}


def test_counters_reads_the_pipelines_row():
    rows = [{"Pipeline": "other", "Acked": 7},
            {"Pipeline": jobs.PIPELINE, "Pushed": 10, "Acked": 9, "Retried": 1, "Active": 0, "Reserved": 1}]
    assert jobs.counters(rows) == {"pushed": 10, "acked": 9, "retried": 1, "active": 0, "reserved": 1}
    with pytest.raises(RuntimeError, match="no pipeline"):
        jobs.counters(rows[:1])


def test_next_poll_stays_within_bounds_and_shrinks_near_the_end():
    assert jobs.next_poll(0, 10_000, 0.0) == jobs.POLL_MIN * 5
    early = jobs.next_poll(100, 10_000, 0.01)
    late = jobs.next_poll(9_990, 10_000, 0.5)
    assert early == jobs.POLL_MAX and late == jobs.POLL_MIN
    assert jobs.POLL_MIN <= jobs.next_poll(5_000, 10_000, 0.1) <= jobs.POLL_MAX


def test_make_sample_per_job_figures():
    cpu = {"php": 0.09, "server": 0.25, "php_ticks": 0.1, "server_ticks": 0.25, "precise": 1.0}
    s = jobs.make_sample(10_000, 0.5, 0.07, cpu, {"count": 10_000, "p50": 0.2, "p99": 0.4, "max": 0.45},
                         {"retried": 3, "polls": 14, "switches": 20_000}, {"core": 0.36, "busy": 0.6, "producer": 0.06})
    assert s["jobs_per_s"] == 20_000
    assert s["php_us"] == pytest.approx(9.0) and s["server_us"] == pytest.approx(25.0)
    assert s["cpu_us"] == pytest.approx(34.0) and s["php_us_ticks"] == pytest.approx(10.0)
    assert s["p50_ms"] == pytest.approx(200) and s["p99_ms"] == pytest.approx(400) and s["max_ms"] == 450
    assert s["push_ms"] == pytest.approx(70) and s["server_cores"] == pytest.approx(0.68)
    assert s["retried"] == 3 and s["polls"] == 14 and s["ctx_switches"] == 2 and s["cpu_precise"] == 1
    assert s["foreign_server_cores"] == pytest.approx(0.04)  # (0.36 - 0.34) / 0.5
    assert s["other_load_cores"] == pytest.approx(0.4)  # (0.6 - 0.34 - 0.06) / 0.5
    unpinned = jobs.make_sample(1, 0.1, 0.0, cpu, {}, {}, {"core": None, "busy": None})
    assert math.isnan(unpinned["foreign_server_cores"]) and math.isnan(unpinned["other_load_cores"])


def test_cpu_delta_precise_unless_the_consumers_changed():
    before = {"tree": 1.0, "front": 0.6, "workers": [10, 11], "php": 0.3, "server": 0.61}
    after = {"tree": 1.5, "front": 0.8, "workers": [10, 11], "php": 0.6, "server": 0.815}
    d = jobs.cpu_delta(before, after)
    assert d["precise"] == 1.0
    assert d["php"] == pytest.approx(0.3) and d["server"] == pytest.approx(0.205)
    assert d["php_ticks"] == pytest.approx(0.3) and d["server_ticks"] == pytest.approx(0.2)
    replaced = jobs.cpu_delta(before, {**after, "workers": [10, 12]})  # a consumer restarted: ticks
    assert replaced["precise"] == 0.0 and replaced["server"] == pytest.approx(0.2)
    assert jobs.cpu_delta({**before, "php": None}, after)["precise"] == 0.0


def test_point_record_summarizes():
    rec = jobs.point_record("pinned", "memory", 2, [jobs_sample(r) for r in (9_000, 10_000, 12_000)])
    assert (rec["driver"], rec["consumers"], rec["mode"]) == ("memory", 2, "pinned")
    assert rec["summary"]["jobs_per_s"]["median"] == pytest.approx(10_000)
    assert rec["summary"]["jobs_per_s"]["min"] == pytest.approx(9_000)


def test_filesystem_takes_the_longest_mount(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/vda / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\ntmpfs /tmpx tmpfs rw 0 0\n")
    assert env.filesystem(tmp_path.parent / "x", str(mounts)) in ("ext4", "tmpfs")
    from pathlib import Path

    assert env.filesystem(Path("/tmp/a/b"), str(mounts)) == "tmpfs"
    assert env.filesystem(Path("/tmpa"), str(mounts)) == "ext4"
    assert env.filesystem(Path("/x"), str(tmp_path / "none")) == "?"


def test_run_seconds_sums_threads(tmp_path):
    for tid, ns in ((100, 1_500_000_000), (101, 250_000_000)):
        (tmp_path / "100" / "task" / str(tid)).mkdir(parents=True)
        (tmp_path / "100" / "task" / str(tid) / "schedstat").write_text(f"{ns} 5 7\n")
    assert procs.run_seconds(100, str(tmp_path)) == pytest.approx(1.75)
    assert procs.run_seconds(999, str(tmp_path)) is None
    (tmp_path / "7" / "task" / "7").mkdir(parents=True)
    (tmp_path / "7" / "task" / "7" / "schedstat").write_text("0 0 0\n")  # the kernel keeps no sum
    assert procs.run_seconds(7, str(tmp_path)) is None


def test_jobs_markdown_and_tables():
    doc = make_jobs_doc()
    md = report.jobs_markdown(doc)
    assert "Test CPU" in md and "the producer on CPU 1" in md and "boltdb file on ext4" in md
    assert "| memory | 1 | 27,273 (26,727–27,818) |" in md
    assert "| 9.0 (9.0–9.0) | 25.0 (25.0–25.0) | 170 | 280 |" in md
    text = report.jobs_plain_table(doc)
    assert "27,273" in text and "boltdb" in text
    from rich.console import Console

    console = Console(width=200, record=True)
    report.jobs_terminal(doc, console)
    assert "PHP CPU µs/job" in console.export_text()
    doc["jobs"][0]["summary"]["retried"]["max"] = 2
    assert report.jobs_row(doc["jobs"][0], True)[0] == "memory ⚠"


README = """# x

intro

## Benchmark

text

{http}

closing words

## Later section

more
"""


def test_readme_jobs_block_goes_under_benchmark_and_leaves_the_http_block(tmp_path):
    readme = tmp_path / "README.md"
    http_block = f"{report.README_BEGIN}\nthe HTTP table\n{report.README_END}"
    readme.write_text(README.format(http=http_block))
    assert report.update_readme_jobs(readme, make_jobs_doc(), "bench/results/full")
    first = readme.read_text()
    assert http_block in first and first.count(report.JOBS_BEGIN) == 1
    assert first.index("closing words") < first.index(report.JOBS_HEADING) < first.index("## Later section")
    assert "![jobs]" not in first  # no images in a document without them
    doc = make_jobs_doc(scale=2.0)
    doc["images"] = ["jobs.png"]
    assert report.update_readme_jobs(readme, doc, "bench/results/full")
    second = readme.read_text()
    assert second.count(report.JOBS_BEGIN) == 1 and second.count(report.JOBS_HEADING) == 1
    assert "54,545" in second and "![jobs](bench/results/full/jobs.png)" in second and http_block in second
    assert not report.update_readme_jobs(readme, doc, "bench/results/full")
    assert report.update_readme(readme, make_doc(), "bench/results/full")  # the HTTP block alone changes
    third = readme.read_text()
    assert "the HTTP table" not in third and "54,545" in third and "3.10x" in third


def test_readme_jobs_block_without_a_benchmark_section():
    out = report.replace_block("# x\n", report.JOBS_BEGIN, report.JOBS_END, "body\n", report.JOBS_HEADING)
    assert out.startswith("# x\n\n## Benchmark\n\n### Jobs benchmark\n\n" + report.JOBS_BEGIN)


def test_jobs_plot_is_written(tmp_path):
    assert plot.available()
    path = plot.plot_jobs(make_jobs_doc(), tmp_path / "jobs.png")
    assert path is not None and path.read_bytes()[:4] == b"\x89PNG"
    assert plot.plot_jobs({**make_jobs_doc(), "jobs": []}, tmp_path / "none.png") is None


def test_compare_covers_jobs_points():
    rows, agree, total = report.compare(make_jobs_doc(), make_jobs_doc())
    assert total == 18 and agree == total
    rows, agree, total = report.compare(make_jobs_doc(), make_jobs_doc(scale=1.5))
    assert any(r[-1] == "NO" and r[4] == "jobs_per_s" for r in rows)


def test_report_of_a_jobs_file_writes_jobs_files_only(tmp_path):
    src = tmp_path / "saved" / "jobs.json"
    report.write_json(make_jobs_doc(), src)
    out = tmp_path / "out"
    assert cli.main(report_file=str(src), out=str(out), plain=True, no_plots=True) == cli.EXIT_OK
    assert sorted(p.name for p in out.iterdir()) == ["jobs.json", "jobs.md"]
    assert "27,273" in (out / "jobs.md").read_text()


def test_report_of_an_http_file_writes_http_files_only(tmp_path):
    src = tmp_path / "saved" / "results.json"
    report.write_json(make_doc(), src)
    out = tmp_path / "out"
    assert cli.main(report_file=str(src), out=str(out), plain=True, no_plots=True) == cli.EXIT_OK
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "results.md"]


class _FakeServer:
    """run_batch answers canned samples: the settle batches get {}, the measured ones the next figure."""

    def __init__(self, foreign: list[float]):
        self.foreign = foreign
        self.calls: list[int] = []

    def run_batch(self, body: bytes, n: int, timeout: float) -> dict[str, float]:
        self.calls.append(n)
        if n != 10_000:
            return {}
        return {"foreign_server_cores": self.foreign.pop(0), "other_load_cores": 0.0, "jobs_per_s": 1.0}


def test_disturbance_is_the_larger_of_on_core_and_anywhere():
    assert jobs.disturbance({"foreign_server_cores": 0.1, "other_load_cores": 0.3}) == 0.3
    assert jobs.disturbance({"foreign_server_cores": math.nan, "other_load_cores": 0.2}) == 0.2
    assert jobs.disturbance({}) == 0.0


def test_measure_undisturbed_runs_again_and_keeps_the_least_disturbed():
    plan = jobs.Plan(jobs=10_000, settle_jobs=5, max_foreign=0.15, retries=2)
    server = _FakeServer([0.5, 0.2, 0.3])
    lines: list[str] = []
    best = jobs.measure_undisturbed(server, plan, b"", b"", lines.append)  # type: ignore[arg-type]
    assert best["foreign_server_cores"] == 0.2 and best["attempts"] == 3
    assert server.calls == [5, 10_000] * 3 and len(lines) == 2
    quiet = _FakeServer([0.01])
    assert jobs.measure_undisturbed(quiet, plan, b"", b"", lines.append)["attempts"] == 1  # type: ignore[arg-type]
    unpinned = _FakeServer([math.nan])
    assert jobs.measure_undisturbed(unpinned, plan, b"", b"", lines.append)["attempts"] == 1  # type: ignore[arg-type]
