"""Leak-trend recycling (`supervisor.leak_*`, fastrr/pool/leak.py and its C copy
in csrc/engine_loop.c): a worker whose RSS climbs steadily is replaced warm
before it reaches max_worker_memory, one at a time per pool; a single spike is
not a trend. Real fastrr, real PHP workers (tests/workers/rss_leak.php),
bounded request counts; nothing asserts on speed."""

from __future__ import annotations

import concurrent.futures
import json
import threading
from collections import Counter
from typing import Any

import httpx

from tests.integration.test_supervisor import stats, wait_until, with_rpc

LIMIT_MB = 96
WINDOW = 50
LEAK_LINE = "worker memory keeps climbing, recycling it before max_worker_memory"


def leak_cfg(**sup: Any) -> dict[str, Any]:
    cfg, address = with_rpc({
        "http": {"pool": {"supervisor": {"max_worker_memory": LIMIT_MB, "leak_window": WINDOW,
                                         "watch_tick": "1h", **sup}}},
        "logs": {"level": "debug", "encoding": "json"},
    })
    cfg["_address"] = address
    return cfg


def start(fastrr, workers: int = 1, boot_ms: int = 0, **sup: Any) -> tuple[Any, str]:
    cfg = leak_cfg(**sup)
    address = cfg.pop("_address")
    server = fastrr.start(cfg, workers=workers, script="rss_leak.php", env={"BOOT_MS": str(boot_ms)})
    server.wait_workers(workers)
    return server, address


def records(server) -> list[dict[str, Any]]:
    out = []
    for line in server.output().splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def leak_lines(server) -> list[dict[str, Any]]:
    return [r for r in records(server) if r.get("msg") == LEAK_LINE]


def test_a_worker_leaking_100kb_per_request_is_recycled_before_the_limit(fastrr):
    server, address = start(fastrr)
    (pid,) = server.wait_workers(1)
    seen: list[dict[str, Any]] = []
    with httpx.Client(base_url=server.base, timeout=20) as client:
        for _ in range(400):
            r = client.get("/leak?kb=100")
            assert r.status_code == 200
            seen.append(r.json())
            if leak_lines(server) and seen[-1]["pid"] != pid:
                break
    lines = leak_lines(server)
    assert lines, server.output()[-3000:]
    first = lines[0]
    assert first["pid"] == pid
    assert 80 <= first["kb_per_request"] <= 125, first  # ~100 KB/request (PHP adds a little per string)
    assert first["projected_requests"] > 0 and first["rss_mb"] < LIMIT_MB
    assert first["window"] == WINDOW and first["max_worker_memory"] == LIMIT_MB
    own = [s for s in seen if s["pid"] == pid]
    assert max(s["rss_kb"] for s in own) < LIMIT_MB * 1024  # never reached the limit
    # warm: the old worker answered until its replacement took over
    assert seen[-1]["pid"] != pid and seen[0]["pid"] == pid
    wait_until(lambda: pid not in server.worker_pids() and len(server.worker_pids()) == 1,
               what="the leaking worker to exit")
    recycled = stats(address)["recycled"]
    assert recycled.get("leakTrend", 0) >= 1 and "maxMemoryReached" not in recycled, recycled


def test_one_spike_is_not_a_trend(fastrr):
    """20 MB held from one request on (a step), then 20 MB allocated and freed
    in one request: no recycle, the same worker serves everything."""
    server, address = start(fastrr)
    (pid,) = server.wait_workers(1)
    with httpx.Client(base_url=server.base, timeout=20) as client:
        paths = ["/flat"] * 70 + ["/spike?mb=20"] + ["/flat"] * 120 + ["/spike-free?mb=20"] + ["/flat"] * 120
        body = {}
        for path in paths:
            r = client.get(path)
            assert r.status_code == 200
            body = r.json()
            assert body["pid"] == pid, (path, body)
    assert body["rss_kb"] > 20 * 1024  # the spike was real and is still held
    assert not leak_lines(server)
    assert server.worker_pids() == {pid}
    assert stats(address)["recycled"] == {}


def test_two_leaking_workers_are_recycled_one_at_a_time_and_no_request_fails(fastrr):
    """Both workers leak at the same pace, so both trends are found at about the
    same time; replacements boot slowly (400 ms) so overlapping recycles would
    show. Each recycle line must come after the previous recycled worker exited,
    and every request sent during all of it is answered 200."""
    server, address = start(fastrr, workers=2, boot_ms=400)
    first_pids = server.wait_workers(2)
    sent = Counter[int]()
    answered = Counter[int]()
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=server.base, timeout=30) as http:
            for _ in range(150):
                with lock:
                    sent[0] += 1
                r = http.get("/leak?kb=100")
                with lock:
                    answered[r.status_code] += 1

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        for fut in [ex.submit(client) for _ in range(4)]:
            fut.result()
    assert sent[0] == 600 and answered == Counter({200: 600}), answered
    wait_until(lambda: len(leak_lines(server)) >= 2, what="two leak recycles")
    wait_until(lambda: len(server.worker_pids()) == 2 and not server.worker_pids() & first_pids,
               timeout=20, what="both first workers to be replaced")
    events = [r for r in records(server)
              if r.get("msg") == LEAK_LINE or (r.get("msg") == "worker stopped" and r.get("logger") == "pool")]
    recycles = [r for r in events if r["msg"] == LEAK_LINE]
    assert {r["pid"] for r in recycles} >= first_pids
    for prev, nxt in zip(recycles, recycles[1:], strict=False):
        stopped = [i for i, r in enumerate(events) if r["msg"] == "worker stopped" and r["pid"] == prev["pid"]]
        assert stopped and stopped[0] < events.index(nxt), (prev, nxt, events)
        assert nxt["ts"] > prev["ts"]
    recycled = stats(address)["recycled"]
    assert recycled.get("leakTrend", 0) == len(recycles) and "maxMemoryReached" not in recycled, recycled
