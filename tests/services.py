"""Make sure the services the tests talk to answer, starting those that do not.

    python tests/services.py            # every service below
    python tests/services.py redis      # only these

Each service has a probe (a request and the reply it must start with) and the
command that starts it on the development and CI machines. A service that
still does not answer after its start command fails the run with one line,
e.g. "redis: not answering on 127.0.0.1:6379".
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field


@dataclass
class Service:
    name: str
    host: str
    port: int
    request: bytes  # sent after connecting ...
    reply: bytes  # ... and the answer must start with this ("" = connecting is enough)
    start: list[str]  # the command that starts it (it must return; daemons detach)
    dirs: list[str] = field(default_factory=list)  # created before `start`
    wait: float = 15.0  # seconds to wait for it to answer after `start`

    def answers(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                if self.request:
                    sock.sendall(self.request)
                if not self.reply:
                    return True
                return sock.recv(len(self.reply)).startswith(self.reply)
        except OSError:
            return False


SERVICES = {
    "redis": Service(
        "redis", "127.0.0.1", 6379, b"PING\r\n", b"+PONG",
        ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
         "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"],
        dirs=["/var/lib/redis", "/var/log/redis"]),
    # AMQP 0-9-1 protocol header -> the broker answers with a method frame (type 1, channel 0)
    "rabbitmq": Service(
        "rabbitmq", "127.0.0.1", 5672, b"AMQP\x00\x00\x09\x01", b"\x01\x00\x00",
        ["rabbitmq-server", "-detached"], wait=60.0),
    # the server speaks first: INFO {...}
    "nats": Service(
        "nats", "127.0.0.1", 4222, b"", b"INFO",
        ["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/nats-server", "--",
         "-a", "127.0.0.1", "-p", "4222", "-js", "-sd", "/var/lib/nats-server", "-l", "/var/log/nats-server.log"],
        dirs=["/var/lib/nats-server"]),
}


def ensure(service: Service) -> bool:
    if service.answers():
        return True
    print(f"{service.name}: not answering on {service.host}:{service.port}, starting it", file=sys.stderr)
    try:
        for path in service.dirs:
            os.makedirs(path, exist_ok=True)
        subprocess.run(service.start, check=False, timeout=60, stdout=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"{service.name}: cannot start it: {exc}", file=sys.stderr)
    deadline = time.monotonic() + service.wait
    while time.monotonic() < deadline:
        if service.answers():
            return True
        time.sleep(0.2)
    return False


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        print(f"unknown service(s): {', '.join(unknown)}; known: {', '.join(SERVICES)}", file=sys.stderr)
        return 2
    failed = 0
    for name in names or list(SERVICES):
        service = SERVICES[name]
        if not ensure(service):
            print(f"{service.name}: not answering on {service.host}:{service.port}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
