"""The framework apps of the benchmark (bench/apps/laravel, bench/apps/symfony) and the hot-ceiling
scripts (bench/hot/): the apps answer their route under a real fastrr and a real nginx + php-fpm,
with opcache on for both; each hot script serves 50 requests in-process and reports sane figures;
the report's hot table, targets and README block. Bounded: one server pair per app, 50 calls per
hot run, no timing asserted."""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastrr.benchmark import apps, env, frameworks, hot, plot, procs, report, runner, servers

from .conftest import make_doc

LAYOUT = env.Layout("unpinned")
needs_laravel = pytest.mark.skipif(not Path("/usr/share/php/Illuminate/autoload.php").exists(),
                                   reason="Debian's php-laravel-framework is not installed")


@pytest.fixture(scope="module")
def ini(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return servers.write_php_ini(tmp_path_factory.mktemp("ini"))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, ini: Path) -> dict[str, dict[str, str]]:
    """Each framework app's caches, built once for the module, and its environment."""
    out = {}
    for name in ("laravel", "symfony"):
        app = apps.APPS[name]
        assert app.prepare is not None and app.app_dir is not None
        out[name] = app.prepare(app.app_dir, tmp_path_factory.mktemp(name), [servers.php_binary(), "-c", str(ini)])
    return out


@pytest.fixture
def reaper() -> Iterator[procs.Reaper]:
    with procs.Reaper() as r:
        yield r


@needs_laravel
@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["laravel", "symfony"])
def test_app_answers_its_route_under_fastrr_and_fpm_with_opcache_on(name, tmp_path, ini, prepared, reaper):
    app = apps.APPS[name]
    app_env = prepared[name]
    probe = apps.HOT_DIR / "opcache.php"
    fpm = servers.start_fpm(app, tmp_path, ini, LAYOUT, 2, reaper, env=app_env, probe=probe)
    fastrr = servers.start_fastrr(app, tmp_path, ini, LAYOUT, 2, reaper, app_env=app_env)
    try:
        problems, same = runner.check_app(app, fpm, fastrr)
        assert problems == [] and same
        status, body = servers.request(fastrr.port, app)
        doc = json.loads(body)
        assert status == 200 and doc["app"] == f"fastrr-bench-{name}" and doc["price"]["currency"] == "EUR"
        status, body = servers.request(fpm.port, app, path=servers.OPCACHE_PROBE_PATH)
        probed = json.loads(body)
        assert status == 200 and probed["sapi"] == "fpm-fcgi" and probed["enabled"] and probed["cached_scripts"] > 50
        status, _ = servers.request(fastrr.port, app, path="/api/item/x")  # the route wants digits
        assert status == 404
    finally:
        for server in (fastrr, fpm):
            for proc in server.processes:
                reaper.stop(proc)


def test_fastrr_workers_php_cli_has_opcache_on(ini):
    out = subprocess.run([servers.php_binary(), "-c", str(ini), str(apps.HOT_DIR / "opcache.php")],
                         capture_output=True, text=True, timeout=30)
    probed = json.loads(out.stdout)
    assert probed["sapi"] == "cli" and probed["enabled"] and probed["enable_cli"] and not probed["jit"]


def _hot_apps() -> list[str]:
    return [name for name, app in apps.APPS.items() if app.hot_script is not None]


@needs_laravel
@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", hot.MODES)
@pytest.mark.parametrize("name", _hot_apps())
def test_hot_script_serves_50_requests_in_process(name, mode, tmp_path, ini, prepared):
    app = apps.APPS[name]
    frame = tmp_path / "frame"
    frame.write_bytes(hot.phpside.request_frame(app))
    res = hot.run_once(app, ini, LAYOUT, mode, prepared.get(name), iterations=50, warmup=5, frame=frame)
    assert "problem" not in res, res["problem"]
    assert res["app"] == name and res["mode"] == mode and res["status"] == 200
    assert res["calls"] == 50 and res["warmup"] == 5
    assert res["calls_per_s"] > 0 and 0 < res["cpu_us"] < 1e6 and res["wall_s"] > 0
    assert res["ceiling_rps"] == pytest.approx(1e6 / res["cpu_us"])
    assert res["opcache"] is True and res["jit"] is False


