"""fastrr's PHP client (Fastrr\\Logger, Fastrr\\Logger\\PsrLogger) against a
real fastrr: tests/workers/app_logger_client.php logs at each level, with and
without context; the lines must be in the server's log as sent."""

from __future__ import annotations

import json
import subprocess

from tests.applogger.conftest import AppFactory, wait_for
from tests.conftest import WORKERS


def run_client(rpc: str, tag: str) -> dict:
    out = subprocess.run(["php", str(WORKERS / "app_logger_client.php"), rpc, tag],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"{out.stdout}\n{out.stderr}"
    return json.loads(out.stdout)


def test_php_logger_lines_land_with_level_and_context(app: AppFactory) -> None:
    srv = app.start({"level": "warn", "channels": {"app": {"level": "debug"}}})
    answer = run_client(srv.rpc, "t1")
    assert answer == {"ok": True, "psr3": True}
    srv.wait_line("t1 psr notice")
    app_lines = {ln.msg: ln for ln in srv.lines("app")}
    for level, shown in (("error", "ERROR"), ("warning", "WARN"), ("info", "INFO"), ("debug", "DEBUG")):
        plain = app_lines[f"t1 {level} plain"]
        assert (plain.level, plain.logger, plain.fields) == (shown, "app", {})
        ctx = app_lines[f"t1 {level} context"]
        assert ctx.level == shown
        assert ctx.fields == {"level_name": level, "n": "42", "user": '{"id":7}'}
    critical = app_lines["t1 psr critical"]
    assert critical.level == "ERROR"
    assert critical.fields["exception"].startswith("RuntimeException: boom in ")
    assert app_lines["t1 psr notice"].level == "INFO"
    # Logger::log() goes to the server's stderr as it is, past the logger.
    stderr = wait_for(lambda: "t1 raw context" in srv.stderr() and srv.stderr(), "the raw lines")
    assert "\nt1 raw line\n" in stderr
    assert "\nt1 raw context a:1,b:2\n" in stderr
    # Global level warn: the server's own info lines are not written.
    assert not [ln for ln in srv.lines() if ln.logger != "app" and ln.level in ("INFO", "DEBUG")]


def test_php_logger_under_the_default_logs(app: AppFactory) -> None:
    srv = app.start({"level": "info"})
    run_client(srv.rpc, "t2")
    srv.wait_line("t2 psr notice")
    msgs = [ln.msg for ln in srv.lines("app")]
    assert "t2 info context" in msgs and "t2 error plain" in msgs
    assert "t2 debug plain" not in msgs and "t2 debug context" not in msgs
