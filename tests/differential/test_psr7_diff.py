"""Fastrr\\Http\\PSR7Worker (Nyholm) against the server request a PSR-7 app builds from php-fpm's
superglobals (Nyholm's ServerRequestCreator::fromGlobals, written out in psr7_fpm.php): the
same requests as the superglobals suite, every getter compared.

PSR7Worker asks for forms as PHP's SAPIs get them, as SuperglobalsWorker does, so everything
agrees but getHeaders(): PSR-7 keeps every header the client sent, where php-fpm behind nginx
sees only the last of repeated ones and none with '_' in the name, and nginx makes up a
Content-Length for a chunked body. `documented()` applies exactly that (php/README.md lists it);
anything else is a failure."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from hypothesis import HealthCheck, given, settings

from tests.differential.conftest import Peer
from tests.differential.requests import CASES, Req, generated

COMPARED: dict[str, int] = {}


def on_psr7(req: Req) -> Req:
    return dataclasses.replace(req, target=req.target.replace("/page.php", "/psr7.php", 1))


def view(peer: Peer, req: Req) -> dict[str, Any]:
    answer = peer.send(req.raw(), req.method)
    seen: dict[str, Any] = {"status": answer.status}
    if req.method != "HEAD":
        seen["request"] = json.loads(answer.body)
    return seen


def documented(req: Req, fpm: dict[str, Any], fastrr: dict[str, Any]) -> None:
    """fastrr's getHeaders() seen through php-fpm's lossy view, fpm's invented Content-Length dropped."""
    fastrr["headers"] = {name: [values[-1]] for name, values in fastrr["headers"].items() if "_" not in name}
    if req.chunked:
        fpm["headers"].pop("content-length", None)
    if req.chunked_multipart:
        fpm["server"].pop("CONTENT_LENGTH", None)
        fastrr["server"].pop("CONTENT_LENGTH", None)


def compare(fpm: Peer, fastrr: Peer, req: Req) -> None:
    req = on_psr7(req)
    expected, got = view(fpm, req), view(fastrr, req)
    if "request" in expected and "request" in got:
        documented(req, expected["request"], got["request"])
    COMPARED[fastrr.name] = COMPARED.get(fastrr.name, 0) + 1
    assert got == expected, f"{req.name}: {fastrr.name} differs from {fpm.name} for\n{req.raw()[:2000]!r}"


def test_hand_written_cases(fpm: Peer, psr7_peer: Peer) -> None:
    failures = []
    for req in CASES:
        try:
            compare(fpm, psr7_peer, req)
        except AssertionError as exc:
            failures.append(str(exc).split("\n")[0])
    assert not failures, f"{len(failures)} of {len(CASES)} differ:\n" + "\n".join(failures)


@settings(max_examples=120, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(req=generated())
def test_generated_requests(fpm: Peer, psr7_peer: Peer, req: Req) -> None:
    compare(fpm, psr7_peer, req)


def test_every_request_was_compared(psr7_peer: Peer) -> None:
    assert COMPARED.get(psr7_peer.name, 0) >= len(CASES) + 100, COMPARED
