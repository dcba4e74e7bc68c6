"""TLS (http.ssl) and HTTP/2 (ALPN h2 and h2c prior knowledge) with real clients:
curl, httpx, h2load and a raw h2 client for resets and settings."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import httpx
import pytest

import fastrr._core as C
from tests.conftest import WORKERS, worker_cmd
from tests.integration.test_codecs import spied_data_frames

needs_h2load = pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load (Debian nghttp2-client) missing")


def make_cert(directory: Path, name: str = "server") -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("certs")
    server = make_cert(directory, "server")
    client = make_cert(directory, "client")
    return {"cert": server[0], "key": server[1], "client_cert": client[0], "client_key": client[1]}


class TlsServer:
    def __init__(self, server, tls_port: int, certs):
        self.server = server
        self.tls_port = tls_port
        self.cacert = str(certs["cert"])

    def https(self, path: str) -> str:
        return f"https://localhost:{self.tls_port}{path}"

    def http(self, path: str) -> str:
        return self.server.url(path)


def start_tls(fastrr, certs, http: dict | None = None, ssl_extra: dict | None = None,
              config_extra: dict | None = None, **kw) -> TlsServer:
    from tests.conftest import free_port
    tls_port = free_port()
    cfg = {"http": {"ssl": {"address": f"127.0.0.1:{tls_port}", "cert": str(certs["cert"]),
                            "key": str(certs["key"]), **(ssl_extra or {})},
                    "http2": {"h2c": True}, **(http or {})}, **(config_extra or {})}
    server = fastrr.start(cfg, **kw)
    if kw.get("wait", True):
        # The plain listener (what fastrr.start waits for) starts listening a moment before the TLS one.
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", tls_port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
    return TlsServer(server, tls_port, certs)


def curl(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["curl", "-sS", "--max-time", str(int(timeout)), *args], capture_output=True,
                          timeout=timeout + 5)


@pytest.fixture
def tls(fastrr, certs):
    return start_tls(fastrr, certs, workers=4)


# -- TLS ------------------------------------------------------------------------------------------


def test_https_http11(tls):
    out = curl("--http1.1", "--cacert", tls.cacert, "-w", "\n%{http_version}", tls.https("/echo?a=1"))
    body, _, version = out.stdout.rpartition(b"\n")
    assert version == b"1.1"
    echo = json.loads(body)
    assert echo["uri"] == f"https://localhost:{tls.tls_port}/echo?a=1"
    assert echo["protocol"] == "HTTP/1.1"
    # The plain listener keeps serving plain HTTP (no redirect configured).
    assert httpx.get(tls.http("/hello")).json() == {"hello": "world"}


def test_https_rejects_plain_and_unknown_ca(tls):
    out = curl("--http1.1", tls.https("/hello"))  # no --cacert: self-signed is refused by the client
    assert out.returncode != 0
    with socket.create_connection(("127.0.0.1", tls.tls_port), timeout=5) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        data = sock.recv(100)
    assert not data.startswith(b"HTTP/1.1 200")


def test_redirect_to_https(fastrr, certs):
    srv = start_tls(fastrr, certs, ssl_extra={"redirect": True})
    r = httpx.get(srv.http("/echo?x=1"), follow_redirects=False)
    assert r.status_code == 308
    assert r.headers["location"] == f"https://127.0.0.1:{srv.tls_port}/echo?x=1"
    out = curl("-L", "--cacert", srv.cacert, srv.http("/hello").replace("127.0.0.1", "localhost"))
    assert out.stdout == b'{"hello":"world"}'


def test_client_certificates(fastrr, certs):
    srv = start_tls(fastrr, certs, ssl_extra={"client_auth_type": "require_and_verify_client_cert",
                                              "root_ca": str(certs["client_cert"])})
    out = curl("--http1.1", "--cacert", srv.cacert, srv.https("/hello"))
    assert out.returncode != 0
    out = curl("--http1.1", "--cacert", srv.cacert, "--cert", str(certs["client_cert"]),
               "--key", str(certs["client_key"]), srv.https("/hello"))
    assert out.stdout == b'{"hello":"world"}'


# -- HTTP/2 -------------------------------------------------------------------------------------------


def test_h2_over_tls_with_curl(tls):
    out = curl("--http2", "--cacert", tls.cacert, "-w", "\n%{http_version}", tls.https("/echo?a=1"),
               "-H", "Cookie: a=1", "-H", "Cookie: b=2", "-H", "X-Multi: 1")
    body, _, version = out.stdout.rpartition(b"\n")
    assert version == b"2"
    echo = json.loads(body)
    assert echo["protocol"] == "HTTP/2.0"
    assert echo["uri"] == f"https://localhost:{tls.tls_port}/echo?a=1"
    assert echo["cookies"] == {"a": "1", "b": "2"}
    assert echo["headers"]["X-Multi"] == ["1"]
    assert "Host" not in echo["headers"]


def test_h2c_prior_knowledge(tls):
    out = curl("--http2-prior-knowledge", "-w", "\n%{http_version}", tls.http("/echo"))
    body, _, version = out.stdout.rpartition(b"\n")
    assert version == b"2"
    echo = json.loads(body)
    assert echo["protocol"] == "HTTP/2.0" and echo["uri"].startswith("http://")
    # HTTP/1.1 still works on the same listener.
    assert httpx.get(tls.http("/hello")).json() == {"hello": "world"}
    assert httpx.post(tls.http("/echo"), content=b"PUT this").json()["body"] == "PUT this"


def test_h2c_off_by_default(fastrr):
    server = fastrr.start()
    out = curl("--http2-prior-knowledge", server.url("/hello"))
    assert out.stdout != b'{"hello":"world"}'


def test_h2_psr7_sees_protocol_2(fastrr, certs):
    srv = start_tls(fastrr, certs, env={"APP_MODE": "psr7"})
    out = curl("--http2", "--cacert", srv.cacert, srv.https("/echo"))
    assert json.loads(out.stdout)["protocol"] == "HTTP/2"


def test_h2_early_hints_and_stream(tls):
    out = subprocess.run(["curl", "-sv", "--http2", "--cacert", tls.cacert, tls.https("/early-hints")],
                         capture_output=True, timeout=10)
    assert b"< HTTP/2 103" in out.stderr
    assert b"< link: </style.css>; rel=preload; as=style" in out.stderr
    assert out.stdout == b'{"ok":true}'
    out = curl("--http2", "--cacert", tls.cacert, tls.https("/stream?n=5&ms=10"))
    assert out.stdout == b"".join(b"chunk %d\n" % i for i in range(5))


def test_h2_bodies_both_ways(tls, tmp_path):
    data = os.urandom(6 << 20)
    (tmp_path / "up.bin").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    out = curl("--http2", "--cacert", tls.cacert, "-H", "Content-Type: application/octet-stream",
               "--data-binary", f"@{tmp_path / 'up.bin'}", tls.https("/echo"))
    echo = json.loads(out.stdout)
    assert echo["bodyLength"] == len(data) and echo["bodySha256"] == digest
    out = curl("--http2", "--cacert", tls.cacert, "-F", f"f=@{tmp_path / 'up.bin'}", "-F", "k[a]=v",
               tls.https("/echo"))
    echo = json.loads(out.stdout)
    assert echo["uploads"]["f"]["sha256"] == digest
    assert echo["parsedBody"] == {"k": {"a": "v"}}
    # 20 MB down: far more than any flow-control window.
    out = curl("--http2", "--cacert", tls.cacert, tls.https("/big?kb=20480"), timeout=60)
    assert out.stdout == b"x" * (20480 * 1024)
    out = curl("--http2-prior-knowledge", tls.http("/big?kb=20480"), timeout=60)
    assert len(out.stdout) == 20480 * 1024


def test_h2_body_over_limit_is_413(fastrr, certs, tmp_path):
    srv = start_tls(fastrr, certs, http={"max_request_size": 1})
    (tmp_path / "big.bin").write_bytes(b"z" * (3 << 20))
    out = curl("--http2", "--cacert", srv.cacert, "-o", "/dev/null", "-w", "%{http_code}",
               "-H", "Content-Type: application/octet-stream", "--data-binary", f"@{tmp_path / 'big.bin'}",
               srv.https("/echo"))
    assert out.stdout == b"413"
    out = curl("--http2", "--cacert", srv.cacert, "-o", "/dev/null", "-w", "%{http_code}",
               "-H", "Transfer-Encoding: chunked", "-F", f"f=@{tmp_path / 'big.bin'}", srv.https("/echo"))
    assert out.stdout == b"413"
    assert httpx.get(srv.http("/hello")).status_code == 200


def test_concurrent_streams_run_on_different_workers(tls):
    async def run() -> list[dict]:
        ctx = ssl.create_default_context(cafile=tls.cacert)
        async with httpx.AsyncClient(http2=True, verify=ctx, timeout=30) as client:
            responses = await asyncio.gather(*[client.get(tls.https("/sleep?ms=400")) for _ in range(4)])
            assert all(r.http_version == "HTTP/2" for r in responses)
            return [r.json() for r in responses]

    results = asyncio.run(run())
    pids = {r["pid"] for r in results}
    assert len(pids) >= 2, f"all streams of one connection ran on {pids}"


@needs_h2load
@pytest.mark.parametrize("scheme", ["https", "h2c"])
def test_h2load_many_streams(fastrr, certs, scheme):
    from fastrr.rpc.client import RpcClient
    from tests.conftest import free_port

    rpc = f"tcp://127.0.0.1:{free_port()}"
    srv = start_tls(fastrr, certs, http={"http2": {"h2c": True, "max_concurrent_streams": 16}},
                    config_extra={"rpc": {"listen": rpc}}, workers=2)
    url = srv.https("/pid").replace("localhost", "127.0.0.1") if scheme == "https" else srv.http("/pid")
    out = subprocess.run(["h2load", "-n", "1000", "-c", "4", "-m", "32", url], capture_output=True, timeout=120)
    text = out.stdout.decode()
    assert "1000 succeeded, 0 failed, 0 errored" in text, text
    assert "status codes: 1000 2xx" in text, text
    # h2load shows no bodies: the workers' exec counters say where the streams ran.
    with RpcClient(rpc) as client:
        execs = [row["numExecs"] for row in client.call("informer.Workers", "http")["workers"]]
    assert sum(execs) == 1000 and len(execs) == 2, execs
    assert min(execs) > 0, f"all streams ran on one worker: {execs}"


class RawH2:
    """A minimal h2c client for what curl cannot do: read settings, reset streams."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.events: list[h2.events.Event] = []

    def pump(self) -> list[h2.events.Event]:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        events = self.conn.receive_data(data)
        self.sock.sendall(self.conn.data_to_send())
        self.events += events
        return events

    def request(self, path: str) -> int:
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(":method", "GET"), (":path", path), (":scheme", "http"),
                                     (":authority", "t")], end_stream=True)
        self.sock.sendall(self.conn.data_to_send())
        return sid

    def answers(self, sids: list[int], timeout: float = 20) -> dict[int, tuple[str, object]]:
        """Pump until every stream in `sids` ended ("body", bytes) or was reset ("reset", error code)."""
        bodies: dict[int, bytes] = {sid: b"" for sid in sids}
        done: dict[int, tuple[str, object]] = {}
        deadline = time.monotonic() + timeout
        while len(done) < len(sids):
            assert time.monotonic() < deadline, f"streams still open: {set(sids) - set(done)}"
            for event in self.pump():
                sid = getattr(event, "stream_id", None)
                if sid not in bodies:
                    continue
                if isinstance(event, h2.events.DataReceived):
                    bodies[sid] += event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length, sid)
                    self.sock.sendall(self.conn.data_to_send())
                elif isinstance(event, h2.events.StreamEnded):
                    done[sid] = ("body", bodies[sid])
                elif isinstance(event, h2.events.StreamReset):
                    done[sid] = ("reset", event.error_code)
        return done

    def close(self) -> None:
        self.sock.close()


