"""sd_notify: a real `fastrr serve` reporting to a unix datagram socket the test opens, as systemd would."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator

import psutil
import pytest

from fastrr.rpc.client import RpcClient
from tests.status.conftest import StatusFactory, status_config


class NotifySocket:
    """The service manager's end: collects datagrams; WATCHDOG=1 pings are kept apart."""

    def __init__(self, address: str):
        self.address = address  # what NOTIFY_SOCKET says
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self.pings = 0

    def _drain(self) -> None:
        """One datagram, if one comes within 0.2 s."""
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return
        text = data.decode()
        if text == "WATCHDOG=1":
            self.pings += 1
        else:
            self.messages.append(text)

    def wait(self, count: int, timeout: float = 20.0) -> list[str]:
        """Until `count` messages other than watchdog pings have come."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            self._drain()
        assert len(self.messages) >= count, f"expected {count} messages, got {self.messages}"
        return self.messages

    def wait_pings(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.pings < count and time.monotonic() < deadline:
            self._drain()
        assert self.pings >= count, f"expected {count} watchdog pings, got {self.pings}"

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(params=["path", "abstract"])
def notify_socket(request: pytest.FixtureRequest) -> Iterator[NotifySocket]:
    # A short directory: a unix socket path has at most 107 bytes, pytest's tmp_path can be longer.
    folder = tempfile.mkdtemp(prefix="fastrr-notify-", dir="/tmp")
    address = os.path.join(folder, "notify.sock") if request.param == "path" else f"@fastrr-test-{uuid.uuid4()}"
    sock = NotifySocket(address)
    yield sock
    sock.close()
    shutil.rmtree(folder, ignore_errors=True)


def reloading_then_ready(messages: list[str]) -> None:
    reloading, ready = messages
    lines = reloading.split("\n")
    assert lines[0] == "RELOADING=1" and lines[1].startswith("MONOTONIC_USEC=") and len(lines) == 2
    sent = int(lines[1].split("=")[1])
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert now - 60_000_000 < sent <= now  # the same clock as ours (CLOCK_MONOTONIC, µs)
    assert ready == "READY=1"


def test_ready_reloading_stopping_and_watchdog(status: StatusFactory, notify_socket: NotifySocket) -> None:
    st = status.start(status_config(workers=1),
                      env={"NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "200000"})
    assert notify_socket.wait(1) == ["READY=1"]
    notify_socket.wait_pings(3)  # every WATCHDOG_USEC/2 = 0.1 s

    # The workers do not inherit what is meant for the server.
    for pid in st.server.wait_workers(1):
        env = psutil.Process(pid).environ()
        assert not {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} & set(env)

    # SIGHUP: a rolling reset, told as a reload.
    st.server.proc.send_signal(signal.SIGHUP)
    reloading_then_ready(notify_socket.wait(3)[1:3])
    # resetter.Reset over RPC: the same.
    with RpcClient(st.rpc, 30.0) as client:
        assert client.call("resetter.Reset", "http") is True
    reloading_then_ready(notify_socket.wait(5)[3:5])
    # A failed reset (no such plugin) is no reload at all.
    with RpcClient(st.rpc, 30.0) as client, pytest.raises(Exception, match="no such plugin"):
        client.call("resetter.Reset", "nope")

    st.server.proc.send_signal(signal.SIGTERM)
    assert notify_socket.wait(6)[5] == "STOPPING=1"
    assert st.server.proc.wait(30) == 0
    assert len(notify_socket.messages) == 6, notify_socket.messages


def test_no_watchdog_when_it_is_another_process(status: StatusFactory, notify_socket: NotifySocket) -> None:
    st = status.start(status_config(workers=1), env={"NOTIFY_SOCKET": notify_socket.address,
                                                     "WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"})
    assert notify_socket.wait(1) == ["READY=1"]
    deadline = time.monotonic() + 0.5  # five intervals: a ping would have come by now
    while time.monotonic() < deadline:
        notify_socket._drain()
    assert notify_socket.pings == 0
    st.server.proc.send_signal(signal.SIGTERM)
    assert notify_socket.wait(2)[1] == "STOPPING=1"


def test_nobody_listening_is_logged_once_and_harmless(status: StatusFactory, tmp_path: object) -> None:
    gone = f"/tmp/fastrr-notify-{uuid.uuid4()}.sock"  # nothing there
    st = status.start(status_config(workers=1), env={"NOTIFY_SOCKET": gone, "WATCHDOG_USEC": "100000"})
    time.sleep(0.5)
    assert st.probe("/health").status == 200
    assert st.server.output().count("sd_notify failed") == 1
    st.server.proc.send_signal(signal.SIGTERM)
    assert st.server.proc.wait(30) == 0
