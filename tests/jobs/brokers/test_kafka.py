"""The kafka driver end to end: real fastrr, real PHP consumers, a Tansu broker (kafka_support.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from fastrr.jobs import proto
from fastrr.rpc.client import RpcError
from tests.conftest import ROOT, free_port
from tests.jobs.brokers.common import Producer, spread, tally, wait_all_received
from tests.jobs.brokers.kafka_support import (
    S3Tansu,
    committed,
    context_worker,
    create_topic,
    durable_kafka_fixture,  # noqa: F401 (a fixture)
    kafka_broker_fixture,  # noqa: F401 (a fixture)
    kafka_config,
    pipeline,
    produce_raw,
    tansu,
    unique,
)
from tests.jobs.conftest import JobsFactory, JobsServer


def _error(srv: JobsServer, method: str, message: Any) -> str:
    with pytest.raises(RpcError) as info:
        srv.call(method, message)
    return str(info.value)


def _start_fails(jobs: JobsFactory, cfg: dict[str, Any]) -> str:
    srv = jobs.start(cfg, wait=False)
    assert srv.server.proc.wait(60) == 1
    errors = [line for line in srv.server.err_path.read_text().splitlines() if line.startswith("error:")]
    assert len(errors) == 1, srv.server.output()
    return errors[0]


def _assigned(srv: JobsServer) -> set[str]:
    """The partitions the server's pipeline holds now (its last "kafka partitions assigned" line)."""
    lines = [x for x in srv.server.output().splitlines() if "kafka partitions assigned" in x]
    return set(re.findall(r"[\w.-]+:\d+", lines[-1].split("partitions", 2)[-1])) if lines else set()


def _wait_split(servers: list[JobsServer], partitions: int, timeout: float = 30.0) -> list[set[str]]:
    """Until every server holds some partitions and together exactly `partitions` of them."""
    deadline = time.monotonic() + timeout
    while True:
        held = [_assigned(s) for s in servers]
        if all(held) and sum(len(h) for h in held) == partitions and len(set().union(*held)) == partitions:
            return held
        assert time.monotonic() < deadline, f"no settled split: {held}"
        time.sleep(0.2)


def test_every_job_consumed_exactly_once_and_committed(jobs: JobsFactory, kafka_broker: str) -> None:
    topic, group = create_topic(kafka_broker, unique()), unique("g")
    srv = jobs.start(kafka_config(kafka_broker, {"p": pipeline(topic, group)}, workers=2))
    ids = srv.push("p", "ack", count=200)
    rows = srv.wait_received(200, timeout=60)
    srv.wait_idle()
    time.sleep(0.5)  # nothing more arrives
    got = Counter(r["id"] for r in srv.received())
    assert set(got) == set(ids) and max(got.values()) == 1
    assert len({r["pid"] for r in rows}) == 2
    stat = srv.stats()["p"]
    assert (stat.driver, stat.queue, stat.ready, stat.active, stat.reserved) == ("kafka", topic, True, 0, 0)
    deadline = time.monotonic() + 15
    while sum(v or 0 for v in committed(kafka_broker, topic, group).values()) != 200:  # every offset committed
        assert time.monotonic() < deadline, committed(kafka_broker, topic, group)
        time.sleep(0.3)


def test_context_headers_and_foreign_records(jobs: JobsFactory, kafka_broker: str, tmp_path: Path) -> None:
    topic = create_topic(kafka_broker, unique(), partitions=1)
    cfg = kafka_config(kafka_broker, {"p": pipeline(topic, unique("g"))}, workers=1)
    cfg["server"]["command"] = context_worker(tmp_path)
    srv = jobs.start(cfg)
    [jid] = srv.push("p", "App\\Job", payloads=[b'{"x":1}'], headers={"tenant": ["a", "b"], "empty": []})
    [row] = srv.wait_received(1)
    assert row == {"id": jid, "name": "App\\Job", "class": "Fastrr\\Jobs\\Task\\KafkaReceivedTask", "pipeline": "p",
                   "queue": topic, "payload": '{"x":1}', "headers": {"tenant": ["a", "b"]}, "driver": "kafka",
                   "topic": topic, "partition": 0, "offset": 0}
    produce_raw(kafka_broker, topic, b"legacy-1", key=b"order-7", headers=[("x-src", b"legacy")])
    produce_raw(kafka_broker, topic, b"legacy-2")
    rows = srv.wait_received(3)
    keyed, bare = rows[1], rows[2]
    assert (keyed["id"], keyed["name"], keyed["headers"], keyed["offset"]) == ("order-7", "deduced_by_rr",
                                                                                {"x-src": ["legacy"]}, 1)
    assert bare["name"] == "deduced_by_rr" and re.fullmatch(r"[0-9a-f-]{36}", bare["id"]) and bare["offset"] == 2


