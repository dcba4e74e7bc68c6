"""Laravel 8 (Debian's php-laravel-framework) on fastrr through php/bin/fastrr-laravel-worker, one
worker, so that every request lands on the same long-lived PHP process: what one request changes
(user, session, locale, cookie queue, request object, view data, config, query log, transactions)
must not be seen by the next; streamed and file responses; errors, exit and a replaced worker."""

from __future__ import annotations

import hashlib
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, ServerFactory, free_port
from tests.frameworks.laravel.harness import APP, fastrr_config, laravel_factory, make_storage, start_fastrr

__all__ = ["laravel_factory"]  # the fixture, used by name below


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_storage(tmp_path_factory.mktemp("laravel-storage"))


@pytest.fixture(scope="module")
def server(laravel_factory: ServerFactory, storage: Path) -> Server:
    return start_fastrr(laravel_factory, storage, workers=1)


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=10.0, follow_redirects=False) as c:
        yield c


def pid(client: httpx.Client) -> int:
    return int(client.get("/pid").json()["pid"])


def login(client: httpx.Client, email: str, password: str) -> httpx.Cookies:
    """Logs in on a client of its own and returns its cookies (the session)."""
    resp = client.post("/login", data={"email": email, "password": password})
    assert resp.status_code == 200, resp.text
    return resp.cookies


def test_a_request_never_sees_the_previous_users_state(server: Server) -> None:
    """A logs in and dirties everything it can; B, next on the same worker, sees none of it."""
    with httpx.Client(base_url=server.base, timeout=10.0) as alice:
        login(alice, "alice@example.test", "secret-a")
        worker = pid(alice)
        dirty = alice.get("/state/dirty", params={"who": "A", "share": "A"}).json()
        assert dirty["user"] == "Alice" and dirty["locale"] == "fr" and dirty["hello"] == "Bonjour"
        assert dirty["carbon_locale"] == "fr"
        assert dirty["session_data"] == "data of A" and dirty["view_shared"] == ["shared_by_request"]
        assert dirty["config_dynamic"] == "A" and dirty["query_log"] == 1
        assert alice.get("/api/queue-cookie").json() == {"queued": True}  # queued, never sent
        a_context = dirty["context_id"]

    with httpx.Client(base_url=server.base, timeout=10.0) as bob:
        resp = bob.get("/state", params={"who": "B"})
        state = resp.json()
        assert state["pid"] == worker, "the test needs both requests on the same worker"
        assert state["user"] is None
        assert state["session_data"] is None and state["logged_in_as"] is None
        assert state["locale"] == "en" and state["hello"] == "Hello" and state["carbon_locale"] == "en"
        assert state["queued_cookies"] == []
        assert "leaked" not in resp.cookies and all("leaked" not in v for v in resp.headers.get_list("set-cookie"))
        assert state["who"] == "B" and state["holder_who"] == "B" and state["router_request_who"] == "B"
        assert state["app_request_is_this"] is True and state["url_current"].endswith("/state?who=B")
        assert state["view_shared"] == [] and state["view_app_is_current"] is True
        assert state["config_dynamic"] is None
        assert state["context_notes"] == [] and state["context_id"] != a_context
        assert state["query_log"] == 0
        # The one thing that is shared on purpose: a singleton resolved at boot.
        assert state["boot_requests"] >= 2

        # Bob logs in as himself and sees only himself; a guest request after him is a guest again.
        login(bob, "bob@example.test", "secret-b")
        assert bob.get("/me").json()["user"] == "Bob"
    with httpx.Client(base_url=server.base, timeout=10.0) as guest:
        assert guest.get("/me").json() == {"user": None, "greeting": "Hello from the container, guest"}
        assert guest.get("/private").status_code == 302  # to the login route


def test_sessions_and_auth_persist_for_their_own_client(server: Server) -> None:
    with httpx.Client(base_url=server.base, timeout=10.0) as alice, \
            httpx.Client(base_url=server.base, timeout=10.0) as bob:
        login(alice, "alice@example.test", "secret-a")
        assert bob.get("/session/put", params={"v": "bob's"}).json() == {"data": "bob's"}
        assert alice.get("/me").json()["user"] == "Alice"
        assert bob.get("/me").json()["user"] is None
        assert bob.get("/session").json() == {"data": "bob's"}
        assert alice.get("/session").json() == {"data": None}
        assert alice.get("/private").text == "private for Alice"
        out = alice.post("/logout")
        assert out.status_code == 200 and out.json() == {"user": None}, (out.status_code, out.text[:300])
        assert alice.get("/me").json()["user"] is None


