"""The amqp driver on the machine's RabbitMQ: real fastrr, real PHP consumers, real broker.

Every test uses its own exchange and queues (a uuid in the names) and deletes
them after. The fault tests print their tallies (pushed / received / lost /
duplicates); restarting RabbitMQ is done only here (common.restart_rabbitmq).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from fastrr.jobs import proto
from tests.jobs.brokers.amqp_support import ADDR, Names, amqp_config, names, publish_raw, queue_messages
from tests.jobs.brokers.common import Producer, restart_rabbitmq, spread, wait_all_received
from tests.jobs.conftest import JobsFactory, JobsServer

__all__ = ["names"]  # the fixture, imported for pytest
ROOT = Path(__file__).resolve().parents[3]


def _rpc_error(srv: JobsServer, method: str, message: Any) -> str:
    with pytest.raises(Exception) as info:
        srv.call(method, message)
    return str(info.value)


def _informer(srv: JobsServer, pipeline: str) -> dict[str, Any]:
    """informer.Jobs' row (it carries the error Stat's protobuf has no field for)."""
    with srv.client() as client:
        rows = client.call("informer.Jobs", "jobs")
    return next(r for r in rows if r["Pipeline"] == pipeline)


def _wait(condition: Any, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.1)


# -- delivery -------------------------------------------------------------------------------


def test_every_job_consumed_exactly_once(jobs: JobsFactory, names: Names) -> None:
    srv = jobs.start(amqp_config({"p": names.pipeline()}, workers=2))
    ids = srv.push("p", "ack", count=300)
    rows = srv.wait_received(300, timeout=60)
    srv.wait_idle(timeout=30)
    time.sleep(0.5)  # nothing more arrives
    got = Counter(r["id"] for r in srv.received())
    assert set(got) == set(ids) and max(got.values()) == 1
    assert rows[0]["pipeline"] == "p" and rows[0]["name"] == "ack" and rows[0]["payload"].startswith("job-")
    assert len({r["pid"] for r in rows}) == 2
    stat = srv.stats()["p"]
    assert (stat.driver, stat.queue, stat.ready, stat.active, stat.reserved) == \
           ("amqp", names.queues[0], True, 0, 0)
    assert queue_messages(names.queues[0]) == 0  # every one acked on the broker


def test_context_headers_and_foreign_messages(jobs: JobsFactory, names: Names) -> None:
    pipe = names.pipeline()
    exchange, queue = pipe["config"]["exchange"], pipe["config"]["queue"]
    srv = jobs.start(amqp_config({"p": pipe}, workers=1))
    [jid] = srv.push("p", "ack", payloads=[b'{"x":1}'], headers={"tenant": ["a", "b"]})
    [row] = srv.wait_received(1)
    assert row["id"] == jid and row["payload"] == '{"x":1}' and row["headers"] == {"tenant": ["a", "b"]}
    # a message from a client that knows nothing of RoadRunner: a new id, job "deduced_by_rr"
    publish_raw(exchange, queue, b"plain")
    # a RoadRunner-style producer's message (its headers, rr_headers as JSON bytes)
    publish_raw(exchange, queue, b"from-rr", headers={
        "rr_id": "rr-1", "rr_job": "ack", "rr_pipeline": "p", "rr_headers": bytearray(b'{"k":["v"]}'),
        "rr_delay": 0, "rr_priority": 10, "rr_auto_ack": False})
    rows = srv.wait_received(3)
    foreign = next(r for r in rows if r["payload"] == "plain")
    assert foreign["name"] == "deduced_by_rr" and len(foreign["id"]) == 36 and foreign["pipeline"] == "p"
    rr = next(r for r in rows if r["payload"] == "from-rr")
    assert (rr["id"], rr["name"], rr["headers"]) == ("rr-1", "ack", {"k": ["v"]})
    srv.wait_idle()


def test_push_delay_and_delay_queues_per_pipeline(jobs: JobsFactory, names: Names) -> None:
    """Two pipelines on one exchange with the same delay: RoadRunner's delay queue names
    collide there (#1792); fastrr's carry the pipeline."""
    a = names.pipeline("qa", exchange="x")
    b = names.pipeline("qb", exchange="x")
    srv = jobs.start(amqp_config({"a": a, "b": b}, workers=2))
    pushed = time.time()
    [late_a] = srv.push("a", "ack", payloads=[b"later-a"], delay=2)
    [late_b] = srv.push("b", "ack", payloads=[b"later-b"], delay=2)
    srv.push("a", "ack", payloads=[b"now"])
    assert srv.stats()["a"].delayed == 1
    rows = srv.wait_received(3, timeout=15)
    assert rows[0]["payload"] == "now"
    late = {r["id"]: r for r in rows[1:]}
    assert set(late) == {late_a, late_b}
    assert late[late_a]["pipeline"] == "a" and late[late_b]["pipeline"] == "b"
    assert all(r["t"] - pushed >= 1.9 for r in late.values())
    srv.wait_idle()


@pytest.mark.parametrize("delay", [0, 2])
def test_requeue_with_delay_and_new_headers(jobs: JobsFactory, names: Names, delay: int) -> None:
    srv = jobs.start(amqp_config({"p": names.pipeline()}, workers=1))
    [jid] = srv.push("p", "requeue", payloads=[json.dumps({"delay": delay}).encode()], headers={"keep": ["me"]})
    srv.wait_received(2, timeout=15)
    srv.wait_idle()
    rows = srv.received()
    assert [r["id"] for r in rows] == [jid, jid]
    assert "x-requeued" not in rows[0]["headers"]
    assert rows[1]["headers"]["x-requeued"] == ["1"] and rows[1]["headers"]["keep"] == ["me"]
    assert rows[1]["t"] - rows[0]["t"] >= delay - 0.1
    assert queue_messages(names.queues[0]) == 0


def test_nack_requeue_counts_attempts_across_redeliveries(jobs: JobsFactory, names: Names) -> None:
    srv = jobs.start(amqp_config({"p": {**names.pipeline(), "max_attempts": 3}}, workers=1))
    [jid] = srv.push("p", "nack-requeue")
    rows = srv.wait_received(2)
    assert [r["id"] for r in rows] == [jid, jid]
    srv.wait_idle()
    [poison] = srv.push("p", "nack-forever")
    srv.wait_output("failed 3 times (max_attempts 3)")
    srv.wait_idle()
    time.sleep(0.5)
    assert [r["id"] for r in srv.received()].count(poison) == 3  # the attempt count rode in the message
    assert queue_messages(names.queues[0]) == 0


def test_priority_orders_prefetched_jobs(jobs: JobsFactory, names: Names) -> None:
    srv = jobs.start(amqp_config({"p": names.pipeline(prefetch=50)}, consume=[], workers=1))
    [blocker] = srv.push("p", "sleep", payloads=[b'{"ms": 700}'], priority=1)
    order = [5, 1, 3, 1, 5, 2]
    for i, prio in enumerate(order):
        srv.push("p", "ack", payloads=[f"{prio}-{i}".encode()], priority=prio)
    srv.call("jobs.Resume", proto.Pipelines(pipelines=["p"]))
    rows = srv.wait_received(len(order) + 1)
    assert rows[0]["id"] == blocker  # the rest arrived while it ran, and waited in priority order
    assert [r["payload"] for r in rows[1:]] == ["1-1", "1-3", "2-5", "3-2", "5-0", "5-4"]


def test_auto_ack_is_acked_on_receipt(jobs: JobsFactory, names: Names) -> None:
    srv = jobs.start(amqp_config({"p": names.pipeline()}, workers=1))
    [jid] = srv.push("p", "crash", auto_ack=True)
    srv.wait_received(1)
    srv.server.wait_workers(1)
    srv.wait_idle()
    time.sleep(0.5)
    assert [r["id"] for r in srv.received()] == [jid]
    assert queue_messages(names.queues[0]) == 0


def test_pause_keeps_in_flight_and_holds_the_rest(jobs: JobsFactory, names: Names) -> None:
    srv = jobs.start(amqp_config({"p": names.pipeline()}, workers=1))
    [slow] = srv.push("p", "sleep", payloads=[b'{"ms": 800}'])
    srv.wait_received(1)
    rest = srv.push("p", "ack", count=10)
    srv.call("jobs.Pause", proto.Pipelines(pipelines=["p"]))
    time.sleep(1.5)
    assert [r["id"] for r in srv.received()] == [slow]  # the running one finished, nothing new
    _wait(lambda: srv.stats()["p"].active == 10, what="10 jobs waiting on the broker")
    assert queue_messages(names.queues[0]) == 10  # given back to the broker
    stat = srv.stats()["p"]
    assert (stat.ready, stat.reserved) == (False, 0)
    srv.call("jobs.Resume", proto.Pipelines(pipelines=["p"]))
    rows = srv.wait_received(11)
    assert Counter(r["id"] for r in rows) == Counter([slow, *rest])


def test_multiple_ack_never_acks_a_running_job(jobs: JobsFactory, names: Names) -> None:
    """A slow job holds the oldest delivery tag while quick ones are acked: a multiple
    ack must not cover it (RoadRunner's did), so killing fastrr redelivers it."""
    log = jobs.tmp_path / "consumed.log"
    cfg = amqp_config({"p": names.pipeline(multiple_ack=True)}, workers=2)
    first = jobs.start(cfg, log=log)
    [slow] = first.push("p", "sleep", payloads=[b'{"ms": 4000}'])
    first.wait_received(1)
    quick = first.push("p", "ack", count=30)
    first.wait_received(31)
    time.sleep(0.5)
    first.server.kill()
    second = jobs.start(cfg, log=log)
    rows = second.wait_received(2, where=lambda r: r["id"] == slow, timeout=30)  # the log is shared
    got = Counter(r["id"] for r in second.received())
    print(f"multiple_ack: slow redelivered {got[slow] - 1} time(s); quick acked once: "
          f"{sum(1 for q in quick if got[q] == 1)}/30")
    assert rows and got[slow] >= 2 and all(got[q] == 1 for q in quick)


# -- crashes --------------------------------------------------------------------------------


def test_worker_crash_mid_job_is_redelivered(jobs: JobsFactory, names: Names) -> None:
    srv = jobs.start(amqp_config({"p": names.pipeline()}, workers=2))
    [jid] = srv.push("p", "crash")
    rows = srv.wait_received(2)
    assert [r["id"] for r in rows] == [jid, jid] and rows[0]["pid"] != rows[1]["pid"]
    srv.wait_output("job failed, will retry")
    srv.wait_idle()


def test_sigkill_of_a_consumer_mid_job(jobs: JobsFactory, names: Names) -> None:
    srv = jobs.start(amqp_config({"p": names.pipeline()}, workers=2))
    [slow] = srv.push("p", "sleep", payloads=[b'{"ms": 3000}'])
    quick = srv.push("p", "ack", count=20)
    [first] = srv.wait_received(1, where=lambda r: r["id"] == slow)
    os.kill(first["pid"], signal.SIGKILL)
    rows = srv.wait_received(2, where=lambda r: r["id"] == slow, timeout=20)
    assert rows[1]["pid"] != first["pid"]
    got = Counter(r["id"] for r in srv.wait_received(22))
    assert set(quick) <= set(got) and max(got[q] for q in quick) == 1
    srv.wait_idle()


def test_sigkill_of_fastrr_with_running_jobs(jobs: JobsFactory, names: Names) -> None:
    log = jobs.tmp_path / "consumed.log"
    cfg = amqp_config({"p": names.pipeline(durable=True)}, workers=2)
    first = jobs.start(cfg, log=log)
    ids = first.push("p", "sleep", payloads=[b'{"ms": 300}'] * 40)
    first.wait_received(6, timeout=30)
    first.server.kill()  # fastrr and its consumers: unacked deliveries go back to the queue
    before = len(first.received())
    second = jobs.start(cfg, log=log)
    result = wait_all_received([second], ids, timeout=60)
    print(f"fastrr SIGKILL: received before the kill {before}; {result}")
    assert not result.lost and result.duplicates <= 4  # only the jobs running at the kill run twice
    second.wait_idle(timeout=30)


def test_a_long_job_is_not_redelivered_while_it_runs(jobs: JobsFactory, names: Names) -> None:
    """An unacked delivery stays with its consumer while the connection lives (AMQP
    heartbeats keep it alive), however long the job runs: no second instance gets it."""
    cfg = amqp_config({"p": names.pipeline()}, workers=1)
    one = jobs.start(cfg, log=jobs.tmp_path / "one.log")
    two = jobs.start(cfg, log=jobs.tmp_path / "two.log")
    [slow] = one.push("p", "sleep", payloads=[b'{"ms": 5000}'])
    _wait(lambda: len(one.received()) + len(two.received()) == 1, what="the slow job to start")
    # Until the job has finished (both instances idle): a redelivery meanwhile would have
    # started it a second time, on either instance.
    one.wait_idle(timeout=30)
    two.wait_idle(timeout=30)
    rows = one.received() + two.received()
    assert [r["id"] for r in rows] == [slow]


def test_two_instances_share_a_queue(jobs: JobsFactory, names: Names) -> None:
    cfg = amqp_config({"p": names.pipeline(prefetch=5)}, workers=2)
    one = jobs.start(cfg, log=jobs.tmp_path / "one.log")
    two = jobs.start(cfg, log=jobs.tmp_path / "two.log")
    ids = one.push("p", "sleep", payloads=[b'{"ms": 10}'] * 200)
    result = wait_all_received([one, two], ids, timeout=60)
    split = spread([one, two])
    print(f"two instances: {result}; split {split}")
    assert not result.lost and result.duplicates == 0 and result.unknown == 0
    assert min(split) >= 40, split  # RabbitMQ spread them over both consumers


# -- the broker going away ------------------------------------------------------------------


def test_broker_restart_while_pushing_loses_nothing(jobs: JobsFactory, names: Names) -> None:
    """Also: Stat shows the outage, and a pipeline down longer than its redial_timeout is
    reported failed but still redialed (RoadRunner gives up and can exit)."""
    srv = jobs.start(amqp_config({"p": names.pipeline(durable=True, exchange_durable=True),
                                  "short": names.pipeline("q2", exchange="x2", redial_timeout=1)}, workers=2))
    producer = Producer(srv, "p", name="ack", batch=5, interval=0.02).start()
    _wait(lambda: len(producer.pushed) >= 100, what="100 pushed before the restart")
    seen: dict[str, Any] = {}

    def while_down() -> None:
        def stat_shows_it() -> bool:
            stat = _informer(srv, "p")
            seen.update(error=stat["ErrorMessage"], short=_informer(srv, "short")["ErrorMessage"],
                        ready=srv.stats()["p"].ready)
            return bool(stat["ErrorMessage"]) and "redial_timeout 1s" in seen["short"]
        _wait(stat_shows_it, timeout=15, what="Stat to show the outage")

    restart_rabbitmq(down=2.0, during=while_down)
    _wait(lambda: not _informer(srv, "p")["ErrorMessage"], timeout=60, what="the pipeline to reconnect")
    after = len(producer.pushed)
    _wait(lambda: len(producer.pushed) >= after + 100, what="100 more pushed after the restart")
    pushed = producer.stop()
    result = wait_all_received([srv], pushed, timeout=60)
    print(f"rabbitmq restart: {result}; push errors during the outage: {len(producer.errors)}")
    assert "disconnected from amqp://guest:***@127.0.0.1:5672/" in seen["error"] and seen["ready"] is False
    assert srv.stats()["p"].ready  # consuming again
    assert not result.lost, result.lost[:5]
    assert producer.errors and "pipeline p" in producer.errors[0]
    assert seen["short"].startswith("failed: amqp://guest:***@127.0.0.1:5672/ unreachable for")
    _wait(lambda: not _informer(srv, "short")["ErrorMessage"], timeout=30, what="the failed pipeline back")
    out = srv.server.output()
    assert "amqp reconnected" in out and "amqp pipeline failed: broker unreachable past redial_timeout" in out
    srv.wait_idle(timeout=30)


def test_bad_address_and_bad_credentials_fail_start(jobs: JobsFactory, names: Names) -> None:
    for addr, broker_error in (("amqp://guest:guest@127.0.0.1:1/", "Connection refused"),
                               ("amqp://guest:wrong@127.0.0.1:5672/", "ACCESS_REFUSED")):
        srv = jobs.start(amqp_config({"p": names.pipeline()}, addr=addr), wait=False)
        assert srv.server.proc.wait(30) == 1
        errors = [line for line in srv.server.err_path.read_text().splitlines() if line.startswith("error:")]
        assert len(errors) == 1, srv.server.output()
        line = errors[0]
        assert "jobs.pipelines.p" in line and "cannot connect to the AMQP broker" in line
        assert broker_error.lower() in line.lower() and "***" in line and "wrong" not in line, line


# -- push-only pipelines, Declare, config ---------------------------------------------------


def test_push_only_pipeline(jobs: JobsFactory, names: Names) -> None:
    consumer = names.pipeline()
    push_only = {"driver": "amqp", "config": {"exchange": consumer["config"]["exchange"],
                                              "routing_key": consumer["config"]["routing_key"]}}
    nowhere = {"driver": "amqp", "config": {"exchange": consumer["config"]["exchange"], "routing_key": "nobody"}}
    srv = jobs.start(amqp_config({"c": consumer, "out": push_only, "lost": nowhere}, consume=["c"], workers=1))
    [jid] = srv.push("out", "ack")
    [row] = srv.wait_received(1)
    assert row["id"] == jid and row["pipeline"] == "c"
    stat = _informer(srv, "out")
    assert (stat["Queue"], stat["Active"], stat["Ready"], stat["ErrorMessage"]) == ("", 0, False, "")  # #1952
    [routed] = srv.push("lost", "ack", headers={"x-routing-key": [consumer["config"]["routing_key"]]})
    assert srv.wait_received(2)[1]["id"] == routed  # the header overrode the pipeline's routing key
    error = _rpc_error(srv, "jobs.PushBatch", _push_request("lost"))
    assert "unroutable" in error and "'nobody'" in error  # RabbitMQ would have dropped it silently
    assert "has no queue to consume" in _rpc_error(srv, "jobs.Resume", proto.Pipelines(pipelines=["out"]))


def _push_request(pipeline: str) -> proto.PushBatchRequest:
    req = proto.PushBatchRequest()
    job = req.jobs.add(job="ack", id="x-1", payload=b"x")
    job.options.pipeline = pipeline
    return req


def test_declare_over_rpc(jobs: JobsFactory, names: Names) -> None:
    srv = jobs.start(amqp_config({}, workers=1))
    queue, exchange = names.queue(), names.exchange()
    srv.call("jobs.Declare", proto.DeclareRequest(pipeline={
        "name": "d", "driver": "amqp", "queue": queue, "exchange": exchange, "routing_key": queue,
        "prefetch": "5", "priority": "3", "durable": "true", "queue_headers": '{"x-max-length": 1000}'}))
    stat = srv.stats()["d"]
    assert (stat.driver, stat.queue, stat.priority, stat.ready) == ("amqp", queue, 3, False)
    srv.call("jobs.Resume", proto.Pipelines(pipelines=["d"]))
    [jid] = srv.push("d", "ack")
    assert srv.wait_received(1)[0]["id"] == jid
    bad = _rpc_error(srv, "jobs.Declare", proto.DeclareRequest(pipeline={
        "name": "e", "driver": "amqp", "queue": queue, "queue_headers": "{not json"}))
    assert "jobs.Declare[e].queue_headers: expected a JSON object" in bad


def test_declare_from_php(jobs: JobsFactory, names: Names, tmp_path: Path) -> None:
    srv = jobs.start(amqp_config({}, workers=1))
    queue, exchange = names.queue(), names.exchange()
    script = tmp_path / "declare.php"
    script.write_text(f"""<?php
require {str(ROOT / 'php' / 'autoload.php')!r};
use Fastrr\\Jobs\\Jobs;
use Fastrr\\Jobs\\Queue\\AMQPCreateInfo;
use Fastrr\\RPC\\RPC;
$jobs = new Jobs(RPC::create('{srv.rpc}'));
$queue = $jobs->create(new AMQPCreateInfo(name: 'php', priority: 4, prefetch: 7, queue: '{queue}',
    exchange: '{exchange}', routingKey: '{queue}', durable: true, queueHeaders: ['x-max-length' => 100]));
$queue->resume();
$task = $queue->dispatch($queue->create('ack', 'from-php'));
echo $task->getId(), "\\n";
""")
    out = subprocess.run(["php", str(script)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    jid = out.stdout.strip().splitlines()[-1]
    [row] = srv.wait_received(1)
    assert (row["id"], row["pipeline"], row["payload"]) == (jid, "php", "from-php")
    stat = srv.stats()["php"]
    assert (stat.driver, stat.queue, stat.priority) == ("amqp", queue, 4)


@pytest.mark.parametrize("options,error", [
    ({"exchange_type": "fan"}, "config.exchange_type: expected one of direct, fanout, topic, headers"),
    ({"prefetch": 0}, "config.prefetch: expected 1..65535"),
    ({"prefetch": 70000}, "config.prefetch: expected 1..65535"),
    ({"exchange": "  "}, "config.exchange: expected an exchange name"),
    ({"durable": "maybe"}, "config.durable: expected true or false"),
    ({"queue_headers": [1]}, "config.queue_headers: expected a map"),
    ({"queue": "", "durable": True}, "config.durable: is a queue option, but the pipeline has no queue"),
    ({"exclusive": True, "durable": True}, "config.exclusive: an exclusive queue"),
])
def test_bad_options_are_config_errors(jobs: JobsFactory, names: Names, options: dict[str, Any],
                                       error: str) -> None:
    pipe = names.pipeline()
    pipe["config"].update(options)
    srv = jobs.start(amqp_config({"p": pipe}), wait=False)
    assert srv.server.proc.wait(30) != 0
    out = srv.server.output()
    assert "jobs.pipelines.p" in out and error.split(": ", 1)[-1] in out, out[-2000:]


def test_bad_global_section(jobs: JobsFactory) -> None:
    cfg = amqp_config({"p": {"driver": "memory"}})
    cfg["amqp"] = {"addr": "http://127.0.0.1:5672/"}
    srv = jobs.start(cfg, wait=False)
    assert srv.server.proc.wait(30) != 0
    assert "amqp.addr: expected an amqp:// or amqps:// URL" in srv.server.output()
    cfg["amqp"] = {"addr": ADDR, "tls": {"root_ca": "/nonexistent/ca.pem"}}
    srv = jobs.start(cfg, wait=False)
    assert srv.server.proc.wait(30) != 0
    assert "amqp.tls.root_ca: no such file" in srv.server.output()


def test_stat_of_a_deleted_queue_is_not_an_error(jobs: JobsFactory, names: Names) -> None:
    """#1952: RoadRunner's Stat fails when the queue is missing."""
    srv = jobs.start(amqp_config({"p": names.pipeline()}, consume=[], workers=1))
    srv.push("p", "ack", count=3)
    _wait(lambda: srv.stats()["p"].active == 3, what="3 waiting")
    names.cleanup()  # someone deletes the queue behind fastrr's back
    _wait(lambda: srv.stats()["p"].active == 0, what="Stat to show 0")
    assert _informer(srv, "p")["ErrorMessage"] == ""


def test_a_refused_declaration_fails_start_with_the_broker_error(jobs: JobsFactory, names: Names) -> None:
    """The same exchange declared with other options by another pipeline: RabbitMQ's
    PRECONDITION_FAILED, in one start-up line naming the pipeline."""
    cfg = amqp_config({"a": names.pipeline("qa", exchange_durable=True), "b": names.pipeline("qb")})
    srv = jobs.start(cfg, wait=False)
    assert srv.server.proc.wait(30) == 1
    errors = [line for line in srv.server.err_path.read_text().splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "jobs.pipelines.b" in errors[0], srv.server.output()
    assert "refused the pipeline's exchange or queue" in errors[0] and "PRECONDITION_FAILED" in errors[0]


def test_queue_deleted_while_consuming_is_declared_again(jobs: JobsFactory, names: Names) -> None:
    """RabbitMQ cancels the consumer of a deleted queue; RoadRunner then stops consuming
    without a word. fastrr reconnects, declares the queue again and consumes."""
    srv = jobs.start(amqp_config({"p": names.pipeline()}, workers=1))
    srv.push("p", "ack")
    srv.wait_received(1)
    names.cleanup()
    srv.wait_output("amqp consumer cancelled by the broker")
    srv.wait_output("amqp reconnected")
    [jid] = srv.push("p", "ack")
    assert srv.wait_received(2)[1]["id"] == jid


def test_big_payloads_and_a_partly_unroutable_batch(jobs: JobsFactory, names: Names) -> None:
    """A payload over the AMQP frame size goes out in several body frames and arrives
    whole; in one batch, the job no queue takes fails the push and names the key."""
    srv = jobs.start(amqp_config({"p": names.pipeline()}, workers=1))
    big = bytes(range(256)) * 1200  # 300 kB, over RabbitMQ's 128 kB frame_max
    [jid] = srv.push("p", "ack", payloads=[big.hex().encode()])
    [row] = srv.wait_received(1, timeout=20)
    assert row["id"] == jid and row["payload"] == big.hex()
    req = proto.PushBatchRequest()
    for i, key in enumerate(("", "nowhere", "")):
        job = req.jobs.add(job="ack", id=f"mixed-{i}", payload=b"x")
        job.options.pipeline = "p"
        if key:
            job.headers["x-routing-key"].value.append(key)
    error = _rpc_error(srv, "jobs.PushBatch", req)
    assert "1 of 3 jobs not accepted" in error and "'nowhere'" in error
    rows = srv.wait_received(3)
    assert sorted(r["id"] for r in rows[1:]) == ["mixed-0", "mixed-2"]  # the routable ones were kept
