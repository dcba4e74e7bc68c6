"""fastrr._core.Ring (server end) against libfastrr_ring.so (worker end, via ctypes).

Both ends run in this process: the worker side in a thread (ctypes drops the
GIL while a call blocks), with dup'ed fds because closing the worker end closes
the fds it was given.
"""

from __future__ import annotations

import ctypes
import os
import select
import threading
import zlib
from pathlib import Path

import pytest

from fastrr import _core

LIB_PATH = Path(_core.__file__).with_name("libfastrr_ring.so")


class RingLib:
    def __init__(self) -> None:
        lib = ctypes.CDLL(str(LIB_PATH))
        lib.fastrr_ring_open.restype = ctypes.c_void_p
        lib.fastrr_ring_open.argtypes = [ctypes.c_char_p]
        lib.fastrr_ring_open_error.restype = ctypes.c_char_p
        lib.fastrr_ring_recv_frame.restype = ctypes.c_longlong
        lib.fastrr_ring_recv_frame.argtypes = [ctypes.c_void_p]
        lib.fastrr_ring_frame.restype = ctypes.c_void_p
        lib.fastrr_ring_frame.argtypes = [ctypes.c_void_p]
        lib.fastrr_ring_send.restype = ctypes.c_int
        lib.fastrr_ring_send.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.fastrr_ring_readable.restype = ctypes.c_size_t
        lib.fastrr_ring_readable.argtypes = [ctypes.c_void_p]
        lib.fastrr_ring_error.restype = ctypes.c_char_p
        lib.fastrr_ring_error.argtypes = [ctypes.c_void_p]
        lib.fastrr_ring_close.argtypes = [ctypes.c_void_p]
        self.lib = lib


@pytest.fixture(scope="module")
def lib() -> RingLib:
    return RingLib()


class WorkerEnd:
    """The worker side of a ring, as the PHP library drives it."""

    def __init__(self, lib: RingLib, ring: _core.Ring):
        self.lib = lib.lib
        spec = f"fd:{os.dup(ring.memfd)},{os.dup(ring.eventfd)}".encode()
        self.h = self.lib.fastrr_ring_open(spec)
        assert self.h, self.lib.fastrr_ring_open_error()

    def recv(self) -> bytes | None:
        n = self.lib.fastrr_ring_recv_frame(self.h)
        if n < 0:
            return None
        return ctypes.string_at(self.lib.fastrr_ring_frame(self.h), n)

    def send(self, data: bytes) -> int:
        return self.lib.fastrr_ring_send(self.h, data, len(data))

    def error(self) -> str:
        return self.lib.fastrr_ring_error(self.h).decode()

    def close(self) -> None:
        if self.h:
            self.lib.fastrr_ring_close(self.h)
            self.h = None


def server_recv(ring: _core.Ring, size: int, timeout: float = 10.0) -> bytes:
    """What the event loop does: arm, wait for the eventfd, ack, read."""
    out = bytearray()
    while len(out) < size:
        if not ring.arm(False):
            r, _, _ = select.select([ring.eventfd], [], [], timeout)
            assert r, f"no wake-up after {len(out)} of {size} bytes"
            ring.ack()
        out += ring.read()
    return bytes(out)


def server_send(ring: _core.Ring, data: bytes, timeout: float = 10.0) -> None:
    view = memoryview(data)
    while view:
        n = ring.write(view)
        view = view[n:]
        if view and not ring.arm(True):
            r, _, _ = select.select([ring.eventfd], [], [], timeout)
            assert r, "no space wake-up"
            ring.ack()


def test_create_and_spec():
    ring = _core.Ring(1 << 16)
    assert ring.capacity == 1 << 16 and ring.space == 1 << 16 and ring.readable == 0
    assert ring.spec == f"fd:{ring.memfd},{ring.eventfd}"
    assert not ring.worker_closed and ring.worker_pid == 0
    ring.close()
    ring.close()
    assert ring.closed
    with pytest.raises(ValueError):
        ring.write(b"x")
    assert _core.Ring().capacity == _core.RING_DEFAULT_CAPACITY


@pytest.mark.parametrize("cap", [0, 1000, 4095, 3 << 12, 1 << 31])
def test_bad_capacity(cap):
    with pytest.raises(ValueError):
        _core.Ring(cap)


def test_write_takes_what_fits_and_read_nothing():
    ring = _core.Ring(4096)
    assert ring.write(b"x" * 5000) == 4096
    assert ring.space == 0 and ring.write(b"y") == 0
    assert ring.read() == b""
    assert ring.arm(False) is False
    assert ring.arm(True) is False  # no space either


def test_frames_round_trip(lib):
    ring = _core.Ring(4096)
    w = WorkerEnd(lib, ring)
    assert ring.worker_pid == os.getpid()
    frames = [_core.encode_frame(0, b"ctx" + bytes([i]) * i, (3,)) for i in range(50)]

    def echo():
        for _ in frames:
            f = w.recv()
            assert f is not None
            assert w.send(f) == 0

    t = threading.Thread(target=echo)
    t.start()
    for f in frames:
        server_send(ring, f)
        assert server_recv(ring, len(f)) == f
    t.join(10)
    w.close()
    assert ring.worker_closed
    ring.close()


