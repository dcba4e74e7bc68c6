"""The bundled demo app (php/demo, what `make serve` runs) with its own .rr.yaml:
only the ports are moved to free ones; the working directory is php/demo, so
its relative `php worker.php` command is used as written."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import ROOT, free_port

DEMO = ROOT / "php" / "demo"


@pytest.fixture
def demo(fastrr):
    config = (DEMO / ".rr.yaml").read_text()
    assert "127.0.0.1:8080" in config and "command: \"php worker.php\"" in config
    server = fastrr.start(raw_config=config.replace("127.0.0.1:8080", "127.0.0.1:{port}"),
                          args=["-w", str(DEMO), "-o", f"rpc.listen=tcp://127.0.0.1:{free_port()}"])
    server.wait_workers(2)  # the demo's num_workers
    return server


def page_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r"<tr><th>([^<]+)</th><td>([^<]*)</td></tr>", html))


def test_demo_page_shows_pid_counter_and_boot_vs_request_time(demo):
    seen: dict[int, list[int]] = {}
    with httpx.Client(base_url=demo.base, timeout=10) as client:
        for _ in range(8):
            r = client.get("/")
            assert r.status_code == 200
            assert r.headers["content-type"] == "text/html; charset=utf-8"
            assert "<h1>Hello from a long-lived PHP worker</h1>" in r.text
            rows = page_fields(r.text)
            pid = int(rows["Worker PID"])
            assert f"<title>fastrr demo: worker {pid}</title>" in r.text
            assert re.fullmatch(r"\d+\.\d\d ms", rows["Boot duration (once per process)"])
            assert re.fullmatch(r"\d+\.\d\d\d ms", rows["This request, handling time"])
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", rows["Booted at"])
            assert rows["PHP"].endswith("(cli)")
            assert "Booting took" in r.text and "handling this request took" in r.text
            seen.setdefault(pid, []).append(int(rows["Requests served by this worker"]))
    assert set(seen) <= demo.worker_pids()
    # Each worker counts the requests it served, 1, 2, 3...: nothing re-booted in between.
    assert sum(len(counts) for counts in seen.values()) == 8
    for counts in seen.values():
        assert counts == list(range(1, len(counts) + 1)), seen
    assert max(len(counts) for counts in seen.values()) >= 2


def test_demo_json_endpoints(demo):
    with httpx.Client(base_url=demo.base, timeout=10) as client:
        hello = client.get("/hello")
        assert hello.status_code == 200 and hello.content == b'{"message":"Hello, World!"}'
        assert hello.headers["content-type"] == "application/json"

        info = client.get("/api/info").json()
        assert set(info) == {"pid", "requests_served", "booted_at", "boot_ms", "uptime_s", "php_version",
                             "memory", "memory_peak"}
        assert info["pid"] in demo.worker_pids()
        assert info["requests_served"] >= 1 and info["boot_ms"] > 0 and info["uptime_s"] >= 0
        assert re.fullmatch(r"8\.\d+\.\d+.*", info["php_version"])
        assert 0 < info["memory"] <= info["memory_peak"]

        r = client.post("/api/echo", json={"a": [1, 2], "s": "é"})
        assert r.status_code == 200
        body = r.json()
        assert body["json"] == {"a": [1, 2], "s": "é"} and body["form"] is None
        assert body["content_type"] == "application/json" and body["pid"] in demo.worker_pids()

        r = client.post("/api/echo", data={"name": "fastrr", "tags[]": ["a", "b"]})
        assert r.status_code == 200
        body = r.json()
        assert body["json"] is None and body["form"] == {"name": "fastrr", "tags": ["a", "b"]}
        assert body["content_type"] == "application/x-www-form-urlencoded"

        r = client.post("/api/echo", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["error"].startswith("body is not valid JSON: ")

        r = client.get("/nope")
        assert r.status_code == 404 and r.json() == {"error": "not found", "path": "/nope"}

        head = client.head("/")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"] == "text/html; charset=utf-8"