def test_hot_script_rejects_bad_options(ini):
    app = apps.APPS["slim"]
    with pytest.raises(RuntimeError, match="--mode must be worker or bare"):
        hot.run_once(app, ini, LAYOUT, "fast", iterations=5)
    argv = hot.command(app, ini, LAYOUT, "worker", iterations=5)
    out = subprocess.run([*argv, "--frame", "/nonexistent/frame"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "cannot read a frame" in out.stderr
    with pytest.raises(ValueError, match="no hot-ceiling script"):
        hot.command(apps.APPS["hello"], ini, LAYOUT, "worker", seconds=1)


def test_hot_result_failing_the_app_check_is_flagged(ini):
    # Slim's hot script asked for another path: a 404, which the app's check rejects.
    app = apps.APPS["slim"]
    argv = hot.command(app, ini, LAYOUT, "bare", iterations=3, warmup=0)
    out = subprocess.run([*argv, "--path", "/nope"], capture_output=True, text=True, timeout=30)
    doc = hot.parse(out.stdout)
    assert doc["status"] == 404 and app.check(doc["status"], doc["body"].encode()) is not None
    with pytest.raises(RuntimeError, match="no result line"):
        hot.parse("PHP Fatal error: boom\n")


def test_prepare_fails_clearly(tmp_path, ini):
    php = [servers.php_binary(), "-c", str(ini)]
    with pytest.raises(RuntimeError, match="Laravel config/route caches: .*build-caches.php not found"):
        frameworks.prepare_laravel(tmp_path / "no-app", tmp_path / "work", php)
    with pytest.raises(RuntimeError, match="Symfony cache warm-up: .*warmup.php not found"):
        frameworks.prepare_symfony(tmp_path / "no-app", tmp_path / "work2", php)
    # an app whose build script fails: its exit code and its error
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "build-caches.php").write_text("<?php fwrite(STDERR, 'no bootstrap here'); exit(3);")
    with pytest.raises(RuntimeError, match="build-caches.php exited with 3: no bootstrap here"):
        frameworks.prepare_laravel(broken, tmp_path / "work3", php)


def test_fpm_pool_env_refuses_what_it_cannot_quote(tmp_path, reaper):
    with pytest.raises(RuntimeError, match="cannot pass X"):
        servers.start_fpm(apps.APPS["hello"], tmp_path, tmp_path / "php.ini", LAYOUT, 1, reaper,
                          env={"X": 'a"b'})


def test_framework_apps_are_not_in_the_default_run_and_go_to_their_own_results_dir(tmp_path):
    assert "laravel" not in apps.DEFAULT_APPS and "symfony" not in apps.DEFAULT_APPS
    assert runner.Options.make(apps="laravel,symfony,slim").out_dir.name == "frameworks"
    assert runner.Options.make(quick=True, apps="laravel").out_dir.name == "frameworks-quick"
    assert runner.Options.make(apps="laravel,hello").out_dir.name == "full"
    assert runner.Options.make(apps="laravel", out=tmp_path).out_dir == tmp_path
    full = runner.Options.make(apps="laravel,symfony")
    assert full.estimate_seconds(2, 1, n_hot=2) > full.estimate_seconds(2, 1)
    # the default run measures Slim's hot ceiling too and still fits its budgets
    n_hot = sum(1 for a in apps.select(None) if a.hot_script is not None)
    assert n_hot == 1
    assert runner.Options.make().estimate_seconds(len(apps.DEFAULT_APPS), 1, n_hot=n_hot) <= 600
    assert runner.Options.make(quick=True).estimate_seconds(len(apps.DEFAULT_APPS), 1, n_hot=n_hot) <= 120


# ---- the report, from a synthetic document ----------------------------------------------------

def _hot_record(app: str, worker_rps: float, bare_rps: float) -> dict:
    def mode(rps: float) -> dict:
        rows = [{"ceiling_rps": rps * f, "calls_per_s": rps * f * 0.9, "cpu_us": 1e6 / (rps * f),
                 "wall_us": 1e6 / (rps * f), "calls": 100.0,
                 "foreign_server_cores": 0.0, "boot_s": 0.1} for f in (0.98, 1.0, 1.02)]
        return {"samples": rows, "summary": {k: v.to_dict() for k, v in hot.stats.summarize(rows, hot.METRICS).items()},
                "opcache": True, "jit": False, "problems": []}
    return {"app": app, "mode": "pinned", "seconds": 5, "modes": {"worker": mode(worker_rps), "bare": mode(bare_rps)}}


def _framework_doc(with_hello: bool = False) -> dict:
    doc = make_doc()
    if not with_hello:
        doc["points"] = [p for p in doc["points"] if p["app"] == "slim"]
    rec = _hot_record("slim", 20000, 25000)
    hot.attach_hot([p for p in doc["points"] if p["app"] == "slim"], rec)
    doc["hot"] = [rec]
    doc["opcache"] = [{"mode": "pinned", "app": "slim", "fpm": {"enabled": True, "cached_scripts": 70, "hits": 5000},
                       "fastrr_cli": {"enabled": True}}]
    doc["targets"] = runner.evaluate_targets(doc["points"])
    return doc


def test_fastrr_over_hot_is_paired_per_round_at_the_hot_runs_connection_count():
    doc = make_doc()
    pts = [p for p in doc["points"] if p["app"] == "slim"]
    rec = _hot_record("slim", 20000, 25000)   # rounds: 19,600, 20,000, 20,400 calls/s
    rec["connections"] = 64
    hot.attach_hot(pts, rec)
    at64 = next(p for p in pts if p["connections"] == 64)["ratios"]["hot"]
    # fastrr's rounds 4,900, 5,000, 5,100 req/s over the hot run after each round
    assert at64["median"] == pytest.approx(0.25) and at64["min"] == pytest.approx(5100 / 20400)
    at8 = next(p for p in pts if p["connections"] == 8)["ratios"]["hot"]
    assert at8["max"] == pytest.approx(5100 / 20000)   # elsewhere: over the median


def test_fastrr_over_hot_ratio_and_its_target():
    doc = _framework_doc()
    slim64 = next(p for p in doc["points"] if p["connections"] == 64)
    assert slim64["ratios"]["hot"]["median"] == pytest.approx(5000 / 20000)
    assert slim64["hot"]["bare"]["ceiling_rps"]["median"] == pytest.approx(25000)
    assert slim64["hot_rps"] == pytest.approx(20000) and slim64["hot_us"] == pytest.approx(50)
    by = {t["target"]: t for t in doc["targets"]}
    assert by["Slim ≥ 0.65 of its hot ceiling"]["met"] is False
    assert "Laravel ≥ 0.65 of its hot ceiling" not in by   # Laravel did not run: not listed
    assert "hello ≥ 3x fpm req/s" in by                     # the default apps' targets always are


def test_hot_table_in_markdown_and_plain_text():
    doc = _framework_doc()
    (row,) = hot.rows(doc)
    assert row["connections"] == 64 and row["hot_rps"].median == pytest.approx(20000)
    md = report.markdown(doc)
    assert "| slim | 1,600 (1,552–1,648) | 5,000 (4,900–5,100) | 3.12x" in md
    assert "20,000 (19,600–20,400) (25,000)" in md and "0.25x (0.24x–0.26x)" in md
    assert "php-fpm on (70 scripts cached, 5,000 hits)" in md
    assert "hot ceiling:" in report.plain_table(doc)
    no_hot = make_doc()
    assert hot.rows(no_hot) == [] and "Framework apps against" not in report.markdown(no_hot)


def test_readme_frameworks_block_leaves_the_main_table_alone(tmp_path):
    readme = tmp_path / "README.md"
    main_block = f"{report.README_BEGIN}\nthe main table\n{report.README_END}"
    readme.write_text(f"# x\n\n## Benchmark\n\n{main_block}\n\n## Next\n")
    assert report.update_readme(readme, _framework_doc(), "bench/results/frameworks")
    text = readme.read_text()
    assert main_block in text and hot.FRAMEWORKS_BEGIN in text and hot.FRAMEWORKS_HEADING in text
    assert "- Slim ≥ 0.65 of its hot ceiling" in text
    assert text.index(hot.FRAMEWORKS_BEGIN) < text.index("## Next")
    # a run with other apps too writes the main table, without the hot table in it
    assert report.update_readme(readme, _framework_doc(with_hello=True), "bench/results/full")
    text = readme.read_text()
    main = text[text.index(report.README_BEGIN):text.index(report.README_END)]
    assert "the main table" not in main and "| hello | 64 |" in main and "Framework apps against" not in main


@pytest.mark.skipif(not plot.available(), reason="matplotlib is not installed")
def test_hot_plot(tmp_path):
    assert plot.plot_hot(_framework_doc(), tmp_path / "hot.png").stat().st_size > 1000
    assert plot.plot_hot(make_doc(), tmp_path / "none.png") is None


def test_nan_hot_figures_render():
    doc = _framework_doc()
    for p in doc["points"]:
        p["ratios"]["hot"] = {"median": math.nan, "min": math.nan, "max": math.nan, "n": 0}
    assert "| slim |" in report.markdown(doc)