@pytest.mark.parametrize("size", [4096 - 16, 4096, 300_000, 3_000_001])
def test_frames_larger_than_the_ring_stream_through(lib, size):
    ring = _core.Ring(4096)
    w = WorkerEnd(lib, ring)
    payload = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    frame = _core.encode_frame(_core.FLAG_RAW, payload)
    got: list[bytes | None] = []

    def echo():
        f = w.recv()
        got.append(f)
        if f is not None:
            w.send(f)

    t = threading.Thread(target=echo)
    t.start()
    server_send(ring, frame)
    back = server_recv(ring, len(frame))
    t.join(10)
    assert got[0] == frame and back == frame
    w.close()
    ring.close()


def test_many_frames_in_one_read(lib):
    ring = _core.Ring(1 << 16)
    w = WorkerEnd(lib, ring)
    frames = [_core.encode_frame(0, b"%d" % i) for i in range(100)]
    for f in frames:
        assert w.send(f) == 0
    reader = _core.FrameReader(1 << 20)
    got = reader.feed(ring.read())
    assert [g[3] for g in got] == [b"%d" % i for i in range(100)]
    w.close()
    ring.close()


def test_arm_and_kick(lib):
    ring = _core.Ring(4096)
    w = WorkerEnd(lib, ring)
    assert ring.arm(False) is False
    w.send(_core.encode_frame(0, b"a"))
    # armed: the worker kicked the eventfd exactly once
    assert select.select([ring.eventfd], [], [], 1)[0]
    ring.ack()
    assert not select.select([ring.eventfd], [], [], 0)[0]
    # not armed (no arm() since the kick): data, but no kick
    w.send(_core.encode_frame(0, b"b"))
    assert not select.select([ring.eventfd], [], [], 0.05)[0]
    assert ring.arm(False) is True  # data waiting: do not sleep
    assert len(ring.read()) == 26
    w.close()
    ring.close()


def test_worker_sees_server_close(lib):
    ring = _core.Ring(4096)
    w = WorkerEnd(lib, ring)
    result: list[bytes | None] = []
    t = threading.Thread(target=lambda: result.append(w.recv()))
    t.start()
    t.join(0.1)
    assert t.is_alive()  # blocked in the futex
    ring.close()
    t.join(5)
    assert result == [None]
    assert "closed by the server" in w.error()
    assert w.send(b"x") == -1
    w.close()


def test_worker_close_wakes_an_armed_server(lib):
    ring = _core.Ring(4096)
    w = WorkerEnd(lib, ring)
    assert ring.arm(False) is False
    w.close()
    assert select.select([ring.eventfd], [], [], 1)[0]
    assert ring.worker_closed and ring.arm(False) is True
    ring.close()


def test_bad_header_is_an_error(lib):
    ring = _core.Ring(4096)
    w = WorkerEnd(lib, ring)
    bad = bytearray(_core.encode_frame(0, b"x"))
    bad[6] ^= 1  # CRC
    ring.write(bytes(bad))
    assert w.recv() is None
    assert "invalid frame header" in w.error()
    w.close()
    ring.close()


def test_readable(lib):
    ring = _core.Ring(4096)
    w = WorkerEnd(lib, ring)
    assert lib.lib.fastrr_ring_readable(w.h) == 0
    ring.write(b"abc")
    assert lib.lib.fastrr_ring_readable(w.h) == 3
    w.close()
    ring.close()


@pytest.mark.parametrize("spec, needle", [
    (b"nonsense", b"must look like"),
    (b"fd:1", b"must look like"),
    (b"fd:999,998", b"not open"),
])
def test_open_errors(lib, spec, needle):
    assert not lib.lib.fastrr_ring_open(spec)
    assert needle in lib.lib.fastrr_ring_open_error()


def test_open_rejects_a_file_that_is_not_a_ring(lib, tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"\0" * 8192)
    fd = os.open(path, os.O_RDWR)
    try:
        assert not lib.lib.fastrr_ring_open(f"fd:{fd},{fd}".encode())
        assert b"not a fastrr ring" in lib.lib.fastrr_ring_open_error()
    finally:
        os.close(fd)


def test_crc_is_what_php_computes():
    frame = _core.encode_frame(0x09, b'{"pid":1}')
    assert int.from_bytes(frame[6:10], "little") == zlib.crc32(frame[:6])


def test_full_duplex_stress_with_a_tiny_ring(lib):
    """Both directions full at once, sizes around the capacity, wrap-around everywhere:
    the server keeps writing frames while it reads the echoes (as the event loop does)."""
    import random

    rnd = random.Random(7)
    ring = _core.Ring(4096)
    w = WorkerEnd(lib, ring)
    frames = [_core.encode_frame(0, bytes([i % 251]) * rnd.choice([0, 1, 7, 4080, 4096, 5000, 20000]))
              for i in range(300)]
    echoed = threading.Thread(target=lambda: [w.send(w.recv() or b"") for _ in frames])
    echoed.start()
    out = memoryview(b"".join(frames))
    want = len(out)
    got = bytearray()
    while len(got) < want:
        if out:
            out = out[ring.write(out):]
        got += ring.read()
        if len(got) < want and not ring.arm(bool(out)):
            assert select.select([ring.eventfd], [], [], 10)[0], f"stuck at {len(got)} of {want}"
            ring.ack()
    echoed.join(10)
    assert bytes(got) == b"".join(frames)
    w.close()
    ring.close()
