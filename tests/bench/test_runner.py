"""The plan (alternating order, budgets), options and app checks."""

from __future__ import annotations

import json
import zlib

import pytest

from fastrr.benchmark import apps, runner


def test_quick_and_full_fit_their_time_budgets():
    n_apps = len(apps.APPS)
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
    assert len(apps.select(None)) == len(apps.select("all")) == 4
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


def test_every_app_file_exists():
    for app in apps.APPS.values():
        assert app.fpm_script.is_file(), app.fpm_script
        assert app.worker_script.is_file(), app.worker_script
        assert (apps.WRK_SCRIPTS / app.wrk_script).is_file()
