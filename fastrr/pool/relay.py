"""Byte transport between the server and one worker: non-blocking fds on the loop.

The same class serves the pipes relay (read the worker's stdout, write its
stdin) and the socket relays (one connected socket for both directions): it
reads with os.read into the worker's callback and writes directly, queueing
only what the kernel did not take (write first, then queue).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import stat
import struct
import termios
from collections.abc import Callable

_F_SETPIPE_SZ = 1031
_PIPE_SIZE = 1 << 20  # fewer wake-ups for large bodies; falls back silently
# Below glibc's mmap threshold (128 KiB): a bigger os.read buffer is mmap'ed,
# then mremap'ed down to the bytes actually read and munmap'ed when freed —
# profiled at ~30% of the front's CPU on small responses.
_READ_SIZE = 1 << 16


def enlarge_pipe(fd: int) -> None:
    try:
        fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_SIZE)
    except OSError:
        pass


class FdRelay:
    __slots__ = ("loop", "rfd", "wfd", "on_data", "on_eof", "pending", "closed", "owns_fds", "pipe",
                 "unread_at_close")

    def __init__(self, loop: asyncio.AbstractEventLoop, rfd: int, wfd: int,
                 on_data: Callable[[bytes], None], on_eof: Callable[[str], None], owns_fds: bool = True):
        self.loop = loop
        self.rfd = rfd
        self.wfd = wfd
        self.on_data = on_data
        self.on_eof = on_eof
        self.pending: list[memoryview] = []
        self.closed = False
        self.owns_fds = owns_fds
        self.pipe = wfd != rfd and stat.S_ISFIFO(os.fstat(wfd).st_mode)
        # (pipe bytes the worker had not read, bytes not yet written) when the relay closed
        self.unread_at_close: tuple[int, int] | None = None
        os.set_blocking(rfd, False)
        os.set_blocking(wfd, False)
        loop.add_reader(rfd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.rfd, _READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._broken(f"read failed: {exc.strerror}")
            return
        if not data:
            self._broken("relay closed by the worker (EOF)")
            return
        self.on_data(data)

    def drain(self) -> None:
        """Read what the peer wrote before it went, up to EOF (its process is
        gone; say, a complete answer followed by exit())."""
        while not self.closed:
            try:
                data = os.read(self.rfd, _READ_SIZE)
            except OSError:
                return
            if not data:
                return
            self.on_data(data)

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        if self.pending:
            self.pending.append(memoryview(data))
            return
        try:
            sent = os.write(self.wfd, data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self.pending.append(memoryview(data))  # not written: unread() counts it so
            self._broken(f"write failed: {exc.strerror}")
            return
        if sent < len(data):
            self.pending.append(memoryview(data)[sent:])
            self.loop.add_writer(self.wfd, self._writable)

    def _writable(self) -> None:
        while self.pending:
            chunk = self.pending[0]
            try:
                sent = os.write(self.wfd, chunk)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._broken(f"write failed: {exc.strerror}")
                return
            if sent < len(chunk):
                self.pending[0] = chunk[sent:]
                return
            self.pending.pop(0)
        self.loop.remove_writer(self.wfd)

    def _broken(self, reason: str) -> None:
        if self.closed:
            return
        self.close()
        self.on_eof(reason)

    def unread(self) -> tuple[int, int] | None:
        """(bytes in the pipe the worker has not read, bytes still waiting to be written), or
        None when that cannot be known (not a pipe). FIONREAD counts a pipe's bytes from either
        end, also after the reading process is gone; after close(), the values at the close."""
        if self.closed:
            return self.unread_at_close
        if not self.pipe:
            return None
        try:
            queued = struct.unpack("i", fcntl.ioctl(self.wfd, termios.FIONREAD, b"\0\0\0\0"))[0]
        except OSError:
            return None
        return queued, sum(len(chunk) for chunk in self.pending)

    def close(self) -> None:
        if self.closed:
            return
        self.unread_at_close = self.unread()
        self.closed = True
        self.loop.remove_reader(self.rfd)
        if self.pending:
            self.loop.remove_writer(self.wfd)
            self.pending.clear()
        if self.owns_fds:
            for fd in {self.rfd, self.wfd}:
                try:
                    os.close(fd)
                except OSError:
                    pass