def test_push_names_its_topic_and_a_retry_stays_on_it(jobs: JobsFactory, kafka_broker: str) -> None:
    """RoadRunner's Push options carry a topic: the job goes there, and its retry copy too."""
    first, second = (create_topic(kafka_broker, unique(), partitions=1) for _ in range(2))
    group = unique("g")
    cfg = kafka_config(kafka_broker, {"p": {"driver": "kafka", "config": {
        "consumer_options": {"topics": [first, second]},
        "group_options": {"group_id": group, "session_timeout": "6s", "heartbeat_interval": "1s"}}}},
        workers=1)
    srv = jobs.start(cfg)
    req = proto.PushRequest()
    req.job.job, req.job.id, req.job.payload = "nack-requeue", "to-second", b"x"
    req.job.options.pipeline, req.job.options.topic = "p", second
    srv.call("jobs.Push", req)
    [plain] = srv.push("p", "ack")
    rows = srv.wait_received(3, timeout=60)
    assert sorted(r["id"] for r in rows) == sorted(["to-second", "to-second", plain])
    srv.wait_idle()
    deadline = time.monotonic() + 15
    # the pushed record and its nacked copy on `second` (offsets 0 and 1), the plain one on `first`
    while (sum(v or 0 for v in committed(kafka_broker, second, group).values()),
           sum(v or 0 for v in committed(kafka_broker, first, group).values())) != (2, 1):
        assert time.monotonic() < deadline, (committed(kafka_broker, second, group),
                                             committed(kafka_broker, first, group))
        time.sleep(0.3)


def test_push_delay_and_requeue_with_delay(jobs: JobsFactory, kafka_broker: str) -> None:
    topic = create_topic(kafka_broker, unique())
    srv = jobs.start(kafka_config(kafka_broker, {"p": pipeline(topic, unique("g"))}, workers=1))
    _wait_split([srv], 2)  # the group is joined: the delay below is not spent waiting for that
    pushed = time.time()
    [late] = srv.push("p", "ack", delay=2)
    [now] = srv.push("p", "ack")
    first = srv.wait_received(1)[0]
    assert first["id"] == now
    assert srv.stats()["p"].delayed == 1  # held by the consumer until due
    row = srv.wait_received(1, timeout=15, where=lambda r: r["id"] == late)[0]
    assert row["t"] - pushed >= 1.9

    [rq] = srv.push("p", "requeue", payloads=[b'{"delay": 2}'])
    rows = srv.wait_received(2, timeout=15, where=lambda r: r["id"] == rq)
    assert "x-requeued" not in rows[0]["headers"] and rows[1]["headers"]["x-requeued"] == ["1"]
    assert rows[1]["t"] - rows[0]["t"] >= 1.9
    srv.wait_idle()


def test_nack_requeue_counts_attempts_and_max_attempts_stops_a_poison_job(jobs: JobsFactory,
                                                                           kafka_broker: str) -> None:
    topic, group = create_topic(kafka_broker, unique(), partitions=1), unique("g")
    srv = jobs.start(kafka_config(kafka_broker, {"p": pipeline(topic, group, max_attempts=3)}, workers=1))
    [again] = srv.push("p", "nack-requeue")
    [poison] = srv.push("p", "nack-forever")
    srv.wait_received(2, where=lambda r: r["id"] == again)
    srv.wait_received(3, where=lambda r: r["id"] == poison)
    out = srv.wait_output("job dropped")
    assert "failed 3 times (max_attempts 3)" in out
    time.sleep(1.0)
    assert Counter(r["id"] for r in srv.received()) == {again: 2, poison: 3}  # the attempt count crossed copies
    srv.wait_idle()
    # original + copy of nack-requeue, original + 2 copies of the poison job: all done, all committed
    deadline = time.monotonic() + 10
    while committed(kafka_broker, topic, group, partitions=1)[0] != 5:
        assert time.monotonic() < deadline, committed(kafka_broker, topic, group, partitions=1)
        time.sleep(0.3)