def test_settings_and_reset_stream_frees_the_worker(fastrr, certs):
    srv = start_tls(fastrr, certs, http={"http2": {"h2c": True, "max_concurrent_streams": 7}}, workers=1)
    client = RawH2(srv.server.port)
    try:
        for _ in range(20):  # the limit comes in the second SETTINGS frame
            if client.conn.remote_settings.max_concurrent_streams == 7:
                break
            client.pump()
        assert client.conn.remote_settings.max_concurrent_streams == 7
        sid = client.request("/stream?n=300&ms=20")
        while not any(isinstance(e, h2.events.DataReceived) and e.stream_id == sid for e in client.events):
            client.pump()
        client.conn.reset_stream(sid)
        client.sock.sendall(client.conn.data_to_send())
        # The only worker must drop the stream and serve the next request on the same connection.
        sid2 = client.request("/pid")
        body = b""
        done = False
        while not done:
            for event in client.pump():
                if isinstance(event, h2.events.DataReceived) and event.stream_id == sid2:
                    body += event.data
                    client.conn.acknowledge_received_data(event.flow_controlled_length, sid2)
                if isinstance(event, h2.events.StreamEnded) and event.stream_id == sid2:
                    done = True
        assert json.loads(body)["pid"] in srv.server.worker_pids()
    finally:
        client.close()


