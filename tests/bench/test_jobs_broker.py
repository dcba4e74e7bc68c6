"""`fastrr bench --apps jobs-amqp` (fastrr/benchmark/jobs_broker.py): its option parsing
and tables from synthetic numbers, and one tiny real run on the machine's RabbitMQ
(fastrr with 4 PHP consumers, then 4 php-amqplib consumers: 300 jobs, one round, ~10 s)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from fastrr.benchmark import cli, jobs, jobs_broker, runner
from tests.jobs.brokers.common import broker_lock, ensure_service


@pytest.mark.parametrize(("given", "expected"), [
    (None, (None, ())),
    ("all", ("all", ())),
    ("jobs-amqp", (None, ("amqp",))),
    ("jobs,jobs-amqp,jobs-redis", ("jobs", ("amqp", "redis"))),
    ("hello, jobs-amqp", ("hello", ("amqp",))),
])
def test_split_apps(given, expected):
    assert jobs_broker.split_apps(given) == expected


def test_unknown_broker_is_refused():
    with pytest.raises(ValueError, match="jobs-amqp, jobs-redis"):
        jobs_broker.split_apps("jobs-rabbit")
    assert cli.main(apps="jobs-rabbit", plain=True) == cli.EXIT_USAGE


def test_plan_points_and_pipelines():
    plan = jobs_broker.Plan.from_options(runner.Options.make(quick=True), ("amqp", "redis"))
    assert plan.points() == [("amqp", "fastrr"), ("amqp", "php-amqplib"), ("redis", "fastrr")]
    assert plan.jobs == 2_000 and plan.repeats == 2 and plan.estimate_seconds() < 120
    pipe, top = jobs_broker.broker_pipeline("amqp", "u1")
    assert pipe["config"]["queue"] == "fastrr-bench-u1" and pipe["config"]["prefetch"] == jobs_broker.UNACKED
    assert pipe["config"]["durable"] and top == {"amqp": {"addr": jobs_broker.AMQP_ADDR}}
    pipe, top = jobs_broker.broker_pipeline("redis", "u1")
    assert pipe["driver"] == "redis" and "u1" in pipe["config"]["prefix"] and "redis" in top
    cfg = jobs.config("amqp", 4, 6001, ["php", "c.php"], Path("x.db"), *jobs_broker.broker_pipeline("amqp", "u2"))
    assert cfg["amqp"]["addr"] == jobs_broker.AMQP_ADDR
    assert cfg["jobs"]["pipelines"][jobs.PIPELINE]["config"]["queue"] == "fastrr-bench-u2"


def _point(side: str, rate: float) -> dict:
    samples = [{"jobs_per_s": rate, "seconds": 1.0, "php_us": 40.0, "server_us": 60.0 if side == "fastrr" else 0.0,
                "broker_us": 90.0, "cpu_us": 100.0, "push_ms": 10.0, "foreign_server_cores": 0.0,
                "other_load_cores": 0.0}]
    from fastrr.benchmark import stats

    return {"mode": "pinned", "driver": "amqp", "side": side, "consumers": 4, "samples": samples,
            "summary": {k: v.to_dict() for k, v in stats.summarize(samples, jobs_broker.METRICS).items()}}


def test_tables():
    doc = {"benchmark": jobs_broker.BENCHMARK, "plan": {"jobs": 5000, "repeats": 1}, "unacked": 40,
           "points": [_point("fastrr", 4000.0), _point("php-amqplib", 6000.0)], "failures": []}
    text = jobs_broker.plain_table(doc)
    assert "jobs-amqp  fastrr" in text and "4,000 (4,000–4,000)" in text and "none" in text
    md = jobs_broker.markdown(doc)
    assert "| pinned | jobs-amqp | php-amqplib | 4 | 6,000 (6,000–6,000) | 40.0 | none | 90.0 | 1 |" in md


def test_tiny_real_run(tmp_path):
    ensure_service("rabbitmq")
    options = runner.Options.make(quick=True, repeats=1, out=tmp_path)
    plan = jobs_broker.Plan(drivers=("amqp",), jobs=300, warmup_jobs=50, settle_jobs=20, repeats=1,
                            timeout=60.0, retries=0)
    lines: list[str] = []
    with broker_lock("rabbitmq"):  # not while another test process restarts RabbitMQ
        doc = jobs_broker.run(options, plan, log=lines.append)
    assert not doc["failures"], doc["failures"]
    sides = {p["side"]: p for p in doc["points"] if p["mode"] == doc["layouts"][0]["mode"]}
    assert set(sides) == {"fastrr", "php-amqplib"}
    for side, point in sides.items():
        [sample] = point["samples"]
        assert sample["jobs_per_s"] > 0 and sample["php_us"] > 0, (side, sample)
        assert not math.isnan(sample["broker_us"]), (side, sample)
    assert sides["fastrr"]["samples"][0]["server_us"] > 0 and sides["php-amqplib"]["samples"][0]["server_us"] == 0
    written = jobs_broker.write_outputs(doc, tmp_path, history=False)
    assert (tmp_path / "jobs-broker.md").read_text().count("jobs-amqp") >= 2
    assert [w.name for w in written] == ["jobs-broker.json", "jobs-broker.md", "jobs-broker.png"]
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n## Benchmark\n\ntext\n\n## next\n")
    assert jobs_broker.update_readme(readme, doc, "bench/results/none")
    text = readme.read_text()
    assert jobs_broker.HEADING in text and jobs_broker.BEGIN in text and "| jobs-amqp | php-amqplib |" in text
    assert text.index(jobs_broker.END) < text.index("## next")
    print(jobs_broker.plain_table(doc))
