"""The nats (JetStream) driver end to end: real fastrr, real PHP consumers, the
machine's nats-server (a test's own one for credentials)."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from fastrr.jobs import proto
from fastrr.rpc.client import RpcError
from tests.conftest import ROOT
from tests.jobs.brokers import nats_support
from tests.jobs.brokers.common import Producer, restart_nats, spread, wait_all_received
from tests.jobs.brokers.nats_support import (
    Names,
    first_message,
    nats_config,
    publish_raw,
    stream_exists,
    stream_messages,
)
from tests.jobs.conftest import JobsFactory, JobsServer

names = nats_support.names  # fixtures
nats_with_auth = nats_support.nats_with_auth


def _error(srv: JobsServer, method: str, message: object) -> str:
    with pytest.raises(RpcError) as info:
        srv.call(method, message)  # type: ignore[arg-type]
    return str(info.value)


def _start_fails(jobs: JobsFactory, cfg: dict[str, object]) -> str:
    srv = jobs.start(cfg, wait=False)
    assert srv.server.proc.wait(60) == 1
    errors = [line for line in srv.server.err_path.read_text().splitlines() if line.startswith("error:")]
    assert len(errors) == 1, srv.server.output()
    return errors[0]


def test_every_job_consumed_exactly_once_with_context(jobs: JobsFactory, names: Names) -> None:
    srv = jobs.start(nats_config({"p": names.pipe()}, workers=2))
    ids = srv.push("p", "ack", count=200)
    [tagged] = srv.push("p", "ack", payloads=[b'{"x":1}'], headers={"tenant": ["a", "b"], "empty": []})
    srv.wait_received(201)
    srv.wait_idle()
    time.sleep(0.5)  # nothing more arrives
    rows = srv.received()
    got = Counter(r["id"] for r in rows)
    assert set(got) == {*ids, tagged} and max(got.values()) == 1
    row = next(r for r in rows if r["id"] == tagged)
    assert row["payload"] == '{"x":1}' and row["pipeline"] == "p" and row["name"] == "ack"
    assert row["headers"] == {"tenant": ["a", "b"], "x-nats-subject": [names.subject()]}
    assert len({r["pid"] for r in rows}) == 2
    stat = srv.stats()["p"]
    assert (stat.driver, stat.queue, stat.ready, stat.active, stat.reserved) == ("nats", names.subject(), True, 0, 0)
    # What is on the stream is RoadRunner's nats format: the job as JSON, the payload in base64.
    body, _ = first_message(names.stream())
    envelope = json.loads(body)
    assert envelope["id"] == ids[0] and envelope["job"] == "ack"
    assert base64.b64decode(envelope["payload"]) == b"job-0" and envelope["options"]["pipeline"] == "p"


def test_roadrunner_and_foreign_messages(jobs: JobsFactory, names: Names) -> None:
    srv = jobs.start(nats_config({"p": names.pipe()}, workers=1))
    rr_id = str(uuid.uuid4())
    rr_body = json.dumps({"job": "ack", "id": rr_id, "payload": base64.b64encode(b"from rr").decode(),
                          "options": {"priority": 3, "pipeline": "p", "auto_ack": False}}).encode()
    publish_raw(names.subject(), rr_body, headers={"trace": "t1"})
    publish_raw(names.subject(), b"plain bytes from another app", headers={"origin": "billing"})
    rows = srv.wait_received(2)
    by_name = {r["name"]: r for r in rows}
    assert by_name["ack"]["id"] == rr_id and by_name["ack"]["payload"] == "from rr"
    assert by_name["ack"]["headers"]["trace"] == ["t1"]
    foreign = by_name["deduced_by_rr"]
    assert foreign["payload"] == "plain bytes from another app" and foreign["headers"]["origin"] == ["billing"]
    uuid.UUID(foreign["id"])  # a new uuid, as RoadRunner makes
    srv.wait_idle()


def test_push_delay_and_requeue_with_delay(jobs: JobsFactory, names: Names) -> None:
    srv = jobs.start(nats_config({"p": names.pipe(prefetch=1)}, workers=1))
    pushed = time.time()
    srv.push("p", "ack", payloads=[b"later"], delay=2)
    assert srv.stats()["p"].delayed == 1
    # prefetch 1: a delayed job must not hold the only slot
    srv.push("p", "ack", payloads=[b"now"])
    rows = srv.wait_received(2, timeout=15)
    assert [r["payload"] for r in rows] == ["now", "later"]
    assert rows[1]["t"] - pushed >= 1.9
    [jid] = srv.push("p", "requeue", payloads=[json.dumps({"delay": 2}).encode()], headers={"keep": ["me"]})
    rows = srv.wait_received(2, where=lambda r: r["id"] == jid, timeout=15)
    assert "x-requeued" not in rows[0]["headers"]
    assert rows[1]["headers"]["x-requeued"] == ["1"] and rows[1]["headers"]["keep"] == ["me"]
    assert rows[1]["t"] - rows[0]["t"] >= 1.9
    srv.wait_idle()
    assert srv.stats()["p"].delayed == 0


def test_nack_requeue_and_max_attempts(jobs: JobsFactory, names: Names) -> None:
    srv = jobs.start(nats_config({"p": {**names.pipe(), "max_attempts": 3}}, workers=1))
    [jid] = srv.push("p", "nack-requeue")
    rows = srv.wait_received(2)
    assert [r["id"] for r in rows] == [jid, jid]
    [poison] = srv.push("p", "nack-forever")
    srv.wait_output("failed 3 times (max_attempts 3)")
    srv.wait_idle()
    time.sleep(0.5)
    assert [r["id"] for r in srv.received()].count(poison) == 3  # the attempt count travels in a header


def test_pause_resume(jobs: JobsFactory, names: Names) -> None:
    srv = jobs.start(nats_config({"p": names.pipe()}, workers=1))
    [slow] = srv.push("p", "sleep", payloads=[b'{"ms": 800}'])
    srv.wait_received(1)
    srv.call("jobs.Pause", proto.Pipelines(pipelines=["p"]))
    rest = srv.push("p", "ack", count=10)
    time.sleep(2.0)
    assert [r["id"] for r in srv.received()] == [slow]  # the running one finished, nothing new
    stat = srv.stats()["p"]
    assert (stat.ready, stat.active) == (False, 10)
    srv.call("jobs.Resume", proto.Pipelines(pipelines=["p"]))
    rows = srv.wait_received(11)
    assert Counter(r["id"] for r in rows) == Counter([slow, *rest])


def test_consumer_crash_and_sigkill_mid_job_are_redelivered(jobs: JobsFactory, names: Names) -> None:
    srv = jobs.start(nats_config({"p": names.pipe()}, workers=2))
    [crash] = srv.push("p", "crash")
    rows = srv.wait_received(2, where=lambda r: r["id"] == crash)
    assert rows[0]["pid"] != rows[1]["pid"]
    [slow] = srv.push("p", "sleep", payloads=[b'{"ms": 3000}'])
    [first] = srv.wait_received(1, where=lambda r: r["id"] == slow)
    os.kill(first["pid"], signal.SIGKILL)
    rows = srv.wait_received(2, where=lambda r: r["id"] == slow, timeout=20)
    assert rows[1]["pid"] != first["pid"]
    srv.wait_idle()


def test_auto_ack_is_not_redelivered_after_a_crash(jobs: JobsFactory, names: Names) -> None:
    srv = jobs.start(nats_config({"p": names.pipe(ack_wait="1s")}, workers=1))
    [jid] = srv.push("p", "crash", auto_ack=True)
    srv.wait_received(1)
    srv.server.wait_workers(1)
    time.sleep(2.5)  # past ack_wait: JetStream would have redelivered an unacked one
    assert [r["id"] for r in srv.received()] == [jid]


def test_long_job_is_not_redelivered_while_it_runs(jobs: JobsFactory, names: Names) -> None:
    """ack_wait 1s, a 3.5s job: the in-progress heartbeat keeps it ours (RoadRunner would redeliver it)."""
    srv = jobs.start(nats_config({"p": names.pipe(ack_wait="1s")}, workers=2))
    [jid] = srv.push("p", "sleep", payloads=[b'{"ms": 3500}'])
    srv.wait_received(1)
    srv.wait_idle(timeout=20)
    time.sleep(1.5)
    assert [r["id"] for r in srv.received()] == [jid]


def test_fastrr_sigkilled_with_running_jobs_another_instance_gets_them(jobs: JobsFactory, names: Names,
                                                                        tmp_path: Path) -> None:
    log = tmp_path / "consumed.log"
    cfg = nats_config({"p": names.pipe(ack_wait="2s")}, workers=2)
    first = jobs.start(cfg, log=log)
    ids = first.push("p", "sleep", payloads=[b'{"ms": 2000}'] * 6)
    first.wait_received(2)
    first.server.kill()  # SIGKILL: fastrr and its workers, two jobs running, the rest prefetched
    second = jobs.start(cfg, log=log)
    result = wait_all_received([second], ids, timeout=60)
    print("fastrr SIGKILL:", result)
    assert not result.lost
    second.wait_idle(timeout=40)


def test_broker_restart_while_pushing(jobs: JobsFactory, names: Names) -> None:
    # ack_wait 5s: messages on the wire when the connection dropped never reached
    # fastrr, and JetStream hands them out again only when their ack_wait is over
    srv = jobs.start(nats_config({"p": names.pipe(ack_wait="5s")}, workers=2))
    # running through the outage (their acks go to the new connection) and due after it
    early = srv.push("p", "sleep", payloads=[b'{"ms": 1500}'] * 2) + srv.push("p", "ack", count=5, delay=4)
    producer = Producer(srv, "p", batch=5, interval=0.02).start()
    srv.wait_received(50, timeout=30)
    seen: dict[str, object] = {}

    def while_down() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with srv.client() as c:
                [row] = c.call("informer.Jobs", "jobs")
            if row["ErrorMessage"]:
                seen["row"] = row
                seen["ready"] = srv.stats()["p"].ready  # jobs.Stat, as PHP's Queue::isPaused() reads it
                out = subprocess.run([sys.executable, "-m", "fastrr", "jobs", "stat", "-o", f"rpc.listen={srv.rpc}"],
                                     capture_output=True, text=True, timeout=30, cwd=str(ROOT))
                seen["cli"] = out.stdout
                return
            time.sleep(0.1)

    restart_nats(down=2.0, during=while_down)
    time.sleep(3.0)  # pushes go on after the broker is back
    pushed = early + producer.stop()
    result = wait_all_received([srv], pushed, timeout=60)
    print("nats restart:", result, f"push errors during the outage={len(producer.errors)}")
    assert not result.lost, result.lost[:5]
    assert producer.errors, "no push failed while the broker was down"
    assert any("pipeline p: nats at nats://127.0.0.1:4222" in e and "the jobs were not pushed" in e
               for e in producer.errors), producer.errors[:3]
    assert "nats at nats://127.0.0.1:4222" in str(seen["row"]["ErrorMessage"])  # type: ignore[index]
    assert "DISCONNECTED" in str(seen["cli"]) and seen["ready"] is False
    deadline = time.monotonic() + 20
    while srv.stats()["p"].active and time.monotonic() < deadline:
        time.sleep(0.2)
    with srv.client() as c:
        [row] = c.call("informer.Jobs", "jobs")
    assert row["ErrorMessage"] == "" and row["Ready"]
    out = srv.server.output()
    assert "nats connection lost, redialing" in out and "nats reconnected" in out


def test_streams_deleted_under_a_running_fastrr_are_declared_again(jobs: JobsFactory, names: Names) -> None:
    srv = jobs.start(nats_config({"p": names.pipe()}, workers=1))
    [before] = srv.push("p", "ack")
    srv.wait_received(1)
    names.cleanup()  # an operator (or a broker that lost its store) removes both streams
    [after] = srv.push("p", "ack")  # the push finds no stream, declares it again, publishes
    [later] = srv.push("p", "ack", delay=1)
    rows = srv.wait_received(3, timeout=20)
    assert [r["id"] for r in rows] == [before, after, later]
    assert "no stream stores the pipeline's subject, declaring it again" in srv.server.output()


def test_two_instances_share_the_pipeline(jobs: JobsFactory, names: Names, tmp_path: Path) -> None:
    cfg = nats_config({"p": names.pipe()}, workers=2)
    a = jobs.start(cfg, log=tmp_path / "a.log")
    b = jobs.start(cfg, log=tmp_path / "b.log")
    ids = a.push("p", "sleep", payloads=[b'{"ms": 10}'] * 150) + b.push("p", "sleep", payloads=[b'{"ms": 10}'] * 150)
    result = wait_all_received([a, b], ids, timeout=60)
    split = spread([a, b])
    print("two instances:", result, f"split={split}")
    assert not result.lost and result.duplicates == 0
    assert min(split) > 0


def test_bad_address_and_bad_credentials_fail_the_start(jobs: JobsFactory, names: Names,
                                                         nats_with_auth: str) -> None:
    line = _start_fails(jobs, nats_config({"p": names.pipe()}, addr="nats://127.0.0.1:1"))
    assert "jobs.pipelines.p" in line and "cannot connect to nats at nats://127.0.0.1:1" in line
    bad = f"nats://fastrr:wrong@127.0.0.1:{nats_with_auth}"
    line = _start_fails(jobs, nats_config({"p": names.pipe()}, addr=bad))
    assert "jobs.pipelines.p" in line and "authorization violation" in line.lower()
    assert "wrong" not in line  # the password is not printed
    assert "fastrr:***@" in line


def test_declare_from_rpc_and_php(jobs: JobsFactory, names: Names, tmp_path: Path) -> None:
    srv = jobs.start(nats_config({"p": names.pipe()}, workers=1))
    srv.call("jobs.Declare", proto.DeclareRequest(pipeline={
        "name": "d", "driver": "nats", "stream": names.stream(1), "subject": names.subject(1),
        "prefetch": "5", "ack_wait": "10", "priority": "4"}))
    stat = srv.stats()["d"]
    assert (stat.driver, stat.priority, stat.ready, stat.queue) == ("nats", 4, False, names.subject(1))
    [jid] = srv.push("d", "ack")
    srv.call("jobs.Resume", proto.Pipelines(pipelines=["d"]))
    assert srv.wait_received(1)[0]["id"] == jid
    script = tmp_path / "declare.php"
    script.write_text(f"""<?php
