"""Start-up, boot failures, config errors, relays, shutdown and vanishing clients."""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from fastrr.rpc.client import RpcClient
from tests.conftest import ROOT, WORKERS, free_port


def run_cli(args: list[str], cwd, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fastrr", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_workers_get_the_roadrunner_environment(fastrr):
    server = fastrr.start({"rpc": {"listen": "tcp://127.0.0.1:6999"}, "server": {"env": {"app_flag": "on"}}})
    pid = httpx.get(server.url("/pid")).json()["pid"]
    env = psutil.Process(pid).environ()
    assert env["RR_RELAY"] == "pipes"
    assert env["RR_RPC"] == "tcp://127.0.0.1:6999"
    assert env["RR_MODE"] == "http"
    assert env["RR_VERSION"]
    assert env["APP_FLAG"] == "on"
    # Workers are direct children in their own process group.
    assert psutil.Process(pid).ppid() == server.proc.pid
    assert os.getpgid(pid) == pid


def test_boot_failure_exits_with_the_workers_stderr(fastrr):
    server = fastrr.start(script="failboot.php", wait=False)
    assert server.proc.wait(30) == 3
    err = server.err_path.read_text()
    assert "failed to boot 5 times in a row" in err
    assert "cannot connect to database (simulated boot failure)" in err


def test_missing_script_is_reported_as_could_not_open(fastrr):
    server = fastrr.start({"server": {"command": "php does-not-exist.php"}}, wait=False)
    assert server.proc.wait(30) == 3
    err = server.err_path.read_text()
    assert "Could not open input file" in err
    # fastrr kills a pipes worker that printed it: the message says so, not "exited with code -9".
    assert "code -9" not in err
    assert re.search(r"worker \d+ (was stopped by fastrr|exited with code 1) before it was ready "
                     r"\(Could not open input file", err), err


def test_missing_executable_is_reported(fastrr):
    server = fastrr.start({"server": {"command": "no-such-php-binary worker.php"}}, wait=False)
    assert server.proc.wait(30) == 3
    assert "no-such-php-binary" in server.err_path.read_text()


@pytest.mark.parametrize("yaml_text, needle", [
    ("version: 3\nserver: {command: php x.php}\nhttp: {address: '127.0.0.1:{port}'}\n", "version: expected a string"),
    ("version: '3'\nhttp: {address: '127.0.0.1:{port}'}\n", "server.command: required key is missing"),
    ("version: '4'\nserver: {command: php x.php}\nhttp: {address: '127.0.0.1:{port}'}\n", 'version: expected "3"'),
    ("version: '3'\nserver: {command: php x.php}\nhttp: {address: '127.0.0.1:{port}', pool: {num_workers: lots}}\n",
     "http.pool.num_workers: expected an integer"),
    ("version: '3'\nserver: {command: php x.php}\nhttp: {address: '127.0.0.1:{port}', "
     "pool: {allocate_timeout: soon}}\n", "http.pool.allocate_timeout: expected a duration"),
    ("version: '3'\nserver: {command: php x.php, relay: 'tcp://:6001'}\nhttp: {address: '127.0.0.1:{port}'}\n",
     "server.relay: expected tcp://host:port with a non-empty host"),
    ("version: '3'\nserver: {command: php x.php}\n", "http: required section is missing"),
    ("version: '3'\nserver: [oops\n", "invalid YAML"),
])
def test_config_errors_name_the_key(tmp_path, yaml_text, needle):
    cfg = tmp_path / ".rr.yaml"
    cfg.write_text(yaml_text.replace("{port}", str(free_port())))
    res = run_cli(["serve", "-c", str(cfg)], cwd=tmp_path)
    assert res.returncode == 1
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert needle in lines[0]


def test_missing_config_file(tmp_path):
    res = run_cli(["serve", "-c", str(tmp_path / "nope.yaml")], cwd=tmp_path)
    assert res.returncode == 1
    assert "config file not found" in res.stderr


def test_unknown_keys_warn_once_and_still_serve(fastrr):
    server = fastrr.start({"http": {"colour": "blue", "http3": {"address": "x"}}, "mystery": 1})
    assert httpx.get(server.url("/hello")).status_code == 200
    out = server.output()
    assert out.count("http.colour: unknown key, ignored") == 1
    assert "mystery: unknown key, ignored" in out
    assert "http.http3: not supported by fastrr yet, ignored" in out


def test_overrides_env_interpolation_and_workdir(tmp_path):
    port = free_port()
    app = tmp_path / "app"
    app.mkdir()
    (app / "w.php").write_text(f"<?php require '{WORKERS / 'app.php'}';\n")
    (app / ".rr.yaml").write_text(
        "version: '3'\nserver:\n  command: php ${W_SCRIPT:-missing.php}\n"
        "http:\n  address: 127.0.0.1:${PORT}\n  pool: {num_workers: 4}\n")
    (tmp_path / "vars.env").write_text(f"PORT={port}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastrr", "serve", "-c", str(app / ".rr.yaml"), "--dotenv", str(tmp_path / "vars.env"),
         "-o", "http.pool.num_workers=1", "-o", "server.command=php,w.php"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/pid", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.1)
        assert r.status_code == 200
        assert len(psutil.Process(proc.pid).children()) == 1  # -o won over the file's 4
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_workers_flag(fastrr):
    server = fastrr.start(args=["--workers", "3"])
    server.wait_workers(3)


@pytest.mark.parametrize("relay", ["unix", "tcp", "shm"])
def test_psr7_worker_answers_identically_over_pipes_and_sockets(fastrr, tmp_path, relay):
    dsn = {"unix": f"unix://{tmp_path}/relay.sock", "tcp": f"tcp://127.0.0.1:{free_port()}", "shm": "shm"}[relay]
    env = {"APP_MODE": "psr7"}
    pipes = fastrr.start(env=env)
    sockets = fastrr.start({"server": {"relay": dsn}}, env=env)
    sockets.wait_workers(2)

    def fetch(server):
        r = httpx.post(server.url("/echo?q=1"), content=b"name=x&list[]=1",
                       headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": "c=1"})
        body = r.json()
        body.pop("pid")
        body["uri"] = body["uri"].replace(str(server.port), "PORT")
        body["headers"].pop("Host", None)
        return r.status_code, body

    assert fetch(pipes) == fetch(sockets)
    assert fetch(sockets)[1]["parsedBody"] == {"name": "x", "list": ["1"]}
    for path in ("/hello", "/headers", "/big?kb=300"):
        a, b = httpx.get(pipes.url(path)), httpx.get(sockets.url(path))
        assert (a.status_code, a.content) == (b.status_code, b.content)


def start_with_rpc(fastrr, config: dict | None = None, **kw):
    address = f"tcp://127.0.0.1:{free_port()}"
    return fastrr.start({"rpc": {"listen": address}, **(config or {})}, **kw), address


def wait_until_working(address: str, timeout: float = 10.0) -> None:
    """Until a worker runs a request (informer.Workers), instead of guessing with a sleep."""
    deadline = time.monotonic() + timeout
    with RpcClient(address) as client:
        while not any(w["statusStr"] == "working" for w in client.call("informer.Workers", "http")["workers"]):
            assert time.monotonic() < deadline, "no request reached a worker"
            time.sleep(0.02)


def test_graceful_shutdown_drains_an_in_flight_request(fastrr):
    server, address = start_with_rpc(fastrr)
    pids = server.wait_workers(2)
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        slow = ex.submit(httpx.get, server.url("/sleep?ms=1500"), timeout=10)
        wait_until_working(address)
        server.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while True:  # no longer accepting, soon after the signal
            try:
                httpx.get(server.url("/hello"), timeout=2)
            except httpx.TransportError:
                break
            assert time.monotonic() < deadline, "still accepting after SIGTERM"
            time.sleep(0.02)
        assert slow.result().status_code == 200
    assert server.proc.wait(20) == 0
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_second_signal_forces_exit(fastrr):
    server, address = start_with_rpc(fastrr, {"http": {"shutdown_timeout": "30s"}})
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        pending = ex.submit(httpx.get, server.url("/sleep?ms=20000"), timeout=30)
        wait_until_working(address)
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # (a second signal that came with the first would count all the same)
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(10) == 1
        with pytest.raises(httpx.TransportError):
            pending.result()


def test_vanishing_clients_never_leak_workers(fastrr):
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not installed (make setup installs it)")
    server = fastrr.start({"http": {"pool": {"allocate_timeout": "3s"}}}, workers=2)
    # wrk is cut off after 2s with requests in flight and queued.
    subprocess.run(["wrk", "-t2", "-c50", "-d2s", "--timeout", "1s", server.url("/sleep?ms=30")],
                   capture_output=True, timeout=30)
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        results = list(ex.map(lambda _: httpx.get(server.url("/sleep?ms=300"), timeout=10), range(2)))
    assert [r.status_code for r in results] == [200, 200]
    assert len({r.json()["pid"] for r in results}) == 2  # both workers free again
    assert time.monotonic() - started < 2.5


def json_records(server) -> list[dict]:
    return [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]


def wait_record(server, pred, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in json_records(server) if pred(r)]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no such log record:\n{server.output()}")


def test_worker_stderr_is_logged_with_the_workers_pid(fastrr):
    server = fastrr.start({"logs": {"encoding": "json"}}, workers=1)
    pid = httpx.get(server.url("/pid")).json()["pid"]
    assert httpx.get(server.url("/stdout")).json() == {"ok": True}  # echo goes to stderr
    record = wait_record(server, lambda r: r.get("msg") == "stray output from app")
    assert record["logger"] == "server" and record["level"] == "info"
    assert record["pid"] == pid
    assert pid in server.worker_pids() and pid != server.proc.pid


def test_worker_ignoring_stop_is_killed_after_stop_timeout(fastrr):
    server = fastrr.start({"http": {"pool": {"stop_timeout": "1s", "destroy_timeout": "30s"}}},
                          script="ignorestop.php", workers=1)
    pid = httpx.get(server.url("/")).json()["pid"]
    assert server.worker_pids() == {pid}
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(20) == 0
    elapsed = time.monotonic() - started
    assert "ignorestop: stop frame received, ignoring it" in server.output()  # it got the stop frame
    assert 0.9 <= elapsed < 4.0, elapsed  # stop_timeout (1s), not destroy_timeout (30s)
    deadline = time.monotonic() + 5
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, f"worker {pid} survived the shutdown"
        time.sleep(0.05)


def test_workdir_flag_runs_workers_there(fastrr, tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "w.php").write_text(f"<?php require '{WORKERS / 'app.php'}';\n")
    # The config lives elsewhere (the fixture's directory); `php w.php` is found through -w.
    server = fastrr.start({"server": {"command": "php w.php"}}, workers=1, args=["-w", str(app)])
    r = httpx.get(server.url("/pid"))
    assert r.status_code == 200
    assert psutil.Process(r.json()["pid"]).cwd() == str(app)
    assert app != server.workdir


def test_workers_auto_starts_one_per_cpu(fastrr):
    server = fastrr.start({"logs": {"encoding": "json"}}, workers=1, args=["--workers", "auto"])
    cpus = os.cpu_count()
    assert cpus
    server.wait_workers(cpus)
    started = wait_record(server, lambda r: r.get("msg") == "fastrr started")
    assert started["workers"] == cpus
    assert httpx.get(server.url("/hello")).json() == {"hello": "world"}
