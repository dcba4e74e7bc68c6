"""The redis jobs driver (Redis Streams + a consumer group) end to end: real fastrr,
real PHP consumers, a real Redis.

Most tests use the machine's shared Redis (127.0.0.1:6379, no persistence): each
under key names of its own (a uuid in the prefix), deleted afterwards, never a
FLUSH or a restart. The restart test starts its own redis-server on a free port,
with `--appendonly yes --appendfsync always` as a production queue needs.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from fastrr.jobs import proto
from tests.conftest import ROOT, free_port
from tests.jobs.brokers.common import Daemon, Producer, require, spread, tally, wait_all_received
from tests.jobs.conftest import JobsFactory, JobsServer, jobs_config

SHARED = "127.0.0.1:6379"


@pytest.fixture
def prefix(jobs: JobsFactory) -> Iterator[str]:
    """Key names of this test's own on the shared Redis, deleted afterwards."""
    name = f"fastrr:test:{{{uuid.uuid4().hex}}}"
    yield name
    jobs.factory.close()  # first: a running fastrr would declare its stream again
    client = redis.Redis(host="127.0.0.1", port=6379)
    keys = list(client.scan_iter(match=f"{name}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def shared() -> Iterator[redis.Redis]:
    client = redis.Redis(host="127.0.0.1", port=6379)
    yield client
    client.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Daemon]:
    """A redis-server of this test on a free port, persisting every write (AOF, fsync always)."""
    port = free_port()
    data = tmp_path / "redis-data"
    data.mkdir()
    daemon = Daemon([require("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--appendonly", "yes",
                     "--appendfsync", "always", "--dir", str(data), "--save", "", "--requirepass", "s3cret"],
                    port, tmp_path / "redis.log")
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def pipeline(prefix: str, addr: str = SHARED, **extra: Any) -> dict[str, Any]:
    return {"driver": "redis", "config": {"addrs": [addr], "prefix": prefix, "visibility_timeout": "3s",
                                          "block_timeout": "500ms", **extra}}


def test_every_job_consumed_exactly_once_and_acked_entries_deleted(jobs: JobsFactory, prefix: str,
                                                                   shared: redis.Redis) -> None:
    srv = jobs.start(jobs_config({"p": pipeline(prefix)}, workers=2))
    ids = srv.push("p", "ack", count=300)
    rows = srv.wait_received(300)
    srv.wait_idle()
    time.sleep(0.5)  # nothing more arrives
    got = Counter(r["id"] for r in srv.received())
    assert set(got) == set(ids) and max(got.values()) == 1
    assert rows[0]["pipeline"] == "p" and rows[0]["name"] == "ack" and rows[0]["payload"].startswith("job-")
    stat = srv.stats()["p"]
    assert (stat.driver, stat.queue, stat.ready, stat.active, stat.reserved) == \
        ("redis", f"{prefix}:stream", True, 0, 0)
    assert len({r["pid"] for r in rows}) == 2
    stream = f"{prefix}:stream"
    deadline = time.monotonic() + 10
    while shared.xlen(stream) and time.monotonic() < deadline:  # the last acks are batched
        time.sleep(0.05)
    assert shared.xlen(stream) == 0  # acked entries are deleted: the stream does not grow
    assert shared.xpending(stream, "fastrr")["pending"] == 0
    assert srv.server.stop() == 0
    assert shared.exists(stream)  # kept (delete_on_stop is off)
    assert shared.xinfo_consumers(stream, "fastrr") == []  # a stopped instance leaves the group


def test_context_headers_foreign_and_handwritten_entries(jobs: JobsFactory, prefix: str,
                                                         shared: redis.Redis) -> None:
    srv = jobs.start(jobs_config({"p": pipeline(prefix)}, workers=1))
    [jid] = srv.push("p", "ack", payloads=[b'{"x":1}'], headers={"tenant": ["a", "b"], "empty": []})
    [row] = srv.wait_received(1)
    assert row["id"] == jid and row["payload"] == '{"x":1}' and row["headers"] == {"tenant": ["a", "b"]}
    stream = f"{prefix}:stream"
    # another program's entry (no rr_* field): "deduced_by_rr", a new uuid, the fields as JSON
    shared.xadd(stream, {"order": "42", "kind": "refund"})
    # one written by hand with RoadRunner's field names
    shared.xadd(stream, {"rr_id": "hand-1", "rr_job": "ack", "rr_headers": '{"h":["v"]}', "payload": "raw"})
    rows = srv.wait_received(3)
    foreign, hand = rows[1], rows[2]
    assert foreign["name"] == "deduced_by_rr" and json.loads(foreign["payload"]) == {"order": "42", "kind": "refund"}
    assert str(uuid.UUID(foreign["id"])) == foreign["id"]
    assert (hand["id"], hand["name"], hand["payload"], hand["headers"]) == ("hand-1", "ack", "raw", {"h": ["v"]})
    srv.wait_idle()


def test_push_delay_requeue_with_delay_and_nack(jobs: JobsFactory, prefix: str, shared: redis.Redis) -> None:
    srv = jobs.start(jobs_config({"p": pipeline(prefix)}, workers=2))
    t0 = time.time()
    [late] = srv.push("p", "ack", delay=2)
    time.sleep(0.3)
    assert srv.stats()["p"].delayed == 1 and shared.zcard(f"{prefix}:delayed") == 1
    [rq] = srv.push("p", "requeue", payloads=[b'{"delay": 2}'])
    [nk] = srv.push("p", "nack-requeue")
    rows = srv.wait_received(5, timeout=20)
    by_id: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_id.setdefault(r["id"], []).append(r)
    assert by_id[late][0]["t"] - t0 >= 1.9  # the push delay was kept
    first, again = by_id[rq]
    assert again["t"] - first["t"] >= 1.9 and again["headers"] == {"x-requeued": ["1"]}
    assert len(by_id[nk]) == 2
    out = srv.wait_output("job failed, will retry")
    assert nk in next(x for x in out.splitlines() if "job failed, will retry" in x)
    srv.wait_idle()
    assert shared.zcard(f"{prefix}:delayed") == 0 and shared.hlen(f"{prefix}:delayed:jobs") == 0


def test_poison_job_stops_at_max_attempts(jobs: JobsFactory, prefix: str) -> None:
    """The attempt count travels in the entry (fastrr_attempts) across redeliveries."""
    srv = jobs.start(jobs_config({"p": {**pipeline(prefix), "max_attempts": 3}}, workers=1))
    [jid] = srv.push("p", "nack-forever")
    srv.wait_received(3)
    out = srv.wait_output("job dropped")
    assert "failed 3 times (max_attempts 3)" in out
    time.sleep(1.0)
    assert [r["id"] for r in srv.received()] == [jid] * 3


def test_priority_lanes_order_the_whole_pipeline(jobs: JobsFactory, prefix: str, shared: redis.Redis) -> None:
    """prefetch 1: the order comes from the lanes (read lowest first), not from a prefetched batch."""
    srv = jobs.start(jobs_config({"p": pipeline(prefix, priority=4, prefetch=1)}, consume=[], workers=1))
    order = [5, 1, 3, 1, 5, 2, 0]  # 0: the pipeline's priority (4)
    for i, prio in enumerate(order):
        srv.push("p", "ack", payloads=[f"{prio}-{i}".encode()], priority=prio)
    srv.call("jobs.Resume", proto.Pipelines(pipelines=["p"]))
    rows = srv.wait_received(len(order))
    assert [r["payload"] for r in rows] == ["1-1", "1-3", "2-5", "3-2", "0-6", "5-0", "5-4"]
    lanes = [(k.decode(), int(v)) for k, v in shared.zrange(f"{prefix}:lanes", 0, -1, withscores=True)]
    stream = f"{prefix}:stream"
    assert lanes == [(f"{stream}:1", 1), (f"{stream}:2", 2), (f"{stream}:3", 3), (stream, 4), (f"{stream}:5", 5)]
    srv.wait_idle()
    # a delayed job of a new priority is moved into its lane (made by the script) and run
    [late] = srv.push("p", "ack", payloads=[b"late"], priority=7, delay=1)
    assert srv.wait_received(len(order) + 1)[-1]["id"] == late
    assert shared.zscore(f"{prefix}:lanes", f"{stream}:7") == 7


def test_pause_keeps_in_flight_and_holds_the_rest(jobs: JobsFactory, prefix: str) -> None:
    srv = jobs.start(jobs_config({"p": pipeline(prefix)}, workers=1))
    [slow] = srv.push("p", "sleep", payloads=[b'{"ms": 800}'])
    srv.wait_received(1)
    srv.call("jobs.Pause", proto.Pipelines(pipelines=["p"]))
    rest = srv.push("p", "ack", count=10)
    time.sleep(1.5)
    assert [r["id"] for r in srv.received()] == [slow]  # the running one finished, nothing new
    stat = srv.stats()["p"]
    assert (stat.ready, stat.active, stat.reserved) == (False, 10, 0)
    srv.call("jobs.Resume", proto.Pipelines(pipelines=["p"]))
    rows = srv.wait_received(11)
    assert Counter(r["id"] for r in rows) == Counter([slow, *rest])


def test_graceful_stop_gives_back_what_it_prefetched(jobs: JobsFactory, prefix: str, shared: redis.Redis) -> None:
    """Prefetched jobs not started go back to the stream at stop (nothing left pending on the
    stopped consumer, so the next instance needs no visibility timeout to get them)."""
    cfg = jobs_config({"p": pipeline(prefix, prefetch=10)}, workers=1)
    first = jobs.start(cfg)
    ids = first.push("p", "sleep", payloads=[b'{"ms": 400}'] * 8)
    first.wait_received(1)
    assert first.server.stop() == 0
    stream = f"{prefix}:stream"
    ran = [r["id"] for r in first.received()]
    assert shared.xpending(stream, "fastrr")["pending"] == 0
    assert shared.xlen(stream) == len(ids) - len(ran)
    assert shared.xinfo_consumers(stream, "fastrr") == []
    second = jobs.start(cfg)
    result = wait_all_received([first, second], ids, timeout=30)
    print(f"graceful stop then a new instance: {result}")
    assert not result.lost and result.duplicates == 0


def test_max_length_caps_each_lane(jobs: JobsFactory, prefix: str, shared: redis.Redis) -> None:
    """max_length trims the oldest entries (approximately: whole nodes), run or not: a memory cap."""
    srv = jobs.start(jobs_config({"p": pipeline(prefix, max_length=100)}, consume=[], workers=1))
    srv.push("p", "ack", count=1000)
    assert 100 <= shared.xlen(f"{prefix}:stream") < 1000


def test_consumer_crash_and_sigkill_mid_job_are_redelivered(jobs: JobsFactory, prefix: str) -> None:
    srv = jobs.start(jobs_config({"p": pipeline(prefix)}, workers=2))
    [crash] = srv.push("p", "crash")
    rows = srv.wait_received(2, where=lambda r: r["id"] == crash)
    assert rows[0]["pid"] != rows[1]["pid"]
    [slow] = srv.push("p", "sleep", payloads=[b'{"ms": 3000}'])
    [first] = srv.wait_received(1, where=lambda r: r["id"] == slow)
    os.kill(first["pid"], signal.SIGKILL)
    again = srv.wait_received(2, where=lambda r: r["id"] == slow)
    assert again[1]["pid"] != first["pid"]
    srv.wait_idle()


def test_two_instances_share_a_pipeline_and_a_long_job_is_not_duplicated(jobs: JobsFactory, prefix: str) -> None:
    cfg = jobs_config({"p": pipeline(prefix, prefetch=4, visibility_timeout="2s", block_timeout="300ms")},
                      workers=2)
    a, b = jobs.start(cfg), jobs.start(cfg)
    # a job running 3x the visibility timeout: kept alive by its consumer, never reclaimed
    [long] = a.push("p", "sleep", payloads=[b'{"ms": 6000}'])
    ids = [long, *a.push("p", "sleep", payloads=[b'{"ms": 10}'] * 200)]
    result = wait_all_received([a, b], ids, timeout=60)
    for s in (a, b):
        s.wait_idle(timeout=30)
    time.sleep(0.5)
    result = tally(ids, [r for s in (a, b) for r in s.received()])
    split = spread([a, b])
    print(f"two instances: {result}; split a/b = {split[0]}/{split[1]}")
    assert not result.lost and result.duplicates == 0 and result.unknown == 0
    assert min(split) > 20, split  # both took a fair share
    reclaims = [line for line in (a.server.output() + b.server.output()).splitlines() if "reclaimed" in line]
    assert not reclaims, reclaims


def test_fastrr_sigkilled_mid_job_other_instance_reclaims(jobs: JobsFactory, prefix: str,
                                                          shared: redis.Redis) -> None:
    cfg = jobs_config({"p": pipeline(prefix, prefetch=4, visibility_timeout="2s", block_timeout="300ms")},
                      workers=2)
    victim = jobs.start(cfg)
    ids = victim.push("p", "sleep", payloads=[b'{"ms": 1500}'] * 6)
    victim.wait_received(2)
    survivor = jobs.start(jobs_config({"p": pipeline(prefix, prefetch=4, visibility_timeout="2s",
                                                     block_timeout="300ms")}, workers=2))
    victim.server.kill()  # SIGKILL: its entries stay pending on its consumer
    killed_at = time.time()
    started = {r["id"] for r in victim.received()}
    result = wait_all_received([victim, survivor], ids, timeout=40)
    survivor.wait_idle(timeout=30)
    result = tally(ids, [r for s in (victim, survivor) for r in s.received()])
    print(f"fastrr SIGKILL mid-job: {result}; started on the killed instance: {len(started)}")
    assert not result.lost, result
    survivor.wait_output("reclaimed jobs of a consumer gone for visibility_timeout")
    # what ran again is what the killed instance had started and not acked (its 2 workers' jobs)
    again = [r["t"] for r in survivor.received() if r["id"] in started]
    assert 1 <= len(again) == result.duplicates <= 2, (again, result)
    # not before the entries were idle for visibility_timeout (2s; last touched <= 2/3 s before the kill)
    assert min(again) - killed_at >= 1.2, min(again) - killed_at
    # the dead consumer is removed from the group once it has nothing pending
    deadline = time.monotonic() + 15
    while len(shared.xinfo_consumers(f"{prefix}:stream", "fastrr")) > 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(shared.xinfo_consumers(f"{prefix}:stream", "fastrr")) == 1
    survivor.wait_output("removed a consumer idle for visibility_timeout")


def test_redis_restart_mid_stream_loses_nothing(jobs: JobsFactory, own_redis: Daemon) -> None:
    addr = f"127.0.0.1:{own_redis.port}"
    srv = jobs.start(jobs_config({"p": pipeline("fastrr:restart", addr, password="s3cret")}, workers=2))
    producer = Producer(srv, "p", batch=5, interval=0.02).start()
    srv.wait_received(50)
    # two jobs that finish while Redis is down: their acks wait and are sent when it is back
    slow = srv.push("p", "sleep", payloads=[b'{"ms": 1200}'] * 2)
    srv.wait_received(2, where=lambda r: r["id"] in slow)
    own_redis.stop()
    deadline = time.monotonic() + 10
    while not _error(srv) and time.monotonic() < deadline:
        time.sleep(0.1)
    down_error = _error(srv)
    assert srv.stats()["p"].driver == "redis"  # Stat answers while Redis is down
    time.sleep(1.5)
    own_redis.start()
    srv.wait_output("redis connection back", timeout=30)
    time.sleep(1.0)
    pushed = [*producer.stop(), *slow]
    result = wait_all_received([srv], pushed, timeout=60)
    print(f"redis restart: {result}; push errors while down: {len(producer.errors)}, the first: "
          f"{producer.errors[0] if producer.errors else None}")
    assert down_error and addr in down_error, down_error
    assert producer.errors and any("not reachable" in e or "push to" in e for e in producer.errors)
    assert not result.lost, result.lost[:5]
    srv.wait_idle(timeout=30)
    assert _error(srv) == ""
    assert [r["id"] for r in srv.received()].count(slow[0]) == 1
    own = redis.Redis(host="127.0.0.1", port=own_redis.port, password="s3cret")
    deadline = time.monotonic() + 5
    while own.xpending("fastrr:restart:stream", "fastrr")["pending"] and time.monotonic() < deadline:
        time.sleep(0.1)
    # every ack reached Redis, those made while it was down too: nothing left to reclaim
    assert own.xpending("fastrr:restart:stream", "fastrr")["pending"] == 0
    assert own.xlen("fastrr:restart:stream") == 0
    own.close()
    out = srv.server.output()
    assert "redis connection lost, redialing" in out and "redis redial failed" in out
    assert srv.server.stop() == 0  # before the fixture stops Redis


def _error(srv: JobsServer) -> str:
    """The pipeline's error as `fastrr jobs stat` shows it (informer.Jobs ErrorMessage)."""
    with srv.client() as c:
        [row] = c.call("informer.Jobs", "jobs")
    return str(row["ErrorMessage"])


def test_bad_address_and_bad_credentials_fail_start_up(jobs: JobsFactory, own_redis: Daemon) -> None:
    dead = free_port()
    for config, text in ((pipeline("x", f"127.0.0.1:{dead}"), f"redis 127.0.0.1:{dead}"),
                         (pipeline("x", f"127.0.0.1:{own_redis.port}", password="wrong"), "invalid")):
        srv = jobs.start(jobs_config({"p": config}, workers=1), wait=False)
        assert srv.server.proc.wait(30) == 1
        errors = [line for line in srv.server.err_path.read_text().splitlines() if line.startswith("error:")]
        print(errors[0] if errors else srv.server.output())
        assert len(errors) == 1 and "jobs.pipelines.p" in errors[0] and text in errors[0], errors


def test_global_redis_section_and_declare_from_rpc_and_php(jobs: JobsFactory, prefix: str,
                                                           shared: redis.Redis) -> None:
    cfg = jobs_config({}, consume=[], workers=1)
    cfg["redis"] = {"addrs": [SHARED], "db": 0}
    cfg["kv"] = {"redis": {"driver": "redis"}}  # a kv storage reading the same section
    srv = jobs.start(cfg)
    out = srv.server.output()
    assert "unknown key" not in out and "unknown option" not in out and "redis: not supported" not in out
    srv.call("jobs.Declare", proto.DeclareRequest(pipeline={
        "name": "rpc", "driver": "redis", "prefix": f"{prefix}:rpc", "priority": "3", "prefetch": "7",
        "visibility_timeout": "10s"}))
    stat = srv.stats()["rpc"]
    assert (stat.driver, stat.priority, stat.ready, stat.queue) == ("redis", 3, False, f"{prefix}:rpc:stream")
    php = f"""
require '{ROOT}/php/autoload.php';
use Fastrr\\Jobs\\Jobs;
use Fastrr\\Jobs\\Queue\\RedisCreateInfo;
$jobs = new Jobs();
$queue = $jobs->create(new RedisCreateInfo('php', prefix: '{prefix}:php', priority: 2, prefetch: 5,
    visibilityTimeout: 20, addrs: ['{SHARED}'], deleteOnStop: true));
$jobs->resume($queue);
$queue->dispatch($queue->create('ack', 'from-php'));
echo "ok\\n";
"""
    run = subprocess.run(["php", "-r", php],
                         env={**os.environ, "RR_RPC": srv.rpc}, capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stdout + run.stderr
    [row] = srv.wait_received(1)
    assert (row["pipeline"], row["payload"]) == ("php", "from-php")
    stat = srv.stats()["php"]
    assert (stat.driver, stat.priority, stat.ready) == ("redis", 2, True)
    srv.call("jobs.Destroy", proto.Pipelines(pipelines=["php"]))
    assert not shared.exists(f"{prefix}:php:stream")  # deleteOnStop


BAD_OPTIONS = [
    ({"prefetch": "0"}, "prefetch: expected at least 1"),
    ({"visibility_timeout": "0s"}, "visibility_timeout: expected a duration above zero"),
    ({"block_timeout": "5s", "visibility_timeout": "6s"}, "block_timeout: 5s is more than a third"),
    ({"max_length": "3", "prefetch": "10"}, "max_length: 3 is below prefetch"),
    ({"max_length": "-1"}, "max_length: expected an integer >= 0"),
    ({"addrs": "nohost:99999"}, "addrs[0]: expected an address like"),
    ({"addrs": "[1,"}, "addrs: not valid JSON"),
    ({"consumer": "a b"}, "consumer: expected a name without spaces"),
    ({"prefix": "a{b"}, "prefix: unbalanced hash tag braces"),
    ({"delete_on_stop": "maybe"}, "delete_on_stop: expected true or false"),
    ({"visibilty_timeout": "1s"}, "visibilty_timeout: unknown option for the redis driver"),
]


def test_bad_options_are_clear_errors(jobs: JobsFactory) -> None:
    srv = jobs.start(jobs_config({}, consume=[], workers=1))
    for values, error in BAD_OPTIONS:
        with pytest.raises(Exception) as info:
            srv.call("jobs.Declare", proto.DeclareRequest(pipeline={"name": "x", "driver": "redis", **values}))
        assert f"jobs.Declare[x].{error}" in str(info.value), (values, str(info.value))
    assert "x" not in srv.stats()


def test_bad_yaml_option_fails_start_up_with_its_path(jobs: JobsFactory) -> None:
    srv = jobs.start(jobs_config({"p": pipeline("x", block_timeout="2s", visibility_timeout="3s")}), wait=False)
    assert srv.server.proc.wait(30) == 1
    assert "jobs.pipelines.p.block_timeout: 2s is more than a third" in srv.server.output()
    cfg = jobs_config({"p": pipeline("x")})
    cfg["redis"] = {"addrs": ["nohost:0"], "prefetch": 3}
    srv = jobs.start(cfg, wait=False)
    assert srv.server.proc.wait(30) == 1
    assert "redis.addrs[0]: expected an address like 127.0.0.1:6379, got 'nohost:0'" in srv.server.output()


def _probe(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_an_outage_shows_in_ready_and_jobs_stat(jobs: JobsFactory, own_redis: Daemon) -> None:
    """While a pipeline's broker is unreachable, /ready answers 503 and `fastrr jobs stat` says
    DISCONNECTED with the error; /health stays 200 (no reason to restart the instance); both
    come back by themselves."""
    addr = f"127.0.0.1:{own_redis.port}"
    status_port = free_port()
    cfg = jobs_config({"p": pipeline("fastrr:outage", addr, password="s3cret")}, workers=1)
    cfg["status"] = {"address": f"127.0.0.1:{status_port}"}
    srv = jobs.start(cfg)

    def stat() -> str:
        out = subprocess.run([sys.executable, "-m", "fastrr", "jobs", "stat", "-o", f"rpc.listen={srv.rpc}"],
                             capture_output=True, text=True, timeout=30, cwd=str(ROOT))
        assert out.returncode == 0, out.stderr
        return out.stdout

    def wait(check: Any, what: str) -> None:
        deadline = time.monotonic() + 20
        while not check():
            assert time.monotonic() < deadline, f"{what}\n{srv.server.output()[-3000:]}"
            time.sleep(0.2)

    assert _probe(status_port, "/ready?plugin=jobs")[0] == 200
    assert "READY" in stat()
    own_redis.stop()
    wait(lambda: _probe(status_port, "/ready?plugin=jobs")[0] == 503, "/ready stayed 200 with Redis down")
    assert _probe(status_port, "/health?plugin=jobs")[0] == 200
    text = stat()
    assert "DISCONNECTED" in text and addr in text, text
    assert srv.stats()["p"].ready is False
    own_redis.start()
    wait(lambda: _probe(status_port, "/ready?plugin=jobs")[0] == 200, "/ready did not come back")
    assert "DISCONNECTED" not in stat() and srv.stats()["p"].ready is True
