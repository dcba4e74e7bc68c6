"""wss:// - WebSockets over the TLS listener (http.ssl), which is the Python front's (the C
engine has no TLS: engine_blockers keeps such a config on the Python front)."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.conftest import free_port
from tests.websockets.conftest import AUTH, WsFactory, reply


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("wss-certs")
    crt, key = directory / "server.pem", directory / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return crt, key


def test_wss_upgrade_join_and_delivery(wsf: WsFactory, cert: tuple[Path, Path]):
    tls_port = free_port()
    srv = wsf.start({"sse": {"path": "/events"}},
                    extra={"http": {"ssl": {"address": f"127.0.0.1:{tls_port}", "cert": str(cert[0]),
                                            "key": str(cert[1])}}})
    context = ssl.create_default_context(cafile=str(cert[0]))
    with connect(f"wss://localhost:{tls_port}/ws", ssl=context, additional_headers=AUTH, open_timeout=10) as ws:
        assert ws.response.headers["Set-Cookie"] == "ws=joined; Path=/"
        ws.send(json.dumps({"command": "join", "topics": ["secure"]}))
        assert reply(ws.recv(timeout=10)) == {"topic": "@join", "payload": ["secure"]}
        srv.publish("secure", "over tls")
        assert reply(ws.recv(timeout=10)) == {"topic": "secure", "payload": "over tls"}
    # the plain listener serves websockets too
    with connect(srv.url(), additional_headers=AUTH, open_timeout=10) as ws:
        ws.send(json.dumps({"command": "join", "topics": ["plain"]}))
        assert reply(ws.recv(timeout=10))["topic"] == "@join"
    # an event stream over TLS (HTTP/1.1 through ALPN)
    raw = context.wrap_socket(socket.create_connection(("127.0.0.1", tls_port), timeout=10),
                              server_hostname="localhost")
    raw.sendall(b"GET /events?topic=secure HTTP/1.1\r\nHost: localhost\r\nCookie: auth=ok\r\n\r\n")
    data = b""
    while b": connected\n\n" not in data:
        chunk = raw.recv(65536)
        assert chunk, data
        data += chunk
    srv.publish("secure", "sse over tls")
    while b"data: sse over tls\n\n" not in data:
        chunk = raw.recv(65536)
        assert chunk, data
        data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK")
    raw.close()
