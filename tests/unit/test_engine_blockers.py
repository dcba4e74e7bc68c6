"""Which configs the C engine serves: `http.middleware: [static]` alone is its
own (engine_pool.py), any other middleware keeps the Python front."""

from __future__ import annotations

import pytest

from fastrr.config.schema import build_config
from fastrr.http.engine import engine_blockers

BASE = {"version": "3", "server": {"command": "php w.php"}}


def http(**keys):
    return build_config({**BASE, "http": {"address": "127.0.0.1:1", **keys}}, "/tmp").http


@pytest.mark.parametrize(("middleware", "blocked"), [
    ([], False),
    (["static"], False),
    (["static", "gzip"], True),
    (["headers", "static"], True),
    (["gzip"], True),
    (["sendfile"], True),
])
def test_only_static_alone_runs_on_the_engine(middleware, blocked):
    cfg = http(middleware=middleware, static={"dir": "/tmp"})
    assert engine_blockers(cfg) == (["http.middleware"] if blocked else [])
    assert engine_blockers(cfg, "shm")[0] == "server.relay: shm"
