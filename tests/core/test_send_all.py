"""_core.send_all: one buffer to many sockets; only the sockets that did not take all of it
are reported, with what they took and why (the broadcast fan-out hands the rest back to
their transports)."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

import pytest

from fastrr import _core


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made = [socket.socketpair() for _ in range(8)]
    for ours, _ in made:
        ours.setblocking(False)
    yield made
    for ours, theirs in made:
        ours.close()
        theirs.close()


def test_every_socket_gets_the_bytes_and_nothing_is_reported(pairs: list) -> None:
    assert _core.send_all([ours.fileno() for ours, _ in pairs], b"frame") == []
    assert [theirs.recv(16) for _, theirs in pairs] == [b"frame"] * len(pairs)


def test_a_closed_peer_is_reported_with_its_errno_and_the_others_still_get_it(pairs: list) -> None:
    pairs[3][1].close()
    short = _core.send_all([ours.fileno() for ours, _ in pairs], memoryview(b"frame"))
    assert short == [(3, 0, errno.EPIPE)]
    assert [theirs.recv(16) for i, (_, theirs) in enumerate(pairs) if i != 3] == [b"frame"] * 7


def test_a_full_socket_reports_how_much_it_took() -> None:
    ours, theirs = socket.socketpair()
    try:
        ours.setblocking(False)
        data = b"x" * (8 << 20)  # more than any socket buffer
        [(index, sent, err)] = _core.send_all([ours.fileno()], data)
        assert index == 0 and 0 < sent < len(data) and err == errno.EAGAIN
    finally:
        ours.close()
        theirs.close()


def test_bad_arguments_are_errors() -> None:
    with pytest.raises(ValueError, match="bad fd -1"):
        _core.send_all([-1], b"x")
    with pytest.raises(TypeError):
        _core.send_all([1], "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sequence of ints"):
        _core.send_all(5, b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="exactly 2"):
        _core.send_all([1])  # type: ignore[call-arg]
    assert _core.send_all([], b"x") == []


def test_a_descriptor_that_is_not_a_socket_is_reported() -> None:
    with open("/dev/null", "rb") as f:
        assert _core.send_all([f.fileno()], b"x") == [(0, 0, errno.ENOTSOCK)]
