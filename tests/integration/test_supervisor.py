"""The pool heals itself: crash storms, rolling resets under load, the
supervisor's limits (memory, exec_ttl, ttl, idle_ttl, max_jobs), boot loops,
and the operator signals (HUP, TTIN, TTOU).

Load comes from real HTTP clients (threads with keep-alive httpx clients),
bounded in time and in requests; assertions count outcomes, never timings
tighter than "did not hang".
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from fastrr.rpc.client import RpcClient, RpcError
from tests.conftest import WORKERS, free_port


def with_rpc(extra: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    address = f"tcp://127.0.0.1:{free_port()}"
    cfg: dict[str, Any] = {"rpc": {"listen": address}}
    cfg.update(extra or {})
    return cfg, address


def pool_cfg(**pool: Any) -> dict[str, Any]:
    return {"http": {"pool": pool}}


def supervisor_cfg(**sup: Any) -> dict[str, Any]:
    return {"http": {"pool": {"supervisor": sup}}}


def wait_until(cond, timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def stats(address: str) -> dict[str, Any]:
    with RpcClient(address) as client:
        return client.call("informer.Stats", "http")


@dataclass
class Load:
    """Outcome of a bounded load run; `total` grows while it runs."""

    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    pids: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def total(self) -> int:
        return sum(self.statuses.values()) + len(self.errors)

    def summary(self) -> str:
        lat = sorted(self.latencies) or [0.0]
        return (f"requests={self.total} statuses={dict(sorted(self.statuses.items()))} errors={len(self.errors)} "
                f"p50={lat[len(lat) // 2] * 1000:.1f}ms max={lat[-1] * 1000:.1f}ms")


def run_load(load: Load, url: str, clients: int = 20, duration: float = 3.0, per_client: int = 1000,
             timeout: float = 20.0, stop: threading.Event | None = None) -> Load:
    """`clients` keep-alive clients hitting `url` until `duration` is over, `stop`
    is set, or each has sent `per_client` requests."""
    deadline = time.monotonic() + duration

    def client() -> None:
        with httpx.Client(timeout=timeout) as http:
            for _ in range(per_client):
                if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                    return
                started = time.monotonic()
                try:
                    r = http.get(url)
                except httpx.HTTPError as exc:
                    with load.lock:
                        load.errors.append(repr(exc))
                    continue
                elapsed = time.monotonic() - started
                pid = None
                if r.status_code == 200 and r.headers.get("content-type", "").startswith("application/json"):
                    pid = r.json().get("pid")
                with load.lock:
                    load.statuses[r.status_code] += 1
                    load.latencies.append(elapsed)
                    if pid:
                        load.pids[pid] += 1

    with concurrent.futures.ThreadPoolExecutor(clients) as ex:
        for fut in [ex.submit(client) for _ in range(clients)]:
            fut.result()
    return load


def test_crash_storm_every_request_is_answered(fastrr):
    server = fastrr.start(workers=4)
    server.wait_workers(4)
    load = Load()
    kills = 0
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        running = ex.submit(run_load, load, server.url("/sleep?ms=5"), 20, 4.0)
        wait_until(lambda: load.total >= 20, what="load to start")
        storm_end = time.monotonic() + 3.0
        while time.monotonic() < storm_end:
            pids = sorted(server.worker_pids())
            if pids:
                try:
                    os.kill(random.choice(pids), signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    pass
            time.sleep(0.1)  # the storm's cadence
        running.result(timeout=90)
    print(f"\ncrash storm: kills={kills} {load.summary()}")
    assert not load.errors, load.errors[:5]
    assert set(load.statuses) <= {200, 502}, load.statuses
    assert load.statuses[200] > 0
    # Only a request that was on the killed worker can fail, so at most one per kill.
    assert load.statuses[502] <= kills
    assert max(load.latencies) < 15
    server.wait_workers(4)
    for _ in range(8):
        assert httpx.get(server.url("/hello"), timeout=10).status_code == 200
    assert server.proc.poll() is None


def test_rolling_reset_under_load_drops_nothing(fastrr):
    cfg, address = with_rpc()
    # Replacements take 300 ms to boot, so the reset spans many requests.
    server = fastrr.start(cfg, workers=4, script="slowboot.php", env={"BOOT_MS": "300"})
    before = server.wait_workers(4)
    load = Load()
    stop = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        running = ex.submit(run_load, load, server.url("/sleep?ms=10"), 20, 60.0, 1000, 20.0, stop)
        try:
            wait_until(lambda: load.total >= 50, what="load to start")
            with RpcClient(address) as client:
                assert client.call("resetter.Reset", "http", timeout=60) is True
            after = server.worker_pids()
            done = load.total
            wait_until(lambda: load.total >= done + 200, timeout=30, what="load after the reset")
        finally:
            stop.set()
        running.result(timeout=90)
    print(f"\nrolling reset: {load.summary()}")
    assert not load.errors, load.errors[:5]
    assert set(load.statuses) == {200}, load.statuses
    assert len(after) == 4 and not (after & before), (before, after)
    served_by = set(load.pids)
    assert served_by & before and served_by & after  # traffic flowed through both generations
    assert stats(address)["recycled"].get("reset") == 4


def test_reset_drains_a_busy_worker_instead_of_killing_it(fastrr):
    cfg, address = with_rpc()
    server = fastrr.start(cfg, workers=2)
    before = server.wait_workers(2)
    with concurrent.futures.ThreadPoolExecutor(1) as ex, RpcClient(address) as client:
        slow = ex.submit(httpx.get, server.url("/sleep?ms=1500"), timeout=20)
        wait_until(lambda: any(w["statusStr"] == "working"
                               for w in client.call("informer.Workers", "http")["workers"]), what="a busy worker")
        assert client.call("resetter.Reset", "http", timeout=60) is True
        # Reset returned once the old worker had finished its request and left.
        assert not (server.worker_pids() & before)
        r = slow.result(timeout=20)
    assert r.status_code == 200 and r.json()["pid"] in before
    after = server.wait_workers(2)
    assert not (after & before)


def _switchable_worker(tmp_path: Path) -> tuple[Path, Path]:
    """A worker script that fails its boot while a marker file exists."""
    script = tmp_path / "switchable.php"
    marker = tmp_path / "broken"
    script.write_text(
        "<?php\n"
        f"if (file_exists({str(marker)!r})) {{ fwrite(STDERR, \"simulated broken deploy\\n\"); exit(1); }}\n"
        f"require {str(WORKERS / 'app.php')!r};\n")
    return script, marker


def test_reset_with_broken_new_code_keeps_the_old_workers(fastrr, tmp_path):
    script, marker = _switchable_worker(tmp_path)
    cfg, address = with_rpc({"server": {"command": f"php {script}"}})
    server = fastrr.start(cfg, workers=2)
    before = server.wait_workers(2)
    marker.touch()
    with RpcClient(address) as client:
        with pytest.raises(RpcError, match="simulated broken deploy"):
            client.call("resetter.Reset", "http", timeout=60)
        assert server.wait_workers(2) == before
        for _ in range(4):
            assert httpx.get(server.url("/hello"), timeout=10).status_code == 200
        marker.unlink()
        assert client.call("resetter.Reset", "http", timeout=60) is True
    assert not (server.wait_workers(2) & before)
    assert server.proc.poll() is None


def test_memory_limit_recycles_after_the_request_that_crossed_it(fastrr):
    # watch_tick is long: only the check after each request can catch it.
    cfg, address = with_rpc(supervisor_cfg(max_worker_memory=40, watch_tick="1h"))
    server = fastrr.start(cfg, workers=1)
    (pid,) = server.wait_workers(1)
    r = httpx.get(server.url("/memory?mb=40"), timeout=20)
    assert r.status_code == 200
    assert r.json()["pid"] == pid and r.json()["held_mb"] == 40
    (new,) = wait_until(lambda: (p := server.worker_pids()) and pid not in p and len(p) == 1 and p,
                        what="the worker to be replaced")
    assert httpx.get(server.url("/pid"), timeout=10).json()["pid"] == new
    assert stats(address)["recycled"] == {"maxMemoryReached": 1}


def test_memory_limit_on_the_watch_tick_spares_a_busy_worker(fastrr):
    # 1 MB: every worker is over the limit from its start, so the tick finds
    # the busy one over it too; it may only mark it (its status says why, as
    # RoadRunner's) and wait.
    cfg, address = with_rpc(supervisor_cfg(max_worker_memory=1, watch_tick="100ms"))
    server = fastrr.start(cfg, workers=1)
    with concurrent.futures.ThreadPoolExecutor(1) as ex, RpcClient(address) as client:
        slow = ex.submit(httpx.get, server.url("/sleep?ms=1500"), timeout=20)
        marked = wait_until(lambda: [w["pid"] for w in client.call("informer.Workers", "http")["workers"]
                                     if w["statusStr"] == "maxMemoryReached" and w["status"] == 11],
                            what="the busy worker to be marked")
        r = slow.result()
    assert r.status_code == 200 and r.json()["pid"] == marked[0]
    wait_until(lambda: marked[0] not in server.worker_pids(), what="the marked worker to be replaced")
    assert stats(address)["recycled"]["maxMemoryReached"] >= 1


def test_exec_ttl_kills_the_worker_and_answers_504(fastrr):
    cfg, address = with_rpc(supervisor_cfg(exec_ttl="1s"))
    server = fastrr.start(cfg, workers=1)
    before = server.wait_workers(1)
    started = time.monotonic()
    r = httpx.get(server.url("/sleep?ms=10000"), timeout=20)
    assert r.status_code == 504
    assert time.monotonic() - started < 8
    after = server.wait_workers(1)
    assert not (after & before)
    assert httpx.get(server.url("/hello"), timeout=10).status_code == 200
    assert stats(address)["recycled"] == {"execTTLReached": 1}


def test_idle_ttl_recycles_a_worker_that_served_and_went_idle(fastrr):
    cfg, address = with_rpc(supervisor_cfg(idle_ttl="1s", watch_tick="100ms"))
    server = fastrr.start(cfg, workers=1)
    pid = httpx.get(server.url("/pid"), timeout=10).json()["pid"]
    wait_until(lambda: (p := server.worker_pids()) and pid not in p, what="the idle worker to be replaced")
    assert stats(address)["recycled"]["idleTTLReached"] == 1


def test_ttl_recycles_idle_workers_and_waits_for_busy_ones(fastrr):
    cfg, address = with_rpc(supervisor_cfg(ttl="1s", watch_tick="100ms"))
    server = fastrr.start(cfg, workers=1)
    (first,) = server.wait_workers(1)
    # An idle worker is replaced once it is older than ttl.
    wait_until(lambda: (p := server.worker_pids()) and first not in p, what="ttl replacement")
    # A busy one finishes its request first.
    r = httpx.get(server.url("/sleep?ms=2500"), timeout=20)
    assert r.status_code == 200
    busy = r.json()["pid"]
    wait_until(lambda: (p := server.worker_pids()) and busy not in p, what="ttl replacement after the request")
    assert stats(address)["recycled"]["ttlReached"] >= 2


def test_max_jobs_recycles_after_the_last_job(fastrr):
    cfg, address = with_rpc(pool_cfg(max_jobs=3))
    server = fastrr.start(cfg, workers=1)
    seen = [httpx.get(server.url("/pid"), timeout=10).json() for _ in range(4)]
    assert [s["count"] for s in seen] == [1, 2, 3, 1]
    assert len({s["pid"] for s in seen[:3]}) == 1 and seen[3]["pid"] != seen[0]["pid"]
    assert stats(address)["recycled"] == {"maxJobsReached": 1}


def test_boot_loop_backs_off_and_reports_the_workers_stderr(fastrr, tmp_path):
    script, marker = _switchable_worker(tmp_path)
    server = fastrr.start({"server": {"command": f"php {script}"}, "logs": {"mode": "production"}}, workers=1)
    (pid,) = server.wait_workers(1)
    marker.touch()
    os.kill(pid, signal.SIGKILL)
    assert server.proc.wait(60) == 3
    err = server.err_path.read_text()
    assert "failed to boot 5 times in a row" in err
    assert "simulated broken deploy" in err
    times = [json.loads(line)["ts"] for line in err.splitlines()
             if line.startswith("{") and json.loads(line).get("msg") == "worker failed to boot"]
    assert len(times) == 5
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # Exponential: 0.1, 0.2, 0.4, 0.8 s at least before each respawn (boots add to it).
    for gap, backoff in zip(gaps, (0.1, 0.2, 0.4, 0.8), strict=True):
        assert gap >= backoff * 0.9, gaps


def test_workers_killed_while_booting_do_not_count_as_a_boot_loop(fastrr):
    server = fastrr.start(script="slowboot.php", workers=1, env={"BOOT_MS": "1000"}, wait=False)
    pid = wait_until(lambda: server.worker_pids(), what="a booting worker").pop()
    for _ in range(5):
        os.kill(pid, signal.SIGKILL)
        pid = wait_until(lambda p=pid: (s := server.worker_pids()) and p not in s and s, timeout=30,
                         what="a respawn").pop()
    assert server.proc.poll() is None
    fastrr._wait_listening(server, 30)
    assert httpx.get(server.url("/hello"), timeout=20).status_code == 200


def test_signals_hup_resets_ttin_ttou_scale(fastrr):
    server = fastrr.start(workers=2)
    before = server.wait_workers(2)
    server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: (p := server.worker_pids()) and len(p) == 2 and not (p & before), what="reset by SIGHUP")
    server.proc.send_signal(signal.SIGTTIN)
    server.wait_workers(3)
    server.proc.send_signal(signal.SIGTTOU)
    server.wait_workers(2)
    assert httpx.get(server.url("/hello"), timeout=10).status_code == 200


@pytest.mark.parametrize("workers", [1, 3])
def test_ttl_replacement_is_warm(fastrr, workers):
    """ttl recycling spawns the replacement first: with slow-booting workers
    and continuous traffic nobody gets a 503/502 or waits for a boot, the
    workers do change, and the pool never holds more than num_workers + 1
    processes (replacements run one at a time)."""
    boot = 0.4
    cfg, address = with_rpc(pool_cfg(allocate_timeout="20s", supervisor={"ttl": "1s", "watch_tick": "100ms"}))
    server = fastrr.start(cfg, workers=workers, script="slowboot.php", env={"BOOT_MS": str(int(boot * 1000))})
    first = server.wait_workers(workers)
    counts: list[int] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            counts.append(len(server.worker_pids()))
            time.sleep(0.01)

    load = Load()
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        sampler = ex.submit(sample)
        try:
            run_load(load, server.url("/pid"), clients=workers, duration=5.0, per_client=100000)
        finally:
            sampling.set()
        sampler.result(timeout=10)
    print(f"\nwarm ttl, {workers} worker(s): {load.summary()} processes max={max(counts)} "
          f"workers seen={len(load.pids)}")
    assert not load.errors, load.errors[:5]
    assert set(load.statuses) == {200}, load.statuses
    # With back-to-back clients a cold replacement makes the request in flight wait the whole
    # boot (≥ 0.4 s); below 0.85 of it, no request did. (Not boot / 2: on a loaded 2-core
    # machine, as when `make test` runs two test processes, a 0.2 s scheduling pause happens.)
    assert max(load.latencies) < boot * 0.85, load.summary()
    assert len(load.pids) >= workers + 3 and set(load.pids) - first  # several recycles happened
    assert max(counts) <= workers + 1, Counter(counts)
    assert stats(address)["recycled"]["ttlReached"] >= 3


def test_warm_replacement_that_fails_to_boot_falls_back(fastrr, tmp_path):
    """ttl's replacement dies while booting: the old worker is retired without
    one (logged), the pool respawns with backoff and recovers once boots work."""
    script, marker = _switchable_worker(tmp_path)
    cfg, _ = with_rpc({"server": {"command": f"php {script}"}, **supervisor_cfg(ttl="1s", watch_tick="100ms")})
    server = fastrr.start(cfg, workers=1)
    (old,) = server.wait_workers(1)
    marker.touch()
    wait_until(lambda: "replacement worker exited before it was ready" in server.output(), timeout=20,
               what="the failed replacement to be reported")
    marker.unlink()
    wait_until(lambda: (p := server.worker_pids()) and old not in p and len(p) == 1, timeout=20,
               what="a working replacement")
    assert server.proc.poll() is None
    assert httpx.get(server.url("/pid"), timeout=20).json()["pid"] != old
    assert "simulated broken deploy" in server.output()


def test_memory_replacement_after_a_request_is_warm(fastrr):
    """The worker that crossed max_worker_memory in a request serves on until
    its (slow-booting) replacement is ready: the next requests do not wait."""
    boot = 0.6
    cfg, address = with_rpc(supervisor_cfg(max_worker_memory=40, watch_tick="1h"))
    server = fastrr.start(cfg, workers=1, script="slowboot.php", env={"BOOT_MS": str(int(boot * 1000))})
    (pid,) = server.wait_workers(1)
    with httpx.Client(base_url=server.base, timeout=20) as client:
        assert client.get("/memory?mb=40").json()["pid"] == pid
        served = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            started = time.monotonic()
            r = client.get("/pid")
            served.append((r.json()["pid"], time.monotonic() - started))
            if served[-1][0] != pid:
                break
    assert served[0][0] == pid  # the old worker served on while its replacement booted
    assert served[-1][0] != pid, "not replaced"
    assert max(t for _, t in served) < boot / 2, served[-5:]
    wait_until(lambda: server.worker_pids() == {served[-1][0]}, what="the old worker to exit")
    assert stats(address)["recycled"] == {"maxMemoryReached": 1}


def test_max_jobs_jitter_recycles_workers_at_different_counts(fastrr):
    """max_jobs 40 with jitter (up to 10 %): each worker is retired after its own
    limit in 36..40, never beyond 40, and the limits differ between workers."""
    cfg, address = with_rpc(pool_cfg(max_jobs=40))
    server = fastrr.start(cfg, workers=4)
    server.wait_workers(4)
    lock = threading.Lock()
    last: dict[int, int] = {}

    def client() -> None:
        with httpx.Client(base_url=server.base, timeout=20) as http:
            for _ in range(150):
                body = http.get("/pid").json()
                with lock:
                    last[body["pid"]] = max(last.get(body["pid"], 0), body["count"])

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        for fut in [ex.submit(client) for _ in range(4)]:
            fut.result()
    assert sum(last.values()) == 600  # every request counted by exactly one worker
    current = server.wait_workers(4)
    retired = {pid: count for pid, count in last.items() if pid not in current}
    assert len(retired) >= 8, last
    assert max(last.values()) <= 40, last
    assert all(36 <= count <= 40 for count in retired.values()), retired
    assert len(set(retired.values())) >= 2, retired  # jittered: not all at exactly 40
    assert stats(address)["recycled"]["maxJobsReached"] >= len(retired)
