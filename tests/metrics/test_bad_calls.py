"""Every bad metrics call gets RoadRunner's error naming the collector, and
changes nothing: after each one, every application series keeps its value."""

from __future__ import annotations

import math
from typing import Any

import pytest

from fastrr.rpc.client import RpcClient, RpcError
from fastrr.rpc.codec import FLAG_MSGPACK
from tests.metrics.conftest import MetricsFactory, MetricsServer
from tests.metrics.test_collectors import COLLECT, app_samples

PHP_BAD: list[tuple[list[Any], str]] = [
    (["add", "nope", 1], "undefined collector: nope"),
    (["observe", "nope", 1, ["a"]], "undefined collector: nope"),
    (["add", "orders", 1], "required labels for collector: orders (it has 2 labels ['status', 'channel'], got none)"),
    (["add", "orders", 1, ["paid"]], "required labels for collector: orders (it has 2 labels ['status', 'channel'], "
                                     "got 1 value ['paid'])"),
    (["add", "orders", 1, ["a", "b", "c"]], "required labels for collector: orders"),
    (["set", "temp", 1, ["a", "b"]], "required labels for collector: temp"),
    (["observe", "latency", 1], "required labels for collector: latency"),
    (["add", "visits", -1], "counter cannot decrease in value: visits"),
    (["add", "orders", -0.5, ["paid", "web"]], "counter cannot decrease in value: orders"),
    (["sub", "visits", 1], "collector does not support the requested operation: visits does not support Sub"),
    (["set", "visits", 1], "collector does not support the requested operation: visits does not support Set"),
    (["observe", "queue", 1], "queue does not support Observe"),
    (["add", "latency", 1, ["/a"]], "latency does not support Add"),
    (["sub", "payload", 1], "payload does not support Sub"),
    (["set", "sizes", 1], "sizes does not support Set"),
    (["declare", "bad", {"type": "counter", "labels": ["bad-name"]}],
     "metrics.Declare: bad: collector.labels[0]: 'bad-name' is not a valid label name"),
    (["declare", "bad", {"type": "histogram", "buckets": [1, 0.5]}],
     "metrics.Declare: bad: collector.buckets[1]: buckets must be in increasing order"),
    (["declare", "bad", {"type": "histogram", "labels": ["le"]}], "cannot have a label named 'le'"),
    (["declare", "total_workers", {"type": "gauge", "namespace": "rr", "subsystem": "http"}],
     "'rr_http_total_workers' is the name of one of fastrr's own metrics"),
    (["declare", "checkout_orders", {"type": "gauge", "namespace": "shop"}],
     "collector 'orders' is already exported as 'shop_checkout_orders'"),
    (["declare", "bad", {"type": "gauge", "namespace": "my app"}], "'my app_bad' is not a valid metric name"),
    (["unregister", "nope"], "undefined collector: nope"),
]

RPC_BAD: list[tuple[str, Any, str]] = [
    ("metrics.Declare", {"name": "x", "collector": {"type": "bogus"}}, "unknown collector type: bogus"),
    ("metrics.Declare", {"name": "x", "collector": {}}, "unknown collector type:  (collector x; expected one of"),
    ("metrics.Declare", {"name": "x", "collector": "counter"}, "metrics.Declare: x: collector: expected a mapping"),
    ("metrics.Declare", {"collector": {"type": "gauge"}}, "metrics.Declare: \"name\" must be a non-empty string"),
    ("metrics.Declare", ["x"], "metrics.Declare: expected {\"name\": ..., \"collector\": {...}}"),
    ("metrics.Declare", {"name": "x", "collector": {"type": "gauge", "labels": "a,b"}},
     "metrics.Declare: x: collector.labels: expected a list of strings"),
    ("metrics.Declare", {"name": "x", "collector": {"type": "histogram", "buckets": ["1"]}},
     "metrics.Declare: x: collector.buckets: expected a list of numbers"),
    ("metrics.Declare", {"name": "x", "collector": {"type": "summary", "objectives": {"0.5": 7}}},
     "objectives.0.5: the allowed error is between 0 and 1"),
    ("metrics.Declare", {"name": "x", "collector": {"type": "gauge", "help": 5}},
     "metrics.Declare: x: collector.help: expected a string"),
    ("metrics.Add", "visits", "metrics.Add: expected {\"name\": ..., \"value\": ..., \"labels\": [...]}"),
    ("metrics.Add", {"value": 1}, "metrics.Add: \"name\" must be a string"),
    ("metrics.Add", {"name": "visits", "value": "1"}, "metrics.Add: visits: \"value\" must be a number"),
    ("metrics.Set", {"name": "queue", "value": True}, "metrics.Set: queue: \"value\" must be a number"),
    ("metrics.Add", {"name": "visits", "value": math.nan}, "metrics.Add: visits: \"value\" is NaN"),
    ("metrics.Add", {"name": "orders", "value": 1, "labels": [200, "web"]},
     "metrics.Add: orders: \"labels\" must be a list of label values (strings)"),
    ("metrics.Add", {"name": "orders", "value": 1, "labels": {"status": "paid"}}, "\"labels\" must be a list"),
    ("metrics.Unregister", 5, "metrics.Unregister: expected the collector name (a JSON string)"),
    ("metrics.Unregister", "nope", "undefined collector: nope"),
]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.conftest import ServerFactory

    factory = ServerFactory(tmp_path_factory.mktemp("metrics-bad"))
    server = MetricsFactory(factory).start({"collect": COLLECT})
    assert server.php(
        ["add", "orders", 2, ["paid", "web"]], ["add", "visits", 3], ["set", "temp", 20, ["hall"]], ["set", "queue", 4],
        ["observe", "latency", 0.2, ["/a"]], ["observe", "sizes", 1], ["observe", "payload", 5],
        ["observe", "durations", 1, ["x"]],
    ) == ["ok"] * 8
    yield server, app_samples(server)
    factory.close()


@pytest.mark.parametrize(("call", "message"), PHP_BAD, ids=[f"{c[0]}-{c[1]}-{i}" for i, (c, _) in enumerate(PHP_BAD)])
def test_bad_php_call(shared: tuple[MetricsServer, dict], call: list[Any], message: str) -> None:
    server, before = shared
    [result] = server.php(call)
    assert result != "ok", f"{call} was accepted"
    assert result["error"] == "Fastrr\\Metrics\\Exception\\MetricsException"
    assert message in result["message"], result["message"]
    assert app_samples(server) == before


@pytest.mark.parametrize(("method", "payload", "message"), RPC_BAD,
                         ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(RPC_BAD)])
def test_bad_rpc_payload(shared: tuple[MetricsServer, dict], method: str, payload: Any, message: str) -> None:
    server, before = shared
    with pytest.raises(RpcError) as err:
        server.rpc(method, payload)
    assert message in str(err.value)
    assert app_samples(server) == before


def test_after_all_bad_calls_good_ones_still_work(shared: tuple[MetricsServer, dict]) -> None:
    server, before = shared
    assert server.php(["add", "visits", 1]) == ["ok"]
    assert server.value("visits") == before[("visits_total", frozenset())] + 1
    # the msgpack codec takes the same payloads (RoadRunner's Metric has msgpack aliases)
    with RpcClient(server.rpc_address) as client:
        assert client.call("metrics.Add", {"name": "visits", "value": 2, "labels": []}, flags=FLAG_MSGPACK) is True
    assert server.value("visits") == before[("visits_total", frozenset())] + 3
    assert server.rpc("metrics.Sub", {"name": "queue", "value": 1}) is True  # no labels key: none
    assert server.value("queue") == 3
