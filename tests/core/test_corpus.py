"""The request corpus: tests/core/corpus/{valid,invalid}/NNN.http with the
expected outcome in NNN.json (gunicorn's layout). The .http files use
escapes (\\r \\n \\t \\0 \\xHH \\\\); their real newlines are layout only.

Every request is also parsed byte by byte: each strict prefix must give None
(valid) or the same error (invalid, once the error is reached)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .helpers import unescape

CORPUS = Path(__file__).parent / "corpus"
VALID = sorted((CORPUS / "valid").glob("*.http"))
INVALID = sorted((CORPUS / "invalid").glob("*.http"))


def load(path: Path) -> tuple[bytes, dict]:
    return unescape(path.read_bytes()), json.loads(path.with_suffix(".json").read_text())


def text(s: str) -> bytes:
    return unescape(s.encode("latin-1"), layout=False)


def test_corpus_present():
    assert len(VALID) >= 20 and len(INVALID) >= 50


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid(core, path):
    raw, exp = load(path)
    r = core.parse_request(raw, 1 << 16)
    assert r is not None, exp["about"]
    for key, value in exp.items():
        if key == "about":
            continue
        if key == "headers":
            assert r.headers == [(text(n), text(v)) for n, v in value]
        elif key == "body":
            assert raw[r.head_len :] == text(value)
        elif key == "nheaders":
            assert len(r.headers) == value
        else:
            assert getattr(r, key) == value, key
    for i in range(r.head_len):
        assert core.parse_request(raw[:i], 1 << 16) is None


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid(core, path):
    raw, exp = load(path)
    with pytest.raises(core.HttpError) as ei:
        core.parse_request(raw, 1 << 16)
    assert (ei.value.status, ei.value.reason) == (exp["status"], exp["reason"]), exp["about"]
    for i in range(len(raw)):
        try:
            assert core.parse_request(raw[:i], 1 << 16) is None
        except core.HttpError as e:
            assert (e.status, e.reason) == (exp["status"], exp["reason"])