def test_priority_orders_prefetched_records(jobs: JobsFactory, kafka_broker: str) -> None:
    topic = create_topic(kafka_broker, unique(), partitions=1)
    srv = jobs.start(kafka_config(kafka_broker, {"p": pipeline(topic, unique("g"))}, consume=[], workers=1))
    order = [5, 1, 3, 1, 2]
    for i, prio in enumerate(order):
        srv.push("p", "sleep", payloads=[json.dumps({"ms": 100, "n": f"{prio}-{i}"}).encode()], priority=prio)
    srv.call("jobs.Resume", proto.Pipelines(pipelines=["p"]))
    rows = srv.wait_received(len(order))
    names = [json.loads(r["payload"])["n"] for r in rows]
    # the first record read starts at once on the idle worker; the rest of the batch waits by priority
    assert names[0] == "5-0" and names[1:] == ["1-1", "1-3", "2-4", "3-2"]


def test_worker_crash_is_redelivered_and_never_committed_past(jobs: JobsFactory, kafka_broker: str) -> None:
    topic, group = create_topic(kafka_broker, unique(), partitions=1), unique("g")
    srv = jobs.start(kafka_config(kafka_broker, {"p": pipeline(topic, group, session="2s")}, workers=2))
    [slow] = srv.push("p", "sleep", payloads=[b'{"ms": 6000}'])
    quick = srv.push("p", "ack", count=5)
    [first] = srv.wait_received(1, where=lambda r: r["id"] == slow)
    srv.wait_received(6)
    time.sleep(3.0)  # past the session timeout: heartbeats keep the long job's partition here, not redelivered
    assert [r["id"] for r in srv.received()].count(slow) == 1
    assert committed(kafka_broker, topic, group, partitions=1)[0] is None  # nothing committed past a running job
    os.kill(first["pid"], signal.SIGKILL)
    rows = srv.wait_received(2, timeout=20, where=lambda r: r["id"] == slow)
    assert rows[1]["pid"] != first["pid"]
    [crash] = srv.push("p", "crash")
    srv.wait_received(2, where=lambda r: r["id"] == crash)
    srv.wait_idle(timeout=30)
    got = Counter(r["id"] for r in srv.received())
    assert all(got[q] == 1 for q in quick)
    deadline = time.monotonic() + 10
    while committed(kafka_broker, topic, group, partitions=1)[0] != 9:  # 6 + slow's copy + crash + its copy
        assert time.monotonic() < deadline, committed(kafka_broker, topic, group, partitions=1)
        time.sleep(0.3)


def test_pause_and_resume(jobs: JobsFactory, kafka_broker: str) -> None:
    topic = create_topic(kafka_broker, unique())
    srv = jobs.start(kafka_config(kafka_broker, {"p": pipeline(topic, unique("g"))}, workers=1))
    [slow] = srv.push("p", "sleep", payloads=[b'{"ms": 800}'])
    srv.wait_received(1)
    srv.call("jobs.Pause", proto.Pipelines(pipelines=["p"]))
    rest = srv.push("p", "ack", count=10)
    time.sleep(2.0)
    assert [r["id"] for r in srv.received()] == [slow]  # the running one finished, nothing new was read
    assert srv.stats()["p"].ready is False
    assert "nothing to pause" in _error(srv, "jobs.Pause", proto.Pipelines(pipelines=["p"]))
    srv.call("jobs.Resume", proto.Pipelines(pipelines=["p"]))
    rows = srv.wait_received(11)
    assert Counter(r["id"] for r in rows) == Counter([slow, *rest])


def test_fixed_partitions_without_a_group_start_at_an_offset(jobs: JobsFactory, kafka_broker: str) -> None:
    topic = create_topic(kafka_broker, unique(), partitions=1)
    for i in range(3):
        produce_raw(kafka_broker, topic, f"raw-{i}".encode(), key=f"raw-{i}".encode())
    pipe = {"driver": "kafka", "consumer_options": {"consume_partitions": {topic: {0: {"type": "At", "value": 1}}}}}
    srv = jobs.start(kafka_config(kafka_broker, {"p": pipe}, workers=1))
    assert "offsets are not committed" in srv.server.output()
    rows = srv.wait_received(2)
    time.sleep(0.5)
    assert [r["payload"] for r in srv.received()] == ["raw-1", "raw-2"]
    [jid] = srv.push("p", "ack")
    assert srv.wait_received(3)[2]["id"] == jid and rows