def test_streams_over_the_limit_are_refused_alone(fastrr, certs):
    srv = start_tls(fastrr, certs, http={"http2": {"h2c": True, "max_concurrent_streams": 4}}, workers=2)
    client = RawH2(srv.server.port)
    try:
        for _ in range(20):  # the limit comes in the second SETTINGS frame; pump() acknowledges it
            if client.conn.remote_settings.max_concurrent_streams == 4:
                break
            client.pump()
        assert client.conn.remote_settings.max_concurrent_streams == 4
        # Let this client open more streams than the server allows, as a misbehaving one would.
        client.conn.remote_settings.update({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100})
        client.conn.remote_settings.acknowledge()
        sids = [client.request("/sleep?ms=200") for _ in range(7)]
        answers = client.answers(sids)
        served = [sid for sid in sids if answers[sid][0] == "body"]
        refused = [sid for sid in sids if answers[sid] == ("reset", h2.errors.ErrorCodes.REFUSED_STREAM)]
        assert served == sids[:4] and refused == sids[4:], answers
        assert all(json.loads(answers[sid][1])["slept"] == 200 for sid in served)  # type: ignore[arg-type]
        # Only those streams were refused: the same connection serves the next request.
        sid = client.request("/pid")
        kind, body = client.answers([sid])[sid]
        assert kind == "body" and json.loads(body)["pid"] in srv.server.worker_pids()  # type: ignore[arg-type]
    finally:
        client.close()


