"""bench/ws_load.py still runs end to end (a small run: its C client builds, connects, joins,
and gets every publish); the numbers themselves belong to bench/, nothing here checks them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_a_small_ws_load_run(tmp_path: Path) -> None:
    out = tmp_path / "ws_load.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "ws_load.py"), "--connections", "50",
                          "--publishes", "3", "--idle", "0.5", "--gap", "0", "--out", str(out)],
                         capture_output=True, text=True, timeout=180, cwd=str(ROOT))
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    assert (result["joined"], result["failed"], result["rounds_complete"]) == (50, 0, 3)
    assert [r["received"] for r in result["rounds"]] == [50, 50, 50]
    assert "fan-out to the last" in run.stdout


def test_bad_arguments() -> None:
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "ws_load.py"), "--connections", "0"],
                         capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert run.returncode == 2 and "--connections 1..15000" in run.stderr
