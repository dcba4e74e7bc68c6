"""The operator CLI against a real server: `fastrr workers`, `reset`, `stop`,
`--version`, and what they say when no server is there."""

from __future__ import annotations

import concurrent.futures
import os
import re
import select
import signal
import subprocess
import sys
import time

import httpx
import pytest

from fastrr.rpc.client import RpcClient
from tests.conftest import ROOT, free_port


def run_cli(args: list[str], cwd, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fastrr", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.fixture
def served(fastrr):
    address = f"tcp://127.0.0.1:{free_port()}"
    server = fastrr.start({"rpc": {"listen": address}}, workers=2, args=["-p"])
    server.wait_workers(2)
    return server, address


def cfg_args(server) -> list[str]:
    return ["-c", str(server.workdir / ".rr.yaml")]


def test_workers_table(served, tmp_path):
    server, _ = served
    for _ in range(3):
        assert httpx.get(server.url("/hello"), timeout=10).status_code == 200
    res = run_cli(["workers", *cfg_args(server)], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    lines = res.stdout.splitlines()
    assert lines[0] == "Workers of [http]:"
    cells = [[c.strip() for c in line.strip("│").split("│")] for line in lines if line.startswith("│")]
    assert cells[0] == ["PID", "STATUS", "EXECS", "MEMORY", "CPU%", "CREATED"]
    rows = cells[1:]
    pids = [int(r[0]) for r in rows]
    assert pids == sorted(server.worker_pids())
    for _pid, status, execs, memory, cpu, created in rows:
        assert status == "ready"
        assert re.fullmatch(r"\d{1,3}(,\d{3})*", execs)
        assert re.fullmatch(r"\d+(\.\d)? MB", memory)
        assert re.fullmatch(r"\d+\.\d\d", cpu)
        assert re.fullmatch(r"now|\d+ seconds? ago|1 minute ago|\d+ minutes ago", created)
    assert sum(int(r[2].replace(",", "")) for r in rows) == 3
    # Box borders, as rr's tablewriter draws them.
    assert lines[1].startswith("┌") and lines[-1].startswith("└")


def test_workers_for_named_and_unknown_plugins(served, tmp_path):
    server, _ = served
    res = run_cli(["workers", "http", *cfg_args(server)], cwd=tmp_path)
    assert res.returncode == 0 and res.stdout.startswith("Workers of [http]:")
    res = run_cli(["workers", "jobs", *cfg_args(server)], cwd=tmp_path)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        "error: informer.Workers: no such plugin: 'jobs' (plugins with workers: ['http'])"]


def test_workers_interactive_redraws_until_interrupted(served, tmp_path):
    server, _ = served
    proc = subprocess.Popen([sys.executable, "-m", "fastrr", "workers", "-i", *cfg_args(server)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        seen = 0
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        while seen < 2 and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                line = proc.stdout.readline()
                seen += line.startswith("Workers of [http]:")
        assert seen == 2
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_reset_prints_rr_lines_on_stderr(served, tmp_path):
    server, _ = served
    before = server.worker_pids()
    res = run_cli(["reset", *cfg_args(server)], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stderr == "resetting plugin: [http]\nplugin reset: [http]\n"
    assert res.stdout == ""
    after = server.wait_workers(2)
    assert not (after & before)


def test_reset_silent_the_octane_way(fastrr, tmp_path):
    # Octane: the config may lack an rpc section; the address comes with -o, and
    # any output on stderr counts as a failure.
    address = f"tcp://127.0.0.1:{free_port()}"
    server = fastrr.start(args=["-o", f"rpc.listen={address}"], workers=2)
    before = server.wait_workers(2)
    res = run_cli(["reset", "-o", f"rpc.listen={address}", "-s", *cfg_args(server)], cwd=tmp_path)
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    middle = server.wait_workers(2)
    assert not (middle & before)
    # Octane's own config file can be empty (everything came with -o at serve time).
    app = tmp_path / "app"
    app.mkdir()
    (app / ".rr.yaml").write_text("")
    res = run_cli(["reset", "-o", f"rpc.listen={address}", "-s"], cwd=app)
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    assert not (server.wait_workers(2) & middle)


def test_reset_fails_cleanly_for_an_unknown_plugin(served, tmp_path):
    server, _ = served
    res = run_cli(["reset", "jobs", "-s", *cfg_args(server)], cwd=tmp_path)
    assert res.returncode == 1
    assert len(res.stderr.strip().splitlines()) == 1 and "no such plugin: 'jobs'" in res.stderr


@pytest.mark.parametrize("command", ["workers", "reset"])
def test_no_server_is_one_line_and_non_zero(tmp_path, command):
    port = free_port()
    (tmp_path / ".rr.yaml").write_text(
        f"version: '3'\nserver: {{command: php x.php}}\nrpc: {{listen: 'tcp://127.0.0.1:{port}'}}\n")
    res = run_cli([command], cwd=tmp_path)
    assert res.returncode == 1
    assert res.stderr.splitlines() == [
        f"error: cannot reach fastrr RPC at tcp://127.0.0.1:{port} (is fastrr serve running?)"]


def test_no_rpc_section_falls_back_to_the_default_address_and_says_so(tmp_path):
    from fastrr.cli import _rpc_address
    from fastrr.config import load_config

    (tmp_path / ".rr.yaml").write_text("version: '3'\nserver: {command: php x.php}\n")
    cwd = os.getcwd()
    try:
        address, hint = _rpc_address(load_config(str(tmp_path / ".rr.yaml")))
    finally:
        os.chdir(cwd)
    assert address == "tcp://127.0.0.1:6001"
    assert "the config has no rpc section" in hint


def test_stop_reads_the_pid_file(served, tmp_path):
    server, _ = served
    pid = int((server.workdir / ".pid").read_text())
    assert pid == server.proc.pid
    res = run_cli(["stop", *cfg_args(server)], cwd=tmp_path)
    assert (res.returncode, res.stdout) == (0, f"stopping process with PID: {pid}\n"), res.stderr
    assert server.proc.wait(30) == 0
    assert not (server.workdir / ".pid").exists()
    res = run_cli(["stop", "-w", str(server.workdir)], cwd=tmp_path)
    assert res.returncode == 1 and "no .pid file" in res.stderr


def test_stop_force_does_not_wait_for_requests(served, tmp_path):
    server, address = served
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        slow = ex.submit(httpx.get, server.url("/sleep?ms=20000"), timeout=30)
        with RpcClient(address) as client:
            deadline = time.monotonic() + 10
            while not any(w["statusStr"] == "working" for w in client.call("informer.Workers", "http")["workers"]):
                assert time.monotonic() < deadline
                time.sleep(0.05)
        res = run_cli(["stop", "-f", "-s", "-w", str(server.workdir)], cwd=tmp_path)
        assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
        assert server.proc.wait(15) == 1  # the second SIGTERM forces the exit
        with pytest.raises(httpx.TransportError):
            slow.result()


def test_version(tmp_path):
    res = run_cli(["--version"], cwd=tmp_path)
    assert res.returncode == 0 and res.stdout.startswith("fastrr version ")
