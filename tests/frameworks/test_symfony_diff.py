"""The Symfony test app under fastrr (Fastrr\\Symfony\\Runtime) against the same app under Debian's
nginx + php-fpm: the same raw requests to both, in the same order, status + body + headers compared.

Normalised, each for the reason php/README.md (Symfony, "Compared with php-fpm") gives:
- the transport headers (Date, Server, Connection, Content-Length, Transfer-Encoding, Keep-Alive,
  X-Powered-By): the servers' own, tests/differential leaves them out too;
- the session id in Set-Cookie: random per server; each server's own id is sent back to it;
- Expires when it is the response time (Symfony's session responses): the clock;
- header order: compared as a sorted list (the fronts order Symfony's headers differently);
- a body shorter than its Content-Length is taken as received: Symfony 5.4's 416 from
  BinaryFileResponse keeps the file's Content-Length over an empty body; nginx passes that on (a
  truncated response), fastrr's front frames the body it got (Content-Length: 0)."""

from __future__ import annotations

import http.client
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServerFactory
from tests.differential.conftest import TRANSPORT_HEADERS, Answer, Peer
from tests.differential.requests import FORM, Req, basic, multipart
from tests.frameworks.symfony.peers import fastrr_peer, start_fpm

SID = re.compile(r"PHPSESSID=([^;]*)")
HTTP_DATE = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$")
MP = "multipart/form-data; boundary=XyZzy-b0undary"


@pytest.fixture(scope="module")
def fpm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    peer = start_fpm(tmp_path_factory.mktemp("sf-fpm") / "srv")
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def fastrr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    base = tmp_path_factory.mktemp("sf-fastrr")
    factory = ServerFactory(base)
    try:
        yield fastrr_peer(factory, base / "var")
    finally:
        factory.close()


def get(name: str, target: str, headers: list[tuple[str, str]] | None = None, method: str = "GET") -> Req:
    return Req(name, method, target, headers or [])


def body(name: str, target: str, data: bytes, ctype: str | None, method: str = "POST", chunked: bool = False) -> Req:
    return Req(name, method, target, [("Content-Type", ctype)] if ctype else [], data, chunked)


def upload(name: str, parts: list[tuple[str, str | None, bytes, str | None]]) -> Req:
    return body(name, "/upload", multipart(parts), MP)


SESSION = [("Cookie", "PHPSESSID={sid}")]