def test_transactions_query_log_config_and_locale_are_per_request(client: httpx.Client, server: Server) -> None:
    assert client.get("/db/begin").json() == {"level": 1}
    assert client.get("/db/level").json() == {"level": 0}
    assert "left 1 transaction(s) open" in server.output()
    assert client.get("/db/log").json() == {"queries": 1}
    assert client.get("/db/log").json() == {"queries": 1}
    assert client.get("/config/set").json() == {"dynamic": "changed by a request"}
    assert client.get("/state").json()["config_dynamic"] is None
    assert client.get("/locale/fr").json() == {"locale": "fr", "hello": "Bonjour"}
    assert client.get("/locale").json() == {"locale": "en", "hello": "Hello"}
    assert client.get("/hello/Ann", params={"share": "X"}).text.strip() == "<p>Hello, Ann! Shared: X.</p>"
    assert client.get("/hello/Ann").text.strip() == "<p>Hello, Ann! Shared: none.</p>"


def test_request_building(client: httpx.Client) -> None:
    q = client.get("/query?a[]=1&a[]=2&b[x]=y&c.d=e").json()
    assert q["query"] == {"a": ["1", "2"], "b": {"x": "y"}, "c_d": "e"}
    assert q["base_url"] == "" and q["path_info"] == "/query"
    form = client.post("/form", data={"x": "1", "y[]": ["2", "3"]}).json()
    assert form["input"] == {"x": "1", "y": ["2", "3"]} and form["content"] == "x=1&y%5B%5D=2&y%5B%5D=3"
    put = client.put("/form", content=b"p=1", headers={"Content-Type": "application/x-www-form-urlencoded"}).json()
    assert put["method"] == "PUT" and put["input"] == {"p": "1"}
    spoofed = client.post("/form", data={"_method": "DELETE", "z": "1"}).json()
    assert spoofed["method"] == "DELETE" and spoofed["real_method"] == "POST"
    js = client.post("/json-body", json={"a": 1, "b": {"c": [1, 2]}}).json()
    assert js["json"] == {"a": 1, "b": {"c": [1, 2]}} and js["nested"] == [1, 2] and js["all"] == js["json"]
    srv = client.get("/server?z=1", headers={"X-Test": "t", "Authorization": "Bearer tok"}).json()
    assert srv["remote_addr"] == "127.0.0.1" and srv["request_uri"] == "/server?z=1"
    assert srv["script_name"] == "/index.php" and srv["query_string"] == "z=1" and srv["https"] is None
    assert srv["header_x_test"] == "t" and srv["bearer"] == "tok"
    cookies = client.get("/cookies", headers={"Cookie": "plain=abc; theme=x; a[b]=c"}).json()["cookies"]
    assert cookies["plain"] == "abc" and cookies["a"] == {"b": "c"}
    assert client.get("/echo").text == "printed;returned"


def test_uploads_are_valid_uploaded_files(client: httpx.Client) -> None:
    content = b"file content \x00\xff" * 100
    resp = client.post("/upload", data={"title": "t"}, files={
        "doc": ("report.pdf", content, "application/pdf"),
        "more[]": ("a.txt", b"A", "text/plain"),
    })
    body = resp.json()
    assert resp.status_code == 200, resp.text
    assert body["input"] == {"title": "t"} and body["has_file"] is True
    doc = body["files"]["doc"]
    assert doc == {"client_name": "report.pdf", "client_mime": "application/pdf", "extension": "pdf",
                   "size": len(content), "error": 0, "valid": True, "sha1": hashlib.sha1(content).hexdigest()}
    assert body["files"]["more.0"]["client_name"] == "a.txt"


def test_trusted_proxies(client: httpx.Client) -> None:
    direct = client.get("/trusted").json()
    assert direct["ip"] == "127.0.0.1" and direct["secure"] is False
    proxied = client.get("/trusted", headers={
        "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example",
        "X-Forwarded-Port": "443"}).json()
    assert proxied == {"ip": "203.0.113.9", "secure": True, "host": "shop.example", "port": 443,
                       "scheme": "https", "url": "https://shop.example/x"}
    # The next request is direct again (the trusted-proxy decision is made per request).
    assert client.get("/trusted").json() == direct


def _read_until(sock: socket.socket, marker: bytes, timeout: float) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data and time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        data += chunk
    return data


def test_streamed_response_goes_out_chunk_by_chunk(server: Server, storage: Path) -> None:
    """chunk 1 reaches the client while the callback waits for the go-file; then the rest."""
    token = "t" + str(int(time.monotonic() * 1000))
    with socket.create_connection(("127.0.0.1", server.port), timeout=1.0) as sock:
        sock.sendall(f"GET /stream?token={token} HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n".encode())
        first = _read_until(sock, b"chunk 1\n", timeout=5.0)
        assert b"HTTP/1.1 200" in first and b"chunk 1\n" in first
        assert b"chunk 2" not in first  # the callback is still waiting: this was streamed
        (storage / "app" / f"go-{token}").write_text("go")
        rest = first + _read_until(sock, b"0\r\n\r\n", timeout=10.0)
    assert b"transfer-encoding: chunked" in rest.lower()
    assert b"chunk 2\n" in rest and b"end" in rest
    assert b"x-app: laravel-test" in rest.lower()


