"""The `broadcast:` section: defaults, where options come from, and one clear start-up error
naming the key for each bad config (through a real `fastrr serve`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fastrr.config.schema import build_config
from tests.conftest import ROOT, free_port


def config(broadcast: Any, **top: Any) -> dict[str, Any]:
    return {"version": "3", "server": {"command": "php x.php"}, "rpc": {"listen": f"tcp://127.0.0.1:{free_port()}"},
            "broadcast": broadcast, **top}


def test_defaults_and_sources(tmp_path: Path) -> None:
    cfg = build_config(config({
        "default": {"driver": "memory"},
        "shared": {"driver": "redis", "history_size": 5, "history_ttl": "30s",
                   "config": {"addrs": ["127.0.0.1:6390"], "prefix": "app:", "unsubscribe_delay": "2s"}},
        "fallback": {"driver": "redis"},   # options from the top-level section named like it
        "global": {"driver": "REDIS"},     # connection keys from the top-level `redis:` section
    }, fallback={"addrs": "127.0.0.1:6391", "db": 3}, redis={"addrs": ["127.0.0.1:6392"], "password": "pw"}),
        str(tmp_path))
    brokers = cfg.sections["broadcast"].brokers
    assert brokers["default"].driver == "memory" and brokers["default"].options == {}
    assert brokers["default"].history_size == 100 and brokers["default"].history_ttl == 600.0
    shared = brokers["shared"]
    assert shared.history_size == 5 and shared.history_ttl == 30.0
    assert shared.options["addrs"] == ["127.0.0.1:6390"] and shared.options["prefix"] == "app:"
    assert shared.options["unsubscribe_delay"] == 2.0 and shared.options["password"] == "pw"
    assert brokers["fallback"].options["addrs"] == ["127.0.0.1:6391"] and brokers["fallback"].options["db"] == 3
    assert brokers["global"].driver == "redis" and brokers["global"].options["addrs"] == ["127.0.0.1:6392"]
    assert brokers["global"].options["prefix"] == "" and brokers["global"].options["unsubscribe_delay"] == 10.0
    # the top-level sections read are not reported as unknown / unsupported
    assert not [w for w in cfg.warnings if w.startswith(("fallback", "redis"))], cfg.warnings


def test_pool_keys_are_accepted_and_warned_about(tmp_path: Path) -> None:
    cfg = build_config(config({"r": {"driver": "redis", "config": {"pool_size": 20, "max_retries": 5}}}),
                       str(tmp_path))
    assert any("broadcast.r.config.pool_size: not used by the redis broadcast broker" in w for w in cfg.warnings)
    assert any("broadcast.r.config.max_retries" in w for w in cfg.warnings)


@pytest.mark.parametrize("section,error", [
    ({}, "broadcast: no brokers"),
    ("memory", "broadcast: expected a mapping"),
    ({"d": "memory"}, "broadcast.d: expected a mapping with a driver"),
    ({"d": {"config": {}}}, "broadcast.d.driver: required key is missing: one of memory, redis"),
    ({"d": {"driver": "nats"}}, "broadcast.d.driver: unknown driver 'nats'; available: memory, redis"),
    ({"d": {"driver": "memory", "histroy_size": 5}}, "broadcast.d.histroy_size: unknown key"),
    ({"d": {"driver": "memory", "config": {"addrs": ["x:1"]}}},
     "broadcast.d.config.addrs: the memory broadcast broker has no options"),
    ({"d": {"driver": "memory", "config": "x"}}, "broadcast.d.config: expected a mapping"),
    ({"d": {"driver": "memory", "history_size": -1}}, "broadcast.d.history_size: expected an integer >= 0"),
    ({"d": {"driver": "memory", "history_size": 10 ** 6}}, "broadcast.d.history_size: expected at most 100000"),
    ({"d": {"driver": "memory", "history_ttl": "soon"}}, "broadcast.d.history_ttl: expected a duration"),
    ({"d": {"driver": "redis", "config": {"adrs": ["127.0.0.1:6379"]}}},
     "broadcast.d.config.adrs: unknown option for the redis broadcast broker"),
    ({"d": {"driver": "redis", "config": {"addrs": ["nohost:port"]}}},
     "broadcast.d.config.addrs[0]: expected an address like 127.0.0.1:6379"),
    ({"d": {"driver": "redis", "config": {"addrs": ["127.0.0.1:1", "127.0.0.1:2"]}}},
     "broadcast.d.config.addrs: expected one address (Redis Cluster is not supported"),
    ({"d": {"driver": "redis", "config": {"master_name": "mymaster"}}},
     "broadcast.d.config.master_name: Redis Sentinel is not supported"),
    ({"d": {"driver": "redis", "config": {"prefix": "a b"}}},
     "broadcast.d.config.prefix: expected a channel prefix without spaces"),
    ({"d": {"driver": "redis", "config": {"unsubscribe_delay": "-1s"}}},
     "broadcast.d.config.unsubscribe_delay: expected a duration"),
    ({"d": {"driver": "redis", "config": {"dial_timeout": "fast"}}}, "broadcast.d.config.dial_timeout"),
])
def test_config_errors(tmp_path: Path, section: Any, error: str) -> None:
    path = tmp_path / ".rr.yaml"
    path.write_text(yaml.safe_dump(config(section)))
    out = subprocess.run([sys.executable, "-m", "fastrr", "serve", "-c", str(path)], capture_output=True, text=True,
                         timeout=30, cwd=str(ROOT))
    assert out.returncode == 1 and error in out.stderr, out.stderr
    assert len([line for line in out.stderr.splitlines() if "broadcast" in line]) == 1, out.stderr


def test_a_top_level_redis_section_error_names_it(tmp_path: Path) -> None:
    path = tmp_path / ".rr.yaml"
    path.write_text(yaml.safe_dump(config({"d": {"driver": "redis"}}, redis={"db": "zero"})))
    out = subprocess.run([sys.executable, "-m", "fastrr", "serve", "-c", str(path)], capture_output=True, text=True,
                         timeout=30, cwd=str(ROOT))
    assert out.returncode == 1 and "redis.db: expected an integer" in out.stderr, out.stderr
