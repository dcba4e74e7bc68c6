"""The websockets section: RoadRunner's keys and defaults, fastrr's keys, and one clear error
naming the key for every bad value (read by build_config, as `fastrr serve` reads it; the
errors found only at start-up go through a real `fastrr serve`)."""

from __future__ import annotations

from typing import Any

import pytest

from fastrr.config.schema import build_config
from fastrr.config.units import ConfigError
from fastrr.http.engine import engine_blockers
from tests.websockets.conftest import WsFactory

BASE: dict[str, Any] = {"version": "3", "server": {"command": "php w.php"},
                        "http": {"address": "127.0.0.1:1", "middleware": ["websockets"]},
                        "broadcast": {"default": {"driver": "memory"}}}


def build(ws: dict[str, Any] | None, http: dict[str, Any] | None = None) -> Any:
    raw = {**BASE, "http": {**BASE["http"], **(http or {})}}
    if ws is not None:
        raw["websockets"] = ws
    return build_config(raw, "/tmp")


def test_defaults_are_roadrunners_and_websockets_does_not_block_the_engine():
    cfg = build({"broker": "default"})
    ws = cfg.sections["websockets"]
    assert (ws.path, ws.allowed_origin, ws.pool.num_workers) == ("/ws", "*", 2)
    assert (ws.pool.allocate_timeout, ws.pool.destroy_timeout) == (60.0, 60.0)
    assert (ws.ping_interval, ws.max_message_size, ws.send_queue, ws.compression) == (30.0, 1 << 20, 1 << 20, True)
    assert ws.sse.path == ""
    assert cfg.http.websockets and cfg.http.middleware == []
    assert engine_blockers(cfg.http) == []
    both = build({"broker": "default"}, {"middleware": ["websockets", "gzip"]})
    assert both.http.middleware == ["gzip"] and engine_blockers(both.http) == ["http.middleware"]
    assert not [w for w in cfg.warnings if "websockets" in w]


def test_origin_patterns():
    ws = build({"broker": "default", "allowed_origin": "https://*.Example.com"}).sections["websockets"]
    assert ws.origin_allowed("https://app.example.com") and ws.origin_allowed("HTTPS://A.EXAMPLE.COM")
    assert not ws.origin_allowed("https://example.org") and not ws.origin_allowed("")
    exact = build({"broker": "default", "allowed_origin": "https://a.test"}).sections["websockets"]
    assert exact.origin_allowed("https://a.test") and not exact.origin_allowed("https://b.test")
    assert build({"broker": "default"}).sections["websockets"].origin_allowed("")


@pytest.mark.parametrize(("ws", "key", "text"), [
    ({}, "websockets.broker", "broker key should be specified"),
    ({"broker": ""}, "websockets.broker", "broker key should be specified"),
    ({"broker": "default", "path": "ws"}, "websockets.path", "absolute URL path"),
    ({"broker": "default", "path": "/ws?x"}, "websockets.path", "absolute URL path"),
    ({"broker": "default", "allowed_origin": "https://*.*.test"}, "websockets.allowed_origin", "one * wildcard"),
    ({"broker": "default", "ping_interval": "-1s"}, "websockets.ping_interval", "duration"),
    ({"broker": "default", "ping_interval": "soon"}, "websockets.ping_interval", ""),
    ({"broker": "default", "max_message_size": 10}, "websockets.max_message_size", "at least 128 bytes"),
    ({"broker": "default", "send_queue": 100}, "websockets.send_queue", "at least 4096 bytes"),
    ({"broker": "default", "close_timeout": "0s"}, "websockets.close_timeout", "above 0"),
    ({"broker": "default", "compression": "maybe"}, "websockets.compression", ""),
    ({"broker": "default", "rate_limit": {"messages": -1}}, "websockets.rate_limit.messages", "per second"),
    ({"broker": "default", "rate_limit": {"messages": "many"}}, "websockets.rate_limit.messages", "per second"),
    ({"broker": "default", "rate_limit": {"burst": 0}}, "websockets.rate_limit.burst", "at least 1"),
    ({"broker": "default", "rate_limit": {"close_after": "0s"}}, "websockets.rate_limit.close_after", "above 0"),
    ({"broker": "default", "sse": {"path": "/ws"}}, "websockets.sse.path", "other than websockets.path"),
    ({"broker": "default", "sse": {"path": "events"}}, "websockets.sse.path", "absolute URL path"),
    ({"broker": "default", "pool": {"num_workers": "two"}}, "websockets.pool.num_workers", ""),
    ({"broker": "default", "pool": "big"}, "websockets.pool", "mapping"),
])
def test_bad_values_name_the_key(ws, key, text):
    with pytest.raises(ConfigError) as err:
        build(ws)
    assert err.value.path == key, str(err.value)
    assert text in str(err.value)


def test_middleware_and_section_need_each_other():
    with pytest.raises(ConfigError) as err:
        build(None)
    assert err.value.path == "http.middleware" and "needs a websockets section" in str(err.value)
    # the section alone is RoadRunner's "middleware not installed": off, with a warning
    cfg = build({"broker": "default"}, {"middleware": []})
    assert "websockets" not in cfg.sections
    assert "websockets: ignored, http.middleware does not list websockets" in cfg.warnings


def test_unknown_key_is_warned_about():
    cfg = build({"broker": "default", "pathh": "/x"})
    assert "websockets.pathh: unknown key, ignored" in cfg.warnings


def test_start_up_errors_name_the_key(wsf: WsFactory):
    code, out = wsf.fails({"broker": "nosuch"})
    assert code == 1, out
    assert "websockets.broker" in out and "'nosuch'" in out
    raw = wsf.config()
    del raw["broadcast"]
    code, out = wsf.fails(raw=raw)
    assert code == 1, out
    assert "websockets.broker: 'default' needs a broadcast section" in out
    code, out = wsf.fails({"allowed_origin": "a*b*c"})
    assert code == 1, out
    assert "websockets.allowed_origin" in out
