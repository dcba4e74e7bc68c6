"""service.* RPC (protobuf service.v1), `fastrr workers` and `fastrr reset` against a real server."""

from __future__ import annotations

import pytest

from fastrr.rpc.client import RpcError
from fastrr.rpc.codec import FLAG_JSON
from fastrr.service import proto
from tests.service.conftest import alive, wait_for


def create(svc, **fields):
    return svc.call("service.Create", proto.Create(**fields), proto.Response)


def test_create_list_statuses_terminate(services):
    svc = services.start({"base": {"command": "sleep 30"}})
    answer = create(svc, name="made", command="sleep 31", process_num=2, env={"a": "b"})
    assert answer.ok
    assert svc.names() == ["base", "made"]
    pids = wait_for(lambda: len(svc.pids("made")) == 2 and svc.pids("made"), 10, "two copies")
    statuses = svc.statuses("made")
    assert [s.command.split("/")[-1] for s in statuses] == ["sleep 31", "sleep 31"]
    assert all(s.memory_usage > 0 and s.cpu_percent >= 0 for s in statuses)
    # the deprecated Status reports the last copy
    status = svc.call("service.Status", proto.Service(name="made"), proto.Status)
    assert status.pid == statuses[-1].pid and not status.HasField("status")

    assert svc.call("service.Terminate", proto.Service(name="made"), proto.Response).ok
    assert svc.names() == ["base"]
    assert not any(alive(p) for p in pids)
    assert svc.pids("base")  # the other service is untouched


def test_restart_gives_new_processes(services):
    svc = services.start({"r": {"command": "sleep 30"}})
    [before] = wait_for(lambda: svc.pids("r"), 10, "a pid")
    assert svc.call("service.Restart", proto.Service(name="r"), proto.Response).ok
    [after] = svc.pids("r")
    assert after != before and alive(after) and not alive(before)


def test_restart_brings_back_a_service_that_ended(services):
    svc = services.start({"once": {"command": "true"}})
    svc.wait_logged("service exited", name="once")
    assert svc.call("service.Restart", proto.Service(name="once"), proto.Response).ok
    svc.wait_logged("service exited", count=2, name="once")


def test_create_applies_restart_and_exec_timeout(services):
    svc = services.start({})
    assert create(svc, name="t", command="sleep 30", process_num=1, exec_timeout=1, remain_after_exit=True,
                  restart_sec=1, service_name_in_logs=True).ok
    svc.wait_logged("service exec_timeout reached, killing it", name="t")
    svc.wait_logged("service will be restarted", name="t", restart_in=1.0)
    assert not svc.logged("service keeps failing, restarting it later (backoff)")  # a timeout is no crash
    svc.wait_logged("service was started", count=2, name="t")


@pytest.mark.parametrize("fields, error", [
    ({"name": "x", "command": "sleep 1", "process_num": 0}, "the service with x name should have at least 1 process"),
    ({"name": "x", "command": "sleep 1", "process_num": -3}, "the service with x name should have at least 1 process"),
    ({"name": "base", "command": "sleep 1", "process_num": 1}, "service already exists: base"),
    ({"name": "", "command": "sleep 1", "process_num": 1}, "service.Create: the service name is empty"),
    ({"name": "a b", "command": "sleep 1", "process_num": 1}, "service name 'a b' may use only letters"),
    ({"name": "x", "command": "", "process_num": 1}, "service x: command: expected a non-empty command"),
    ({"name": "x", "command": "sh -c 'open", "process_num": 1}, "cannot split"),
    ({"name": "x", "command": "sleep 1", "process_num": 1, "exec_timeout": -1}, "exec_timeout must not be negative"),
    ({"name": "x", "command": "/nonexistent/prog", "process_num": 2},
     "service x: cannot start '/nonexistent/prog': No such file or directory"),
])
def test_create_rejects_bad_input_clearly(services, fields, error):
    svc = services.start({"base": {"command": "sleep 30"}})
    with pytest.raises(RpcError) as exc:
        create(svc, **fields)
    assert error in str(exc.value)
    assert svc.names() == ["base"] and svc.pids("base")  # nothing else broke


def test_bad_payloads_and_unknown_names(services):
    svc = services.start({"base": {"command": "sleep 30"}})
    with pytest.raises(RpcError, match="service.Create: malformed Create message"):
        svc.call("service.Create", b"\xff\xff\xff", proto.Response)
    with pytest.raises(RpcError, match="takes a protobuf message"):
        svc.client.call("service.Create", {"name": "x"}, flags=FLAG_JSON)
    for method in ("service.Terminate", "service.Restart", "service.Status", "service.Statuses"):
        with pytest.raises(RpcError, match=r"no such service: nope \(services: base\)"):
            svc.call(method, proto.Service(name="nope"), proto.Response)
    with pytest.raises(RpcError, match="malformed Service message"):
        svc.call("service.Terminate", b"\x0a\x05ab", proto.Response)
    assert svc.names() == ["base"] and svc.pids("base")


def test_workers_lists_services_with_pid_memory_cpu_command(services):
    svc = services.start({"lister": {"command": "sleep 30", "process_num": 2}, "crash": {"command": "false"}})
    pids = wait_for(lambda: len(svc.pids("lister")) == 2 and svc.pids("lister"), 10, "two pids")
    svc.wait_logged("service exited", name="crash")
    done = svc.cli("workers")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Workers of [service]:" in out
    for column in ("PID", "MEMORY", "CPU%", "COMMAND"):
        assert column in out
    assert "STATUS" not in out and "EXECS" not in out
    for pid in pids:
        assert str(pid) in out
    assert "sleep 30" in out
    assert "exit code 1 — service crash" in out  # the failed run, below the table
    rows = svc.client.call("informer.Workers", "service")["workers"]
    assert sorted(r["pid"] for r in rows) == pids
    assert all(r["status"] == 1 and r["numExecs"] == 0 and r["memoryUsage"] > 0 for r in rows)
    assert "service" in svc.client.call("informer.List", True)
    with pytest.raises(RpcError, match="use service.Create"):
        svc.client.call("informer.AddWorker", "service")


def test_reset_restarts_the_services(services):
    svc = services.start({"r": {"command": "sleep 30"}})
    [before] = wait_for(lambda: svc.pids("r"), 10, "a pid")
    done = svc.cli("reset", "service")
    assert done.returncode == 0, done.stderr
    [after] = svc.pids("r")
    assert after != before and not alive(before)