def test_h2c_upgrade_from_http11(tls):
    # curl --http2 on http:// asks for `Upgrade: h2c`; the request is answered as stream 1.
    out = curl("--http2", "-w", "\n%{http_version}", tls.http("/echo?a=1"))
    body, _, version = out.stdout.rpartition(b"\n")
    assert version == b"2", out
    echo = json.loads(body)
    assert echo["protocol"] == "HTTP/2.0" and echo["uri"] == tls.http("/echo?a=1")
    assert not {"Upgrade", "Http2-Settings", "Connection"} & set(echo["headers"])
    # Later requests of the same curl run reuse the upgraded connection.
    out = curl("--http2", "-w", "\n%{http_version} %{num_connects}\n", tls.http("/hello"), tls.http("/hello"))
    assert out.stdout == b'{"hello":"world"}\n2 1\n{"hello":"world"}\n2 0\n', out
    # A request with a body is served on HTTP/1.1 (the upgrade is ignored), body intact.
    out = curl("--http2", "-w", "\n%{http_version}", "--data-binary", "x" * 5000,
               "-H", "Content-Type: application/octet-stream", tls.http("/echo"))
    body, _, version = out.stdout.rpartition(b"\n")
    assert version == b"1.1" and json.loads(body)["bodyLength"] == 5000


