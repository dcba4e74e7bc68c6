"""File bodies (static files, X-Sendfile) from the event loop without reading them into memory.

uvloop does not implement `loop.sendfile` (it raises NotImplementedError), so
this does what asyncio's native path would: `os.sendfile` on the connection's
socket, non-blocking, woken by the loop when the socket can take more.

Rules of this file:
- The transport's own buffer must be empty before the first sendfile call and
  nothing else writes to the transport until `done` is called: bytes reach the
  socket in order because only one writer is active at a time.
- The writability watch is on a dup() of the socket fd: uvloop refuses
  add_writer on an fd a transport owns, epoll accepts a duplicate. The dup is
  closed on every way out (done, error, cancel).
- TLS transports (and anything without a socket) take the fallback: pread a
  chunk, transport.write it, wait for resume_writing when the transport says
  its buffer is full. Memory stays bounded by the transport's high-water mark
  plus one chunk.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from fastrr.http.response import FileBody

SENDFILE_CHUNK = 4 << 20
FALLBACK_CHUNK = 256 << 10


class FileSender:
    __slots__ = ("loop", "transport", "body", "done", "wfd", "native", "paused", "finished", "watching")

    def __init__(self, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport, body: FileBody,
                 done: Callable[[bool], None]):
        self.loop = loop
        self.transport = transport
        self.body = body
        self.done = done  # done(ok): called exactly once, the file is closed by then
        self.wfd = -1
        self.paused = False
        self.finished = False
        self.watching = False
        sock = transport.get_extra_info("socket")
        self.native = transport.get_extra_info("sslcontext") is None and sock is not None
        if self.native:
            try:
                self.wfd = os.dup(sock.fileno())
            except OSError:
                self.native = False

    def start(self) -> None:
        if self.body.count <= 0:
            self._finish(True)
        elif self.native:
            self._step_native()
        else:
            self._step_fallback()

    # -- native: os.sendfile -------------------------------------------------------------

    def _watch(self) -> None:
        if not self.watching:
            self.watching = True
            self.loop.add_writer(self.wfd, self._step_native)

    def _step_native(self) -> None:
        if self.finished:
            return
        if self.transport.is_closing():
            self._finish(False)
            return
        if self.transport.get_write_buffer_size():
            self._watch()  # the head (or earlier output) is still queued in the transport
            return
        body = self.body
        while body.count > 0:
            try:
                sent = os.sendfile(self.wfd, body.file, body.offset, min(body.count, SENDFILE_CHUNK))
            except (BlockingIOError, InterruptedError):
                self._watch()
                return
            except OSError:
                self._finish(False)
                return
            if sent == 0:  # the file shrank under us: the promised length cannot be met
                self._finish(False)
                return
            body.offset += sent
            body.count -= sent
        self._finish(True)

    # -- fallback: pread + transport.write --------------------------------------------------

    def resume(self) -> None:
        """The protocol's resume_writing: carry on."""
        if self.paused and not self.finished:
            self.paused = False
            if not self.native:
                self._step_fallback()

    def pause(self) -> None:
        self.paused = True

    def _step_fallback(self) -> None:
        body = self.body
        while body.count > 0 and not self.paused and not self.finished:
            if self.transport.is_closing():
                self._finish(False)
                return
            try:
                data = os.pread(body.file, min(body.count, FALLBACK_CHUNK), body.offset)
            except OSError:
                self._finish(False)
                return
            if not data:
                self._finish(False)
                return
            body.offset += len(data)
            body.count -= len(data)
            self.transport.write(data)  # may call pause() synchronously
        if body.count <= 0 and not self.finished:
            self._finish(True)

    # -- end ---------------------------------------------------------------------------------

    def cancel(self) -> None:
        """The connection is gone."""
        self._finish(False)

    def _finish(self, ok: bool) -> None:
        if self.finished:
            return
        self.finished = True
        if self.wfd >= 0:
            if self.watching:
                self.loop.remove_writer(self.wfd)
            os.close(self.wfd)
            self.wfd = -1
        self.body.close()
        self.done(ok)
