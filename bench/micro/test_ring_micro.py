"""The relay round trip with a PHP echo worker: shm ring vs pipes (bench/micro/ring_vs_pipes.py)."""

from __future__ import annotations

import shutil

import pytest

from bench.micro.ring_vs_pipes import PipeEcho, RingEcho

pytestmark = pytest.mark.skipif(shutil.which("php") is None, reason="needs php")


@pytest.mark.parametrize("relay", ["pipes", "shm"])
def test_relay_roundtrip(benchmark, relay):
    benchmark.group = "relay round trip (PHP echo worker)"
    echo = PipeEcho() if relay == "pipes" else RingEcho()
    try:
        for _ in range(1000):
            echo.once()
        benchmark(echo.once)
    finally:
        echo.close()
