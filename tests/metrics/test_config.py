"""Bad `metrics:` config: fastrr refuses to start, naming the key and the problem."""

from __future__ import annotations

import socket

import pytest

from fastrr.cli import EXIT_CONFIG
from tests.metrics.conftest import MetricsFactory

BAD = [
    ({"collect": {"x": {"type": "bogus"}}}, "metrics.collect.x.type: invalid metric type `bogus` for `x`"),
    ({"collect": {"x": {"help": "no type"}}}, "metrics.collect.x.type: invalid metric type `` for `x`"),
    ({"collect": {"x": "counter"}}, "metrics.collect.x: expected a mapping with a type"),
    ({"collect": {"x": {"type": "counter", "labels": ["ok", "bad-label"]}}},
     "metrics.collect.x.labels[1]: 'bad-label' is not a valid label name"),
    ({"collect": {"x": {"type": "counter", "labels": ["a", "a"]}}},
     "metrics.collect.x.labels[1]: label 'a' is given twice"),
    ({"collect": {"x": {"type": "histogram", "labels": ["le"]}}},
     "metrics.collect.x.labels[0]: histogram collectors cannot have a label named 'le'"),
    ({"collect": {"x": {"type": "summary", "labels": ["quantile"]}}},
     "metrics.collect.x.labels[0]: summary collectors cannot have a label named 'quantile'"),
    ({"collect": {"x": {"type": "counter", "labels": "oops: 1"}}}, "metrics.collect.x.labels[0]: 'oops: 1'"),
    ({"collect": {"x": {"type": "histogram", "buckets": [0.1, 1, 0.5]}}},
     "metrics.collect.x.buckets[2]: buckets must be in increasing order"),
    ({"collect": {"x": {"type": "histogram", "buckets": [0.1, "fast"]}}},
     "metrics.collect.x.buckets[1]: expected a number"),
    ({"collect": {"x": {"type": "histogram", "buckets": 5}}}, "metrics.collect.x.buckets: expected a list of numbers"),
    ({"collect": {"x": {"type": "summary", "objectives": {2: 0.1}}}},
     "metrics.collect.x.objectives.2: a quantile is between 0 and 1"),
    ({"collect": {"x": {"type": "summary", "objectives": [{0.5: 3}]}}},
     "metrics.collect.x.objectives[0].0.5: the allowed error is between 0 and 1"),
    ({"collect": {"x": {"type": "summary", "objectives": "p99"}}},
     "metrics.collect.x.objectives: expected a map of quantile to allowed error"),
    ({"collect": {"9lives": {"type": "gauge"}}}, "metrics.collect.9lives.name: '9lives' is not a valid metric name"),
    ({"collect": {"x": {"type": "gauge", "namespace": "my-app"}}},
     "metrics.collect.x.namespace: 'my-app_x' is not a valid metric name"),
    ({"collect": {"total_workers": {"type": "gauge", "namespace": "rr", "subsystem": "http"}}},
     "metrics.collect.total_workers: exported as 'rr_http_total_workers', the name of one of fastrr's own metrics"),
    ({"collect": {"x": {"type": "gauge", "namespace": "app"}, "app_x": {"type": "counter"}}},
     "exported as 'app_x', as metrics.collect."),  # yaml.safe_dump sorts the keys
    ({"address": "nowhere"}, "metrics.address: expected host:port, got 'nowhere'"),
    ({"address": "127.0.0.1:99999"}, "metrics.address: expected host:port"),
]


@pytest.mark.parametrize(("section", "message"), BAD, ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(BAD)])
def test_bad_config_is_refused_naming_the_key(metrics: MetricsFactory, section: dict, message: str) -> None:
    code, output = metrics.fail(section)
    assert code == EXIT_CONFIG, output
    assert message in output, output


def test_address_in_use_is_a_start_error(metrics: MetricsFactory) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, output = metrics.fail({"address": f"127.0.0.1:{port}"})
    assert code != 0
    assert f"metrics.address: cannot listen on 127.0.0.1:{port}" in output, output


def test_unknown_keys_are_warned_about_and_the_rest_works(metrics: MetricsFactory) -> None:
    server = metrics.start({"colect": {}, "collect": {"x": {"type": "gauge", "bucket": [1]}}}, http=False)
    out = server.server.output()
    assert "metrics.colect: unknown key, ignored" in out
    assert "metrics.collect.x.bucket: unknown key, ignored" in out
    assert server.value("x") == 0
