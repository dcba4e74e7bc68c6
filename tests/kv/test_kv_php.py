"""fastrr's PHP library (Fastrr\\KeyValue, Fastrr\\Lock) against a real fastrr:
tests/workers/kv_client.php and lock_client.php are the PHP side."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import WORKERS
from tests.kv.conftest import KvFactory, KvServer
from tests.kv.servers import memcached, redis_db

__all__ = ["memcached", "redis_db"]  # fixtures used below


def php(script: str, *args: str) -> tuple[int, Any]:
    out = subprocess.run(["php", str(WORKERS / script), *args], capture_output=True, text=True, timeout=60)
    try:
        return out.returncode, json.loads(out.stdout)
    except ValueError:
        raise AssertionError(f"{script} {args}: {out.returncode}\n{out.stdout}\n{out.stderr}") from None


def kvc(srv: KvServer, storage: str, *args: str) -> Any:
    code, answer = php("kv_client.php", srv.rpc, storage, *args)
    assert code == 0, answer
    return answer


@pytest.fixture(params=["memory", "boltdb", "redis", "memcached"])
def storage(request: pytest.FixtureRequest, kv: KvFactory, tmp_path: Path) -> tuple[KvServer, str]:
    if request.param == "memory":
        cfg: dict[str, Any] = {"driver": "memory"}
    elif request.param == "boltdb":
        cfg = {"driver": "boltdb", "config": {"file": str(tmp_path / "kv.db")}}
    elif request.param == "redis":
        cfg = {"driver": "redis", "config": request.getfixturevalue("redis_db")}
    else:
        server = request.getfixturevalue("memcached")
        cfg = {"driver": "memcached", "config": {"addr": [f"127.0.0.1:{server.port}"]}}
    return kv.start({"s": cfg}), request.param


def test_psr16_cache_from_php(storage: tuple[KvServer, str]) -> None:
    srv, driver = storage
    assert kvc(srv, "s", "set", "greeting", "hello") is not None
    assert kvc(srv, "s", "get", "greeting") == "hello"
    assert kvc(srv, "s", "get", "missing") is None
    assert kvc(srv, "s", "has", "greeting") is True
    assert kvc(srv, "s", "getmulti", "greeting", "missing") == {"greeting": "hello", "missing": None}
    kvc(srv, "s", "setbin", "bin", "00ff10")
    assert kvc(srv, "s", "getbin", "bin") == "00ff10"
    kvc(srv, "s", "setsize", "big", str(1 << 20))
    kvc(srv, "s", "delete", "greeting")
    assert kvc(srv, "s", "has", "greeting") is False
    if driver == "memcached":
        code, answer = php("kv_client.php", srv.rpc, "s", "ttl", "big")
        assert code == 1 and "NotImplemented" in answer["error"]
    else:
        kvc(srv, "s", "set", "t", "v", "60")
        assert kvc(srv, "s", "ttl", "t") is not None
    kvc(srv, "s", "clear")
    assert kvc(srv, "s", "get", "bin") is None


def test_unknown_storage_from_php(kv: KvFactory) -> None:
    srv = kv.start({"s": {"driver": "memory"}})
    code, answer = php("kv_client.php", srv.rpc, "nope", "get", "k")
    assert code == 1 and "Storage" in answer["error"] and "nope" in answer["message"]


def test_two_php_workers_contend_for_one_lock(kv: KvFactory) -> None:
    srv = kv.start({"s": {"driver": "memory"}})
    results: list[Any] = []

    def hold() -> None:
        results.append(php("lock_client.php", srv.rpc, "hold", "report", "1"))

    first = threading.Thread(target=hold)
    first.start()
    second = threading.Thread(target=hold)
    second.start()
    first.join(30)
    second.join(30)
    assert [code for code, _ in results] == [0, 0]
    spans = sorted((r["locked"], r["released"]) for _, r in results)
    assert spans[1][0] >= spans[0][1] - 0.01  # the second held it only after the first let go


def test_values_are_php_serialize_bytes_shared_with_other_clients(kv: KvFactory) -> None:
    # roadrunner-kv stores serialize() output: a value written by either library reads in the other.
    srv = kv.start({"s": {"driver": "memory"}})
    kvc(srv, "s", "set", "greeting", "hello")
    assert srv.mget("s", "greeting") == {"greeting": b's:5:"hello";'}
    srv.set("s", {"list": b'a:2:{i:0;i:1;i:1;s:1:"x";}'})
    assert kvc(srv, "s", "get", "list") == [1, "x"]
    kvc(srv, "s", "json-set", "doc", '{"a": [1, 2]}')
    assert srv.mget("s", "doc") == {"doc": b'{"a":[1,2]}'}
    assert kvc(srv, "s", "json-get", "doc") == {"a": [1, 2]}


def test_ttls_from_php_are_absolute_times_the_server_honours(kv: KvFactory) -> None:
    srv = kv.start({"s": {"driver": "memory", "config": {"interval": 1}}})
    assert "unknown option" not in srv.server.output()  # the memory driver's GC interval is known
    kvc(srv, "s", "setmulti", "60", "a", "1", "b", "2")
    ttls = srv.ttl("s", "a", "b")
    assert set(ttls) == {"a", "b"} and all(t.endswith("+00:00") for t in ttls.values())
    kvc(srv, "s", "expire", "a", "1")
    kvc(srv, "s", "set", "gone", "x", "0")  # PSR-16: a ttl <= 0 deletes the item
    assert kvc(srv, "s", "has", "gone") is False
    time.sleep(2.2)
    assert kvc(srv, "s", "getmulti", "a", "b") == {"a": None, "b": "2"}


def test_bad_keys_are_refused_before_any_call(kv: KvFactory) -> None:
    srv = kv.start({"s": {"driver": "memory"}})
    code, answer = php("kv_client.php", srv.rpc, "s", "set", "", "v")
    assert code == 1 and answer["error"].endswith("InvalidArgumentException") and "empty" in answer["message"]
    # the server turns away an over-long key; the storage keeps what it had
    kvc(srv, "s", "set", "kept", "v")
    code, answer = php("kv_client.php", srv.rpc, "s", "set", "k" * 70000, "v")
    assert code == 1 and answer["error"].endswith("KeyValueException") and "characters" in answer["message"]
    assert kvc(srv, "s", "get", "kept") == "v"


def test_every_lock_method_from_php(kv: KvFactory) -> None:
    srv = kv.start({"s": {"driver": "memory"}})
    code, t = php("lock_client.php", srv.rpc, "tour", "res")
    assert code == 0, t
    assert isinstance(t["writer_id"], str) and len(t["writer_id"]) == 36  # a UUID when no id is given
    assert t["exists_any"] is True and t["exists_writer"] is True and t["exists_other"] is False
    assert t["second_writer"] is False and t["reader_while_writer"] is False
    assert t["update_ttl"] is True and t["release_wrong_id"] is False and t["release"] is True
    assert t["reader1"] == "r1" and t["reader2"] == "r2" and t["writer_while_readers"] is False
    assert t["force_release"] is True and t["exists_after_force"] is False
    assert t["short_ttl"] == "brief" and t["exists_after_ttl"] is False
    assert t["force_release_unknown"] is False
