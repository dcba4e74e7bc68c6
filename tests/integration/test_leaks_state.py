"""The state-leak detector (`http.pool.debug_state`, php/src/Debug/StateWatch.php):
workers that leak on purpose (tests/workers/leaky_state.php) get one line per
change that outlives a request, rate-limited; clean workers get none; with the
flag off the detector is never even loaded. Lines come from the worker's stderr,
so fastrr logs them with its PID."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from tests.conftest import worker_cmd
from tests.integration.test_supervisor import wait_until
from tests.jobs.conftest import JobsFactory, jobs_config

PREFIX = "debug_state: "


def start(fastrr, script: str = "leaky_state.php", on: bool = True, env: dict[str, str] | None = None,
          **pool: Any) -> Any:
    cfg: dict[str, Any] = {"http": {"pool": {"num_workers": 1, **pool}}, "logs": {"level": "info", "encoding": "json"}}
    if on:
        cfg["http"]["pool"]["debug_state"] = True
    server = fastrr.start(cfg, workers=1, script=script, env=env)
    server.wait_workers(1)
    return server


def state_lines(server) -> list[dict[str, Any]]:
    out = []
    for line in server.output().splitlines():
        if line.startswith("{") and PREFIX in line:
            record = json.loads(line)
            if record["msg"].startswith(PREFIX):
                out.append(record)
    return out


def get_all(server, paths: list[str]) -> list[dict[str, Any]]:
    with httpx.Client(base_url=server.base, timeout=20) as client:
        answers = []
        for path in paths:
            r = client.get(path)
            assert r.status_code == 200, (path, r.text)
            answers.append(r.json())
    return answers


def settle(server, count: int) -> list[dict[str, Any]]:
    """The lines once `count` of them are logged (the check runs after each answer)."""
    wait_until(lambda: len(state_lines(server)) >= count, timeout=10, what=f"{count} debug_state lines")
    return state_lines(server)


def test_a_growing_static_array_is_reported_when_it_doubles(fastrr):
    server = start(fastrr)
    (pid,) = server.wait_workers(1)
    get_all(server, ["/grow"] * 40 + ["/probe"])
    lines = settle(server, 6)
    items = [r["msg"] for r in lines if "App\\Cache::$items" in r["msg"]]
    assert items == [f"{PREFIX}App\\Cache::$items grew from 0 to {n} entries after {n} request{'s' if n > 1 else ''}"
                     for n in (1, 2, 4, 8, 16, 32)], items
    assert all(r["pid"] == pid and r["logger"] == "server" for r in lines)
    assert len(lines) == len(items)  # nothing else changed (the loop's own variables are not state)


def test_memory_growth_is_reported_with_the_per_request_delta(fastrr):
    server = start(fastrr)
    get_all(server, ["/grow?kb=32"] * 40)
    wait_until(lambda: any("memory_get_usage()" in r["msg"] for r in state_lines(server)), timeout=10,
               what="a memory line")
    memory = [r["msg"] for r in state_lines(server) if "memory_get_usage()" in r["msg"]]
    # 32 KB a request: first reported past 256 KB, then each time the growth doubles (not 40 lines)
    assert 1 <= len(memory) <= 3, memory
    m = re.search(r"grew from [\d.]+ \w+ after the first request to [\d.]+ \w+ after (\d+) requests "
                  r"\(\+([\d.]+) KB/request on average, \+([\d.]+) KB in the last request\)", memory[0])
    assert m, memory[0]
    assert int(m.group(1)) <= 12 and 28 <= float(m.group(2)) <= 40 and 28 <= float(m.group(3)) <= 40, memory[0]


def test_a_singleton_holding_the_request_is_reported_once(fastrr):
    server = start(fastrr)
    get_all(server, ["/hold"] * 10)
    lines = settle(server, 1)
    get_all(server, ["/probe"])  # one more check after the last /hold
    assert [r["msg"] for r in state_lines(server)] == [
        f"{PREFIX}App\\Registry::$instance->request changed from null to a Fastrr\\Http\\Request object "
        "after 1 request"], lines


def test_a_global_set_by_a_request_is_reported(fastrr):
    server = start(fastrr)
    get_all(server, ["/clean"] * 3 + ["/login?user=alice"] + ["/clean"] * 3 + ["/login?user=bob"])
    lines = settle(server, 2)
    assert [r["msg"] for r in lines] == [
        f"{PREFIX}$currentUser changed from unset to 'alice' after 4 requests",
        f"{PREFIX}$currentUser changed from unset to 'bob' after 8 requests",
    ]


def test_clean_workers_log_nothing(fastrr):
    leaky = start(fastrr)
    get_all(leaky, ["/clean"] * 60 + ["/probe"])
    assert get_all(leaky, ["/probe"])[0]["watch_loaded"] is True  # it did run
    plain = start(fastrr, script="app.php")  # the suite's main worker: globals of its own loop only
    get_all(plain, ["/hello", "/pid", "/echo?a=1", "/headers"] * 15)
    psr7 = start(fastrr, script="app.php", env={"APP_MODE": "psr7"})  # Nyholm's classes are library code
    get_all(psr7, ["/hello", "/pid", "/echo?a=1"] * 20)
    for server in (leaky, plain, psr7):
        server.stop()
        assert state_lines(server) == [], state_lines(server)


def test_off_nothing_runs_not_even_the_class_load(fastrr):
    server = start(fastrr, on=False)
    answers = get_all(server, ["/grow"] * 40 + ["/hold", "/login?user=alice", "/probe"])
    assert answers[-1]["watch_loaded"] is False
    server.stop()
    assert state_lines(server) == []


def test_the_classes_to_watch_can_be_named(fastrr):
    """debug_state_classes: only App\\Registry is watched; App\\Cache grows unreported."""
    server = start(fastrr, debug_state_classes=["App\\Registry"])
    get_all(server, ["/grow"] * 10 + ["/hold"] * 2 + ["/probe"])
    lines = settle(server, 1)
    assert [r["msg"] for r in lines] == [
        f"{PREFIX}App\\Registry::$instance->request changed from null to a Fastrr\\Http\\Request object "
        "after 11 requests"], lines


def test_a_jobs_pool_reports_too(fastrr, tmp_path):
    """jobs.pool.debug_state: the check sits in Worker, so a jobs Consumer runs it after each task."""
    cfg = jobs_config({"p": {"driver": "memory"}}, workers=1)
    cfg["server"]["command"] = worker_cmd("jobs_leaky.php")
    cfg["jobs"]["pool"]["debug_state"] = True
    cfg["logs"] = {"level": "info", "encoding": "json"}
    srv = JobsFactory(fastrr, tmp_path).start(cfg)
    srv.push("p", "ack", count=8)
    srv.wait_idle()
    srv.push("p", "ack", count=1)  # the 9th task follows the check of the 8th
    srv.wait_idle()
    lines = settle(srv.server, 4)
    assert [r["msg"] for r in lines] == [
        f"{PREFIX}App\\Seen::$names grew from 0 to {n} entries after {n} request{'s' if n > 1 else ''}"
        for n in (1, 2, 4, 8)], lines