def test_two_instances_share_the_group(jobs: JobsFactory, kafka_broker: str, tmp_path: Path) -> None:
    topic, group = create_topic(kafka_broker, unique(), partitions=2), unique("g")
    cfg = kafka_config(kafka_broker, {"p": pipeline(topic, group)}, workers=2)
    one = jobs.start(cfg, log=tmp_path / "one.log")
    two = jobs.start(cfg, log=tmp_path / "two.log")
    held = _wait_split([one, two], 2)
    print("partitions held", held)
    ids = one.push("p", "ack", count=100) + two.push("p", "ack", count=100)
    result = wait_all_received([one, two], ids, timeout=60)
    time.sleep(0.5)
    result = tally(ids, one.received() + two.received())
    print(result, "split", spread([one, two]))
    assert not result.lost and result.duplicates == 0 and result.unknown == 0
    assert all(n > 0 for n in spread([one, two]))


def test_fastrr_killed_mid_job_the_other_instance_gets_its_jobs(jobs: JobsFactory, kafka_broker: str,
                                                                 tmp_path: Path) -> None:
    topic, group = create_topic(kafka_broker, unique(), partitions=2), unique("g")
    cfg = kafka_config(kafka_broker, {"p": pipeline(topic, group, session="4s")}, workers=2)
    doomed = jobs.start(cfg, log=tmp_path / "doomed.log")
    other = jobs.start(cfg, log=tmp_path / "other.log")
    _wait_split([doomed, other], 2)
    ids = other.push("p", "sleep", payloads=[b'{"ms": 300}'] * 40)
    deadline = time.monotonic() + 30
    while len(doomed.received()) < 2:
        assert time.monotonic() < deadline, "the doomed instance got nothing"
        time.sleep(0.05)
    doomed.server.kill()  # SIGKILL: no commit, no leave-group; the session timeout tells the group
    ran_there = len(doomed.received())
    result = wait_all_received([doomed, other], ids, timeout=90)
    print(result, "received by the killed one before it died:", ran_there, "split", spread([doomed, other]))
    assert not result.lost and result.unknown == 0
    assert "kafka partitions assigned" in other.server.output()
    assert len(_assigned(other)) == 2  # it holds both partitions now


def test_broker_restart_mid_stream_loses_nothing(jobs: JobsFactory, durable_kafka: S3Tansu) -> None:
    broker = durable_kafka.broker
    address = durable_kafka.address
    topic = create_topic(address, unique())
    cfg = kafka_config(address, {"p": pipeline(topic, unique("g"))}, workers=2, timeout=5)
    srv = jobs.start(cfg)
    producer = Producer(srv, "p", batch=5, interval=0.05).start()
    srv.wait_received(20, timeout=30)
    broker.stop()
    try:
        error = _wait_stat_error(srv, "p")
        assert "unreachable" in error and address in error, error
        time.sleep(6.0)  # longer than jobs.timeout (5 s): pushes fail meanwhile, the producer retries them
    finally:
        broker.start()
    time.sleep(3.0)
    pushed = producer.stop()
    result = wait_all_received([srv], pushed, timeout=90)
    print(result, "push errors during the outage:", len(producer.errors), producer.errors[:2])
    assert not result.lost
    assert producer.errors, "no push failed while the broker was down"
    srv.wait_output("kafka broker reachable again")
    deadline = time.monotonic() + 20
    while _wait_stat_error(srv, "p", timeout=0):  # cleared once the broker answers again
        assert time.monotonic() < deadline
        time.sleep(0.2)
    [after] = srv.push("p", "ack")
    srv.wait_received(1, where=lambda r: r["id"] == after, timeout=30)


def _wait_stat_error(srv: JobsServer, pipeline: str, timeout: float = 20.0) -> str:
    """informer.Jobs' ErrorMessage of `pipeline`, once it is set."""
    deadline = time.monotonic() + timeout
    while True:
        with srv.client() as client:
            rows = client.call("informer.Jobs", "jobs")
        row = next(r for r in rows if r["Pipeline"] == pipeline)
        if row["ErrorMessage"] or time.monotonic() > deadline:
            return str(row["ErrorMessage"])
        time.sleep(0.2)


