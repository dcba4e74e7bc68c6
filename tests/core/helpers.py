"""Helpers shared by the tests in tests/core."""

from __future__ import annotations

import re

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
