"""Fixtures for the fastrr._core tests.

Most tests run twice: against the C extension and against its pure-Python
twin (fastrr._core_reference), through the ``core`` fixture - the same suite
keeps both honest. Differential tests (test_differential.py) then compare the
two on generated input.
"""

from __future__ import annotations

from types import ModuleType

import pytest

import fastrr._core as c_core
import fastrr._core_reference as ref_core


@pytest.fixture(params=[c_core, ref_core], ids=["c", "ref"])
def core(request: pytest.FixtureRequest) -> ModuleType:
    return request.param