def test_a_client_leaving_mid_stream_does_not_hurt_the_worker(server: Server, storage: Path,
                                                             client: httpx.Client) -> None:
    before = pid(client)
    token = "gone" + str(int(time.monotonic() * 1000))
    with socket.create_connection(("127.0.0.1", server.port), timeout=1.0) as sock:
        sock.sendall(f"GET /stream?token={token} HTTP/1.1\r\nHost: example.test\r\n\r\n".encode())
        assert b"chunk 1\n" in _read_until(sock, b"chunk 1\n", timeout=5.0)
    (storage / "app" / f"go-{token}").write_text("go")  # the callback goes on with nobody listening
    assert client.get("/json").json()["app"] == "fastrr-laravel-test"
    assert pid(client) == before
    assert client.get("/stream").text == "chunk 1\nchunk 2\nend"


def test_binary_file_responses_with_range(client: httpx.Client) -> None:
    sample = (APP / "public" / "sample.txt").read_bytes()
    whole = client.get("/file")
    assert whole.status_code == 200 and whole.content == sample
    assert whole.headers["accept-ranges"] == "bytes" and whole.headers["content-length"] == str(len(sample))
    part = client.get("/file", headers={"Range": "bytes=6-9"})
    assert part.status_code == 206 and part.content == sample[6:10]
    assert part.headers["content-range"] == f"bytes 6-9/{len(sample)}"
    tail = client.get("/file", headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == sample[-5:]
    dl = client.get("/download")
    assert dl.content == sample and dl.headers["content-disposition"] == "attachment; filename=report.txt"
    head = client.head("/download")
    assert head.status_code == 200 and head.content == b""


def test_exception_gives_500_and_the_worker_keeps_serving(client: httpx.Client, server: Server) -> None:
    before = pid(client)
    resp = client.get("/boom")
    assert resp.status_code == 500 and "Server Error" in resp.text  # the app's handler: errors::500
    assert "boom from the test app" in server.output()  # reported to the log channel (stderr)
    assert client.get("/abort").status_code == 404
    assert client.get("/no/such/route").status_code == 404
    assert client.get("/forbidden").status_code == 403
    assert pid(client) == before


@pytest.mark.parametrize("path", ["/exit", "/fatal"])
def test_exit_or_a_fatal_error_replaces_the_worker(client: httpx.Client, server: Server, path: str) -> None:
    before = pid(client)
    resp = client.get(path)
    if path == "/exit":
        assert resp.status_code == 200 and resp.text == "bye"
    else:
        assert resp.status_code == 500 and resp.text == "500 Internal Server Error\n"
    # The worker closes its pipes right after answering, so the server normally replaces it before
    # the next request; a request that still races the exit gets a 502 (php/README.md, limits).
    deadline = time.monotonic() + 15
    after = before
    while after == before and time.monotonic() < deadline:
        resp = client.get("/pid")
        if resp.status_code == 200:
            after = int(resp.json()["pid"])
        else:
            assert resp.status_code == 502, resp.text
            time.sleep(0.1)
    assert after != before
    assert client.get("/json").json()["app"] == "fastrr-laravel-test"



def test_https_from_the_servers_tls(laravel_factory: ServerFactory, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Over fastrr's own TLS listener the app sees HTTPS=on: secure(), https URLs."""
    certs = tmp_path_factory.mktemp("laravel-certs")
    cert, key = certs / "server.pem", certs / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    tls_port = free_port()
    config = fastrr_config(make_storage(tmp_path_factory.mktemp("laravel-tls-storage")))
    config["http"]["ssl"] = {"address": f"127.0.0.1:{tls_port}", "cert": str(cert), "key": str(key)}
    server = laravel_factory.start(config, workers=1)
    server.wait_workers(1)
    deadline = time.monotonic() + 10
    while True:  # the TLS listener opens a moment after the plain one
        try:
            socket.create_connection(("127.0.0.1", tls_port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
    with httpx.Client(base_url=f"https://localhost:{tls_port}", verify=ssl.create_default_context(cafile=str(cert)),
                      timeout=10.0) as https:
        trusted = https.get("/trusted").json()
        assert trusted == {"ip": "127.0.0.1", "secure": True, "host": "localhost", "port": tls_port,
                           "scheme": "https", "url": f"https://localhost:{tls_port}/x"}
        assert https.get("/server").json()["https"] == "on"
        cookie = https.get("/session/put", params={"v": "x"}).headers["set-cookie"]
        assert "laravel_session=" in cookie
    server.stop()


def test_flush_list_forgets_boot_time_singletons(laravel_factory: ServerFactory,
                                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    """FASTRR_LARAVEL_FLUSH: a singleton resolved at boot is rebuilt after each request, instead of kept."""
    config = fastrr_config(make_storage(tmp_path_factory.mktemp("laravel-flush-storage")))
    config["server"]["env"]["FASTRR_LARAVEL_FLUSH"] = "App\\Services\\BootCounter"
    server = laravel_factory.start(config, workers=1)
    server.wait_workers(1)
    with httpx.Client(base_url=server.base, timeout=10.0) as c:
        assert [c.get("/state").json()["boot_requests"] for _ in range(3)] == [1, 1, 1]
    server.stop()
