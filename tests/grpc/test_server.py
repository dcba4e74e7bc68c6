"""The grpc plugin around the calls: TLS and mutual TLS, health and reflection,
graceful shutdown, informer/resetter, metrics, and start-up errors."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from fastrr.rpc.client import RpcClient
from tests.conftest import ROOT, free_port
from tests.grpc.conftest import PROTOS, WORKER, Certs, Generated

# -- TLS ------------------------------------------------------------------------------------


def test_tls(grpc_server: Any, gen: Generated, certs: Certs) -> None:
    s = grpc_server({"tls": {"key": str(certs.server_key), "cert": str(certs.server_cert)}}, workers=1)
    creds = grpc.ssl_channel_credentials(root_certificates=certs.read("ca"))
    reply = s.stub(creds).Ping(gen.types.Message(msg="secret"), timeout=10)
    assert reply.msg == "secret" and reply.size == 1  # the worker saw :peer.auth-type = tls
    with pytest.raises(grpc.RpcError) as err:  # plaintext against the TLS port
        s.stub().Ping(gen.types.Message(), timeout=3)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_mutual_tls(grpc_server: Any, gen: Generated, certs: Certs) -> None:
    s = grpc_server({"tls": {"key": str(certs.server_key), "cert": str(certs.server_cert),
                             "root_ca": str(certs.ca), "client_auth_type": "require_and_verify_client_cert"}},
                    workers=1)
    good = grpc.ssl_channel_credentials(certs.read("ca"), certs.read("client_key"), certs.read("client_cert"))
    assert s.stub(good).Ping(gen.types.Message(msg="mtls"), timeout=10).msg == "mtls"
    for creds in (grpc.ssl_channel_credentials(certs.read("ca")),  # no client certificate
                  grpc.ssl_channel_credentials(certs.read("ca"), certs.read("other_key"), certs.read("other_cert"))):
        with pytest.raises(grpc.RpcError) as err:
            s.stub(creds).Ping(gen.types.Message(), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


# -- health, reflection, informer, reset, metrics -----------------------------------------------


def test_health_reflection_informer_reset(grpc_server: Any, gen: Generated) -> None:
    s = grpc_server({}, workers=2)
    ch = s.channel()
    health = health_pb2_grpc.HealthStub(ch)
    for name in ("", "fastrr.test.Echo", "anything"):  # one status for all, as RoadRunner
        assert health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status == \
            health_pb2.HealthCheckResponse.SERVING
    watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=5)
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    watch.cancel()

    for method in ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                   "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"):
        info = ch.stream_stream(method, request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
        answers = list(info(iter([reflection_pb2.ServerReflectionRequest(list_services=""),
                                  reflection_pb2.ServerReflectionRequest(
                                      file_containing_symbol="fastrr.test.Echo")]), timeout=5))
        names = {svc.name for svc in answers[0].list_services_response.service}
        assert {"fastrr.test.Echo", "grpc.health.v1.Health"} <= names, method
        files = answers[1].file_descriptor_response.file_descriptor_proto
        assert files, answers[1]

    s.stub().Ping(gen.types.Message(msg="count me"), timeout=10)
    with RpcClient(s.rpc, 20.0) as rpc:
        assert "grpc" in rpc.call("informer.List", True)
        before = {w["pid"] for w in rpc.call("informer.Workers", "grpc")["workers"]}
        assert len(before) == 2
        assert rpc.call("resetter.Reset", "grpc") is True
        after = {w["pid"] for w in rpc.call("informer.Workers", "grpc")["workers"]}
        assert len(after) == 2 and not before & after
    assert s.stub().Ping(gen.types.Message(msg="after reset"), timeout=10).msg == "after reset"
    out = subprocess.run([sys.executable, "-m", "fastrr", "workers", "-c", str(s.server.workdir / ".rr.yaml")],
                         capture_output=True, text=True, timeout=30, cwd=str(ROOT))
    assert "grpc" in out.stdout + out.stderr, out


def test_metrics_series(fastrr: Any, gen: Generated) -> None:
    from tests.grpc.conftest import grpc_yaml

    metrics_port = free_port()
    cfg = yaml.safe_load(grpc_yaml(gen, free_port(), workers=1))
    cfg["metrics"] = {"address": f"127.0.0.1:{metrics_port}"}
    server = fastrr.start(raw_config=yaml.safe_dump(cfg))
    server.wait_workers(1)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        stub = gen.stubs.EchoStub(ch)
        stub.Ping(gen.types.Message(msg="m"), timeout=10)
        with pytest.raises(grpc.RpcError):
            stub.Fail(gen.types.Message(msg="x", code=5), timeout=10)
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    assert 'rr_grpc_request_total{grpc_method="/fastrr.test.Echo/Ping",status_code="OK"} 1' in text
    assert 'rr_grpc_request_total{grpc_method="/fastrr.test.Echo/Fail",status_code="NotFound"} 1' in text
    assert 'rr_grpc_request_duration_seconds_count{grpc_method="/fastrr.test.Echo/Ping"} 1' in text
    assert "rr_grpc_requests_queue 0" in text
    assert "rr_grpc_total_workers 1" in text


def test_unix_socket_listener(fastrr: Any, gen: Generated, tmp_path: Path) -> None:
    from tests.grpc.conftest import grpc_yaml

    sock = tmp_path / "grpc.sock"
    cfg = grpc_yaml(gen, free_port(), workers=1).replace("tcp://127.0.0.1:{port}", f"unix://{sock}")
    server = fastrr.start(raw_config=cfg, wait=False)
    server.wait_workers(1)
    with grpc.insecure_channel(f"unix:{sock}") as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        reply = gen.stubs.EchoStub(ch).Ping(gen.types.Message(msg="over unix"), timeout=10)
    assert reply.msg == "over unix"


# -- graceful shutdown ------------------------------------------------------------------------


def test_graceful_shutdown_drains_a_slow_call(grpc_server: Any, gen: Generated) -> None:
    s = grpc_server({}, workers=1)
    stub = s.stub()
    result: dict[str, Any] = {}

    def slow() -> None:
        try:
            result["reply"] = stub.Sleep(gen.types.Message(sleep_ms=1500), timeout=20).msg
        except grpc.RpcError as exc:
            result["error"] = exc

    thread = threading.Thread(target=slow)
    thread.start()
    watch = health_pb2_grpc.HealthStub(s.channel()).Watch(health_pb2.HealthCheckRequest(), timeout=20)
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    time.sleep(0.5)  # the call is on the worker
    started = time.monotonic()
    s.server.proc.send_signal(signal.SIGTERM)
    # an open Watch learns it, then ends: it does not hold the stop for its grace (destroy_timeout, 60s)
    assert [r.status for r in watch] == [health_pb2.HealthCheckResponse.NOT_SERVING]
    time.sleep(0.3)
    with pytest.raises(grpc.RpcError) as err:  # a new call is refused while draining
        s.stub().Ping(gen.types.Message(), timeout=3)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    thread.join(15)
    assert result.get("reply", "").startswith("slept 1500"), result
    assert s.server.proc.wait(20) == 0
    assert time.monotonic() - started < 10


def test_no_free_worker_is_unavailable(grpc_server: Any, gen: Generated) -> None:
    s = grpc_server({}, workers=1, pool={"allocate_timeout": "0.5s"})
    busy = s.stub().Sleep.future(gen.types.Message(sleep_ms=2000), timeout=20)
    time.sleep(0.3)
    with pytest.raises(grpc.RpcError) as err:
        s.stub().Ping(gen.types.Message(), timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    assert "allocate_timeout" in err.value.details()  # type: ignore[attr-defined]
    assert busy.result().msg.startswith("slept 2000")


# -- start-up errors --------------------------------------------------------------------------


def serve_fails(tmp_path: Path, grpc_section: dict[str, Any], gen: Generated, timeout: float = 30) -> str:
    section = {"listen": f"tcp://127.0.0.1:{free_port()}", "proto": [str(PROTOS / "echo.proto")],
               "env": {"GRPC_GEN": str(gen.php)}, "pool": {"num_workers": 1}, **grpc_section}
    cfg = tmp_path / ".rr.yaml"
    cfg.write_text(yaml.safe_dump({"version": "3", "server": {"command": f"php {WORKER}"}, "grpc": section}))
    done = subprocess.run([sys.executable, "-m", "fastrr", "serve", "-c", str(cfg)], capture_output=True,
                          text=True, timeout=timeout, cwd=str(ROOT), stdin=subprocess.DEVNULL)
    assert done.returncode != 0, done
    return f"exit {done.returncode}: {done.stdout}{done.stderr}"


def test_bad_config_is_a_clear_error(tmp_path: Path, gen: Generated) -> None:
    broken = tmp_path / "broken.proto"
    broken.write_text('syntax = "proto3";\npackage x;\nservice S { rpc M (Nope) returns (Nope); }\n')
    taken = free_port()
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", taken))
        sock.listen(1)
        cases = [
            ({"proto": [str(tmp_path / "absent.proto")]}, ["grpc.proto[0]", "absent.proto", "does not exist"]),
            ({"proto": [str(tmp_path / "*.nothing")]}, ["no proto file matches"]),
            ({"proto": [str(broken)]}, ["broken.proto", '"Nope" is not defined']),
            ({"listen": "localhost"}, ["grpc.listen", "malformed"]),
            ({"interceptors": ["auth"]}, ["grpc.interceptors", "auth"]),
            ({"tls": {"key": str(tmp_path / "k.pem"), "cert": str(broken)}}, ["grpc.tls.key"]),
            ({"tls": {"client_auth_type": "sometimes", "key": str(broken), "cert": str(broken)}},
             ["grpc.tls.client_auth_type"]),
            ({"listen": f"tcp://127.0.0.1:{taken}"}, ["grpc.listen", f"127.0.0.1:{taken}"]),
            ({"tls": {"key": str(broken), "cert": str(broken)}}, ["grpc.tls: cannot load cert", "broken.proto"]),
        ]
        for section, expected in cases:
            text = serve_fails(tmp_path, section, gen)
            for part in expected:
                assert part in text, (section, part, text)
