"""The sqs driver end to end: moto's standalone SQS server (free port), real
fastrr, real PHP consumers. The fault test puts a TCP proxy of its own between
fastrr and moto and cuts it: moto keeps its queues in memory, so restarting
moto itself would lose them (that would test a wiped broker, not a network
outage)."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fastrr.jobs import proto
from fastrr.rpc.client import RpcError
from tests.conftest import ROOT, free_port
from tests.jobs.brokers.common import Daemon, Producer, spread, wait_all_received
from tests.jobs.conftest import JobsFactory, jobs_config

MOTO = str(Path(sys.executable).parent / "moto_server")
REGION = "us-east-1"


def _moto(tmp: Path, env: dict[str, str] | None = None) -> Daemon:
    port = free_port()
    return Daemon([MOTO, "-H", "127.0.0.1", "-p", str(port)], port, tmp / f"moto-{port}.log", env=env).start()


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    daemon = _moto(tmp_path_factory.mktemp("moto"))
    try:
        yield daemon
    finally:
        daemon.stop()


def _endpoint(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def _config(port: int, pipes: dict[str, dict[str, Any]], **kw: Any) -> dict[str, Any]:
    cfg = jobs_config(pipes, **kw)
    cfg["sqs"] = {"key": "test", "secret": "test", "region": REGION, "endpoint": _endpoint(port)}
    return cfg


def _queue() -> str:
    return f"q-{uuid.uuid4().hex[:12]}"


def _pipe(queue: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"driver": "sqs", "config": {"queue": queue or _queue(), **extra}}


def _sqs(port: int, call: Any) -> Any:
    """Run `call(client)` with an aiobotocore client of the test's own."""
    from aiobotocore.session import get_session

    async def run() -> Any:
        async with get_session().create_client("sqs", region_name=REGION, endpoint_url=_endpoint(port),
                                               aws_access_key_id="test", aws_secret_access_key="test") as c:
            return await call(c)
    return asyncio.run(run())


def _url(port: int, queue: str) -> str:
    async def call(c: Any) -> str:
        return (await c.get_queue_url(QueueName=queue))["QueueUrl"]
    return _sqs(port, call)


class Proxy:
    """A TCP relay 127.0.0.1:port -> upstream that can be cut (listener and every
    connection closed, so connects are refused) and restored on the same port."""

    def __init__(self, upstream: int):
        self.upstream = upstream
        self.port = free_port()
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None

    def start(self) -> Proxy:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self.listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def stop(self) -> None:
        self.cut()


@pytest.fixture
def proxy(moto: Daemon) -> Iterator[Proxy]:
    relay = Proxy(moto.port).start()
    try:
        yield relay
    finally:
        relay.stop()


# -- delivery --------------------------------------------------------------------------------------


def test_every_job_once_context_headers_and_a_foreign_message(jobs: JobsFactory, moto: Daemon) -> None:
    queue = _queue()
    srv = jobs.start(_config(moto.port, {"p": _pipe(queue, prefetch=10, wait_time_seconds=1)}, workers=2))
    ids = srv.push("p", "ack", count=150)
    [hid] = srv.push("p", "ack", payloads=[b'{"x":1}'], headers={"tenant": ["a", "b"]})
    [binary] = srv.push("p", "ack", payloads=[b"\xff\x00bin"])
    [empty] = srv.push("p", "ack", payloads=[b""])

    async def foreign(c: Any) -> None:
        url = (await c.get_queue_url(QueueName=queue))["QueueUrl"]
        await c.send_message(QueueUrl=url, MessageBody="from another producer",
                             MessageAttributes={"origin": {"DataType": "String", "StringValue": "php-sdk"}})
    _sqs(moto.port, foreign)

    rows = srv.wait_received(154, timeout=60)
    srv.wait_idle(timeout=30)
    time.sleep(0.5)
    got = Counter(r["id"] for r in srv.received())
    assert set(ids) | {hid, binary, empty} <= set(got) and max(got.values()) == 1 and len(got) == 154
    by_id = {r["id"]: r for r in rows}
    assert by_id[hid]["payload"] == '{"x":1}' and by_id[hid]["headers"]["tenant"] == ["a", "b"]
    assert by_id[hid]["headers"]["ApproximateReceiveCount"] == ["1"]  # SQS system attributes, as RoadRunner
    assert by_id[empty]["payload"] == ""
    [odd] = [r for r in rows if r["name"] == "deduced_by_rr"]
    assert odd["payload"] == "from another producer" and odd["headers"]["origin"] == ["php-sdk"]
    assert len({r["pid"] for r in rows}) == 2
    stat = srv.stats()["p"]
    assert (stat.driver, stat.queue, stat.ready, stat.active, stat.reserved) == ("sqs", queue, True, 0, 0)


