"""Which HTTP/1.1 front a config gets: the C engine by default, the Python
front when a setting needs it (quietly under `auto`, with a warning when the
engine was asked for), and exactly what `http.engine` / FASTRR_ENGINE say."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import ROOT, free_port


def started_line(server, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in server.output().splitlines():
            if "fastrr started" in line:
                return json.loads(line)
        time.sleep(0.05)
    raise AssertionError(f"no start line:\n{server.output()}")


JSON_LOGS = {"logs": {"encoding": "json", "level": "debug"}}


@pytest.fixture
def no_engine_env(monkeypatch):
    # the integration conftest pins FASTRR_ENGINE for every test; these look at the default
    monkeypatch.delenv("FASTRR_ENGINE", raising=False)


def test_default_is_the_c_engine(fastrr, no_engine_env):
    server = fastrr.start(JSON_LOGS)
    assert httpx.get(server.url("/hello")).json() == {"hello": "world"}
    assert started_line(server)["front"] == "c"
    assert "does not support" not in server.output()


@pytest.mark.parametrize("middleware", [["http_metrics"], ["static", "http_metrics"], ["http_metrics", "static"]])
def test_http_metrics_keeps_the_c_engine(fastrr, no_engine_env, middleware, tmp_path):
    # the engine counts requests itself (csrc/engine_loop.c metrics_observe): no reason to leave it
    server = fastrr.start({**JSON_LOGS, "http": {"middleware": middleware, "static": {"dir": str(tmp_path)}}})
    assert httpx.get(server.url("/hello")).json() == {"hello": "world"}
    assert started_line(server)["front"] == "c"
    assert "not supported by fastrr" not in server.output()


def test_default_falls_back_quietly_when_a_setting_needs_python(fastrr, no_engine_env):
    server = fastrr.start({**JSON_LOGS, "http": {"middleware": ["gzip"]}})
    assert httpx.get(server.url("/hello")).json() == {"hello": "world"}
    assert started_line(server)["front"] == "python"
    out = server.output()
    assert "does not support" not in out and '"level":"warn"' not in out.replace(" ", "")


def test_asking_for_the_engine_with_a_python_only_setting_warns(fastrr, no_engine_env):
    server = fastrr.start({**JSON_LOGS, "http": {"engine": "c", "middleware": ["gzip"]}})
    assert httpx.get(server.url("/hello")).json() == {"hello": "world"}
    assert started_line(server)["front"] == "python"
    warning = next(json.loads(line) for line in server.output().splitlines() if "does not support" in line)
    assert warning["level"] == "warn" and warning["settings"] == ["http.middleware"]


@pytest.mark.parametrize("how", ["config", "env"])
def test_python_front_on_request(fastrr, no_engine_env, how):
    if how == "config":
        server = fastrr.start({**JSON_LOGS, "http": {"engine": "python"}})
    else:
        server = fastrr.start(JSON_LOGS, env={"FASTRR_ENGINE": "python"})
    assert httpx.get(server.url("/hello")).json() == {"hello": "world"}
    assert started_line(server)["front"] == "python"


@pytest.mark.parametrize(("option", "env"), [("http.engine=rust", {}), (None, {"FASTRR_ENGINE": "rust"})])
def test_unknown_engine_is_a_config_error(tmp_path, no_engine_env, option, env):
    (tmp_path / ".rr.yaml").write_text('version: "3"\nserver:\n  command: php x.php\nhttp:\n  address: 127.0.0.1:0\n')
    argv = [sys.executable, "-m", "fastrr", "serve", "-c", str(tmp_path / ".rr.yaml")]
    if option:
        argv += ["-o", option]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=ROOT, env={**os.environ, **env})
    assert proc.returncode == 1
    key = "http.engine" if option else "FASTRR_ENGINE"
    assert key in proc.stderr and "rust" in proc.stderr, proc.stderr


@pytest.mark.parametrize("setting", ["http.ssl", "http.http2.h2c"])
def test_tls_and_h2c_make_auto_choose_the_python_front(fastrr, no_engine_env, tmp_path, setting):
    from tests.integration.test_tls_h2 import make_cert

    if setting == "http.ssl":
        cert, key = make_cert(tmp_path)
        http = {"ssl": {"address": f"127.0.0.1:{free_port()}", "cert": str(cert), "key": str(key)}}
    else:
        http = {"http2": {"h2c": True}}
    server = fastrr.start({**JSON_LOGS, "http": http})
    assert httpx.get(server.url("/hello")).json() == {"hello": "world"}
    assert started_line(server)["front"] == "python"
    records = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    choice = next(r for r in records if r["msg"] == "using the python front")
    assert choice["level"] == "debug" and choice["settings"] == [setting]
    assert not [r for r in records if r["level"] == "warn"]
