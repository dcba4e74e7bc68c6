"""The beanstalk driver end to end: a beanstalkd of the test's own (free port, its
own binlog), real fastrr, real PHP consumers; and the protocol client's parsing
of bad and short replies, against a socket server that sends them."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fastrr.jobs import proto
from fastrr.jobs.drivers.beanstalk.protocol import Connection, ConnectionLost, ProtocolError, Reserved, ServerError
from fastrr.rpc.client import RpcError
from tests.conftest import ROOT, free_port
from tests.jobs.brokers.common import Daemon, Producer, require, spread, wait_all_received
from tests.jobs.conftest import JobsFactory, jobs_config


@pytest.fixture
def beanstalkd(tmp_path: Path) -> Iterator[Daemon]:
    binlog = tmp_path / "binlog"
    binlog.mkdir()
    port = free_port()
    daemon = Daemon([require("beanstalkd"), "-l", "127.0.0.1", "-p", str(port), "-b", str(binlog)], port,
                    tmp_path / "beanstalkd.log")
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def _config(daemon: Daemon, pipes: dict[str, dict[str, Any]], timeout: str = "30s", **kw: Any) -> dict[str, Any]:
    cfg = jobs_config(pipes, **kw)
    cfg["beanstalk"] = {"addr": f"tcp://127.0.0.1:{daemon.port}", "timeout": timeout}
    return cfg


def _pipe(tube: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"driver": "beanstalk", "config": {"tube": tube or f"t-{uuid.uuid4().hex[:12]}", **extra}}


def _client_call(port: int, coro: Any) -> Any:
    async def run() -> Any:
        conn = await Connection.open("127.0.0.1", port)
        try:
            return await coro(conn)
        finally:
            conn.close()
    return asyncio.run(run())


def _tube_stats(port: int, tube: str) -> dict[str, str]:
    return _client_call(port, lambda c: c.stats_tube(tube)) or {}


# -- the protocol client -----------------------------------------------------------------------


def _canned(replies: list[bytes], call: Any) -> Any:
    """Run `call(conn)` against a server that answers each command line with the next reply."""
    async def run() -> Any:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for reply in replies:
                await reader.readline()
                writer.write(reply)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            conn = await Connection.open("127.0.0.1", port)
            try:
                return await call(conn)
            finally:
                conn.close()
        finally:
            server.close()
    return asyncio.run(run())


@pytest.mark.parametrize("reply,call,error,text", [
    (b"INSERTED x\r\n", lambda c: c.put(b"a", 1, 0, 5), ProtocolError, "bad job id 'x'"),
    (b"INSERTED\r\n", lambda c: c.put(b"a", 1, 0, 5), ProtocolError, "malformed beanstalkd reply"),
    (b"DELETED\r\n", lambda c: c.put(b"a", 1, 0, 5), ProtocolError, "unexpected beanstalkd reply"),
    (b"JOB_TOO_BIG\r\n", lambda c: c.put(b"a", 1, 0, 5), ServerError, "JOB_TOO_BIG to put"),
    (b"BURIED 7\r\n", lambda c: c.put(b"a", 1, 0, 5), ServerError, "BURIED to put"),
    (b"RESERVED 5 10\r\nshort\r\n", lambda c: c.reserve(0), ConnectionLost, "closed the connection"),
    (b"RESERVED 5 3\r\nabcde\r\n", lambda c: c.reserve(0), ProtocolError, "not followed by CRLF"),
    (b"RESERVED 5 -3\r\n", lambda c: c.reserve(0), ProtocolError, "bad byte count"),
    (b"RESERVED 5\r\n", lambda c: c.reserve(0), ProtocolError, "malformed"),
    (b"", lambda c: c.delete(1), ConnectionLost, "closed the connection"),
    (b"DELET", lambda c: c.delete(1), ConnectionLost, "closed the connection"),
    (b"OK 5\r\nab\r\n", lambda c: c.stats_tube("t"), ConnectionLost, "closed the connection"),
    (b"OK 9\r\n---\r\nnope\r\n", lambda c: c.stats_tube("t"), ProtocolError, "bad stats line"),
    (b"USING other\r\n", lambda c: c.use("t"), ProtocolError, "answered USING other"),
    (b"X" * 2000 + b"\r\n", lambda c: c.touch(1), ProtocolError, "longer than"),
])
def test_protocol_rejects_bad_and_short_replies(reply: bytes, call: Any, error: type, text: str) -> None:
    with pytest.raises(error) as info:
        _canned([reply], call)
    assert text in str(info.value)


def test_protocol_good_replies() -> None:
    stats = b"---\nname: t\ncurrent-jobs-ready: 3\n"
    replies = [b"RESERVED 12 5\r\nhello\r\n", b"TIMED_OUT\r\n", b"DEADLINE_SOON\r\n", b"NOT_FOUND\r\n",
               b"TOUCHED\r\n", b"OK %d\r\n%s\r\n" % (len(stats), stats)]

    async def calls(c: Connection) -> list[Any]:
        return [await c.reserve(1), await c.reserve(1), await c.reserve(1), await c.delete(12), await c.touch(12),
                await c.stats_tube("t")]

    got = _canned(replies, calls)
    assert got[:5] == [Reserved(12, b"hello"), None, "DEADLINE_SOON", False, True]
    assert got[5] == {"name": "t", "current-jobs-ready": "3"}


def test_protocol_against_beanstalkd(beanstalkd: Daemon) -> None:
    tube = f"p-{uuid.uuid4().hex[:8]}"

    async def session(c: Connection) -> None:
        await c.use(tube)
        assert await c.watch(tube) == 2 and await c.ignore("default")
        assert not await c.ignore(tube)  # the last tube watched cannot be ignored
        jid = await c.put(b"x\r\ny", 5, 0, 10)
        got = await c.reserve(1)
        assert got == Reserved(jid, b"x\r\ny")
        assert await c.touch(jid) and (await c.stats_job(jid) or {})["state"] == "reserved"
        assert await c.release(jid, 3, 0)
        assert (await c.stats_job(jid) or {})["pri"] == "3"
        again = await c.reserve(1)
        assert isinstance(again, Reserved) and await c.bury(jid, 1)
        assert await c.delete(jid) and not await c.delete(jid)
        assert await c.reserve(0) is None
        assert (await c.stats_tube(tube) or {})["current-jobs-ready"] == "0"
        with pytest.raises(ServerError, match="BAD_FORMAT"):
            await c.put(b"x", -1, 0, 1)  # pri must be unsigned
        with pytest.raises(ConnectionLost):  # beanstalkd did not read the body: the connection is dropped
            await c.stats_tube(tube)

    _client_call(beanstalkd.port, session)


# -- delivery ------------------------------------------------------------------------------------------


def test_every_job_once_context_headers_and_a_foreign_body(jobs: JobsFactory, beanstalkd: Daemon) -> None:
    tube = f"t-{uuid.uuid4().hex[:12]}"
    srv = jobs.start(_config(beanstalkd, {"p": _pipe(tube)}, workers=2))
    ids = srv.push("p", "ack", count=200)
    [hid] = srv.push("p", "ack", payloads=[b'{"x":1}'], headers={"tenant": ["a", "b"], "empty": []})
    [binary] = srv.push("p", "ack", payloads=[b"\xff\x00bin"])

    async def foreign(c: Connection) -> int:
        await c.use(tube)
        return await c.put(b"raw body of another producer", 1, 0, 30)
    _client_call(beanstalkd.port, foreign)

    rows = srv.wait_received(203, timeout=30)
    srv.wait_idle()
    time.sleep(0.5)
    got = Counter(r["id"] for r in srv.received())
    assert set(ids) | {hid, binary} <= set(got) and max(got.values()) == 1 and len(got) == 203
    by_id = {r["id"]: r for r in rows}
    assert by_id[hid]["headers"] == {"tenant": ["a", "b"]} and by_id[hid]["payload"] == '{"x":1}'
    assert by_id[hid]["pipeline"] == "p"
    [odd] = [r for r in rows if r["name"] == "deduced_by_rr"]
    assert odd["payload"] == "raw body of another producer"
    assert len({r["pid"] for r in rows}) == 2
    stat = srv.stats()["p"]
    assert (stat.driver, stat.queue, stat.ready, stat.active, stat.reserved) == ("beanstalk", tube, True, 0, 0)
    assert _tube_stats(beanstalkd.port, tube)["current-jobs-ready"] == "0"


def test_delay_priority_requeue_and_nack(jobs: JobsFactory, beanstalkd: Daemon) -> None:
    srv = jobs.start(_config(beanstalkd, {"p": {**_pipe(), "max_attempts": 3}}, consume=[], workers=1))
    for i, prio in enumerate([5, 1, 3, 2]):
        srv.push("p", "ack", payloads=[f"{prio}-{i}".encode()], priority=prio)
    pushed = time.time()
    srv.push("p", "ack", payloads=[b"later"], delay=2)
    stat = srv.stats()["p"]
    assert (stat.active, stat.delayed, stat.ready) == (4, 1, False)
    srv.call("jobs.Resume", proto.Pipelines(pipelines=["p"]))
    rows = srv.wait_received(5, timeout=15)
    assert [r["payload"] for r in rows] == ["1-1", "2-3", "3-2", "5-0", "later"]  # beanstalkd's pri order
    assert rows[4]["t"] - pushed >= 1.9

    [rq] = srv.push("p", "requeue", payloads=[json.dumps({"delay": 2}).encode()], headers={"keep": ["me"]})
    [nr] = srv.push("p", "nack-requeue")
    [poison] = srv.push("p", "nack-forever")
    srv.wait_output("failed 3 times (max_attempts 3)", timeout=30)
    srv.wait_received(2, where=lambda r: r["id"] == rq, timeout=15)
    srv.wait_idle()
    time.sleep(0.5)
    got = [r for r in srv.received() if r["id"] == rq]
    assert len(got) == 2 and got[1]["headers"]["x-requeued"] == ["1"] and got[1]["headers"]["keep"] == ["me"]
    assert got[1]["t"] - got[0]["t"] >= 1.9  # the requeue delay, by beanstalkd
    ids = [r["id"] for r in srv.received()]
    assert ids.count(nr) == 2 and ids.count(poison) == 3  # exactly max_attempts runs, then dropped


def test_pause_resume_and_a_crashed_consumer(jobs: JobsFactory, beanstalkd: Daemon) -> None:
    srv = jobs.start(_config(beanstalkd, {"p": _pipe()}, workers=2))
    [crash] = srv.push("p", "crash")
    rows = srv.wait_received(2, where=lambda r: r["id"] == crash)
    assert rows[0]["pid"] != rows[1]["pid"]
    srv.wait_idle()
    [slow] = srv.push("p", "sleep", payloads=[b'{"ms": 800}'])
    srv.wait_received(1, where=lambda r: r["id"] == slow)
    srv.call("jobs.Pause", proto.Pipelines(pipelines=["p"]))
    rest = srv.push("p", "ack", count=10)
    time.sleep(1.5)
    assert slow in [r["id"] for r in srv.received()] and not set(rest) & {r["id"] for r in srv.received()}
    stat = srv.stats()["p"]
    assert (stat.ready, stat.active) == (False, 10)
    srv.call("jobs.Resume", proto.Pipelines(pipelines=["p"]))
    got = Counter(r["id"] for r in srv.wait_received(13))
    assert all(got[i] == 1 for i in rest)


def test_long_job_is_touched_past_its_ttr(jobs: JobsFactory, beanstalkd: Daemon) -> None:
    srv = jobs.start(_config(beanstalkd, {"p": _pipe()}, timeout="2s", workers=2))
    [slow] = srv.push("p", "sleep", payloads=[b'{"ms": 5000}'])
    srv.wait_received(1)
    srv.wait_idle(timeout=20)
    time.sleep(0.5)
    assert [r["id"] for r in srv.received()] == [slow]  # TTR 2 s, ran 5 s, never handed out again


def test_sigkill_of_fastrr_hands_its_reserved_jobs_to_the_next(jobs: JobsFactory, beanstalkd: Daemon,
                                                               tmp_path: Path) -> None:
    log = tmp_path / "consumed.log"
    cfg = _config(beanstalkd, {"p": _pipe(prefetch=4)}, workers=2)
    first = jobs.start(cfg, log=log)
    ids = first.push("p", "sleep", payloads=[b'{"ms": 1500}'] * 6)
    first.wait_received(2)
    first.server.kill()
    second = jobs.start(cfg, log=log)
    result = wait_all_received([second], ids, timeout=40)
    print("beanstalk fastrr SIGKILL:", result)
    assert not result.lost
    second.wait_idle(timeout=30)


def test_two_instances_share_a_tube(jobs: JobsFactory, beanstalkd: Daemon, tmp_path: Path) -> None:
    cfg = _config(beanstalkd, {"p": _pipe(prefetch=2)}, workers=2)
    a = jobs.start(cfg, log=tmp_path / "a.log")
    b = jobs.start(cfg, log=tmp_path / "b.log")
    ids = a.push("p", "sleep", payloads=[b'{"ms": 20}'] * 100)
    result = wait_all_received([a, b], ids, timeout=60)
    split = spread([a, b])
    print("beanstalk two instances:", result, "split:", split)
    assert not result.lost and result.duplicates == 0 and min(split) > 0


def test_beanstalkd_restart_while_a_producer_pushes(jobs: JobsFactory, beanstalkd: Daemon) -> None:
    srv = jobs.start(_config(beanstalkd, {"p": _pipe()}, workers=2))
    producer = Producer(srv, "p", batch=5, interval=0.02).start()
    time.sleep(1.5)
    beanstalkd.restart(down=2.0)  # SIGTERM, same port, same binlog
    time.sleep(2.0)
    pushed = producer.stop()
    result = wait_all_received([srv], pushed, timeout=60)
    print("beanstalk restart:", result, "push errors during the outage:", len(producer.errors))
    assert not result.lost
    assert producer.errors and "beanstalk at tcp://127.0.0.1" in producer.errors[0]
    srv.wait_output("beanstalk reconnected, consuming again")
    srv.wait_idle(timeout=30)


def test_stat_while_beanstalkd_is_down(jobs: JobsFactory, beanstalkd: Daemon) -> None:
    srv = jobs.start(_config(beanstalkd, {"p": _pipe()}, workers=1))
    beanstalkd.stop()
    try:
        deadline = time.monotonic() + 15
        row: dict[str, Any] = {}
        while time.monotonic() < deadline:
            with srv.client() as c:
                [row] = c.call("informer.Jobs", "jobs")
            if row["ErrorMessage"]:
                break
            time.sleep(0.2)
        assert f"beanstalk at tcp://127.0.0.1:{beanstalkd.port}" in row["ErrorMessage"]
        assert srv.stats()["p"].driver == "beanstalk"  # Stat answers while the broker is away
        with pytest.raises(RpcError, match="cannot put the job into beanstalk"):
            srv.push("p", "ack")
    finally:
        beanstalkd.start()
    [jid] = srv.push("p", "ack")
    srv.wait_received(1, timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with srv.client() as c:
            [row] = c.call("informer.Jobs", "jobs")
        if not row["ErrorMessage"]:
            break
        time.sleep(0.2)
    assert row["ErrorMessage"] == ""
    assert srv.received()[0]["id"] == jid


def test_bad_address_fails_start_with_one_line(jobs: JobsFactory, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    cfg = jobs_config({"p": _pipe()}, workers=1)
    cfg["beanstalk"] = {"addr": f"tcp://127.0.0.1:{port}"}
    srv = jobs.start(cfg, wait=False)
    assert srv.server.proc.wait(30) == 1
    errors = [x for x in srv.server.err_path.read_text().splitlines() if x.startswith("error:")]
    assert len(errors) == 1, srv.server.output()
    assert "jobs.pipelines.p" in errors[0] and f"cannot connect to beanstalk at tcp://127.0.0.1:{port}" in errors[0]
    assert "refused" in errors[0].lower()


@pytest.mark.parametrize("section,pipe,error", [
    ({"addr": "127.0.0.1:11300"}, {}, "beanstalk.addr: expected tcp://host:port or unix:///path"),
    ({"addr": "tcp://127.0.0.1:99999"}, {}, "beanstalk.addr: expected tcp://host:port"),
    ({"timeout": "0s"}, {}, "beanstalk.timeout: expected at least 1s"),
    ({}, {"tube": "-bad"}, "jobs.pipelines.p.tube: expected a beanstalkd tube name"),
    ({}, {"tube_priority": 2**32}, "jobs.pipelines.p.tube_priority: expected a beanstalkd priority"),
    ({}, {"reserve_timeout": "soon"}, "jobs.pipelines.p.reserve_timeout: expected a duration"),
    ({}, {"prefetch": 0}, "jobs.pipelines.p.prefetch: expected at least 1"),
])
def test_bad_config_values(jobs: JobsFactory, section: dict[str, Any], pipe: dict[str, Any], error: str) -> None:
    cfg = jobs_config({"p": _pipe(**pipe)}, workers=1)
    cfg["beanstalk"] = section
    srv = jobs.start(cfg, wait=False)
    assert srv.server.proc.wait(30) != 0
    assert error in srv.server.output()


def test_declare_from_rpc_and_from_php(jobs: JobsFactory, beanstalkd: Daemon, tmp_path: Path) -> None:
    srv = jobs.start(_config(beanstalkd, {}, workers=1))
    tube = f"d-{uuid.uuid4().hex[:8]}"
    srv.call("jobs.Declare", proto.DeclareRequest(pipeline={
        "name": "rpc", "driver": "beanstalk", "tube": tube, "tube_priority": "3", "reserve_timeout": "1",
        "priority": "4"}))
    stat = srv.stats()["rpc"]
    assert (stat.driver, stat.queue, stat.priority, stat.ready) == ("beanstalk", tube, 4, False)
    for bad, text in [({"tube": "a b"}, "jobs.Declare[x].tube: expected a beanstalkd tube name"),
                      ({"reserve_timeout": "x"}, "jobs.Declare[x].reserve_timeout"),
                      ({"tube_priority": "-1"}, "jobs.Declare[x].tube_priority"),
                      ({"tubee": "t"}, "jobs.Declare[x].tubee: unknown option for the beanstalk driver")]:
        with pytest.raises(RpcError, match=text.replace("[", r"\[").replace("]", r"\]")):
            srv.call("jobs.Declare", proto.DeclareRequest(pipeline={"name": "x", "driver": "beanstalk", **bad}))

    php_tube = f"php-{uuid.uuid4().hex[:8]}"
    script = tmp_path / "declare.php"
    script.write_text(f"""<?php
