"""Laravel Octane starts `rr` with everything in -o and parses its output.

These tests replay Octane's argument lists (the 2024 form and the older one)
through an `rr` shim written by `fastrr rr-shim`, and assert on what Octane
reads: `rr --version`, JSON log lines on stdout (worker stderr as `msg` of
logger `server`, "http log" lines per request), and a graceful SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import ROOT, WORKERS, free_port


@pytest.fixture
def rr(tmp_path):
    res = subprocess.run([sys.executable, "-m", "fastrr", "rr-shim", str(tmp_path / "bin")], capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr
    path = tmp_path / "bin" / "rr"
    assert res.stdout.strip() == str(path)
    return path


def octane_args(base, port: int, rpc_port: int, old: bool) -> list[str]:
    app = WORKERS / "app.php"
    if old:  # Octane before 2024: no version, space-separated command, `warning`
        return ["-c", str(base / ".rr.yaml"), "-o", f"http.address=127.0.0.1:{port}",
                "-o", f"server.command=php {app}", "-o", "http.pool.num_workers=2",
                "-o", "http.pool.max_jobs=500", "-o", f"rpc.listen=tcp://127.0.0.1:{rpc_port}",
                "-o", "http.pool.supervisor.exec_ttl=30s", "-o", "http.static.dir=public",
                "-o", "http.middleware=static", "-o", "logs.mode=production", "-o", "logs.level=warning",
                "-o", "logs.output=stdout", "-o", "logs.encoding=json", "serve"]
    return ["-c", str(base / ".rr.yaml"), "-o", "version=3", "-o", f"http.address=127.0.0.1:{port}",
            "-o", f"server.command=php,{app}", "-o", "http.pool.num_workers=0",
            "-o", "http.pool.max_jobs=500", "-o", f"rpc.listen=tcp://127.0.0.1:{rpc_port}",
            "-o", "http.pool.supervisor.exec_ttl=30s", "-o", f"http.static.dir={base}/public",
            "-o", "http.middleware=static", "-o", "logs.mode=production", "-o", "logs.level=debug",
            "-o", "logs.output=stdout", "-o", "logs.encoding=json", "serve"]


def test_version_is_what_octane_parses(rr):
    out = subprocess.run([str(rr), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("rr version ")
    major, minor, patch = (int(x) for x in out.split()[2].split("."))
    assert (major, minor, patch) >= (2023, 3, 0)


@pytest.mark.parametrize("old", [False, True], ids=["octane-2024", "octane-old"])
def test_octane_invocation_serves_and_logs_json(rr, tmp_path, old):
    base = tmp_path / "app"
    (base / "public").mkdir(parents=True)
    (base / ".rr.yaml").write_text("")  # Octane touches an empty config
    port, rpc_port = free_port(), free_port()
    out_path = tmp_path / "stdout"
    proc = subprocess.Popen([str(rr), *octane_args(base, port, rpc_port, old)], cwd=base,
                            stdout=out_path.open("wb"), stderr=subprocess.PIPE,
                            env={**os.environ, "APP_ENV": "local", "APP_BASE_PATH": str(base), "LARAVEL_OCTANE": "1"})
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/stdout", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert r.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/hello?x=1").json() == {"hello": "world"}
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert code == 0
    # Octane shows stderr lines without DEBUG/INFO/WARN as errors: there must be none.
    assert [line for line in stderr.splitlines() if line.strip()] == []
    lines = out_path.read_text().splitlines()
    assert lines[0].startswith("[INFO] RoadRunner server started; version: ")
    records = [json.loads(line) for line in lines[1:]]
    assert all({"level", "ts", "logger", "msg"} <= set(r) for r in records)
    if not old:  # level debug: worker stderr and the per-request lines are there
        stray = [r for r in records if r["logger"] == "server" and r["msg"] == "stray output from app"]
        assert stray, "worker stderr must reach stdout unchanged as msg of logger server"
        http_logs = [r for r in records if r["msg"] == "http log"]
        assert {r["URI"] for r in http_logs} >= {"/stdout", "/hello?x=1"}
        sample = next(r for r in http_logs if r["URI"] == "/hello?x=1")
        assert sample["level"] == "info" and sample["method"] == "GET" and sample["status"] == 200
        assert sample["remote_address"].startswith("127.0.0.1:")
        assert isinstance(sample["elapsed"], int)
    else:  # level warning: RoadRunner logs worker stderr and requests at info, so nothing shows
        assert not [r for r in records if r["level"] in ("info", "debug")]