def test_h2c_upgrade_with_bad_settings_stays_on_http11(tls):
    for settings in (b"@@@@", b"AAMA"):  # not base64url; not a whole number of 6-byte settings
        with socket.create_connection(("127.0.0.1", tls.server.port), timeout=10) as sock:
            sock.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                         b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n")
            answer = b""
            while not answer.endswith(b'{"hello":"world"}'):
                chunk = sock.recv(65536)
                assert chunk, answer
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer


def test_h2c_upgrade_needs_h2c_enabled(fastrr):
    server = fastrr.start()
    out = curl("--http2", "-w", "\n%{http_version}", server.url("/hello"))
    assert out.stdout == b'{"hello":"world"}\n1.1'


def test_h2_with_middleware(fastrr, certs, tmp_path):
    (tmp_path / "pub").mkdir()
    (tmp_path / "pub" / "app.js").write_text("console.log('hi');\n" * 200)
    srv = start_tls(fastrr, certs, http={"middleware": ["static", "headers", "gzip"],
                                         "static": {"dir": str(tmp_path / "pub")},
                                         "headers": {"cors": {"allowed_origin": "*"}}})
    out = curl("--http2", "--compressed", "--cacert", srv.cacert, "-D", "-", srv.https("/app.js"))
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/2 200")
    assert b"content-encoding: " in head
    assert body == b"console.log('hi');\n" * 200
    out = curl("--http2", "--cacert", srv.cacert, "-D", "-", "-o", "/dev/null", "-X", "OPTIONS",
               "-H", "Origin: https://o.example", "-H", "Access-Control-Request-Method: GET", srv.https("/x"))
    assert out.stdout.startswith(b"HTTP/2 204")
    assert b"access-control-allow-origin: *" in out.stdout
    out = curl("--http2", "--cacert", srv.cacert, "-r", "0-9", srv.https("/app.js"))
    assert out.stdout == b"console.l"  + b"o"


def test_static_files_over_tls_and_clients_leaving_mid_file(fastrr, certs, tmp_path):
    (tmp_path / "pub").mkdir()
    data = os.urandom(12 << 20)
    (tmp_path / "pub" / "big.bin").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    srv = start_tls(fastrr, certs, http={"middleware": ["static"], "static": {"dir": str(tmp_path / "pub")}},
                    workers=1)
    for args in (["--http1.1"], ["--http2"]):  # TLS: read + write fallback; h2: DATA frames
        out = curl(*args, "--cacert", srv.cacert, srv.https("/big.bin"), timeout=60)
        assert hashlib.sha256(out.stdout).hexdigest() == digest
    out = curl(srv.http("/big.bin"), timeout=60)  # plain: sendfile
    assert hashlib.sha256(out.stdout).hexdigest() == digest
    for args in (["--http1.1", "--cacert", srv.cacert, srv.https("/big.bin")],
                 ["--http2", "--cacert", srv.cacert, srv.https("/big.bin")], [srv.http("/big.bin")]):
        curl("--limit-rate", "2M", "--max-time", "1", "-o", os.devnull, *args, timeout=5)
    assert httpx.get(srv.http("/hello")).json() == {"hello": "world"}
    assert srv.server.proc.poll() is None


# -- http.codec: proto over HTTP/2 -------------------------------------------------------------------

H2_CODEC_REQUESTS = [
    ("GET", "/echo?a=1&b[]=2&b[]=3", {"headers": [("X-Custom", "v1"), ("x-multi", "1"), ("X-MULTI", "2"),
                                                  ("Cookie", "sess=abc%20def; theme=dark"),
                                                  ("Cookie", "sess=last; bad name=x")]}),
    ("POST", "/echo?q=%E2%82%AC", {"data": {"name": "fastrr", "tags[]": ["a", "b"], "user[role]": "admin"}}),
    ("POST", "/echo", {"files": {"f": ("up.txt", b"file body\x00\xff" * 1000, "text/plain")},
                       "data": {"k[a]": "v"},
                       "headers": {"Content-Type": "multipart/form-data; boundary=fastrr-h2-codec"}}),
    ("POST", "/echo", {"content": b'{"x":[1,2,"\xc3\xa9"]}', "headers": {"Content-Type": "application/json"}}),
    ("HEAD", "/echo", {}),
    ("GET", "/headers", {}),
    ("GET", "/stream?n=5&ms=5", {}),
    ("GET", "/early-hints", {}),
    ("GET", "/status?code=204", {}),
    ("GET", "/nope", {}),
]


