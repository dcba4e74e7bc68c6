"""Tables, Markdown, the README block, JSON and --compare, from a synthetic results document."""

from __future__ import annotations

import json
import math

from fastrr.benchmark import plot, report, runner

from .conftest import make_doc


def test_point_record_ratios_are_paired(doc):
    hello64 = next(p for p in doc["points"] if p["app"] == "hello" and p["connections"] == 64)
    assert hello64["ratios"]["rps"]["median"] == 3.1
    assert hello64["servers"]["fpm"]["summary"]["rps"]["min"] == 9700
    assert hello64["ratios"]["p99"]["median"] == 3.5 / 12.0


def test_targets(doc):
    by = {t["target"]: t for t in doc["targets"]}
    assert by["hello ≥ 3x fpm req/s"]["met"] is True
    assert by["hello p99 ≤ 1/3 of fpm's"]["met"] is True
    assert by["Slim ≥ 6x fpm req/s"]["met"] is False   # 5000 / 1600 = 3.1x
    assert runner.evaluate_targets([])[0]["met"] is None


def test_markdown_has_environment_table_and_targets(doc):
    md = report.markdown(doc)
    assert "Test CPU" in md and "pinned: server on CPU 0, wrk on CPU 1" in md
    assert "| hello | 64 | 10,000 (9,700–10,300) | 31,000 (30,380–31,620) | 3.10x (3.07x–3.13x) |" in md
    assert "Slim ≥ 6x fpm req/s (pinned, c64): 3.12x" in md and "NOT met" in md
    assert "Where the server CPU goes" in md


def test_error_marker(doc):
    doc["points"][0]["servers"]["fastrr"]["summary"]["non_2xx"]["max"] = 3
    assert report.table_row(doc["points"][0], True)[0] == "hello ⚠"


def test_terminal_and_plain_tables(doc, capsys):
    text = report.plain_table(doc)
    assert "3.10x" in text and "hello" in text
    from rich.console import Console

    console = Console(width=200, record=True)
    report.terminal(doc, console)
    out = console.export_text()
    assert "fastrr/fpm" in out and "3.10x" in out and "NOT met" in out


def test_json_file_is_strict_json(doc, tmp_path):
    doc["points"][0]["servers"]["fpm"]["samples"][0]["p99"] = math.nan
    path = tmp_path / "r.json"
    report.write_json(doc, path)
    text = path.read_text()
    assert "NaN" not in text
    back = json.loads(text)
    assert back["points"][0]["servers"]["fpm"]["samples"][0]["p99"] is None
    assert report.markdown(back)  # renders with nulls


def test_readme_block_inserted_then_replaced(doc, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\nintro\n")
    assert report.update_readme(readme, doc, "bench/results/full")
    first = readme.read_text()
    assert first.count(report.README_BEGIN) == 1 and "## Benchmark" in first
    assert "3.10x" in first
    readme.write_text(first.replace(report.README_END, report.README_END + "\n\nMy own paragraph.\n"))
    assert report.update_readme(readme, make_doc(scale=2.0), "bench/results/full")
    second = readme.read_text()
    assert second.count(report.README_BEGIN) == 1 and "My own paragraph." in second
    assert "20,000" in second and "intro" in second
    assert not report.update_readme(readme, make_doc(scale=2.0), "bench/results/full")


def test_compare_agrees_with_itself_and_flags_a_shift(doc):
    rows, agree, total = report.compare(doc, make_doc())
    assert total == len(rows) and agree == total
    rows, agree, total = report.compare(doc, make_doc(scale=1.5))
    assert agree < total
    assert any(r[-1] == "NO" and r[4] == "rps" for r in rows)


def test_plots_are_written(doc, tmp_path):
    assert plot.available()  # matplotlib is a test dependency
    paths = plot.plot_all(doc, tmp_path)
    assert [p.name for p in paths] == ["rps.png", "latency.png", "cpu.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_paths_in_results_say_nothing_about_the_machine(tmp_path):
    from fastrr.benchmark.apps import ROOT

    assert runner._portable_path(ROOT / "bench" / "results" / "full") == "bench/results/full"
    assert runner._portable_path(tmp_path / "out") == ".../out"
