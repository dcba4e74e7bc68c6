"""Application collectors on a real server: declared in `metrics.collect` or
from PHP (Fastrr\\Metrics in a real worker), fed from PHP, read by scraping."""

from __future__ import annotations

import httpx
import pytest

from tests.metrics.conftest import MetricsFactory, MetricsServer, families

COLLECT = {
    "orders": {"type": "counter", "help": "Orders placed.", "namespace": "shop", "subsystem": "checkout",
               "labels": ["status", "channel"]},
    "visits": {"type": "counter"},
    "temp": {"type": "gauge", "help": "Room temperature.", "labels": ["room"]},
    "queue": {"type": "gauge"},
    "latency": {"type": "histogram", "labels": ["route"], "buckets": [0.1, 0.5, 1]},
    "sizes": {"type": "histogram"},
    "payload": {"type": "summary", "objectives": [{0.5: 0.05}, {0.9: 0.01}]},
    "durations": {"type": "summary", "labels": ["kind"], "objectives": {1: 0.001}},
}


@pytest.fixture
def server(metrics: MetricsFactory) -> MetricsServer:
    return metrics.start({"collect": COLLECT})


def app_samples(server: MetricsServer) -> dict:
    """Every sample of the application collectors (fastrr's own series left out)."""
    return {k: v for k, v in server.samples().items()
            if not k[0].startswith(("rr_", "process_", "fastrr_"))}


def test_collect_from_yaml_each_type(server: MetricsServer) -> None:
    # scalar collectors are there from the start, vectors once a series is used (as client_golang)
    fam = families(server.scrape())
    assert "shop_checkout_orders" not in fam and "temp" not in fam
    assert server.value("visits") == 0 and server.value("queue") == 0
    assert server.value("sizes_count") == 0 and server.value("payload_count") == 0

    assert server.php(
        ["add", "orders", 2, ["paid", "web"]], ["add", "orders", 1, ["paid", "web"]],
        ["add", "orders", 5, ["new", "app"]],
        ["add", "visits", 1.5],
        ["set", "temp", 21.5, ["kitchen"]], ["add", "temp", 1, ["kitchen"]], ["sub", "temp", 4, ["hall"]],
        ["set", "queue", 7], ["sub", "queue", 2],
        ["observe", "latency", 0.05, ["/a"]], ["observe", "latency", 0.5, ["/a"]], ["observe", "latency", 3, ["/a"]],
        ["observe", "sizes", 0.3],
        *[["observe", "payload", v] for v in range(1, 11)],
        ["observe", "durations", 4, ["db"]], ["observe", "durations", 9, ["db"]],
    ) == ["ok"] * 25
    fam = families(server.scrape())
    assert fam["shop_checkout_orders"].type == "counter"
    assert fam["shop_checkout_orders"].documentation == "Orders placed."
    assert fam["temp"].documentation == "Room temperature."
    v = server.value
    assert v("shop_checkout_orders", status="paid", channel="web") == 3
    assert v("shop_checkout_orders", status="new", channel="app") == 5
    assert v("visits") == 1.5
    assert v("temp", room="kitchen") == 22.5 and v("temp", room="hall") == -4
    assert v("queue") == 5
    assert [v("latency_bucket", route="/a", le=le) for le in ("0.1", "0.5", "1", "+Inf")] == [1, 2, 2, 3]
    assert v("latency_count", route="/a") == 3 and v("latency_sum", route="/a") == pytest.approx(3.55)
    assert v("sizes_bucket", le="0.5") == 1 and v("sizes_bucket", le="0.25") == 0  # the default buckets
    assert v("payload", quantile="0.5") == 5 and v("payload", quantile="0.9") == 9
    assert v("payload_count") == 10 and v("payload_sum") == 55
    assert v("durations", kind="db", quantile="1") == 9


def test_declare_from_php_each_type_then_unregister(server: MetricsServer) -> None:
    assert server.php(
        ["declare", "jobs_done", {"type": "counter", "help": "Jobs done.", "labels": ["queue"]}],
        ["declare", "mem", {"type": "gauge", "namespace": "app", "subsystem": "php"}],
        ["declare", "render", {"type": "histogram", "buckets": [0.01, 0.1], "labels": ["view"]}],
        ["declare", "rows", {"type": "summary"}],
        ["add", "jobs_done", 3, ["emails"]], ["set", "mem", 1024], ["observe", "render", 0.05, ["home"]],
        ["observe", "rows", 12],
    ) == ["ok"] * 8
    fam = families(server.scrape())
    assert fam["jobs_done"].documentation == "Jobs done."
    assert [fam[n].type for n in ("jobs_done", "app_php_mem", "render", "rows")] == \
        ["counter", "gauge", "histogram", "summary"]
    assert server.value("jobs_done", queue="emails") == 3
    assert server.value("app_php_mem") == 1024
    assert server.value("render_bucket", view="home", le="0.1") == 1
    assert server.value("rows_sum") == 12

    # Declare of an existing name answers true and keeps the first collector (RoadRunner's upsert)
    assert server.php(["declare", "mem", {"type": "counter", "help": "other"}], ["set", "mem", 2048]) == ["ok", "ok"]
    assert families(server.scrape())["app_php_mem"].type == "gauge" and server.value("app_php_mem") == 2048
    assert server.php(["declare", "orders", {"type": "gauge"}], ["add", "orders", 1, ["a", "b"]]) == ["ok", "ok"]
    assert families(server.scrape())["shop_checkout_orders"].type == "counter"  # the one from metrics.collect

    assert server.php(["unregister", "mem"], ["unregister", "visits"]) == ["ok", "ok"]
    fam = families(server.scrape())
    assert "app_php_mem" not in fam and "visits" not in fam
    again = server.php(["set", "mem", 1], ["unregister", "mem"])
    assert [r["error"] for r in again] == ["Fastrr\\Metrics\\Exception\\MetricsException"] * 2
    assert all("'undefined collector: mem'" in r["message"] for r in again), again
    # a name can be declared again after Unregister, fresh
    assert server.php(["declare", "mem", {"type": "counter"}], ["add", "mem", 1]) == ["ok", "ok"]
    assert server.value("mem") == 1


def test_scrape_from_any_path_keep_alive_gzip_and_head(server: MetricsServer) -> None:
    base = f"http://127.0.0.1:{server.metrics_port}"
    for path in ("/", "/anything/else?x=1", "/nested/path"):
        assert "rr_http_total_workers 2" in server.scrape(path)
    with httpx.Client(base_url=base, timeout=10) as client:  # one connection, several scrapes
        for _ in range(3):
            resp = client.get("/metrics", headers={"Accept-Encoding": "gzip"})
            assert resp.status_code == 200 and resp.headers["content-encoding"] == "gzip"
            assert "rr_http_total_workers 2" in resp.text
        head = client.head("/metrics")
        assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0
        post = client.post("/metrics", content=b"")
        assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"
        assert client.get("/metrics").status_code == 200  # the connection still serves