def h2_normalise(r: httpx.Response, port: int) -> tuple:
    assert r.http_version == "HTTP/2"
    headers = [(k.lower(), v) for k, v in r.headers.multi_items() if k.lower() != "date"]
    body = r.content.replace(str(port).encode(), b"PORT")
    if r.headers.get("content-type", "").startswith("application/json"):
        headers = [(k, v) for k, v in headers if k != "content-length"]  # the pid is in the body
        if body:
            data = json.loads(body)
            data.pop("pid", None)
            for upload in data.get("files", {}).values():
                upload["tmp_name"] = "TMP"  # a fresh temp file per request
            body = json.dumps(data, sort_keys=True).encode()
    return r.status_code, headers, body


def h2_answers(srv: TlsServer, transport: str) -> list[tuple]:
    if transport == "tls":
        ctx = ssl.create_default_context(cafile=srv.cacert)
        client = httpx.Client(http2=True, verify=ctx, timeout=30)
        url, port = srv.https, srv.tls_port
    else:  # h2c with prior knowledge
        client = httpx.Client(http1=False, http2=True, timeout=30)
        url, port = srv.http, srv.server.port
    with client:
        return [h2_normalise(client.request(method, url(path), **kw), port) for method, path, kw in H2_CODEC_REQUESTS]


@pytest.mark.parametrize("mode", ["http", "psr7"])
def test_h2_codec_proto_same_answers_as_json(fastrr, certs, mode):
    servers = {codec: start_tls(fastrr, certs, http={"codec": codec}, workers=1, env={"APP_MODE": mode})
               for codec in ("json", "proto")}
    for transport in ("tls", "h2c"):
        answers = {codec: h2_answers(srv, transport) for codec, srv in servers.items()}
        for req, a, b in zip(H2_CODEC_REQUESTS, answers["json"], answers["proto"], strict=True):
            assert a == b, (transport, req[:2])
        proto = answers["proto"]
        echo = json.loads(proto[0][2])
        assert echo["protocol"] == ("HTTP/2" if mode == "psr7" else "HTTP/2.0")
        assert echo["headers"]["X-Multi"] == ["1", "2"]
        # the server's cookie map (RoadRunner's rules); PSR7Worker reads the header by PHP's
        assert echo["cookies"] == ({"sess": "abc def", "theme": "dark", "bad_name": "x"} if mode == "psr7"
                                   else {"sess": "last", "theme": "dark"})
        assert echo["query"] == {"a": "1", "b": ["2", "3"]}
        assert echo["uri"].startswith("https://localhost:PORT/echo?a=1&b" if transport == "tls"
                                       else "http://127.0.0.1:PORT/echo?a=1&b")
        form = json.loads(proto[1][2])
        assert form["parsed"] is True and form["query"] == {"q": "\u20ac"}
        assert form["parsedBody"] == {"name": "fastrr", "tags": ["a", "b"], "user": {"role": "admin"}}
        upload = json.loads(proto[2][2])
        assert upload["parsedBody"] == {"k": {"a": "v"}}
        assert upload["uploads"]["f"]["size"] == 11000 and upload["uploads"]["f"]["name"] == "up.txt"
        assert upload["uploads"]["f"]["sha256"] == hashlib.sha256(b"file body\x00\xff" * 1000).hexdigest()
        assert json.loads(proto[3][2])["body"] == '{"x":[1,2,"\u00e9"]}'
        assert proto[6][2] == b"".join(b"chunk %d\n" % i for i in range(5))
        assert json.loads(proto[7][2]) == {"ok": True}
        assert proto[8][0] == 204 and proto[9][0] == 404


