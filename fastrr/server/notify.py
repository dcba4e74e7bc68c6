"""sd_notify: tell systemd (or any service manager speaking its protocol) what the server is doing.

On when $NOTIFY_SOCKET is set (Type=notify / notify-reload units); no config.
Each message is one datagram of `KEY=value` lines to that socket, a path or,
starting with '@', a name in the abstract namespace. What is sent:

| when                                          | message                                |
|-----------------------------------------------|----------------------------------------|
| every plugin has started                      | READY=1                                |
| the first stop signal (or a fatal error)      | STOPPING=1                             |
| a rolling reset (SIGHUP, resetter.Reset)       | RELOADING=1 + MONOTONIC_USEC, then READY=1 once it is over |
| every WATCHDOG_USEC/2, from the event loop     | WATCHDOG=1                             |

The watchdog pings from the event loop on purpose: a loop that hangs stops
the pings, and systemd restarts the service. WATCHDOG_PID, when set, must be
ours. NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID are taken out of the
environment, so PHP workers (which inherit it) cannot speak for the server.
Sending never raises: a failure is logged once, and the server goes on.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager

from fastrr.log import Logger


class Notifier:
    def __init__(self, address: str | None, watchdog_usec: int = 0, log: Logger | None = None):
        """`address`: $NOTIFY_SOCKET (None: every call is a no-op)."""
        self.log = log
        self.address: str | bytes | None = None
        self.watchdog_interval = watchdog_usec / 2e6 if watchdog_usec > 0 else 0.0
        self._sock: socket.socket | None = None
        self._failed = False
        self._reloads = 0  # resets under way (several pools, or SIGHUP and RPC at once)
        self._stopping = False
        self._watchdog: asyncio.TimerHandle | None = None
        if address:
            if address.startswith("@"):
                self.address = b"\0" + address[1:].encode()
            elif address.startswith("/"):
                self.address = address
            elif log is not None:
                log.warn("NOTIFY_SOCKET is neither an absolute path nor an abstract @name, sd_notify is off",
                         notify_socket=address)

    @classmethod
    def from_environment(cls, environ: MutableMapping[str, str], log: Logger | None = None) -> Notifier:
        address = environ.pop("NOTIFY_SOCKET", None)
        usec_text = environ.pop("WATCHDOG_USEC", "")
        pid_text = environ.pop("WATCHDOG_PID", "")
        usec = int(usec_text) if usec_text.isdigit() else 0
        if usec and pid_text and pid_text != str(os.getpid()):
            usec = 0  # the watchdog is another process's (systemd's rule)
        return cls(address, usec, log)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> bool:
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(lines).encode(), self.address)
        except OSError as exc:
            if not self._failed and self.log is not None:
                self.log.warn("sd_notify failed (logged once)", message=lines[0], error=str(exc))
            self._failed = True
            return False
        return True

    def ready(self) -> None:
        self.send("READY=1")

    def stopping(self) -> None:
        if not self._stopping:
            self._stopping = True
            self.send("STOPPING=1")

    @contextmanager
    def reloading(self) -> Iterator[None]:
        """Around a rolling reset: RELOADING=1 when the first starts, READY=1 when the last ends
        (also after a failed reset: the old workers keep serving), unless the server stops meanwhile."""
        self._reloads += 1
        if self._reloads == 1 and not self._stopping:
            self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
        try:
            yield
        finally:
            self._reloads -= 1
            if self._reloads == 0 and not self._stopping:
                self.send("READY=1")

    def start_watchdog(self) -> None:
        if self.address is None or not self.watchdog_interval or self._watchdog is not None:
            return
        self._ping(asyncio.get_running_loop())

    def _ping(self, loop: asyncio.AbstractEventLoop) -> None:
        self.send("WATCHDOG=1")
        self._watchdog = loop.call_later(self.watchdog_interval, self._ping, loop)

    def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