CASES: list[Req] = [
    get("index", "/"),
    get("index, HEAD", "/", method="HEAD"),
    get("route parameter and a service from the container", "/greet/alice"),
    get("route requirement not met: 404", "/greet/Alice"),
    get("explicit front controller path", "/index.php/greet/bob"),
    get("dump, no query", "/dump"),
    get("nested and repeated query keys", "/dump?a=1&b[]=2&b[]=3&c[x]=y&d=1&d=2"),
    get("dots and spaces in query names", "/dump?a.b=1&c%20d=2&e[f.g]=3&h+i=4"),
    get("UTF-8 and bad percent escapes", "/dump?%C3%A9=%C3%BC&x=%ZZ&y=%&z=%e2%82%ac"),
    get("empty query after ?", "/dump?"),
    get("ajax and languages", "/dump", [("X-Requested-With", "XMLHttpRequest"),
                                        ("Accept-Language", "fr-CH, fr;q=0.9, en;q=0.8")]),
    get("cookies, simple", "/dump", [("Cookie", "a=1; b=2")]),
    get("cookies with bracket names", "/dump", [("Cookie", "d[e]=arr; d[f]=x; g[]=1; g[]=2")]),
    get("cookie value escapes and repeats", "/dump", [("Cookie", "v=%20a%2Bb+c; x=1; x=2; c.d=e")]),
    get("basic auth", "/dump", [basic("ada:s3cret")]),
    get("X-Forwarded-* from the trusted peer (REMOTE_ADDR)", "/dump", [("X-Forwarded-For", "203.0.113.9"),
                                                                      ("X-Forwarded-Proto", "https")]),
    get("custom headers", "/dump", [("X-Test", "one"), ("X-Empty", ""), ("Accept", "application/json")]),
    body("urlencoded POST", "/dump?q=1", b"x=1&y[]=2&y[]=3&z=%C3%A9+a", FORM),
    body("urlencoded POST with charset", "/dump", b"x=1&x=2", f"{FORM}; charset=UTF-8"),
    body("JSON POST", "/dump", b'{"a": [1, 2], "b": {"c": null}}', "application/json"),
    body("invalid JSON POST", "/dump", b'{"a": ', "application/json"),
    body("text POST", "/dump", b"just some text", "text/plain"),
    body("POST without a Content-Type", "/dump", b"a=1&b=2", None),
    body("PUT urlencoded (Symfony parses it)", "/dump", b"x=1&y[k]=2", FORM, "PUT"),
    body("PATCH urlencoded", "/dump", b"x=patched", FORM, "PATCH"),
    body("PUT JSON", "/dump", b'{"put": true}', "application/json", "PUT"),
    get("DELETE without a body", "/dump?id=3", method="DELETE"),
    get("OPTIONS", "/dump", method="OPTIONS"),
    body("chunked urlencoded POST", "/dump", b"x=1&long=" + b"z" * 300, FORM, chunked=True),
    upload("multipart fields and a file", [("f1", None, b"v1", None), ("arr[]", None, b"a", None),
                                           ("arr[]", None, b"b", None),
                                           ("up", "hello.txt", b"hello world\n", "text/plain")]),
    upload("multipart nested file arrays", [("docs[a][]", "a1.txt", b"A1", "text/plain"),
                                            ("docs[a][]", "a2.bin", b"\x00\xff", "application/octet-stream"),
                                            ("docs[b]", "C:\\dir\\b.txt", b"B", None)]),
    upload("multipart empty file field", [("up", "", b"", "application/octet-stream"), ("k", None, b"v", None)]),
    upload("multipart dotted names", [("a.b", None, b"1", None), ("f.g", "x.txt", b"X", "text/plain")]),
    get("cookies route sets and clears cookies", "/cookies", [("Cookie", "visited=no; gone=1")]),
    get("session: a new visitor stores a value", "/session/set?value=alpha"),
    get("session: the same visitor reads it", "/session/get", SESSION),
    get("session: another visitor does not see it", "/session/get"),
    get("session: the visitor changes it", "/session/set?value=beta", SESSION),
    get("session: and reads the new value", "/session/get", SESSION),
    get("session: invalidate", "/session/clear", SESSION),
    get("session: the old id, sent again after invalidate", "/session/get", SESSION),
    get("redirect", "/redirect"),
    get("permanent redirect", "/redirect?permanent=1"),
    get("no route: 404", "/missing"),
    get("HEAD of a 404", "/missing", method="HEAD"),
    get("trailing slash: 404", "/dump/"),
    get("an item", "/item/1"),
    get("NotFoundHttpException from a controller", "/item/2"),
    get("an exception: the kernel's 500", "/boom"),
    get("an \\Error: the kernel's 500", "/error"),
    get("HEAD of a JSON route", "/dump?h=1", method="HEAD"),
    get("StreamedResponse", "/stream?n=5"),
    get("BinaryFileResponse", "/file"),
    get("BinaryFileResponse, a range", "/file", [("Range", "bytes=10-19")]),
    get("BinaryFileResponse, an open range", "/file", [("Range", "bytes=4990-")]),
    get("BinaryFileResponse, a range past the end: 416", "/file", [("Range", "bytes=9000-9999")]),
    get("a sub-request and the request stack", "/stack?sub=1"),
    get("exit in a controller", "/exit"),
    get("after exit, the app answers again", "/greet/carol"),
]


@dataclass
class Session:
    sid: str = ""


def normalise(answer: Answer) -> dict[str, Any]:
    headers = []
    for name, value in answer.headers:
        if name == "set-cookie":
            value = SID.sub("PHPSESSID=<session-id>", value)
        elif name == "expires" and HTTP_DATE.match(value):
            value = "<http-date>"
        headers.append((name, value))
    return {"status": answer.status, "headers": sorted(headers), "body": answer.body.decode("utf-8", "replace")}


