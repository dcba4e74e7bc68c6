"""Every kv.* RPC on the local storages (memory, boltdb on SQLite) through a real fastrr."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from fastrr.rpc.client import RpcError
from tests.conftest import ROOT, free_port
from tests.kv.conftest import KvFactory, KvServer, rfc3339

LOCAL = {
    "memory": lambda tmp: {"driver": "memory"},
    "boltdb": lambda tmp: {"driver": "boltdb", "config": {"file": str(tmp / "kv.db"), "interval": 1}},
}


@pytest.fixture(params=sorted(LOCAL))
def store(request: pytest.FixtureRequest, kv: KvFactory, tmp_path: Path) -> KvServer:
    return kv.start({"s": LOCAL[request.param](tmp_path), "other": {"driver": "memory"}})


def test_set_get_has_delete(store: KvServer) -> None:
    store.set("s", {"a": b"1", "b": b"two", "bin": bytes(range(256))})
    assert store.mget("s", "a", "missing", "bin") == {"a": b"1", "bin": bytes(range(256))}
    assert store.has("s", "missing", "b", "a") == ["b", "a"]  # only existing keys, request order
    store.call("kv.Delete", "s", ["a", "nope"])
    assert store.mget("s", "a", "b") == {"b": b"two"}
    assert store.mget("other", "b") == {}  # storages are separate


def test_one_megabyte_value_and_overwrite(store: KvServer) -> None:
    big = os.urandom(1 << 20)
    store.set("s", {"big": big})
    assert store.mget("s", "big")["big"] == big
    store.set("s", {"big": b"small"})
    assert store.mget("s", "big") == {"big": b"small"}


def test_ttl_expiry_and_mexpire(store: KvServer) -> None:
    store.set("s", {"short": b"x"}, ttl=1)
    store.set("s", {"forever": b"y"})
    ttls = store.ttl("s", "short", "forever", "missing")
    assert ttls["forever"] == "" and set(ttls) == {"short", "forever"}
    assert ttls["short"] in (rfc3339(0), rfc3339(1))
    store.call("kv.MExpire", "s", [("forever", b"", rfc3339(1))])
    assert store.ttl("s", "forever")["forever"] != ""
    time.sleep(2.1)
    assert store.mget("s", "short", "forever") == {}
    assert store.has("s", "short", "forever") == []


def test_a_past_timeout_expires_the_item(store: KvServer) -> None:
    store.set("s", {"k": b"v"})
    store.call("kv.Set", "s", [("k", b"new", rfc3339(-10))])  # PSR-16: TTL <= 0 deletes
    assert store.mget("s", "k") == {}
    store.set("s", {"k": b"v"})
    store.call("kv.MExpire", "s", [("k", b"", rfc3339(-1))])
    assert store.mget("s", "k") == {}


def test_timeouts_in_the_forms_php_sends(store: KvServer) -> None:
    future = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 60))
    store.call("kv.Set", "s", [("z", b"1", future + "Z"), ("p", b"2", future + "+00:00"),
                               ("f", b"3", future + ".123456+02:00")])
    assert set(store.mget("s", "z", "p", "f")) == {"z", "p"}  # +02:00 makes "f" already expired


def test_clear(store: KvServer) -> None:
    store.set("s", {f"k{i}": b"v" for i in range(50)})
    store.set("other", {"k1": b"keep"})
    store.call("kv.Clear", "s")
    assert store.mget("s", *[f"k{i}" for i in range(50)]) == {}
    assert store.mget("other", "k1") == {"k1": b"keep"}


@pytest.mark.parametrize("method,storage,items,error", [
    ("kv.MGet", "", ["a"], "kv.MGet: no storage provided"),
    ("kv.MGet", "nope", ["a"], "kv.MGet: no such storage: nope"),
    ("kv.Set", "s", [("", b"v", "")], "kv.Set: storage s: items[0]: empty key"),
    ("kv.Set", "s", [("k", b"v", "soon")], "items[0] (key k): timeout 'soon' is not an RFC 3339 time"),
    ("kv.Set", "s", [("k", b"v", "2030-01-01T00:00:00")], "has no UTC offset"),
    ("kv.Set", "s", [("k", b"x" * (3 << 19), "")], "value is 1572864 bytes, over kv.s.max_value_size (1 MB)"),
    ("kv.Set", "s", [], "kv.Set: storage s: no items given"),
    ("kv.MExpire", "s", [("k", b"", "")], "should set timeout and at least one key"),
    ("kv.Has", "s", [], "kv.Has: storage s: no keys given"),
])
def test_bad_input_names_what_is_wrong_and_harms_nothing(kv: KvFactory, tmp_path: Path, method: str,
                                                        storage: str, items: list, error: str) -> None:
    srv = kv.start({"s": {"driver": "memory", "max_value_size": 1}})
    srv.set("s", {"k": b"kept"})
    with pytest.raises(RpcError) as info:
        srv.call(method, storage, items)
    assert error in str(info.value)
    assert srv.mget("s", "k") == {"k": b"kept"}


def test_malformed_message(kv: KvFactory) -> None:
    srv = kv.start({"s": {"driver": "memory"}})
    with pytest.raises(RpcError, match="kv.MGet: malformed kv.v1.Request message"):
        srv.client.call("kv.MGet", b"\xff\xff\xff", flags=0x80)


def test_local_file_survives_sigkill(kv: KvFactory, tmp_path: Path) -> None:
    storages = {"s": LOCAL["boltdb"](tmp_path)}
    first = kv.start(storages)
    first.set("s", {f"k{i}": str(i).encode() for i in range(100)})
    first.set("s", {"ttl": b"x"}, ttl=3600)
    first.call("kv.Delete", "s", ["k0"])
    first.server.kill()
    second = kv.start(storages)
    got = second.mget("s", *[f"k{i}" for i in range(100)])
    assert len(got) == 99 and got["k99"] == b"99" and "k0" not in got
    assert second.ttl("s", "ttl")["ttl"] == rfc3339(3600) or second.ttl("s", "ttl")["ttl"] == rfc3339(3599)


@pytest.mark.parametrize("kv_section,error", [
    ({"s": {"config": {}}}, "kv.s.driver: required key is missing"),
    ({"s": {"driver": "etcd"}}, "kv.s.driver: unknown driver 'etcd'"),
    ({"s": "memory"}, "kv.s: expected a mapping"),
    ({"s": {"driver": "boltdb", "config": {"interval": "often"}}}, "kv.s.config.interval"),
    ({"s": {"driver": "memory", "config": {"interval": "often"}}}, "kv.s.config.interval"),
    ({"s": {"driver": "memory", "max_value_size": 0}}, "kv.s.max_value_size"),
])
def test_config_errors(tmp_path: Path, kv_section: dict, error: str) -> None:
    cfg = {"version": "3", "server": {"command": "php x.php"}, "rpc": {"listen": f"tcp://127.0.0.1:{free_port()}"},
           "kv": kv_section}
    path = tmp_path / ".rr.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = subprocess.run([sys.executable, "-m", "fastrr", "serve", "-c", str(path)], capture_output=True, text=True,
                         timeout=30, cwd=str(ROOT))
    assert out.returncode == 1 and error in out.stderr