require {str(ROOT / 'php' / 'autoload.php')!r};
use Fastrr\\Jobs\\Jobs;
use Fastrr\\Jobs\\Queue\\BeanstalkCreateInfo;
use Fastrr\\RPC\\RPC;
$jobs = new Jobs(RPC::create($argv[1]));
$queue = $jobs->create(new BeanstalkCreateInfo('php', priority: 7, tube: $argv[2], reserveTimeout: 1));
$jobs->resume($queue);
echo "declared\\n";
""")
    done = subprocess.run(["php", str(script), srv.rpc, php_tube], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "declared" in done.stdout, done.stdout + done.stderr
    stat = srv.stats()["php"]
    assert (stat.driver, stat.queue, stat.priority, stat.ready) == ("beanstalk", php_tube, 7, True)
    srv.call("jobs.Resume", proto.Pipelines(pipelines=["rpc"]))
    a = srv.push("rpc", "ack", count=3)
    b = srv.push("php", "ack", count=3)
    rows = srv.wait_received(6)
    assert {r["id"] for r in rows} == set(a) | set(b)
    # the put priority of a declared pipeline's job: tube_priority + job priority (RPC: 3 + 4)
    assert {r["pipeline"] for r in rows} == {"rpc", "php"}
    assert srv.server.stop(signal.SIGTERM) == 0
