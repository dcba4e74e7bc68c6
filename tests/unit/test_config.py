"""Config mechanics: interpolation, overrides, units, schema errors naming keys."""

from __future__ import annotations

import pytest

from fastrr.config import ConfigError, load_config
from fastrr.config.loader import apply_override, expand_env
from fastrr.config.schema import DEFAULT_EXEC_TTL, build_config
from fastrr.config.units import parse_command, parse_duration

BASE = {"version": "3", "server": {"command": "php w.php"}, "http": {"address": "127.0.0.1:8080"}}


def test_env_interpolation_forms():
    env = {"A": "1", "EMPTY": ""}
    assert expand_env("${A}-$A-${B:-dflt}-${EMPTY:-x}-${B}", env) == "1-1-dflt-x-"


@pytest.mark.parametrize("text, seconds", [
    ("60s", 60), ("1m", 60), ("500ms", 0.5), ("1h30m", 5400), ("1.5s", 1.5), ("10", 10), (3, 3), ("250us", 0.00025),
])
def test_durations(text, seconds):
    assert parse_duration("k", text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["soon", "1x", "-1s", True, "s5"])
def test_bad_durations_name_the_key(bad):
    with pytest.raises(ConfigError, match="^a.b: expected a"):
        parse_duration("a.b", bad)


def test_command_forms():
    assert parse_command("c", "php  worker.php ") == ["php", "worker.php"]
    assert parse_command("c", "php,/app/vendor/bin/roadrunner-worker") == ["php", "/app/vendor/bin/roadrunner-worker"]
    assert parse_command("c", ["php", "a b.php"]) == ["php", "a b.php"]
    with pytest.raises(ConfigError, match="^c: expected a non-empty command"):
        parse_command("c", "  ")


def test_overrides_create_paths_strip_quotes_and_reject_empty():
    tree: dict = {}
    apply_override(tree, "http.pool.num_workers=4")
    apply_override(tree, "logs.level='warn'")
    assert tree == {"http": {"pool": {"num_workers": "4"}}, "logs": {"level": "warn"}}
    for bad in ("=x", "a=", "novalue"):
        with pytest.raises(ConfigError, match="^-o: expected key=value"):
            apply_override(tree, bad)


def test_defaults_follow_roadrunner():
    cfg = build_config(dict(BASE), "/tmp")
    assert cfg.server.relay == "pipes"
    assert cfg.http is not None
    assert cfg.http.max_request_size == 1000
    assert cfg.http.internal_error_code == 500
    assert cfg.http.pool.allocate_timeout == 60
    assert cfg.http.pool.max_jobs == 0
    assert cfg.http.pool.exec_ttl == DEFAULT_EXEC_TTL
    assert cfg.http.pool.num_workers >= 1  # 0 = CPU count
    assert cfg.rpc_listen is None


def test_string_values_from_overrides_are_typed():
    raw = {**BASE, "http": {"address": "127.0.0.1:1", "pool": {"num_workers": "3", "debug": "true",
                                                                 "supervisor": {"exec_ttl": "30s"}}},
           "rpc": {"listen": "tcp://127.0.0.1:6001"}, "server": {"command": "php w.php", "env": {"key": "v"}}}
    cfg = build_config(raw, "/tmp")
    assert cfg.http.pool.num_workers == 3
    assert cfg.http.pool.debug is True
    assert cfg.http.pool.exec_ttl == 30
    assert cfg.server.env == {"KEY": "v"}
    assert cfg.rpc_listen == "tcp://127.0.0.1:6001"


def test_workers_override_auto_is_cpu_count():
    cfg = build_config(dict(BASE), "/tmp", workers_override=0)
    import os

    assert cfg.http.pool.num_workers == os.cpu_count()


@pytest.mark.parametrize("patch, message", [
    ({"version": 3}, "version: expected a string"),
    ({"version": "4"}, "version: expected \"3\""),
    ({"http": {"address": "nowhere"}}, "http.address: expected host:port"),
    ({"http": {"address": "127.0.0.1:1", "internal_error_code": 700}}, "http.internal_error_code: expected an HTTP"),
    ({"http": {"address": "127.0.0.1:1", "pool": "big"}}, "http.pool: expected a mapping"),
    ({"logs": {"level": "loud"}}, "logs.level: expected one of"),
    ({"server": {"command": "php w.php", "env": ["A"]}}, "server.env: expected a map"),
    ({"rpc": {"listen": "pipes"}}, "rpc.listen: expected tcp://host:port or unix:///path"),
])
def test_schema_errors_name_the_key(patch, message):
    with pytest.raises(ConfigError) as exc:
        build_config({**BASE, **patch}, "/tmp")
    assert str(exc.value).startswith(message)


def test_unknown_and_unsupported_keys_are_warnings():
    cfg = build_config({**BASE, "http": {"address": "127.0.0.1:1", "bogus": 1, "http3": {}}, "websockets": {}}, "/tmp")
    assert "http.bogus: unknown key, ignored" in cfg.warnings
    assert "http.http3: not supported by fastrr yet, ignored" in cfg.warnings
    assert "websockets: ignored, http.middleware does not list websockets" in cfg.warnings


def test_octane_style_empty_file_with_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".rr.yaml").write_text("")
    cfg = load_config(str(tmp_path / ".rr.yaml"), overrides=[
        "version=3", "http.address=127.0.0.1:8000", "server.command=php,./vendor/bin/roadrunner-worker",
        "http.pool.num_workers=0", "http.pool.max_jobs=500", "rpc.listen=tcp://127.0.0.1:6001",
        "http.pool.supervisor.exec_ttl=30s", "logs.mode=production", "logs.level=warning", "logs.output=stdout",
        "logs.encoding=json"])
    assert cfg.version == "3"
    assert cfg.server.command == ["php", "./vendor/bin/roadrunner-worker"]
    assert cfg.http.pool.max_jobs == 500
    assert cfg.http.pool.exec_ttl == 30
    assert cfg.logs.output == ["stdout"]


def test_workdir_becomes_the_config_directory(tmp_path, monkeypatch):
    sub = tmp_path / "app"
    sub.mkdir()
    (sub / "cfg.yaml").write_text("version: '3'\nserver: {command: php w.php}\nhttp: {address: '127.0.0.1:1'}\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_config("app/cfg.yaml")
    assert cfg.workdir == str(sub)
