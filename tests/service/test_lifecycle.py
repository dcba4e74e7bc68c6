"""The service plugin under a real `fastrr serve`: runs, restarts, backoff,
exec_timeout, output in the log, and stops that leave no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.service.conftest import alive, py_command, wait_for


def test_a_command_that_exits_is_restarted_after_restart_sec(services, tmp_path):
    runs = tmp_path / "runs"
    svc = services.start({"tick": {
        "command": py_command(f"open({str(runs)!r}, 'a').write('run\\n')"),
        "remain_after_exit": True, "restart_sec": 0.2}})
    wait_for(lambda: runs.exists() and len(runs.read_text().splitlines()) >= 3, 15, "three runs")
    # exit 0 is a normal end: every restart waits restart_sec, no backoff
    delays = [r["restart_in"] for r in svc.logged("service will be restarted", name="tick")]
    assert delays and set(delays) == {0.2}
    assert not svc.logged("service keeps failing, restarting it later (backoff)")


def test_a_command_that_keeps_failing_fast_backs_off(services):
    svc = services.start({"crash": {"command": "sh -c 'echo hi; sleep 0.2; exit 1'",
                                    "remain_after_exit": True, "restart_sec": 0.1}})
    svc.wait_logged("service keeps failing, restarting it later (backoff)", count=3, name="crash")
    first = svc.logged("service will be restarted", name="crash")
    backoff = svc.logged("service keeps failing, restarting it later (backoff)", name="crash")
    assert [r["restart_in"] for r in first][:1] == [0.1]
    assert [r["restart_in"] for r in backoff][:3] == [0.2, 0.4, 0.8]
    assert [r["failures_in_a_row"] for r in backoff][:3] == [2, 3, 4]
    exits = svc.logged("service exited", name="crash")
    assert exits and all(r["code"] == 1 and r["level"] == "warn" for r in exits)


def test_remain_after_exit_false_leaves_it_stopped(services, tmp_path):
    runs = tmp_path / "runs"
    svc = services.start({"once": {"command": py_command(f"open({str(runs)!r}, 'a').write('run\\n')"),
                                   "restart_sec": 0.1}})
    svc.wait_logged("service exited", name="once", code=0)
    time.sleep(1.0)  # ten restart_sec: nothing restarts it
    assert runs.read_text().splitlines() == ["run"]
    assert not svc.logged("service will be restarted")
    [status] = svc.statuses("once")
    assert "not restarted (remain_after_exit is false)" in status.status.message
    assert svc.names() == ["once"]


def test_process_num_runs_that_many_copies(services):
    svc = services.start({"three": {"command": "sleep 30", "process_num": 3}})
    pids = wait_for(lambda: len(svc.pids("three")) == 3 and svc.pids("three"), 10, "3 pids")
    assert len(set(pids)) == 3 and all(alive(p) for p in pids)
    statuses = svc.statuses("three")
    assert all(s.command.endswith("sleep 30") and s.memory_usage > 0 for s in statuses)
    svc.server.stop()
    assert not any(alive(p) for p in pids)


def test_exec_timeout_kills_a_run_that_takes_too_long(services):
    svc = services.start({"slow": {"command": "sleep 30", "exec_timeout": "300ms"}})
    [started] = svc.logged("service was started", name="slow")
    svc.wait_logged("service exec_timeout reached, killing it", name="slow")
    [exited] = svc.wait_logged("service exited", name="slow")
    assert exited["code"] == -signal.SIGKILL
    assert not alive(started["pid"])
    assert svc.server.proc.poll() is None  # the server goes on


def test_shutdown_kills_the_whole_process_group(services):
    # The shell's background child ignores SIGINT (POSIX, for `&` in a script),
    # so it only goes when the group gets SIGKILL after timeout_stop_sec.
    svc = services.start({"tree": {"command": "sh -c 'sleep 300 & echo child $!; wait'", "timeout_stop_sec": 1}})
    records = wait_for(lambda: [r for r in svc.records() if str(r.get("msg", "")).startswith("child ")], 10,
                       "the child's pid in the log")
    child = int(records[0]["msg"].split()[1])
    [started] = svc.logged("service was started", name="tree")
    assert alive(child) and os.getpgid(child) == started["pid"]
    assert svc.server.stop() == 0
    assert svc.logged("service did not stop within timeout_stop_sec, killing its process group", name="tree")
    assert not alive(child) and not alive(started["pid"])


def test_stop_sends_sigint_and_waits_for_a_graceful_exit(services):
    code = ("import signal, sys, time\n"
            "signal.signal(signal.SIGINT, lambda *a: (print('bye', flush=True), sys.exit(0)))\n"
            "print('up', flush=True)\n"
            "time.sleep(60)\n")
    svc = services.start({"polite": {"command": py_command(code), "timeout_stop_sec": 10}})
    svc.wait_logged("up")
    assert svc.server.stop() == 0
    assert svc.logged("bye", logger="service")
    assert not svc.logged("service did not stop within timeout_stop_sec, killing its process group")
    assert svc.logged("service was stopped", name="polite")


def test_a_second_stop_signal_kills_the_groups_at_once(services):
    # The group ignores SIGINT (the trap is inherited), so only the forced exit's SIGKILL ends it.
    svc = services.start({"stubborn": {"command": "sh -c 'trap \"\" INT; sleep 300 & echo child $!; wait'",
                                       "timeout_stop_sec": 60}})
    records = wait_for(lambda: [r for r in svc.records() if str(r.get("msg", "")).startswith("child ")], 10,
                       "the child's pid in the log")
    child = int(records[0]["msg"].split()[1])
    svc.server.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "stop signal received" in svc.server.output(), 10, "the first stop")
    svc.server.proc.send_signal(signal.SIGTERM)
    assert svc.server.proc.wait(10) == 1
    wait_for(lambda: not alive(child), 5, "the child killed")


def test_output_lines_go_to_the_log_under_the_service_name(services):
    code = "import os, sys; print('out line', flush=True); print('err line', file=sys.stderr, flush=True); " \
           "print('env', os.environ['MY_VAR'], flush=True)"
    svc = services.start({
        "named": {"command": py_command(code), "service_name_in_log": True, "env": {"my_var": "x1"}},
        "plain": {"command": "echo plain-output"},
    })
    svc.wait_logged("env x1", logger="service.named")  # env names are upper-cased, as in RoadRunner
    assert svc.logged("out line", logger="service.named")
    assert svc.logged("err line", logger="service.named")
    svc.wait_logged("plain-output", logger="service")


def test_a_command_that_cannot_start_stops_start_up_naming_it(fastrr):
    server = fastrr.start(raw_config="version: '3'\nservice:\n  ghost:\n    command: /nonexistent/ghost --x\n",
                          wait=False)
    assert server.proc.wait(20) == 1
    out = server.output()
    assert "service ghost: cannot start '/nonexistent/ghost --x': No such file or directory" in out
    assert "service.ghost.command" in out


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")
def test_user_runs_the_command_as_that_user(services):
    svc = services.start({"who": {"command": "id -u", "user": "nobody"}})
    uid = subprocess.run(["id", "-u", "nobody"], capture_output=True, text=True).stdout.strip()
    svc.wait_logged(uid, logger="service")
