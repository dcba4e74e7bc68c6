"""`service.<name>.*` config: bad values stop `fastrr serve` with the key named;
a config of services alone needs no server or http section."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from fastrr.config.schema import build_config
from fastrr.config.units import ConfigError
from fastrr.service.config import DEFAULT_RESTART_SEC, DEFAULT_TIMEOUT_STOP_SEC
from tests.conftest import ROOT


def parse(services):
    return build_config({"version": "3", "service": services}, "/tmp").sections["service"]


def test_defaults_are_roadrunners():
    [cfg] = parse({"s": {"command": "php bin/consumer.php --queue=a"}}).values()
    assert cfg.command == ["php", "bin/consumer.php", "--queue=a"]
    assert (cfg.process_num, cfg.exec_timeout, cfg.remain_after_exit, cfg.service_name_in_log) == (1, 0.0, False, False)
    assert (cfg.restart_sec, cfg.timeout_stop_sec) == (DEFAULT_RESTART_SEC, DEFAULT_TIMEOUT_STOP_SEC) == (30.0, 5.0)


def test_zeros_mean_the_defaults_and_values_are_read():
    [cfg] = parse({"s": {"command": ["sh", "-c", "echo a b"], "process_num": 0, "restart_sec": 0,
                         "timeout_stop_sec": 0}}).values()
    assert (cfg.command, cfg.process_num, cfg.restart_sec, cfg.timeout_stop_sec) == (
        ["sh", "-c", "echo a b"], 1, 30.0, 5.0)
    [cfg] = parse({"s": {"command": "sh -c 'echo a b'", "process_num": "3", "restart_sec": "500ms",
                         "exec_timeout": "1m", "timeout_stop_sec": 2, "remain_after_exit": "true",
                         "service_name_in_log": True, "env": {"foo": 1}}}).values()
    assert cfg.command == ["sh", "-c", "echo a b"]
    assert (cfg.process_num, cfg.restart_sec, cfg.exec_timeout, cfg.timeout_stop_sec) == (3, 0.5, 60.0, 2.0)
    assert cfg.remain_after_exit and cfg.service_name_in_log and cfg.env == {"FOO": "1"}


def test_an_empty_section_is_allowed_and_needs_no_server():
    assert parse({}) == {}
    assert parse(None) == {}
    cfg = build_config({"version": "3", "rpc": {"listen": "tcp://127.0.0.1:6001"}, "service": {}}, "/tmp")
    assert cfg.server.command == []


def test_http_still_requires_server_command():
    with pytest.raises(ConfigError, match="server.command: required key is missing"):
        build_config({"version": "3", "service": {}, "http": {"address": "127.0.0.1:1"}}, "/tmp")


@pytest.mark.parametrize("service, error", [
    ({}, "service.s.command: required key is missing"),
    ({"command": ""}, "service.s.command: expected a non-empty command"),
    ({"command": "sh -c 'x"}, "service.s.command: cannot split"),
    ({"command": {"a": 1}}, "service.s.command: expected a string"),
    ({"command": "x", "process_num": -1}, "service.s.process_num: expected an integer >= 0, got -1"),
    ({"command": "x", "process_num": "two"}, "service.s.process_num: expected an integer"),
    ({"command": "x", "exec_timeout": "soon"}, "service.s.exec_timeout: expected a duration"),
    ({"command": "x", "restart_sec": -5}, "service.s.restart_sec: expected a non-negative duration"),
    ({"command": "x", "timeout_stop_sec": "x"}, "service.s.timeout_stop_sec: expected a duration"),
    ({"command": "x", "remain_after_exit": "maybe"}, "service.s.remain_after_exit: expected true or false"),
    ({"command": "x", "service_name_in_log": 3}, "service.s.service_name_in_log: expected true or false"),
    ({"command": "x", "env": ["A=b"]}, "service.s.env: expected a map of names to strings"),
    ({"command": "x", "user": "no-such-user-here"}, "service.s.user: no such user on this system"),
])
def test_bad_values_name_the_key(service, error):
    with pytest.raises(ConfigError) as exc:
        parse({"s": service})
    assert error in str(exc.value)


def test_bad_service_entries():
    with pytest.raises(ConfigError, match="service.s: expected a mapping"):
        parse({"s": "sleep 1"})
    with pytest.raises(ConfigError, match="service name 'a b' may use only letters"):
        parse({"a b": {"command": "x"}})


def test_unknown_keys_are_warned_about():
    cfg = build_config({"version": "3", "service": {"s": {"command": "x", "timeout_stop": 3, "colour": 1}}}, "/tmp")
    assert "service.s.timeout_stop: unknown key, ignored (the key is timeout_stop_sec)" in cfg.warnings
    assert "service.s.colour: unknown key, ignored" in cfg.warnings


def test_serve_stops_with_the_config_error(tmp_path):
    path = tmp_path / ".rr.yaml"
    path.write_text(yaml.safe_dump({"version": "3", "service": {"s": {"command": "x", "process_num": -2}}}))
    done = subprocess.run([sys.executable, "-m", "fastrr", "serve", "-c", str(path)], capture_output=True,
                          text=True, timeout=30, cwd=str(ROOT))
    assert done.returncode == 1
    assert "error: service.s.process_num: expected an integer >= 0, got -2" in done.stderr
