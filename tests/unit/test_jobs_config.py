"""The jobs section and pipeline options (fastrr/jobs/config.py)."""

from __future__ import annotations

import pytest

from fastrr.config import ConfigError
from fastrr.config.schema import build_config
from fastrr.jobs.config import pipeline_from_values

BASE = {"version": "3", "server": {"command": "php w.php"}}


def test_defaults_as_roadrunner() -> None:
    cfg = build_config({**BASE, "jobs": {"pipelines": {"a": {"driver": "memory"},
                                                       "b": {"driver": "boltdb"}}}}, "/tmp").sections["jobs"]
    assert (cfg.pipeline_size, cfg.timeout, cfg.consume, cfg.max_payload_size) == (1_000_000, 60.0, [], 10 << 20)
    a, b = cfg.pipelines["a"], cfg.pipelines["b"]
    assert (a.priority, a.options, a.max_attempts, a.dead_letter) == (10, {"prefetch": 100_000}, 10, "")
    assert b.options == {"prefetch": 1000, "file": "rr.db", "permissions": 0o755}


def test_options_at_top_level_or_under_config() -> None:
    cfg = build_config({**BASE, "jobs": {"pipelines": {
        "a": {"driver": "memory", "priority": 3, "config": {"prefetch": 5, "priority": 7}}}}}, "/tmp")
    pipe = cfg.sections["jobs"].pipelines["a"]
    assert (pipe.priority, pipe.options["prefetch"]) == (3, 5)  # the top level wins, as RoadRunner


def test_unknown_option_warns_in_yaml_but_fails_a_declare() -> None:
    cfg = build_config({**BASE, "jobs": {"pipelines": {"a": {"driver": "memory", "config": {"tube": "x"}}}}},
                       "/tmp")
    assert any("jobs.pipelines.a.tube: unknown option for the memory driver" in w for w in cfg.warnings)
    with pytest.raises(ConfigError, match=r"^jobs.Declare\[a\].tube: unknown option"):
        pipeline_from_values("a", {"driver": "memory", "tube": "x"}, "jobs.Declare[a]", strict=True)


@pytest.mark.parametrize("value,expected", [(0o644, 0o644), ("493", 0o755), ("0644", 0o644), (" 420 ", 0o644)])
def test_boltdb_permissions(value: object, expected: int) -> None:
    pipe = pipeline_from_values("a", {"driver": "boltdb", "permissions": value}, "p", strict=True)
    assert pipe.options["permissions"] == expected


def test_declare_values_are_strings() -> None:
    pipe = pipeline_from_values("a", {"driver": "boltdb", "name": "a", "priority": "3", "prefetch": "20",
                                      "file": "x.db", "max_attempts": "2"}, "d", strict=True)
    assert (pipe.priority, pipe.max_attempts, pipe.options["prefetch"], pipe.options["file"]) == (3, 2, 20, "x.db")


@pytest.mark.parametrize("values,message", [
    ({"driver": "boltdb", "permissions": "rw"}, "d.permissions: expected file permissions"),
    ({"driver": "memory", "max_attempts": "0"}, "d.max_attempts: expected at least 1"),
    ({"driver": "memory", "dead_letter": "a"}, "d.dead_letter: a pipeline cannot be its own"),
    ({"driver": ""}, "d.driver: required key is missing"),
])
def test_bad_pipeline_values(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        pipeline_from_values("a", values, "d", strict=True)
    assert str(exc.value).startswith(message)
