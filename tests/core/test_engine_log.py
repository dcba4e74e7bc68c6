"""The per-request log line the engine writes itself (csrc/engine_log.c) must
be what fastrr/log.py LogSink.emit writes for the fields server.py
log_access builds: same bytes, given the same times."""

from __future__ import annotations

import json
import os
import re
import select
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from fastrr import _core
from fastrr.log import LogSink
from tests.core.test_engine import Harness, read_response

REQUEST = (b"GET /p\xe9?q=\"1\"&t=\\ HTTP/1.1\r\nHost: h\r\nUser-Agent: ua \"x\" \xe9\t\r\nReferer: r\r\n"
           b"Content-Length: 0\r\n\r\n")


def expected_fields(line_fields: dict[str, Any], access_logs: bool, peer: str) -> dict[str, Any]:
    """server.py log_access for REQUEST, with the times the engine used."""
    req = _core.parse_request(REQUEST, 65536)
    assert req is not None
    target = req.target
    fields: dict[str, Any] = {
        "status": 200, "method": req.method, "URI": target,
        "URL": target if "://" in target else f"http://{req.host or ''}{target}",
        "remote_address": peer, "start": line_fields["start"], "elapsed": line_fields["elapsed"],
    }
    if access_logs:
        started = datetime.fromisoformat(line_fields["start"]).timestamp()
        fields.update({
            "query": target.partition("?")[2], "content_len": req.content_length, "host": req.host or "",
            "user_agent": (req.get_header(b"user-agent") or b"").decode("latin-1"),
            "referer": (req.get_header(b"referer") or b"").decode("latin-1"),
            "time_local": time.strftime("%d/%b/%y:%H:%M:%S %z", time.localtime(started)),
        })
    return fields


@pytest.mark.parametrize("access_logs", [False, True], ids=["http-log", "access-logs"])
@pytest.mark.parametrize("encoding", ["console", "json", "raw"])
def test_access_line_is_what_logsink_writes(tmp_path, monkeypatch, encoding, access_logs):
    r, w = os.pipe()
    h = Harness(access_log=2 if access_logs else 1, log_fds=[w], log_encoding=encoding)
    try:
        worker = h.worker()
        client = h.client(REQUEST)
        worker.request()
        worker.respond(200, b"ok")
        read_response(client)
        assert select.select([r], [], [], 3)[0]
        line = os.read(r, 65536).decode()
        assert line.endswith("\n") and line.count("\n") == 1
        msg = "http access log" if access_logs else "http log"
        if encoding == "raw":
            assert line == msg + "\n"
            return
        peer = "%s:%d" % client.getsockname()
        out = tmp_path / "log"
        mode = "raw" if encoding == "raw" else "production"
        sink = LogSink("info", mode, encoding, [str(out)])
        if encoding == "json":
            record = json.loads(line)
            fields = {k: v for k, v in record.items() if k not in ("level", "ts", "logger", "msg")}
            monkeypatch.setattr(time, "time", lambda: record["ts"])
        else:
            stamp, level, logger, text, fields_json = line.rstrip("\n").split("\t")
            assert (level, logger, text) == ("INFO", "http", msg)
            fields = json.loads(fields_json)
            base = datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
            monkeypatch.setattr(time, "time", lambda: base + int(stamp[20:23]) / 1000 + 0.0004)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", fields["start"])
        assert isinstance(fields["elapsed"], int)
        sink.emit(20, "http", msg, expected_fields(fields, access_logs, peer))
        monkeypatch.undo()
        assert out.read_text() == line
    finally:
        h.close()
        os.close(r)
        os.close(w)
