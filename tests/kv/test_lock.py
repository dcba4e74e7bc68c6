"""lock.* through a real fastrr: contention with waits, TTL expiry, read locks, force release."""

from __future__ import annotations

import threading
import time

import pytest

from fastrr.rpc.client import RpcError
from tests.kv.conftest import KvFactory, KvServer


@pytest.fixture
def srv(kv: KvFactory) -> KvServer:
    return kv.start({"s": {"driver": "memory"}})


def _other(srv: KvServer) -> KvServer:
    clone = KvServer(srv.server)  # a second RPC connection: a second PHP worker's
    return clone


def test_contention_with_wait(srv: KvServer) -> None:
    other = _other(srv)
    assert srv.lock("lock.Lock", "r", "a", ttl=10)
    assert not other.lock("lock.Lock", "r", "b")  # wait 0: try once
    got: dict[str, float] = {}

    def waiter() -> None:
        start = time.monotonic()
        got["ok"] = other.lock("lock.Lock", "r", "b", ttl=10, wait=5)
        got["waited"] = time.monotonic() - start

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.5)
    assert srv.lock("lock.Release", "r", "a")
    thread.join(10)
    assert got["ok"] and 0.4 < got["waited"] < 3
    assert srv.lock("lock.Exists", "r", "b") and not srv.lock("lock.Exists", "r", "a")
    other.close()


def test_wait_times_out(srv: KvServer) -> None:
    assert srv.lock("lock.Lock", "r", "a")
    start = time.monotonic()
    assert not srv.lock("lock.Lock", "r", "a", wait=0.3)  # not re-entrant
    assert time.monotonic() - start >= 0.29


def test_ttl_releases_and_update_ttl(srv: KvServer) -> None:
    assert srv.lock("lock.Lock", "r", "a", ttl=0.5)
    assert srv.lock("lock.UpdateTTL", "r", "a", ttl=1.5)
    time.sleep(0.8)
    assert srv.lock("lock.Exists", "r", "a")  # the new TTL counts
    assert srv.lock("lock.Lock", "r", "b", wait=3)  # granted once it expired
    assert not srv.lock("lock.UpdateTTL", "r", "a", ttl=1)


def test_read_locks_share_and_block_writers(srv: KvServer) -> None:
    assert srv.lock("lock.LockRead", "r", "a")
    assert srv.lock("lock.LockRead", "r", "b")
    assert not srv.lock("lock.Lock", "r", "c", wait=0.2)
    assert srv.lock("lock.Release", "r", "b")
    assert srv.lock("lock.Lock", "r", "a")  # the only reader is promoted
    assert not srv.lock("lock.LockRead", "r", "d", wait=0.1)


def test_force_release_and_release_rules(srv: KvServer) -> None:
    assert not srv.lock("lock.Release", "nothing", "a")
    assert not srv.lock("lock.ForceRelease", "nothing")
    assert srv.lock("lock.Lock", "r", "a")
    assert not srv.lock("lock.Release", "r", "b")  # someone else's lock
    assert srv.lock("lock.Exists", "r", "*")
    assert srv.lock("lock.ForceRelease", "r")
    assert not srv.lock("lock.Exists", "r", "*")


@pytest.mark.parametrize("method", ["lock.Lock", "lock.LockRead", "lock.Release", "lock.Exists", "lock.UpdateTTL"])
def test_empty_id_is_refused(srv: KvServer, method: str) -> None:
    with pytest.raises(RpcError, match="empty ID is not allowed"):
        srv.lock(method, "r", "")


def test_negative_ttl_is_refused(srv: KvServer) -> None:
    with pytest.raises(RpcError, match="ttl and wait must not be negative"):
        srv.lock("lock.Lock", "r", "a", ttl=-1)
    assert srv.lock("lock.Lock", "r", "a")