@pytest.mark.parametrize(("codec", "flag"), [("json", C.FLAG_JSON), ("proto", C.FLAG_PROTO)])
@pytest.mark.parametrize("mode", ["http", "psr7"])
def test_h2_worker_gets_and_replies_in_codec(fastrr, certs, tmp_path, codec, flag, mode):
    """codec_spy.py between fastrr and the worker: over h2 too, requests go out
    with the configured codec's flag and the worker answers in kind."""
    log = tmp_path / "frames.log"
    cmd = f"{sys.executable} {WORKERS / 'codec_spy.py'} {log} {worker_cmd()}"
    srv = start_tls(fastrr, certs, http={"codec": codec}, workers=1, env={"APP_MODE": mode},
                    config_extra={"server": {"command": cmd}})
    ctx = ssl.create_default_context(cafile=srv.cacert)
    with httpx.Client(http2=True, verify=ctx, timeout=30) as client:
        r = client.get(srv.https("/echo?x=1"))
        assert r.http_version == "HTTP/2" and r.json()["query"] == {"x": "1"}
        assert client.get(srv.https("/stream?n=7")).text == "".join(f"chunk {i}\n" for i in range(7))
        assert client.get(srv.https("/early-hints")).json() == {"ok": True}
    with httpx.Client(http1=False, http2=True, timeout=30) as client:
        r = client.post(srv.http("/echo"), data={"a": "b"})
        assert r.http_version == "HTTP/2" and r.json()["parsedBody"] == {"a": "b"}
    data_in, data_out = spied_data_frames(log, requests=4, replies=1 + 8 + 2 + 1)
    assert len(data_in) == 4
    assert {int(f[1]) for f in data_in} == {flag}
    assert len(data_out) == 1 + 8 + 2 + 1  # /echo, 7 chunks + the end, 103 + final, /echo
    assert {int(f[1]) for f in data_out} == {flag}


def test_h2_raw_worker_gets_http_v1_request(fastrr, certs):
    """The exact http.v1.Request an h2 stream becomes (raw_worker.php echoes it),
    and the worker's protobuf reply (flags 0x80, status only) read as such."""
    from tests.core import pb_http

    srv = start_tls(fastrr, certs, http={"codec": "proto"}, workers=1, script="raw_worker.php")
    ctx = ssl.create_default_context(cafile=srv.cacert)
    with httpx.Client(http2=True, verify=ctx, timeout=30) as client:
        r = client.post(srv.https("/p/a?x=1&y=%20"), content=b"body",
                        headers={"X-A": "1", "Cookie": "a=%41; b=2", "Content-Type": "text/plain"})
    assert r.status_code == 200 and r.http_version == "HTTP/2"
    assert "content-type" not in r.headers  # raw_worker's protobuf reply: status only
    m = pb_http.parse_request(r.content)
    assert m.remote_addr == "127.0.0.1" and m.protocol == "HTTP/2.0" and m.method == "POST"
    assert m.uri == f"https://localhost:{srv.tls_port}/p/a?x=1&y=%20"
    assert m.raw_query == "x=1&y=%20" and not m.parsed
    assert list(m.header["X-A"].value) == [b"1"] and "Host" not in m.header
    assert {k: list(v.value) for k, v in m.cookies.items()} == {"a": [b"A"], "b": [b"2"]}
    with httpx.Client(http1=False, http2=True, timeout=30) as client:
        r = client.get(srv.http("/q"))
    m = pb_http.parse_request(r.content)
    assert m.protocol == "HTTP/2.0" and m.uri == f"http://127.0.0.1:{srv.server.port}/q"


def test_h2_protocol_patch_of_proto_context():
    from fastrr.http.h2 import _h2_protocol_proto
    from tests.core import pb_http

    req = C.parse_request(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n", 1 << 16)
    for remote in ("", "10.0.0.1", "r" * 200):  # no remote_addr field; a 1-byte and a 2-byte length
        ctx = _h2_protocol_proto(C.encode_http_context_proto(req, remote, "https"))
        m = pb_http.parse_request(ctx)
        assert (m.remote_addr, m.protocol, m.uri) == (remote, "HTTP/2.0", "https://h/x")
