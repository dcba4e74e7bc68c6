"""Unary calls through a real fastrr and PHP grpc workers: metadata both ways, errors
with details, limits, deadlines, exec_ttl, unknown methods, crashes, streaming rpcs.

One server serves the whole module (2 workers, 1 MB message limits, exec_ttl 2s):
the tests that kill a worker check it came back before they end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from fastrr.grpc.status import Status
from fastrr.rpc.client import RpcClient
from tests.conftest import ServerFactory
from tests.grpc.conftest import Generated, GrpcServer, grpc_yaml

MB = 1 << 20


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, gen: Generated) -> Iterator[GrpcServer]:
    from tests.conftest import free_port

    factory = ServerFactory(tmp_path_factory.mktemp("grpc-calls"))
    rpc_port = free_port()
    cfg = grpc_yaml(gen, rpc_port, {"max_send_msg_size": 1, "max_recv_msg_size": 1},
                    pool={"supervisor": {"exec_ttl": "2s"}})
    server = factory.start(raw_config=cfg)
    server.wait_workers(2)
    s = GrpcServer(server, rpc_port, gen)
    yield s
    s.close()
    factory.close()


def workers(srv: GrpcServer) -> list[dict[str, Any]]:
    with RpcClient(srv.rpc, 10.0) as rpc:
        return rpc.call("informer.Workers", "grpc")["workers"]


def wait_ready(srv: GrpcServer, count: int = 2, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = workers(srv)
        if sum(1 for r in rows if r["statusStr"] == "ready") == count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_unary_with_metadata_both_ways(srv: GrpcServer, gen: Generated) -> None:
    stub = srv.stub()
    reply, call = stub.Ping.with_call(gen.types.Message(msg="héllo", blob=b"\x00\xff"),
                                      metadata=(("x-echo", "a"), ("x-echo", "b")), timeout=10)
    assert (reply.msg, reply.blob) == ("héllo", b"\x00\xff")
    assert reply.code == 1  # the worker saw :peer.address 127.0.0.1:<port>
    assert reply.size == 0  # and no :peer.auth-type (no TLS)
    assert ("x-echo-header", "a,b") in [(m.key, m.value) for m in call.initial_metadata()]
    assert ("x-echo-trailer", "a,b") in [(m.key, m.value) for m in call.trailing_metadata()]


def test_grpc_exception_becomes_the_status_with_details(srv: GrpcServer, gen: Generated) -> None:
    with pytest.raises(grpc.RpcError) as err:
        srv.stub().Fail(gen.types.Message(msg="no such user", code=9), timeout=10)
    exc: Any = err.value
    assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert exc.details() == "no such user"
    trailers = dict(exc.trailing_metadata())
    assert trailers["x-failed"] == "yes"  # ResponseTrailers set before the throw
    status = Status.FromString(trailers["grpc-status-details-bin"])
    assert (status.code, status.message) == (9, "no such user")
    assert status.details[0].type_url == "type.googleapis.com/fastrr.test.Message"
    detail = gen.types.Message.FromString(status.details[0].value)
    assert detail.msg == "detail of no such user"


def test_other_exceptions_are_internal_and_the_delimited_form_sets_the_code(srv: GrpcServer,
                                                                             gen: Generated) -> None:
    stub = srv.stub()
    with pytest.raises(grpc.RpcError) as err:
        stub.Error(gen.types.Message(msg="boom"), timeout=10)
    assert (err.value.code(), err.value.details()) == (grpc.StatusCode.INTERNAL, "boom")  # type: ignore[attr-defined]
    # RoadRunner's wrapError: "code|:|message" in a worker error sets the code
    with pytest.raises(grpc.RpcError) as err:
        stub.Error(gen.types.Message(msg="5|:|gone"), timeout=10)
    assert (err.value.code(), err.value.details()) == (grpc.StatusCode.NOT_FOUND, "gone")  # type: ignore[attr-defined]
    assert wait_ready(srv)  # the workers were kept


def test_unknown_methods_never_reach_a_worker(srv: GrpcServer, gen: Generated) -> None:
    before = sum(r["numExecs"] for r in workers(srv))
    ch = srv.channel()
    for path in ("/fastrr.test.Echo/Nope", "/fastrr.test.Other/Ping", "/Ping"):
        with pytest.raises(grpc.RpcError) as err:
            ch.unary_unary(path)(b"", timeout=10)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED, path  # type: ignore[attr-defined]
    assert sum(r["numExecs"] for r in workers(srv)) == before
    # in the proto but not in the PHP service: the PHP library says so
    with pytest.raises(grpc.RpcError) as err:
        srv.stub().Missing(gen.types.Message(), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    assert "Method `Missing` not found in service `fastrr.test.Echo`" in err.value.details()  # type: ignore[attr-defined]


def test_messages_near_and_over_the_limits(srv: GrpcServer, gen: Generated) -> None:
    stub = srv.stub(max_receive_message_length=8 * MB, max_send_message_length=8 * MB)
    near = b"x" * (MB - 64)
    assert stub.Ping(gen.types.Message(blob=near), timeout=20).blob == near
    with pytest.raises(grpc.RpcError) as err:
        stub.Ping(gen.types.Message(blob=b"x" * (MB + 1)), timeout=20)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert len(stub.Big(gen.types.Message(size=MB - 16), timeout=20).blob) == MB - 16
    with pytest.raises(grpc.RpcError) as err:
        stub.Big(gen.types.Message(size=MB + 100), timeout=20)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert "larger than max" in err.value.details()  # type: ignore[attr-defined]


def test_deadline_exceeded_kills_the_worker_as_exec_ttl(srv: GrpcServer, gen: Generated) -> None:
    before = {r["pid"] for r in wait_ready(srv)}
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        srv.stub().Sleep(gen.types.Message(sleep_ms=1500), timeout=0.3)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
    assert time.monotonic() - started < 1.4
    rows = wait_ready(srv)
    assert len(before - {r["pid"] for r in rows}) == 1  # one worker replaced, the pool full again
    assert srv.stub().Ping(gen.types.Message(msg="after"), timeout=10).msg == "after"


def test_exec_ttl_is_deadline_exceeded(srv: GrpcServer, gen: Generated) -> None:
    before = {r["pid"] for r in wait_ready(srv)}
    with pytest.raises(grpc.RpcError) as err:
        srv.stub().Sleep(gen.types.Message(sleep_ms=6000), timeout=20)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
    assert "exec_ttl" in err.value.details()  # type: ignore[attr-defined]
    assert len(before - {r["pid"] for r in wait_ready(srv)}) == 1


def test_worker_crash_mid_call_is_internal_and_the_worker_respawned(srv: GrpcServer, gen: Generated) -> None:
    before = {r["pid"] for r in wait_ready(srv)}
    with pytest.raises(grpc.RpcError) as err:
        srv.stub().Crash(gen.types.Message(), timeout=10)
    assert err.value.code() == grpc.StatusCode.INTERNAL  # type: ignore[attr-defined]
    assert "exited with code 7" in err.value.details() or "EOF" in err.value.details()  # type: ignore[attr-defined]
    rows = wait_ready(srv)
    assert len(rows) == 2 and len(before - {r["pid"] for r in rows}) == 1
    assert srv.stub().Ping(gen.types.Message(msg="again"), timeout=10).msg == "again"


def test_streaming_rpc_is_served_as_one_reply(srv: GrpcServer, gen: Generated) -> None:
    replies = list(srv.stub().Watch(gen.types.Message(msg="x"), timeout=10))
    assert [r.msg for r in replies] == ["one of x"]


def test_well_known_types_from_the_import_path(srv: GrpcServer, gen: Generated) -> None:
    from google.protobuf import any_pb2

    packed = any_pb2.Any()
    packed.Pack(gen.types.Message(msg="inside"))
    reply = srv.stub().Pack(packed, timeout=10)
    assert reply.msg == "type.googleapis.com/fastrr.test.Message"
    assert gen.types.Message.FromString(reply.blob).msg == "inside"


def test_a_cancelled_call_lets_its_worker_finish(srv: GrpcServer, gen: Generated) -> None:
    before = {r["pid"] for r in wait_ready(srv)}
    call = srv.stub().Sleep.future(gen.types.Message(sleep_ms=800), timeout=20)
    time.sleep(0.3)
    assert call.cancel()
    rows = wait_ready(srv)  # the worker ran the call to its end and is ready again: not killed
    assert {r["pid"] for r in rows} == before
    assert srv.stub().Ping(gen.types.Message(msg="next"), timeout=10).msg == "next"
