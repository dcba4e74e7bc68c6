"""The plan (alternating order, budgets), options and app checks."""

from __future__ import annotations

import json
import zlib

import pytest

from fastrr.benchmark import apps, runner


def test_quick_and_full_fit_their_time_budgets():
    n_apps = len(apps.select(None))
    quick = runner.Options.make(quick=True)
    full = runner.Options.make()
    assert quick.estimate_seconds(n_apps, 1) <= 120
    assert full.estimate_seconds(n_apps, 1) <= 600
    assert full.repeats == 3 and full.connections == (8, 64, 256)


def test_explicit_options_win_over_mode_defaults(tmp_path):
    o = runner.Options.make(quick=True, repeats=5, duration=None, out=tmp_path)
    assert o.repeats == 5 and o.duration == 1.0 and o.out_dir == tmp_path
    assert runner.Options.make().out_dir.name == "full"
    assert [lay.mode for lay in runner.Options.make(pin="unpinned").layouts()] == ["unpinned"]


def test_server_order_alternates_between_repeats():
    assert [runner.server_order(r) for r in range(3)] == [("fpm", "fastrr"), ("fastrr", "fpm"), ("fpm", "fastrr")]


def test_app_selection():
    assert [a.name for a in apps.select("slim,hello")] == ["slim", "hello"]
    assert [a.name for a in apps.select(None)] == ["hello", "slim", "api", "upload"]
    assert [a.name for a in apps.select("all")] == ["hello", "slim", "api", "upload", "legacy", "laravel",
                                                    "symfony"]
    with pytest.raises(ValueError, match="unknown app"):
        apps.select("hello,nope")


def test_app_checks():
    hello = apps.APPS["hello"]
    assert hello.check(200, b'{"message":"Hello, World!"}') is None
    assert "status 500" in hello.check(500, b"oops")
    assert "not JSON" in hello.check(200, b"<html>")
    up = apps.APPS["upload"]
    body = apps.upload_body()
    good = json.dumps({"received": len(body), "crc32": f"{zlib.crc32(body):08x}"}).encode()
    assert up.check(200, good) is None
    assert "unexpected" in up.check(200, b'{"received": 5, "crc32": "0"}')
    payload = apps.APPS["api"].request_body()
    assert 4500 <= len(payload) <= 5500 and json.loads(payload)["items"]
    legacy = apps.APPS["legacy"]
    assert legacy.sapi == "cgi"
    assert "not the books page" in legacy.check(200, b"<h1>music (15)</h1>")


def test_every_app_file_exists():
    for app in apps.APPS.values():
        assert app.fpm_script.is_file(), app.fpm_script
        assert app.worker_script.is_file(), app.worker_script
        assert (apps.WRK_SCRIPTS / app.wrk_script).is_file()
        if app.hot_script is not None:
            assert app.hot_script.is_file(), app.hot_script


class _Bar:
    def __init__(self):
        self.lines = []

    def log(self, text):
        self.lines.append(text)

    def describe(self, text):
        pass

    def advance(self, seconds, text):
        pass


def _session(tmp_path, budget, **opts):
    options = runner.Options.make(duration=1, warmup=0, **opts)
    return runner._Session(options, {}, _Bar(), None, tmp_path, False, planned_seconds=budget, snapshot=False)


def test_disturbed_measurements_are_repeated_and_the_calmest_kept(tmp_path, monkeypatch):
    foreign = iter([0.6, 0.3, 0.05, 0.0])
    monkeypatch.setattr(runner, "measure", lambda *a: {"foreign_server_cores": next(foreign), "rps": 1.0})
    session = _session(tmp_path, budget=1000, retries=2, max_foreign=0.15)
    sample = session.measure_undisturbed(None, apps.APPS["hello"], 8, None)
    assert sample["foreign_server_cores"] == 0.05 and sample["attempts"] == 3
    assert len(session.bar.lines) == 2


def test_retries_stop_when_the_budget_is_spent(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "measure", lambda *a: {"foreign_server_cores": 0.9})
    session = _session(tmp_path, budget=0, retries=5)
    assert session.measure_undisturbed(None, apps.APPS["hello"], 8, None)["attempts"] == 1


def test_unpinned_samples_are_never_repeated(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "measure", lambda *a: {"foreign_server_cores": float("nan")})
    session = _session(tmp_path, budget=1000)
    assert session.measure_undisturbed(None, apps.APPS["hello"], 8, None)["attempts"] == 1