def test_bad_address_and_bad_credentials_fail_start(jobs: JobsFactory, tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    line = _start_fails(jobs, kafka_config(dead, {"p": pipeline("t", "g")}))
    assert "jobs.pipelines.p" in line and f"kafka brokers {dead}" in line
    secured = tansu(free_port(), "memory://tansu/", tmp_path / "auth.log", authentication=True).start()
    try:
        address = f"127.0.0.1:{secured.port}"
        cfg = kafka_config(address, {"p": pipeline("t", "g")})
        cfg["kafka"]["sasl"] = {"mechanism": "SCRAM-SHA-256", "username": "fastrr", "password": "wrong"}
        line = _start_fails(jobs, cfg)
        assert "jobs.pipelines.p" in line and f"kafka brokers {address}" in line
        assert "SASL authentication failed" in line and "wrong" not in line
    finally:
        secured.stop()


def test_missing_topic_and_auto_create(jobs: JobsFactory, kafka_broker: str) -> None:
    missing = unique()
    line = _start_fails(jobs, kafka_config(kafka_broker, {"p": pipeline(missing, "g")}))
    assert "jobs.pipelines.p" in line and f"topic {missing} does not exist" in line
    srv = jobs.start(kafka_config(kafka_broker, {"p": pipeline(missing, unique("g"),
                                                               auto_create_topics_enable=True)}))
    srv.wait_output("kafka topics created")
    [jid] = srv.push("p", "ack")
    assert srv.wait_received(1)[0]["id"] == jid


def test_declare_from_rpc_and_php(jobs: JobsFactory, kafka_broker: str, tmp_path: Path) -> None:
    base, rpc_topic, php_topic = (create_topic(kafka_broker, unique()) for _ in range(3))
    srv = jobs.start(kafka_config(kafka_broker, {"p": pipeline(base, unique("g"))}, workers=1))
    srv.call("jobs.Declare", proto.DeclareRequest(pipeline={
        "name": "d", "driver": "kafka", "priority": "4",
        "consumer_options": json.dumps({"topics": [rpc_topic]}),
        "group_options": json.dumps({"group_id": unique("g"), "session_timeout": "6s"}),
        "producer_options": json.dumps({"required_acks": "AllISRAck", "request_timeout": "5s"})}))
    stat = srv.stats()["d"]
    assert (stat.driver, stat.priority, stat.ready, stat.queue) == ("kafka", 4, False, rpc_topic)
    [jid] = srv.push("d", "ack")
    srv.call("jobs.Resume", proto.Pipelines(pipelines=["d"]))
    assert srv.wait_received(1, timeout=30)[0]["id"] == jid
    script = tmp_path / "declare.php"
    script.write_text(f"""<?php
require {str(ROOT / 'php' / 'autoload.php')!r};
use Fastrr\\Jobs\\Jobs;
use Fastrr\\Jobs\\Queue\\KafkaCreateInfo;
use Fastrr\\Jobs\\Queue\\Kafka\\ConsumerOptions;
use Fastrr\\Jobs\\Queue\\Kafka\\GroupOptions;
use Fastrr\\Jobs\\Queue\\Kafka\\ProducerOptions;
use Fastrr\\RPC\\RPC;
$jobs = new Jobs(RPC::create($argv[1]));
$queue = $jobs->create(new KafkaCreateInfo('from-php', brokers: [$argv[3]], priority: 2,
    producerOptions: new ProducerOptions(requestTimeout: new \\DateInterval('PT5S')),
    consumerOptions: new ConsumerOptions(topics: [$argv[2]]),
    groupOptions: new GroupOptions(groupId: 'php-' . $argv[2])));
$jobs->resume($queue);
echo $queue->dispatch($queue->create('ack', 'php-payload'))->getId(), "\\n";
""")
    out = subprocess.run(["php", str(script), srv.rpc, php_topic, kafka_broker], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr + out.stdout
    php_id = out.stdout.strip()
    [row] = srv.wait_received(1, timeout=30, where=lambda r: r["pipeline"] == "from-php")
    assert row["id"] == php_id and row["payload"] == "php-payload"
    stat = srv.stats()["from-php"]
    assert (stat.driver, stat.priority, stat.ready, stat.queue) == ("kafka", 2, True, php_topic)


BAD_DECLARE_OPTIONS = [
    ("consumer_options", "{}", "consumer_options.topics: a kafka pipeline needs at least one topic"),
    ("consumer_options", "{\"topics\": [\"a\"], \"topicz\": 1}", "consumer_options.topicz: unknown key"),
    ("consumer_options", "not json", "expected a JSON object"),
    ("consumer_options", "{\"topics\": [\"a\"], \"consumer_offset\": {\"type\": \"WithEpoch\"}}",
     "WithEpoch offsets are not supported"),
    ("consumer_options", "{\"topics\": [\"a\"], \"consumer_offset\": {\"type\": \"Sometime\"}}",
     "consumer_offset.type: expected one of At, AfterMilli"),
    ("producer_options", "{\"required_acks\": \"Most\"}", "producer_options.required_acks: expected one of"),
    ("producer_options", "{\"required_acks\": \"LeaderAck\"}", "needs disable_idempotent: true"),
    ("producer_options", "{\"partitioning_strategy\": \"Manual\"}", "Manual is not supported"),
    ("producer_options", "{\"compression_codec\": \"brotli\"}", "compression_codec: expected one of"),
    ("producer_options", "{\"request_timeout\": \"soon\"}", "producer_options.request_timeout: expected a duration"),
    ("group_options", "{\"instance_id\": \"x\"}", "group_options.group_id: required"),
    ("group_options", "{\"group_id\": \"g\", \"heartbeat_interval\": \"9s\", \"session_timeout\": \"6s\"}",
     "heartbeat_interval: must be below session_timeout"),
    ("prefetch", "0", "expected an integer >= 1"),
    ("auto_create_topics_enable", "maybe", "expected true or false"),
    ("prefetchh", "1", "unknown option for the kafka driver"),
]


def test_bad_declare_options(jobs: JobsFactory, kafka_broker: str) -> None:
    """One server for every case (each Declare is refused before it connects)."""
    topic = create_topic(kafka_broker, unique())
    srv = jobs.start(kafka_config(kafka_broker, {"p": pipeline(topic, unique("g"))}, consume=[], workers=1))
    for option, value, error in BAD_DECLARE_OPTIONS:
        values = {"name": "x", "driver": "kafka", "consumer_options": json.dumps({"topics": [topic]}), option: value}
        text = _error(srv, "jobs.Declare", proto.DeclareRequest(pipeline=values))
        assert error in text and f"jobs.Declare[x].{option}" in text, text
    assert "x" not in srv.stats()


@pytest.mark.parametrize("section,error", [
    ({"brokers": ["not an address"]}, "kafka.brokers[0]: expected host:port"),
    ({"brokers": ["127.0.0.1:9092"], "sasl": {"mechanism": "aws_msk_iam"}}, "aws_msk_iam is not supported"),
    ({"brokers": ["127.0.0.1:9092"], "sasl": {"mechanism": "GSSAPI"}}, "kafka.sasl.mechanism: expected plain"),
    ({"brokers": ["127.0.0.1:9092"], "tls": {"key": "k.pem"}}, "tls.key and tls.cert go together"),
    ({"brokers": ["127.0.0.1:9092"], "ping": {"timeout": "never"}}, "kafka.ping.timeout: expected a duration"),
])
def test_bad_global_section(jobs: JobsFactory, section: dict[str, Any], error: str) -> None:
    cfg = kafka_config("127.0.0.1:9092", {"p": pipeline("t", "g")})
    cfg["kafka"] = section
    srv = jobs.start(cfg, wait=False)
    assert srv.server.proc.wait(60) != 0
    assert error in srv.server.output()


def test_bad_yaml_pipeline_option_names_its_key(jobs: JobsFactory) -> None:
    cfg = kafka_config("127.0.0.1:9092", {"p": pipeline("t", "g", consumer_options={"topics": ["a"],
                                                                                   "consume_regexp": True,
                                                                                   "consume_partitions": {}})})
    cfg["jobs"]["pipelines"]["p"]["config"].pop("group_options")
    line = _start_fails(jobs, cfg)
    assert "jobs.pipelines.p.consumer_options.consume_regexp: needs group_options.group_id" in line
