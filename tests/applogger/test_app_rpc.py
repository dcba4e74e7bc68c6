"""The app-logger plugin's RPC (`app.*`) against a real server: what
roadrunner-php/app-logger sends lands in the server's log under the logger
`app`, at its level, with the context as fields; bad payloads get errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from fastrr.applogger.rpc import LogEntry
from fastrr.rpc.client import RpcError
from fastrr.rpc.codec import FLAG_ERROR, FLAG_JSON, FLAG_MSGPACK, FLAG_PROTO, FLAG_RAW, encode_call
from tests.applogger.conftest import AppFactory, wait_for
from tests.conftest import ROOT, free_port, worker_cmd

LEVELS = {"Error": "ERROR", "Warning": "WARN", "Info": "INFO", "Debug": "DEBUG"}


def test_each_level_with_and_without_context(app: AppFactory) -> None:
    srv = app.start()
    for level, shown in LEVELS.items():
        assert srv.log(level, f"plain {level}") is True
        assert srv.log(level, f"context {level}", user="42", path="/a b", empty="") == b""
        plain = srv.wait_line(f"plain {level}")
        assert (plain.level, plain.logger, plain.fields) == (shown, "app", {})
        ctx = srv.wait_line(f"context {level}")
        assert (ctx.level, ctx.logger) == (shown, "app")
        assert ctx.fields == {"user": "42", "path": "/a b", "empty": ""}


def test_json_encoding_keeps_the_record_and_the_context(app: AppFactory) -> None:
    srv = app.start({"level": "debug", "mode": "production"})
    srv.log("Warning", "disk almost full", free="3%", level="oops", msg="x", ts="y", logger="z")

    def record() -> dict | None:
        for line in srv.server.output().splitlines():
            if line.startswith("{") and '"disk almost full"' in line:
                return json.loads(line)
        return None

    rec = wait_for(record, "the JSON record")
    assert (rec["level"], rec["logger"], rec["msg"], rec["free"]) == ("warn", "app", "disk almost full", "3%")
    # Context keys named like the record's own are kept beside it, not over it.
    assert {k: rec[k] for k in ("context.level", "context.msg", "context.ts", "context.logger")} == {
        "context.level": "oops", "context.msg": "x", "context.ts": "y", "context.logger": "z"}
    assert isinstance(rec["ts"], float)


def test_log_writes_the_message_as_it_is_to_stderr(app: AppFactory) -> None:
    srv = app.start()
    assert srv.call("app.Log", "raw one") is True
    assert srv.call("app.Log", "raw two\n") is True  # a newline of its own is not doubled
    assert srv.log("Log", "raw ctx", a="1", b="two") == b""
    srv.log("Log", "raw ctx, no attrs")
    text = wait_for(lambda: "raw ctx, no attrs" in srv.stderr() and srv.stderr(), "the raw lines")
    assert "raw one\nraw two\nraw ctx a:1,b:two\nraw ctx, no attrs\n" in text
    assert not any(ln.msg.startswith("raw") for ln in srv.lines())


def test_channel_level_filters_app_lines(app: AppFactory) -> None:
    srv = app.start({"level": "error", "channels": {"app": {"level": "info"}}})
    srv.log("Debug", "hidden debug")
    srv.log("Debug", "hidden debug ctx", k="v")
    srv.log("Info", "shown info")
    srv.log("Warning", "shown warning", k="v")
    srv.wait_line("shown warning")
    msgs = [ln.msg for ln in srv.lines("app")]
    assert msgs == ["shown info", "shown warning"]


def test_other_codecs_for_the_plain_methods(app: AppFactory) -> None:
    srv = app.start()
    assert srv.call("app.Info", "via msgpack", FLAG_MSGPACK) is True
    assert srv.call("app.Info", b"via msgpack bin", FLAG_MSGPACK) == b""
    assert srv.client.call("app.Info", b"via raw", flags=FLAG_RAW) == b""
    srv.wait_line("via msgpack")
    srv.wait_line("via raw")
    srv.wait_line("via msgpack bin")


@pytest.mark.parametrize(("method", "payload", "flags", "error"), [
    ("app.Info", 42, FLAG_JSON, "app.Info: expected the log message as a string, got int 42"),
    ("app.Error", ["a", "b"], FLAG_JSON, "app.Error: expected the log message as a string, got list"),
    ("app.Warning", None, FLAG_JSON, "app.Warning: expected the log message as a string, got NoneType"),
    ("app.Log", {"msg": "x"}, FLAG_JSON, "app.Log: expected the log message as a string, got dict"),
    ("app.Debug", b"{not json", FLAG_RAW | FLAG_JSON, "invalid JSON in the request body"),
    ("app.InfoWithContext", b"\x12\x05\x0a\x01", FLAG_PROTO,
     "app.InfoWithContext: malformed applogger.v1.LogEntry message"),
    ("app.LogWithContext", b"\xff\xff\xff", FLAG_PROTO, "app.LogWithContext: malformed applogger.v1.LogEntry message"),
    ("app.ErrorWithContext", "a string", FLAG_JSON, "app.ErrorWithContext takes a protobuf message (frame flags 0x80)"),
    ("app.Info", b"\x0a\x01x", FLAG_PROTO, "app.Info does not take protobuf messages"),
    ("app.Notice", "x", FLAG_JSON, "rpc: can't find method app.Notice"),
])
def test_bad_payloads_get_a_clear_error(app: AppFactory, method: str, payload: object, flags: int,
                                        error: str) -> None:
    srv = app.start()
    if flags == FLAG_RAW | FLAG_JSON:
        # Bytes that are not JSON, under the JSON flag (the client would encode them).
        client = srv.client
        client.sock.sendall(encode_call(client.seq, method, payload, FLAG_JSON))  # type: ignore[arg-type]
        ans_flags, options, body = client.read_frame()
        client.seq += 1
        assert ans_flags & FLAG_ERROR
        assert error in body[options[1]:].decode()
    else:
        with pytest.raises(RpcError) as info:
            srv.client.call(method, payload, flags=flags)
        assert error in str(info.value)
    # The connection, the plugin and the server carry on.
    assert srv.log("Info", "still logging", after=method) == b""
    assert srv.wait_line("still logging").fields == {"after": method}
    assert srv.server.proc.poll() is None
    assert "rpc: call failed" not in srv.server.output()
    assert "Traceback" not in srv.server.output()


def test_invalid_utf8_in_the_protobuf_is_refused(app: AppFactory) -> None:
    srv = app.start()
    entry = LogEntry(message="ok").SerializeToString()
    bad = b"\x0a\x02\xc3\x28"  # message = two bytes that are not UTF-8
    with pytest.raises(RpcError, match="malformed applogger.v1.LogEntry"):
        srv.client.call("app.InfoWithContext", bad, flags=FLAG_PROTO)
    assert srv.client.call("app.InfoWithContext", entry, flags=FLAG_PROTO) == b""
    srv.wait_line("ok")


def test_on_with_rpc_off_without(app: AppFactory, fastrr) -> None:
    srv = app.start({"level": "info"}, app={"colour": "red"})
    started = srv.wait_line("fastrr started", logger="fastrr")
    assert "app" in started.fields["plugins"]
    assert any("app.colour: unknown key, ignored" in ln.msg for ln in srv.lines("fastrr"))
    plain = fastrr.start()  # the default test config: http only, no rpc
    deadline = time.monotonic() + 10
    while "fastrr started" not in plain.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "fastrr started" in plain.output()
    assert '"app"' not in next(ln for ln in plain.output().splitlines() if "fastrr started" in ln)


def test_rpc_alone_is_still_not_a_server(tmp_path: Path) -> None:
    cfg = {"version": "3", "server": {"command": worker_cmd("app.php")},
           "rpc": {"listen": f"tcp://127.0.0.1:{free_port()}"}}
    (tmp_path / ".rr.yaml").write_text(yaml.safe_dump(cfg))
    out = subprocess.run([sys.executable, "-m", "fastrr", "serve", "-c", str(tmp_path / ".rr.yaml")],
                         capture_output=True, text=True, timeout=30, cwd=str(ROOT), stdin=subprocess.DEVNULL)
    assert out.returncode == 1
    assert out.stderr.startswith("error: http: required section is missing")
