"""The C engine's urlencoded-form encoder (csrc/engine_forms.c, reachable as
_core._form_json) must answer exactly as fastrr/http/forms.py, which the Python
front uses: the same JSON bytes, or the same 400 reason."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastrr import _core
from fastrr.http.forms import FormError, urlencoded_to_json

SETTINGS = settings(max_examples=int(os.environ.get("FASTRR_HYPOTHESIS_EXAMPLES", "400")), deadline=None)


def python(body: bytes) -> bytes | tuple[str, str]:
    try:
        return urlencoded_to_json(body)
    except FormError as exc:
        return ("error", str(exc))


def engine(body: bytes) -> bytes | tuple[str, str]:
    try:
        return _core._form_json(body)
    except ValueError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize("body", [
    b"", b"a=1", b"a=1&a=2", b"a[]=1&a[]=2", b"a[b][c]=1", b"a=1&a[b]=2", b"a[b]=2&a=1", b"&&a", b"a", b"=x",
    b"a+b=c+d", b"%41%zz%4", b"%e2%82%ac", b"%e2%82", b"%e2%82A", b"\xe2\x82A", b"\xff=\xfe", b"a[b[c]d]=1",
    b"[]=x", b"a[][]=1", b"k=\x01\x1f\"\\\x7f", b"a[]=1&a=2", b"a=2&a[]=1", b"a[b][]=1&a[b]=2", b"q='\"",
    b"%ed%a0%80=1", b"a%5Bb%5D=1", b"a" + b"[x]" * 127 + b"=1", b"a" + b"[x]" * 126 + b"=1",
    b"&".join([b"a"] * 10000), b"&".join([b"a"] * 10001), b"\xc2\xa0[x]=1&\xc2\xa0=2", b"'[x]=1&'=2",
    b"\xe2\x80\xa8[x]=1&\xe2\x80\xa8=1", b"a\tb[x]=1&a\tb=2",
])
def test_known_forms(body):
    assert engine(body) == python(body)


ALPHABET = b"ab[]=&%+2f41\xc3\xa9\xff\xe2\x82'\"\\x\x00"


@SETTINGS
@given(st.lists(st.sampled_from(list(ALPHABET)), max_size=40).map(bytes))
def test_generated_forms(body):
    assert engine(body) == python(body)


@SETTINGS
@given(st.lists(st.tuples(st.lists(st.sampled_from(["a", "b", "", "[]", "[a]", "[b]", "[", "]"]), max_size=5),
                          st.text(max_size=5)), max_size=8))
def test_generated_bracket_keys(fields):
    body = "&".join("".join(key) + "=" + value for key, value in fields).encode()
    assert engine(body) == python(body)
