"""The Laravel test app under fastrr (php/bin/fastrr-laravel-worker) against the same app under
Debian's nginx + php-fpm (public/index.php as front controller): the same raw requests to both,
status, headers and body compared after the normalisations below, each listed with its reason in
php/README.md (Laravel, "Compared with php-fpm"). Requests that need a session carry each server's
own session cookie (`{session}`), obtained by logging in as Alice on each."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Server, ServerFactory
from tests.differential.conftest import Answer, Peer
from tests.differential.requests import FORM, Req, basic, mp_req
from tests.frameworks.laravel.harness import laravel_factory, make_storage, start_fastrr, start_fpm

__all__ = ["laravel_factory"]  # the fixture, used by name below

# Cookies the app does not encrypt (App\Http\Middleware\EncryptCookies::$except): compared as sent.
PLAIN_COOKIES = {"plain", "theme"}
SESSION = "{session}"


def _r(name: str, target: str, method: str = "GET", headers: list[tuple[str, str]] | None = None,
       body: bytes | None = None) -> Req:
    return Req(name, method, target, headers or [], body)


def _form(name: str, target: str, body: str, method: str = "POST", ctype: str = FORM) -> Req:
    return Req(name, method, target, [("Content-Type", ctype)], body.encode())


with_session = [("Cookie", f"laravel_session={SESSION}")]

CASES: list[Req] = [
    _r("home", "/"),
    _r("JSON route", "/json"),
    _r("API JSON route, no session", "/api/json"),
    _r("nested query", "/query?a[]=1&a[]=2&b[x][y]=z&c=1&c=2"),
    _r("query names PHP rewrites", "/query?dots.and%20spaces=1&plus=a+b&enc=%C3%A9&.lead=1"),
    _r("empty query", "/query?"),
    _r("bad escapes and bare names", "/query?x=%ZZ&y&=z"),
    _r("route parameter and a view", "/hello/World"),
    _r("UTF-8 route parameter", "/hello/%C3%A9l%C3%A8ve"),
    _form("urlencoded POST", "/form", "x=1&y[]=2&y[]=3&z=%C3%A9+a"),
    _form("urlencoded POST with charset", "/form", "x=1", ctype=f"{FORM}; charset=UTF-8"),
    _form("urlencoded PUT", "/form", "x=1&y=2", method="PUT"),
    _form("urlencoded PATCH", "/form", "x=1", method="PATCH"),
    _form("urlencoded DELETE", "/form", "id=3", method="DELETE"),
    _form("method spoofing with _method", "/form", "_method=PUT&x=1"),
    _form("text POST", "/form", "just text", ctype="text/plain"),
    _form("JSON to a form route", "/form", '{"a": [1, 2], "b": "c"}', ctype="application/json"),
    _form("JSON body", "/json-body", '{"a": 1, "b": {"c": [1, 2]}}', ctype="application/json"),
    _form("JSON body with charset", "/json-body", '{"a": "é"}', ctype="application/json; charset=utf-8"),
    _form("invalid JSON body", "/json-body", '{"a": ', ctype="application/json"),
    _form("JSON PUT to a POST route", "/json-body", '{"a": 1}', method="PUT", ctype="application/json"),
    mp_req("upload: a file and fields", [("title", None, b"report", None), ("tags[]", None, b"a", None),
                                         ("doc", "report.pdf", b"%PDF-1.4 \x00\xff data", "application/pdf")],
           target="/upload"),
    mp_req("upload: nested file arrays", [("docs[a][]", "a1.txt", b"A1", "text/plain"),
                                          ("docs[a][]", "a2.bin", b"\x00\xff", "application/octet-stream"),
                                          ("docs[b]", "b.txt", b"B", None)], target="/upload"),
    mp_req("upload: an empty file field", [("doc", "", b"", "application/octet-stream"), ("x", None, b"1", None)],
           target="/upload"),
    mp_req("upload: fields only", [("a.b", None, b"1", None), ("c[d]", None, b"2", None)], target="/upload"),
    mp_req("upload: a file with a path", [("doc", "C:\\dir\\win.txt", b"w", "text/plain")], target="/upload"),
    _r("plain cookies", "/cookies", headers=[("Cookie", "plain=abc; theme=dark")]),
    _r("cookie names PHP nests or rewrites", "/cookies", headers=[("Cookie", "plain=1; a[b]=c; c.d=e")]),
    _r("a cookie that does not decrypt", "/cookies", headers=[("Cookie", "secret=not-encrypted; plain=x")]),
    _r("setting cookies", "/cookies/set"),
    _r("session put without a session", "/session/put?v=hello"),
    _form("login, wrong password", "/login", "email=alice%40example.test&password=nope"),
    _form("login, unknown user", "/login", "email=eve%40example.test&password=x"),
    _r("me as a guest", "/me"),
    _r("private as a guest: redirect to login", "/private"),
    _r("the login page", "/login"),
    _r("me with Alice's session", "/me", headers=with_session),
    _r("private with Alice's session", "/private", headers=with_session),
    _r("session data before", "/session", headers=with_session),
    _r("session put", "/session/put?v=stored", headers=with_session),
    _r("session data after", "/session", headers=with_session),
    _r("locale changed by a request", "/locale/fr"),
    _r("locale of the next request", "/locale"),
    _r("redirect", "/redirect"),
    _r("redirect away, 301", "/redirect/away"),
    _r("abort(404)", "/abort"),
    _r("no such route", "/no/such/route"),
    _r("abort(403)", "/forbidden"),
    _r("an exception: 500", "/boom"),
    _r("wrong method: 405", "/json", method="POST"),
    _r("OPTIONS", "/json", method="OPTIONS"),
    _r("HEAD of a JSON route", "/json", method="HEAD"),
    _r("HEAD of a file", "/file", method="HEAD"),
    _r("a file", "/file"),
    _r("a file, first bytes", "/file", headers=[("Range", "bytes=0-9")]),
    _r("a file, last bytes", "/file", headers=[("Range", "bytes=-5")]),
    _r("a file, range past the end", "/file", headers=[("Range", "bytes=500-")]),
    _r("a file, two ranges", "/file", headers=[("Range", "bytes=0-1,4-5")]),
    _r("a download", "/download"),
    _r("a streamed response", "/stream"),
    _r("trusted proxy: direct", "/trusted"),
    _r("trusted proxy: forwarded", "/trusted", headers=[
        ("X-Forwarded-For", "203.0.113.9, 127.0.0.1"), ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "shop.example"), ("X-Forwarded-Port", "443")]),
    _r("server vars, basic auth, headers", "/server?q=1", headers=[basic("user:pa:ss"), ("X-Test", "t"),
                                                                    ("User-Agent", "diff/1.0")]),
    _r("bearer token", "/server", headers=[("Authorization", "Bearer tok")]),
    _r("printed output before the response", "/echo"),
    _r("a transaction left open", "/db/begin"),
    _r("the next request's transaction level", "/db/level"),
    _r("logout", "/logout", method="POST", headers=with_session),
    _r("me after logout", "/me", headers=with_session),
]

def normalise(answer: Answer) -> dict[str, Any]:
    """What may differ between two correct servers, replaced (php/README.md lists each reason):
    encrypted cookie values (random IV) and the session id (random), cookie expiry dates and
    Max-Age to ±5 s (clock)."""
    headers = []
    for name, value in answer.headers:
        if name == "set-cookie":
            cookie, _, attrs = value.partition(";")
            cname, _, cvalue = cookie.partition("=")
            if cname not in PLAIN_COOKIES:
                cvalue = "<encrypted>"
            attrs = re.sub(r"expires=[^;]*", "expires=<date>", attrs)
            # Max-Age is the expiry minus the clock: 7199 or 7200 as a second ticks over
            attrs = re.sub(r"Max-Age=(\d+)", lambda m: f"Max-Age=~{round(int(m.group(1)) / 10) * 10}", attrs)
            value = f"{cname}={cvalue};" + attrs
        headers.append((name, value))
    return {"status": answer.status, "headers": headers, "body": answer.body.decode("utf-8", "replace")}


def session_of(peer: Peer) -> str:
    """Logs in as Alice on one server and returns the value of its session cookie."""
    req = _form("login", "/login", "email=alice%40example.test&password=secret-a")
    answer = peer.send(req.raw(), req.method)
    assert answer.status == 200, answer.body
    for name, value in answer.headers:
        if name == "set-cookie" and value.startswith("laravel_session="):
            return value.split(";", 1)[0].split("=", 1)[1]
    raise AssertionError(f"{peer.name}: no session cookie after login: {answer.headers}")


def on(req: Req, session: str) -> Req:
    return dataclasses.replace(req, headers=[(k, v.replace(SESSION, session)) for k, v in req.headers])


@pytest.fixture(scope="module")
def fpm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    base = tmp_path_factory.mktemp("laravel-fpm")
    peer = start_fpm(base / "srv", make_storage(base / "storage"))
    yield peer
    peer.stop()


@pytest.fixture(scope="module", params=["c", "python"])
def fastrr_peer(request: pytest.FixtureRequest, laravel_factory: ServerFactory,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    """fastrr with one Laravel worker, both HTTP fronts (the C engine and the Python one)."""
    storage = make_storage(tmp_path_factory.mktemp("laravel-fastrr-storage"))
    server: Server = start_fastrr(laravel_factory, storage, workers=1, log_level="warn", engine=request.param)
    yield Peer(f"fastrr (Laravel worker, {request.param} engine)", server.port, [], [server.err_path])
    server.stop()


def test_every_route_answers_as_under_php_fpm(fpm: Peer, fastrr_peer: Peer) -> None:
    sessions = {fpm.name: session_of(fpm), fastrr_peer.name: session_of(fastrr_peer)}
    failures = []
    for req in CASES:
        expected = normalise(fpm.send(on(req, sessions[fpm.name]).raw(), req.method))
        got = normalise(fastrr_peer.send(on(req, sessions[fastrr_peer.name]).raw(), req.method))
        if got != expected:
            failures.append(f"{req.name}:\n  php-fpm {expected}\n  fastrr  {got}")
    assert not failures, f"{len(failures)} of {len(CASES)} differ:\n" + "\n".join(failures)
    assert len(CASES) >= 50


def test_the_cases_cover_what_the_issue_asks() -> None:
    """query, form, JSON, upload, cookies, session, auth, 404, 500, redirect, HEAD: each is there."""
    names = " ".join(r.name for r in CASES).lower()
    for word in ("query", "urlencoded", "json", "upload", "cookie", "session", "login", "404", "500",
                 "redirect", "head", "range", "stream"):
        assert word in names, word
