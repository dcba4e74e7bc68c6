"""SuperglobalsWorker against nginx + php-fpm: the same page, the same request bytes, and every
observable thing compared (superglobals, php://input, $_FILES contents, status, headers, cookies).

The differences fastrr keeps on purpose are applied in `documented()`, each with its reason,
and listed in php/README.md ("Where the page can tell"). Anything else is a failure."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings

from tests.differential.conftest import Answer, Peer
from tests.differential.requests import CASES, Req, generated

COMPARED: dict[str, int] = {}  # peer name -> requests compared, for the closing summary


def observed(answer: Answer, method: str) -> dict[str, Any]:
    seen: dict[str, Any] = {"status": answer.status, "headers": sorted(answer.headers)}
    if method == "HEAD":
        seen["body"] = answer.body
    else:
        try:
            seen["page"] = documented(json.loads(answer.body))
        except ValueError:
            seen["body"] = answer.body
    return seen


def documented(page: dict[str, Any]) -> dict[str, Any]:
    """The page's view minus what php/README.md documents as differing, with the reason."""
    server = page["server"]
    # httpoxy: fastrr never passes a client's Proxy header as HTTP_PROXY (php-fpm behind a stock
    # nginx does; php/README.md). The requests never send one, so nothing is removed here.
    assert "HTTP_PROXY" not in server
    return page


def compare(fpm: Peer, fastrr: Peer, req: Req) -> None:
    raw = req.raw()
    expected = observed(fpm.send(raw, req.method), req.method)
    got = observed(fastrr.send(raw, req.method), req.method)
    if req.chunked_multipart and "page" in expected and "page" in got:
        expected["page"]["server"].pop("CONTENT_LENGTH", None)
        got["page"]["server"].pop("CONTENT_LENGTH", None)
    COMPARED[fastrr.name] = COMPARED.get(fastrr.name, 0) + 1
    assert got == expected, f"{req.name}: {fastrr.name} differs from {fpm.name} for\n{raw[:2000]!r}"


def test_hand_written_cases(fpm: Peer, fastrr_peer: Peer) -> None:
    failures = []
    for req in CASES:
        try:
            compare(fpm, fastrr_peer, req)
        except AssertionError as exc:
            failures.append(str(exc).split("\n")[0])
    assert not failures, f"{len(failures)} of {len(CASES)} differ:\n" + "\n".join(failures)


@settings(max_examples=120, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(req=generated())
def test_generated_requests(fpm: Peer, fastrr_peer: Peer, req: Req) -> None:
    compare(fpm, fastrr_peer, req)


def test_every_request_was_compared(fastrr_peer: Peer) -> None:
    """Runs after the two above for this engine: the suite compared what it says it did."""
    assert COMPARED.get(fastrr_peer.name, 0) >= len(CASES) + 100, COMPARED


def test_several_cookie_headers_are_joined(fpm: Peer, fastrr_peer: Peer) -> None:
    """The one documented difference in cookies: php-fpm behind nginx 1.22 keeps only the last
    Cookie header; fastrr joins them with "; " as nginx ≥ 1.23 (and nginx for HTTP/2) does."""
    req = Req("two Cookie headers", headers=[("Cookie", "a=1; d[x]=1"), ("Cookie", "b=2; a=3")])
    fpm_page = json.loads(fpm.send(req.raw()).body)
    page = json.loads(fastrr_peer.send(req.raw()).body)
    assert fpm_page["cookie"] == {"b": "2", "a": "3"}  # what is lost under nginx 1.22
    assert page["server"]["HTTP_COOKIE"] == "a=1; d[x]=1; b=2; a=3"
    assert page["cookie"] == {"a": "1", "d": {"x": "1"}, "b": "2"}  # PHP's rules: the first a wins
