"""Fixtures for the fastrr._core tests.

Most tests run twice: against the C extension and against its pure-Python
twin (fastrr._core_reference), through the ``core`` fixture - the same suite
keeps both honest. Differential tests (test_differential.py) then compare the
two on generated input.
"""

from __future__ import annotations

import re
from types import ModuleType

import pytest

import fastrr._core as c_core
import fastrr._core_reference as ref_core


@pytest.fixture(params=[c_core, ref_core], ids=["c", "ref"])
def core(request: pytest.FixtureRequest) -> ModuleType:
    return request.param


_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{2}|[rnt0\\])")


def unescape(text: bytes, layout: bool = True) -> bytes:
    r"""Corpus file text -> bytes: \r \n \t \0 \\ and \xHH are the bytes;
    with layout=True (.http files) real newlines are layout only and dropped."""
    if layout:
        text = text.replace(b"\n", b"")

    def sub(m: re.Match[bytes]) -> bytes:
        e = m.group(1)
        if e[:1] == b"x":
            return bytes([int(e[1:], 16)])
        return {b"r": b"\r", b"n": b"\n", b"t": b"\t", b"0": b"\0", b"\\": b"\\"}[e]

    return _ESCAPE.sub(sub, text)