def test_rr_attributes_on_the_wire(jobs: JobsFactory, moto: Daemon) -> None:
    """What a RoadRunner consumer reads: rr_* MessageAttributes (+ fastrr_attempts)."""
    queue = _queue()
    srv = jobs.start(_config(moto.port, {"p": _pipe(queue)}, consume=[], workers=1))
    [jid] = srv.push("p", "task.name", payloads=[b"body"], priority=4, delay=0, headers={"h": ["v"]})

    async def peek(c: Any) -> dict[str, Any]:
        url = (await c.get_queue_url(QueueName=queue))["QueueUrl"]
        answer = await c.receive_message(QueueUrl=url, MessageAttributeNames=["All"], WaitTimeSeconds=2)
        [msg] = answer["Messages"]
        await c.change_message_visibility(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"], VisibilityTimeout=0)
        return msg
    msg = _sqs(moto.port, peek)
    attrs = msg["MessageAttributes"]
    assert msg["Body"] == "body"
    assert attrs["rr_id"]["StringValue"] == jid and attrs["rr_job"]["StringValue"] == "task.name"
    assert attrs["rr_priority"] == {"DataType": "Number", "StringValue": "4"}
    assert json.loads(attrs["rr_headers"]["BinaryValue"]) == {"h": ["v"]}
    assert attrs["rr_auto_ack"]["StringValue"] == "false" and attrs["fastrr_attempts"]["StringValue"] == "0"


def test_delay_requeue_nack_and_max_attempts(jobs: JobsFactory, moto: Daemon) -> None:
    srv = jobs.start(_config(moto.port, {"p": {**_pipe(prefetch=10), "max_attempts": 3}}, workers=1))
    pushed = time.time()
    [later] = srv.push("p", "ack", payloads=[b"later"], delay=2)
    [now] = srv.push("p", "ack", payloads=[b"now"])
    rows = srv.wait_received(2, timeout=20)
    assert [r["id"] for r in rows] == [now, later] and rows[1]["t"] - pushed >= 1.9
    [rq] = srv.push("p", "requeue", payloads=[json.dumps({"delay": 2}).encode()], headers={"keep": ["me"]})
    [nr] = srv.push("p", "nack-requeue")
    [poison] = srv.push("p", "nack-forever")
    srv.wait_output("failed 3 times (max_attempts 3)", timeout=30)
    got = srv.wait_received(2, where=lambda r: r["id"] == rq, timeout=20)
    assert got[1]["headers"]["x-requeued"] == ["1"] and got[1]["headers"]["keep"] == ["me"]
    assert got[1]["t"] - got[0]["t"] >= 1.9
    assert got[1]["headers"]["ApproximateReceiveCount"] == ["1"]  # a new message, not the old one's count
    srv.wait_idle(timeout=30)
    ids = [r["id"] for r in srv.received()]
    assert ids.count(nr) == 2 and ids.count(poison) == 3
    with pytest.raises(RpcError, match="SQS delays at most 900 s"):
        srv.push("p", "ack", delay=901)


def test_retain_failed_jobs_keeps_the_message_and_counts_receives(jobs: JobsFactory, moto: Daemon) -> None:
    pipe = {**_pipe(retain_failed_jobs=True, error_visibility_timeout=1, visibility_timeout=10), "max_attempts": 3}
    srv = jobs.start(_config(moto.port, {"p": pipe}, workers=1))
    [poison] = srv.push("p", "nack-forever")
    srv.wait_output("failed 3 times (max_attempts 3)", timeout=30)
    rows = [r for r in srv.received() if r["id"] == poison]
    assert [r["headers"]["ApproximateReceiveCount"] for r in rows] == [["1"], ["2"], ["3"]]  # one message
    srv.wait_idle(timeout=20)


def test_pause_resume_and_a_crashed_consumer(jobs: JobsFactory, moto: Daemon) -> None:
    srv = jobs.start(_config(moto.port, {"p": _pipe(prefetch=5)}, workers=2))
    [crash] = srv.push("p", "crash")
    rows = srv.wait_received(2, where=lambda r: r["id"] == crash, timeout=20)
    assert rows[0]["pid"] != rows[1]["pid"]
    srv.wait_idle(timeout=20)
    [slow] = srv.push("p", "sleep", payloads=[b'{"ms": 800}'])
    srv.wait_received(1, where=lambda r: r["id"] == slow)
    srv.call("jobs.Pause", proto.Pipelines(pipelines=["p"]))
    time.sleep(0.5)
    rest = srv.push("p", "ack", count=10)
    time.sleep(1.5)
    assert not set(rest) & {r["id"] for r in srv.received()}
    stat = srv.stats()["p"]
    assert (stat.ready, stat.active) == (False, 10)
    srv.call("jobs.Resume", proto.Pipelines(pipelines=["p"]))
    got = Counter(r["id"] for r in srv.wait_received(13, timeout=20))
    assert all(got[i] == 1 for i in rest)


def test_long_job_keeps_its_visibility(jobs: JobsFactory, moto: Daemon) -> None:
    srv = jobs.start(_config(moto.port, {"p": _pipe(visibility_timeout=2)}, workers=2))
    [slow] = srv.push("p", "sleep", payloads=[b'{"ms": 6000}'])
    srv.wait_received(1)
    srv.wait_idle(timeout=20)
    time.sleep(0.5)
    assert [r["id"] for r in srv.received()] == [slow]  # visibility 2 s, ran 6 s, never received again


def test_sigkill_of_fastrr_its_messages_come_back(jobs: JobsFactory, moto: Daemon, tmp_path: Path) -> None:
    log = tmp_path / "consumed.log"
    cfg = _config(moto.port, {"p": _pipe(prefetch=4, visibility_timeout=3)}, workers=2)
    first = jobs.start(cfg, log=log)
    ids = first.push("p", "sleep", payloads=[b'{"ms": 1500}'] * 6)
    first.wait_received(2)
    first.server.kill()
    second = jobs.start(cfg, log=log)
    result = wait_all_received([second], ids, timeout=40)
    print("sqs fastrr SIGKILL:", result)
    assert not result.lost
    second.wait_idle(timeout=30)


def test_two_instances_share_a_queue(jobs: JobsFactory, moto: Daemon, tmp_path: Path) -> None:
    cfg = _config(moto.port, {"p": _pipe(prefetch=2, wait_time_seconds=1)}, workers=2)
    a = jobs.start(cfg, log=tmp_path / "a.log")
    b = jobs.start(cfg, log=tmp_path / "b.log")
    ids = a.push("p", "sleep", payloads=[b'{"ms": 20}'] * 100)
    result = wait_all_received([a, b], ids, timeout=60)
    split = spread([a, b])
    print("sqs two instances:", result, "split:", split)
    assert not result.lost and result.duplicates == 0 and min(split) > 0


def test_network_cut_while_a_producer_pushes(jobs: JobsFactory, proxy: Proxy) -> None:
    srv = jobs.start(_config(proxy.port, {"p": _pipe(prefetch=10, wait_time_seconds=1)}, workers=2))
    producer = Producer(srv, "p", batch=5, interval=0.02).start()
    time.sleep(1.5)
    proxy.cut()
    time.sleep(4.0)
    with srv.client() as c:
        [row] = c.call("informer.Jobs", "jobs")
    proxy.start()
    time.sleep(2.0)
    pushed = producer.stop()
    result = wait_all_received([srv], pushed, timeout=60)
    print("sqs network cut:", result, "push errors during the cut:", len(producer.errors))
    assert not result.lost
    # a push during the cut fails with the reason (or, retried by botocore, lands after it)
    assert all("cannot send the job to sqs queue" in e for e in producer.errors), producer.errors[:3]
    assert "sqs at http://127.0.0.1" in row["ErrorMessage"]  # Stat during the cut
    srv.wait_output("sqs receiving again")
    srv.wait_idle(timeout=30)
    with srv.client() as c:
        [row] = c.call("informer.Jobs", "jobs")
    assert row["ErrorMessage"] == ""


def test_a_deleted_queue_is_created_again(jobs: JobsFactory, moto: Daemon) -> None:
    queue = _queue()
    srv = jobs.start(_config(moto.port, {"p": _pipe(queue)}, workers=1))
    url = _url(moto.port, queue)
    _sqs(moto.port, lambda c: c.delete_queue(QueueUrl=url))
    srv.wait_output("sqs queue was gone: created again", timeout=20)
    [jid] = srv.push("p", "ack")
    assert srv.wait_received(1, timeout=20)[0]["id"] == jid


def test_fifo_queue(jobs: JobsFactory, moto: Daemon) -> None:
    queue = f"{_queue()}.fifo"
    srv = jobs.start(_config(moto.port, {"p": _pipe(queue, message_group_id="g1", prefetch=10)}, workers=1))
    ids = [srv.push("p", "ack", payloads=[f"{i}".encode()])[0] for i in range(5)]
    rows = srv.wait_received(5, timeout=20)
    assert [r["id"] for r in rows] == ids  # one group: in order
    with pytest.raises(RpcError, match="takes no per-message delay"):
        srv.push("p", "ack", delay=1)
    [rq] = srv.push("p", "requeue")  # the copy gets a new deduplication id, or SQS would drop it
    srv.wait_received(2, where=lambda r: r["id"] == rq, timeout=20)


# -- start-up, config, declare -----------------------------------------------------------------------


def _start_fails(jobs: JobsFactory, cfg: dict[str, Any]) -> str:
    srv = jobs.start(cfg, wait=False)
    assert srv.server.proc.wait(60) == 1
    errors = [x for x in srv.server.err_path.read_text().splitlines() if x.startswith("error:")]
    assert len(errors) == 1, srv.server.output()
    return errors[0]


def test_bad_endpoint_and_bad_credentials_fail_start(jobs: JobsFactory, tmp_path: Path) -> None:
    port = free_port()
    line = _start_fails(jobs, _config(port, {"p": _pipe()}, workers=1))
    assert "jobs.pipelines.p" in line and f"at http://127.0.0.1:{port}" in line and "Could not connect" in line
    strict = _moto(tmp_path, env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"})  # moto checking credentials
    try:
        line = _start_fails(jobs, _config(strict.port, {"p": _pipe()}, workers=1))
    finally:
        strict.stop()
    assert "jobs.pipelines.p" in line and "InvalidClientTokenId" in line


@pytest.mark.parametrize("pipe,error", [
    ({"queue": "bad name"}, "jobs.pipelines.p.queue: expected an SQS queue name"),
    ({"visibility_timeout": 43201}, "jobs.pipelines.p.visibility_timeout: expected 0..43200 seconds"),
    ({"wait_time_seconds": 21}, "jobs.pipelines.p.wait_time_seconds: expected 0..20 seconds"),
    ({"error_visibility_timeout": 5}, "jobs.pipelines.p.error_visibility_timeout: takes effect only with"),
    ({"queue": "x.fifo"}, "jobs.pipelines.p.message_group_id: required for the FIFO queue"),
    ({"attributes": {"Colour": "red"}}, "jobs.pipelines.p.attributes.Colour: not an SQS queue attribute"),
    ({"attributes": {"FifoQueue": True}}, "jobs.pipelines.p.queue: a FIFO queue's name must end in .fifo"),
    ({"tags": ["a"]}, "jobs.pipelines.p.tags: expected a map"),
])
def test_bad_config_values(jobs: JobsFactory, moto: Daemon, pipe: dict[str, Any], error: str) -> None:
    srv = jobs.start(_config(moto.port, {"p": {"driver": "sqs", "config": pipe}}, workers=1), wait=False)
    assert srv.server.proc.wait(30) != 0
    assert error in srv.server.output()


def test_declare_from_rpc_and_from_php(jobs: JobsFactory, moto: Daemon, tmp_path: Path) -> None:
    srv = jobs.start(_config(moto.port, {}, workers=1))
    queue = _queue()
    srv.call("jobs.Declare", proto.DeclareRequest(pipeline={
        "name": "rpc", "driver": "sqs", "queue": queue, "prefetch": "10", "wait_time": "1", "priority": "4",
        "attributes": json.dumps({"MessageRetentionPeriod": 3600}), "tags": json.dumps({"team": "jobs"})}))
    stat = srv.stats()["rpc"]
    assert (stat.driver, stat.queue, stat.priority, stat.ready) == ("sqs", queue, 4, False)

    async def described(c: Any) -> tuple[dict[str, str], dict[str, str]]:
        url = (await c.get_queue_url(QueueName=queue))["QueueUrl"]
        attrs = (await c.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]))["Attributes"]
        return attrs, (await c.list_queue_tags(QueueUrl=url)).get("Tags", {})
    attrs, tags = _sqs(moto.port, described)
    assert attrs["MessageRetentionPeriod"] == "3600" and tags == {"team": "jobs"}
    for bad, text in [({"attributes": "{not json"}, r"jobs.Declare\[x\].attributes: expected a JSON object"),
                      ({"wait_time": "30"}, r"jobs.Declare\[x\].wait_time: expected 0..20"),
                      ({"queuee": "q"}, r"jobs.Declare\[x\].queuee: unknown option for the sqs driver")]:
        with pytest.raises(RpcError, match=text):
            srv.call("jobs.Declare", proto.DeclareRequest(pipeline={"name": "x", "driver": "sqs", **bad}))

    php_queue = _queue()
    script = tmp_path / "declare.php"
    script.write_text(f"""<?php
require {str(ROOT / 'php' / 'autoload.php')!r};
use Fastrr\\Jobs\\Jobs;
use Fastrr\\Jobs\\Queue\\SQSCreateInfo;
use Fastrr\\RPC\\RPC;
$jobs = new Jobs(RPC::create($argv[1]));
$queue = $jobs->create(new SQSCreateInfo('php', priority: 7, prefetch: 5, waitTimeSeconds: 1, queue: $argv[2],
    attributes: ['VisibilityTimeout' => 20], tags: ['by' => 'php']));
$jobs->resume($queue);
echo "declared\\n";
""")
    done = subprocess.run(["php", str(script), srv.rpc, php_queue], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "declared" in done.stdout, done.stdout + done.stderr
    stat = srv.stats()["php"]
    assert (stat.driver, stat.queue, stat.priority, stat.ready) == ("sqs", php_queue, 7, True)
    srv.call("jobs.Resume", proto.Pipelines(pipelines=["rpc"]))
    a = srv.push("rpc", "ack", count=3)
    b = srv.push("php", "ack", count=3)
    rows = srv.wait_received(6, timeout=20)
    assert {r["id"] for r in rows} == set(a) | set(b)
    assert srv.server.stop(signal.SIGTERM) == 0  # close(): nothing left running, a clean exit
