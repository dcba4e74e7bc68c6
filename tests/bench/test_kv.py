"""The kv benchmark (fastrr/benchmark/kv.py): its report from synthetic numbers, and one tiny
real run (real fastrr, real php-redis, the local Redis) that must leave nothing behind."""

from __future__ import annotations

import os

import psutil
import pytest

from fastrr.benchmark import cli, kv, report, runner


def sample(p50: float, calls: float = 10_000.0, fastrr: float = 50.0, redis: float = 0.0) -> dict[str, float]:
    return {"calls": calls, "seconds": 1.0, "calls_per_s": calls, "p50_us": p50, "p99_us": p50 * 2,
            "max_us": p50 * 3, "php_us": 30.0, "fastrr_us": fastrr, "redis_us": redis, "server_us": fastrr + redis}


def make_doc() -> dict:
    points = []
    for way, p50, fastrr, redis in (("php-redis", 50.0, 0.0, 25.0), ("fastrr memory", 75.0, 50.0, 0.0),
                                    ("fastrr redis", 200.0, 150.0, 25.0)):
        for clients in (1, 2):
            samples = [sample(p50 * f, fastrr=fastrr, redis=redis) for f in (0.9, 1.0, 1.1)]
            points.append({"mode": "pinned", "way": way, "clients": clients, "samples": samples,
                           "summary": {k: v.to_dict() for k, v in
                                       kv.stats.summarize(samples, kv.METRICS).items()}})
    return {"schema": runner.SCHEMA, "benchmark": "kv", "started": "2026-01-01T10:00:00+00:00",
            "options": {"quick": False, "pin": "pinned", "repeats": 3},
            "plan": {"clients": [1, 2], "seconds": 3.0, "repeats": 3},
            "environment": {"cpu": "Test CPU", "cpus": 2, "php": "PHP 8.2.0", "fastrr": "abc123"},
            "layouts": [{"mode": "pinned", "description": "server on CPU 0, the PHP clients on CPU 1"}],
            "kv": points, "failures": []}


@pytest.mark.parametrize(("given", "expected"), [
    (None, (None, False)), ("kv", (None, True)), ("hello,kv", ("hello", True)), ("all", ("all", True)),
    ("hello,jobs", ("hello,jobs", False)),
])
def test_split_apps(given, expected):
    assert kv.split_apps(given) == expected


def test_markdown_gives_ratios_to_php_redis_with_as_many_clients():
    text = kv.markdown(make_doc())
    assert "| php-redis | 1 | 10,000 | 50.0 | 100.0 | 30.0 | – | 25.0 | 1.00x |" in text
    assert "| fastrr memory | 2 | 10,000 | 75.0 | 150.0 | 30.0 | 50.0 | – | 1.50x |" in text
    assert "| fastrr redis | 1 | 10,000 | 200.0 | 400.0 | 30.0 | 150.0 | 25.0 | 4.00x |" in text
    assert "Test CPU" in text and "PHP 8.2.0" in text
    assert "fastrr memory" in kv.plain_table(make_doc())


def test_readme_block_is_its_own_and_kept_between_runs(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n## Benchmark\n\nintro\n\n" + report.JOBS_BEGIN + "\njobs table\n" + report.JOBS_END
                      + "\n\n## Layout\n")
    assert kv.update_readme(readme, make_doc())
    text = readme.read_text()
    assert "### KV benchmark" in text and kv.BEGIN in text and "jobs table" in text
    assert text.index(kv.END) < text.index("## Layout")
    assert not kv.update_readme(readme, make_doc())  # same document: nothing changes


def test_report_of_a_kv_file_writes_kv_files_only(tmp_path):
    path = tmp_path / "in" / "kv.json"
    path.parent.mkdir()
    report.write_json(make_doc(), path)
    out = tmp_path / "out"
    assert cli.main(report_file=str(path), out=str(out), plain=True) == cli.EXIT_OK
    assert sorted(p.name for p in out.iterdir()) == ["kv.json", "kv.md"]


@pytest.mark.timeout(120)
def test_tiny_real_run_measures_all_three_ways_and_leaves_nothing(tmp_path):
    redis_pid = kv.redis_pid()
    affinity = os.sched_getaffinity(redis_pid)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    options = runner.Options.make(quick=True, repeats=1, out=tmp_path)
    doc = kv.run(options, log=lambda _: None, plain_progress=True, plan=kv.Plan(clients=(1,), seconds=0.3, repeats=1))
    assert doc["failures"] == []
    ways = {p["way"]: p["samples"][0] for p in doc["kv"]}
    assert set(ways) == {"php-redis", "fastrr memory", "fastrr redis"}
    for way, s in ways.items():
        assert s["calls"] > 100 and s["p50_us"] > 0 and s["php_us"] > 0, (way, s)
    assert ways["fastrr memory"]["fastrr_us"] > 0 and ways["fastrr memory"]["redis_us"] == 0
    assert ways["fastrr redis"]["fastrr_us"] > 0 and ways["fastrr redis"]["redis_us"] > 0
    assert ways["php-redis"]["fastrr_us"] == 0 and ways["php-redis"]["redis_us"] > 0
    assert os.sched_getaffinity(redis_pid) == affinity  # Redis's CPUs put back
    left = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not left, f"processes left running: {left}"
