"""`logs.channels.<logger>` against a real server: a channel gives one logger
its own level, mode and outputs; everything else keeps the top-level logger.
Bad values stop start-up with the key named."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.applogger.conftest import AppFactory, AppServer, app, parse_console, wait_for
from tests.conftest import ROOT, free_port, worker_cmd

__all__ = ["app"]  # the fixture, used below


def get(srv: Any, path: str = "/hello") -> None:
    with urllib.request.urlopen(srv.server.url(path), timeout=10) as resp:
        assert resp.status == 200


@pytest.mark.parametrize("engine", ["python", "c"])
def test_one_plugin_at_debug_while_the_rest_is_at_warn(app: AppFactory, engine: str) -> None:
    srv = app.start({"level": "warn", "channels": {"http": {"level": "info"}, "app": {"level": "debug"}}},
                    http={"address": "127.0.0.1:{port}", "engine": engine, "pool": {"num_workers": 1}})
    get(srv, "/hello")
    srv.log("Debug", "app at debug")
    srv.wait_line("app at debug")
    access = wait_for(lambda: [ln for ln in srv.lines("http") if ln.msg == "http log"], "the http log line")
    assert access[0].level == "INFO" and access[0].fields["URI"] == "/hello"
    # The server's own info lines ("fastrr started", worker spawns) stay under warn.
    others = [ln for ln in srv.lines() if ln.logger not in ("http", "pool", "app")]
    assert not [ln for ln in others if ln.level in ("INFO", "DEBUG")], others


@pytest.mark.parametrize("engine", ["python", "c"])
def test_a_channel_to_a_file(app: AppFactory, tmp_path: Path, engine: str) -> None:
    http_log = tmp_path / "http.log"
    http_log.write_text("a line from before\n")
    app_log = tmp_path / "logs" / "app.log"
    app_log.parent.mkdir()
    srv = app.start({"level": "info", "channels": {
        "http": {"level": "info", "output": str(http_log)},
        "app": {"level": "debug", "mode": "production", "output": [str(app_log), "stdout"]}}},
        http={"address": "127.0.0.1:{port}", "engine": engine, "pool": {"num_workers": 1}})
    get(srv, "/hello?to-file")
    srv.log("Info", "into the file", k="v")
    text = wait_for(lambda: "http log" in http_log.read_text() and http_log.read_text(), "the file's http line")
    assert text.startswith("a line from before\n")  # appended, not truncated
    line = next(ln for ln in parse_console(text) if ln.msg == "http log")
    assert (line.logger, line.msg, line.fields["URI"]) == ("http", "http log", "/hello?to-file")
    record = json.loads(wait_for(lambda: app_log.exists() and app_log.read_text(), "the app log file"))
    assert (record["level"], record["logger"], record["msg"], record["k"]) == ("info", "app", "into the file", "v")
    assert '"into the file"' in srv.server.out_path.read_text()  # the second output, stdout
    stderr = srv.server.err_path.read_text()
    assert "http log" not in stderr and "into the file" not in stderr
    assert "fastrr started" in stderr  # the top-level logger is untouched


def test_mode_off_silences_one_channel_and_channels_outlive_a_silent_root(app: AppFactory) -> None:
    srv = app.start({"level": "debug", "channels": {"app": {"mode": "off"}}})
    srv.log("Error", "never written")
    srv.wait_line("fastrr started", logger="fastrr")
    get(srv)
    assert "never written" not in srv.server.output()

    quiet = app.start({"mode": "off", "channels": {"app": {"level": "info"}}})
    quiet.log("Info", "only this")
    quiet.wait_line("only this")
    get(quiet)
    assert [ln.msg for ln in quiet.lines()] == ["only this"]


def test_a_channel_does_not_inherit_the_top_level_keys(app: AppFactory) -> None:
    # As in RoadRunner: a channel is a whole logger config, its defaults are its own
    # (level debug, development mode, stderr), not the top level's.
    srv = app.start({"level": "error", "mode": "production", "channels": {"app": {}}})
    srv.log("Debug", "console debug")
    line = srv.wait_line("console debug")
    assert line.level == "DEBUG"


def test_err_output_tells_where_writing_failed(app: AppFactory, tmp_path: Path) -> None:
    errors = tmp_path / "logger-errors.log"
    srv = app.start({"level": "info", "channels": {"app": {"output": "/dev/full", "err_output": str(errors)}}})
    srv.log("Info", "into a full disk")
    srv.log("Info", "again")
    text = wait_for(lambda: errors.exists() and errors.read_text(), "the err_output line")
    srv.log("Info", "and again")
    srv.wait_line("fastrr started", logger="fastrr")
    assert text.count("cannot write to /dev/full") == 1  # once per output, not once per line
    assert "No space left on device" in text
    assert srv.server.proc.poll() is None


def test_file_logger_options_rotate_and_prune(app: AppFactory, tmp_path: Path) -> None:
    target = tmp_path / "app.log"
    neighbour = tmp_path / "app-notes.log"
    neighbour.write_text("not a backup\n")
    srv = app.start({"level": "info", "channels": {"app": {"level": "info", "file_logger_options": {
        "log_output": str(target), "max_size": 1, "max_backups": 2, "compress": True}}}})
    chunk = "x" * 300_000
    for i in range(12):  # ~3.6 MB through a 1 MB file: three rotations
        srv.log("Info", f"{i} {chunk}")
    wait_for(lambda: target.exists() and '"11 x' in target.read_text(), "the last line")

    def backups() -> list[str]:
        return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("app-2"))

    # Compressing and pruning run beside the server: wait for them to settle.
    wait_for(lambda: len(backups()) == 2 and all(re.fullmatch(r"app-[\dT.-]+\.log\.gz", b) for b in backups()),
             f"two gzipped backups, have {backups()}")
    assert target.stat().st_size <= 1024 * 1024
    assert neighbour.read_text() == "not a backup\n"
    newest = gzip.decompress((tmp_path / backups()[-1]).read_bytes()).decode()
    records = [json.loads(line) for line in newest.splitlines()]
    assert all(r["logger"] == "app" and r["level"] == "info" for r in records)


def serve_config(tmp_path: Path, logs: Any) -> subprocess.CompletedProcess[str]:
    cfg = {"version": "3", "server": {"command": worker_cmd("app.php")},
           "http": {"address": f"127.0.0.1:{free_port()}", "pool": {"num_workers": 1}}, "logs": logs}
    path = tmp_path / ".rr.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return subprocess.run([sys.executable, "-m", "fastrr", "serve", "-c", str(path)], capture_output=True,
                          text=True, timeout=30, cwd=str(ROOT), stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("logs", "error"), [
    ({"channels": {"app": {"level": "loud"}}}, "logs.channels.app.level: expected one of debug, error"),
    ({"channels": {"http": {"mode": "fancy"}}}, "logs.channels.http.mode: expected one of development, none"),
    ({"channels": {"app": {"encoding": "xml"}}}, "logs.channels.app.encoding: expected one of console, json"),
    ({"channels": {"app": {"output": "/no/such/dir/app.log"}}},
     "logs.channels.app.output: the directory of log file '/no/such/dir/app.log' does not exist: /no/such/dir"),
    ({"channels": {"app": {"output": ["stderr", "/tmp"]}}}, "logs.channels.app.output: '/tmp' is a directory"),
    ({"channels": {"app": {"err_output": "/no/such/dir/e.log"}}}, "logs.channels.app.err_output: the directory"),
    ({"channels": {"app": {"output": 5.5}}}, "logs.channels.app.output: expected a list of strings"),
    ({"output": "/no/such/dir/all.log"}, "logs.output: the directory of log file '/no/such/dir/all.log'"),
    ({"channels": "app"}, "logs.channels: expected a mapping"),
    ({"channels": {"app": "debug"}}, "logs.channels.app: expected a mapping"),
    ({"channels": {"bad name!": {"level": "info"}}}, "logs.channels.bad name!: expected a logger name"),
    ({"channels": {"app": {"file_logger_options": {"max_size": 10}}}},
     "logs.channels.app.file_logger_options.log_output: required key is missing"),
    ({"file_logger_options": {"log_output": "/tmp/x.log", "max_backups": -1}},
     "logs.file_logger_options.max_backups: expected an integer >= 0"),
    ({"channels": {"app": {"file_logger_options": {"log_output": "/tmp/x.log", "compress": "maybe"}}}},
     "logs.channels.app.file_logger_options.compress: expected true or false"),
])
def test_bad_values_stop_start_up_naming_the_key(tmp_path: Path, logs: Any, error: str) -> None:
    out = serve_config(tmp_path, logs)
    assert out.returncode == 1, out.stdout + out.stderr  # EXIT_CONFIG
    assert out.stderr.startswith("error: ")
    assert error in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1  # one line, no half-started server


def test_unsupported_and_unknown_channel_keys_are_warned_about(app: AppFactory) -> None:
    srv = app.start({"level": "info", "line_ending": "\r\n",
                     "channels": {"app": {"level": "info", "colour": "red", "format": "%message%"}}})
    srv.wait_line("fastrr started", logger="fastrr")
    warnings = [ln.msg for ln in srv.lines("fastrr") if ln.msg.startswith("config:")]
    assert "config: logs.channels.app.colour: unknown key, ignored" in warnings
    assert "config: logs.channels.app.format: not supported by fastrr yet, ignored" in warnings
    assert "config: logs.line_ending: not supported by fastrr yet, ignored" in warnings


def test_relative_file_output_is_next_to_the_config(tmp_path: Path) -> None:
    # load_config moves into the config's directory (as rr does), so relative outputs land there.
    port = free_port()
    cfg = {"version": "3", "server": {"command": worker_cmd("app.php")},
           "http": {"address": f"127.0.0.1:{port}", "pool": {"num_workers": 1}},
           "logs": {"level": "info", "channels": {"fastrr": {"level": "info", "output": "server.log"}}}}
    (tmp_path / ".rr.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen([sys.executable, "-m", "fastrr", "serve", "-c", str(tmp_path / ".rr.yaml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=str(ROOT),
                            stdin=subprocess.DEVNULL)
    try:
        log = tmp_path / "server.log"
        wait_for(lambda: log.exists() and "fastrr started" in log.read_text(), "fastrr started in server.log")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "fastrr started" not in err.decode()
    assert "fastrr stopped" in log.read_text()
    assert not os.path.exists(ROOT / "server.log")


def test_a_channel_from_a_command_line_override(app: AppFactory, fastrr: Any) -> None:
    cfg = app.config({"level": "error"})
    server = fastrr.start(raw_config=yaml.safe_dump(cfg), args=["-o", "logs.channels.app.level=debug"])
    srv = AppServer(server, cfg["rpc"]["listen"])
    app.opened.append(srv)
    srv.log("Debug", "debug by override")
    assert srv.wait_line("debug by override").level == "DEBUG"