def exchange(peer: Peer, raw: bytes, method: str, timeout: float = 10.0) -> Answer:
    """Peer.send, but a short body is kept as received (see the module docstring)."""
    with socket.create_connection(("127.0.0.1", peer.port), timeout=timeout) as sock:
        sock.sendall(raw)
        resp = http.client.HTTPResponse(sock, method=method)
        resp.begin()
        try:
            data = resp.read()
        except http.client.IncompleteRead as short:
            data = short.partial
        headers = [(k.lower(), v) for k, v in resp.getheaders() if k.lower() not in TRANSPORT_HEADERS]
        return Answer(resp.status, headers, data)


def send(peer: Peer, req: Req, session: Session) -> dict[str, Any]:
    req = replace(req, headers=[(k, v.replace("{sid}", session.sid)) for k, v in req.headers])
    answer = exchange(peer, req.raw(), req.method)
    for name, value in answer.headers:
        found = SID.search(value) if name == "set-cookie" else None
        if found and found.group(1) != "deleted":
            session.sid = found.group(1)
    return normalise(answer)


def test_fastrr_answers_like_php_fpm(fpm: Peer, fastrr: Peer) -> None:
    sessions = {fpm.name: Session(), fastrr.name: Session()}
    failures = []
    seen: dict[str, dict[str, Any]] = {}
    for req in CASES:
        try:
            expected = send(fpm, req, sessions[fpm.name])
            got = send(fastrr, req, sessions[fastrr.name])
        except Exception as exc:  # one broken exchange must not hide the others
            failures.append(f"{req.name}: {exc!r}")
            continue
        seen[req.name] = got
        if got != expected:
            failures.append(f"{req.name}:\n  fpm:    {expected}\n  fastrr: {got}")
    assert len(CASES) >= 50
    assert not failures, f"{len(failures)} of {len(CASES)} differ:\n" + "\n".join(failures)
    # The comparison is not vacuous: the flows did what they are named after.
    assert ("set-cookie", "PHPSESSID=<session-id>; path=/; httponly; samesite=lax") in \
        seen["session: a new visitor stores a value"]["headers"]
    assert '"value":"alpha"' in seen["session: the same visitor reads it"]["body"]
    assert '"value":null' in seen["session: another visitor does not see it"]["body"]
    assert '"value":"beta"' in seen["session: and reads the new value"]["body"]
    assert seen["an \\Error: the kernel's 500"]["status"] == 500
    assert seen["redirect"]["status"] == 302 and ("location", "/dump?from=redirect") in seen["redirect"]["headers"]
    assert seen["exit in a controller"] == {"status": 200, "headers": [("content-type", "text/html; charset=UTF-8")],
                                            "body": "bye\n"}
    forwarded = seen["X-Forwarded-* from the trusted peer (REMOTE_ADDR)"]["body"]
    assert '"clientIp":"203.0.113.9"' in forwarded and '"secure":true' in forwarded, forwarded
    assert seen["StreamedResponse"]["body"] == "".join(f"chunk {i}\n" for i in range(1, 6))


def test_the_app_saw_what_the_cases_meant(fpm: Peer, fastrr: Peer) -> None:
    """Guards the comparison itself: the interesting answers are what the app is meant to give."""
    for peer in (fpm, fastrr):
        dump = normalise(peer.send(body("f", "/dump", b"x=1", FORM, "PUT").raw()))
        assert '"request":{"x":"1"}' in dump["body"], dump
        up = normalise(peer.send(upload("u", [("up", "h.txt", b"hi", "text/plain")]).raw(), "POST"))
        assert '"valid":true' in up["body"] and '"moved":"hi"' in up["body"], up
        ranged = peer.send(get("r", "/file", [("Range", "bytes=0-3")]).raw())
        assert ranged.status == 206 and ranged.body == Path(__file__).parent.joinpath(
            "symfony/app/files/sample.bin").read_bytes()[:4]