require {str(ROOT / 'php' / 'autoload.php')!r};
use Fastrr\\Jobs\\Jobs;
use Fastrr\\Jobs\\Queue\\NatsCreateInfo;
use Fastrr\\RPC\\RPC;
$jobs = new Jobs(RPC::create($argv[1]));
$queue = $jobs->create(new NatsCreateInfo('from-php', $argv[2], $argv[3], prefetch: 7));  // deliverNew: true (default)
$jobs->resume($queue);
echo $queue->dispatch($queue->create('ack', 'php-payload'))->getId(), "\\n";
""")
    out = subprocess.run(["php", str(script), srv.rpc, names.subject(2), names.stream(2)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    php_id = out.stdout.strip()
    [row] = srv.wait_received(1, where=lambda r: r["pipeline"] == "from-php")
    assert row["id"] == php_id and row["payload"] == "php-payload"
    stat = srv.stats()["from-php"]
    assert (stat.driver, stat.priority, stat.ready) == ("nats", 2, True)
    srv.wait_idle()


BAD_DECLARES = [
    ("subject", "a.*", "expected a NATS subject to publish to"),
    ("subject", "a b", "expected a NATS subject"),
    ("stream", "a.b", "expected a JetStream stream name"),
    ("stream", "x-fastrr-delayed", "are fastrr's own"),
    ("ack_wait", "0.5s", "expected at least 1s"),
    ("prefetch", "0", "expected at least 1 unacked job"),
    ("rate_limit", "-1", "rate_limit"),
    ("deliver_new", "maybe", "expected true or false"),
    ("prefetchh", "1", "unknown option for the nats driver"),
]


def test_bad_options_and_pushes_are_refused_clearly(jobs: JobsFactory, names: Names) -> None:
    srv = jobs.start(nats_config({"p": names.pipe()}, workers=1))
    for option, value, error in BAD_DECLARES:
        pipeline = {"name": "x", "driver": "nats", "stream": names.stream(1), "subject": names.subject(1),
                    option: value}
        text = _error(srv, "jobs.Declare", proto.DeclareRequest(pipeline=pipeline))
        assert error in text and f"jobs.Declare[x].{option}" in text, (option, text)
    assert "x" not in srv.stats()
    # over the broker's max_payload (1 MB by default), under fastrr's max_payload_size (10 MB)
    text = _error(srv, "jobs.Push", proto.PushRequest(job=proto.Job(job="ack", id="big", payload=b"x" * (1 << 20),
                                                                    options=proto.Options(pipeline="p"))))
    assert "pipeline p (nats at nats://127.0.0.1:4222): job big was not stored by the stream" in text
    assert "maximum payload exceeded" in text


def test_bad_yaml_options_and_stream_mismatch(jobs: JobsFactory, names: Names) -> None:
    line = _start_fails(jobs, nats_config({"p": names.pipe(ack_wait="soon")}))
    assert "jobs.pipelines.p.ack_wait" in line
    cfg = nats_config({"p": names.pipe()})
    cfg["nats"] = {"addr": "http://127.0.0.1:4222"}
    line = _start_fails(jobs, cfg)
    assert "nats.addr" in line and "expected a NATS URL" in line
    # A stream that exists without the pipeline's subject: a clear error, the stream untouched.
    publish_stream = names.pipe(0)
    jobs.start(nats_config({"q": publish_stream})).server.stop()
    line = _start_fails(jobs, nats_config({"p": names.pipe(0, subject=names.subject(9))}))
    assert f"stream '{names.stream(0)}' exists with subjects ['{names.subject(0)}']" in line
    assert f"do not cover the pipeline's subject '{names.subject(9)}'" in line


def test_deliver_new_rate_limit_delete_after_ack_and_delete_stream_on_stop(jobs: JobsFactory,
                                                                           names: Names) -> None:
    # A job on the stream before the consumer exists: deliver_new skips it.
    jobs.start(nats_config({"q": names.pipe()}, consume=[])).server.stop()
    publish_raw(names.subject(), b"old")
    pipe = names.pipe(rate_limit=4, delete_after_ack=True, delete_stream_on_stop=True, deliver_new=True)
    srv = jobs.start(nats_config({"p": pipe}, workers=2))
    start = time.monotonic()
    ids = srv.push("p", "ack", count=12)
    rows = srv.wait_received(12, timeout=20)
    took = time.monotonic() - start
    print(f"rate_limit 4/s: 12 jobs in {took:.1f}s")
    assert took >= 1.5  # 4 at once, then 4 a second
    assert {r["id"] for r in rows} == set(ids)  # "old" was published before the consumer: not delivered
    srv.wait_idle()
    deadline = time.monotonic() + 10
    while stream_messages(names.stream()) > 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stream_messages(names.stream()) == 1  # acked jobs deleted; "old" stays
    assert srv.server.stop() == 0
    assert not stream_exists(names.stream()) and not stream_exists(names.stream() + "-fastrr-delayed")
