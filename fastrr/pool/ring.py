"""The shm relay (`server.relay: shm`): one shared-memory ring per worker.

The C side is `fastrr._core.Ring` (csrc/ring.c): two single-producer/
single-consumer byte rings in a memfd, carrying ordinary goridge frames. The
worker gets the memfd and an eventfd through exec (pass_fds) and their numbers
in FASTRR_RING; fastrr's PHP library opens the ring through FFI with
FASTRR_RING_LIB (php/src/Relay/RingRelay.php). The worker sleeps in a futex;
the server sleeps in the event loop on the eventfd, which the worker writes
only when the server armed it before going idle.

The worker also keeps its stdin/stdout pipes, and RR_RELAY stays `pipes`, so
a worker that cannot use the ring (no FFI, or a RoadRunner PHP library) just
speaks pipes. The server sends the PID handshake on both and uses the
transport the answer comes back on (ShmRelay below), for that worker alone.

ShmRelay has FdRelay's interface (write / close / closed), so Worker does not
know which transport it has.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from fastrr import _core
from fastrr.pool.relay import FdRelay

if TYPE_CHECKING:
    from fastrr.pool.worker import Worker

RING_CAPACITY = 1 << 20
LIBRARY = Path(_core.__file__).with_name("libfastrr_ring.so")
_MAX_ROUNDS = 16  # reads per wake-up before letting other callbacks run


def new_ring() -> _core.Ring:
    return _core.Ring(RING_CAPACITY)


def ring_env(env: dict[str, str], ring: _core.Ring) -> dict[str, str]:
    """The worker's environment for a ring; RoadRunner's libraries keep seeing pipes."""
    return {**env, "RR_RELAY": "pipes", "FASTRR_RING": ring.spec, "FASTRR_RING_LIB": str(LIBRARY)}


class ShmRelay:
    __slots__ = ("worker", "loop", "ring", "pipe", "mode", "pending", "closed", "on_data", "on_eof",
                 "_evfd", "_stdout_partial")

    def __init__(self, worker: Worker, ring: _core.Ring):
        proc = worker.proc
        assert proc.stdin is not None and proc.stdout is not None
        self.worker = worker
        self.loop = worker.loop
        self.ring = ring
        self.on_data = worker._on_data
        self.on_eof = worker._relay_broken
        self.mode = "handshake"  # then "shm" or "pipes", from where the answer comes
        self.pending: deque[memoryview] = deque()
        self.closed = False
        self._stdout_partial = b""
        self.pipe = FdRelay(self.loop, proc.stdout.fileno(), proc.stdin.fileno(), self._pipe_data,
                            self._pipe_eof, owns_fds=False)
        self._evfd = ring.eventfd
        self.loop.add_reader(self._evfd, self._wake)
        ring.arm(False)

    # -- to the worker -----------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        if self.mode == "handshake":
            self.pipe.write(data)  # only the PID handshake is ever written now
        if self.pending:
            self.pending.append(memoryview(data))
            return
        n = self.ring.write(data)
        if n < len(data):
            self.pending.append(memoryview(data)[n:])
            if not self.ring.arm(True):
                return
            self.loop.call_soon(self._wake)  # space already freed up

    def _flush(self) -> None:
        ring = self.ring
        while self.pending:
            chunk = self.pending[0]
            n = ring.write(chunk)
            if n < len(chunk):
                self.pending[0] = chunk[n:]
                return
            self.pending.popleft()

    # -- from the worker ---------------------------------------------------------

    def _wake(self) -> None:
        if self.closed:
            return
        ring = self.ring
        ring.ack()
        for _ in range(_MAX_ROUNDS):
            data = ring.read()
            if data:
                if self.mode == "handshake":
                    self._choose_shm()
                self.on_data(data)
                if self.closed:
                    return
            if self.pending:
                self._flush()
            if not ring.arm(bool(self.pending)):
                if ring.worker_closed:
                    self._broken("relay closed by the worker (shm ring)")
                return
        os.eventfd_write(self._evfd, 1)  # more to do: come back after the other callbacks

    def _choose_shm(self) -> None:
        self.mode = "shm"
        self.worker.pool.log.debug("worker uses the shm relay", pid=self.worker.pid)

    def _pipe_data(self, data: bytes) -> None:
        if self.mode == "shm":
            # Protocol is on the ring: whatever comes on stdout is stray output.
            text = self._stdout_partial + data
            lines = text.split(b"\n")
            self._stdout_partial = lines.pop()[-65536:]
            for line in lines:
                self.worker.pool.worker_log.info("stdout: " + line.decode("utf-8", "replace"), pid=self.worker.pid)
            return
        if self.mode == "handshake":
            # The worker answered on the pipe (no FFI, or a RoadRunner library):
            # pipes for this worker, the ring goes.
            self.mode = "pipes"
            self.loop.remove_reader(self._evfd)
            self.ring.close()
            self.pipe.on_data = self.worker._on_data
            self.pipe.on_eof = self.worker._relay_broken
            self.worker.relay = self.pipe
            self.worker.pool.log.debug("worker uses pipes (no shm)", pid=self.worker.pid)
        self.worker._on_data(data)

    def _pipe_eof(self, reason: str) -> None:
        if self.mode == "shm":
            return  # stdout closed; the ring (and the pidfd) carry on
        self._broken(reason)

    def _broken(self, reason: str) -> None:
        if self.closed:
            return
        self.close()
        self.on_eof(reason)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.pending.clear()
        if not self.ring.closed:
            self.loop.remove_reader(self._evfd)
            self.ring.close()
        self.pipe.close()
