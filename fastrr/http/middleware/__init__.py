"""`http.middleware`: the ordered list of request/response filters.

Order follows RoadRunner: each middleware in the list wraps the ones before
it, so the **last** one listed is the outermost. With
`[static, headers, gzip]` a request meets gzip, then headers, then static;
a response (from PHP, or a file static served) passes static → headers → gzip.
A middleware that answers a request itself (static hit, CORS preflight) sends
its answer back out through the middleware outside it only.

`http_metrics` is not a filter: the front counts requests (request_metrics.py).
Unknown names (RoadRunner has otel, cache, ...) are warned about
once and skipped.

Rules of this file:
- No middleware object keeps per-request state: whatever a request needs
  later (say, the chosen content coding) lives in its RequestInfo.
- The hot path never sees this module: with no middleware configured the
  front does exactly what it did before (`HttpServer.pipeline is None`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from fastrr import _core
from fastrr.http.response import Response

if TYPE_CHECKING:
    from fastrr.config import HttpConfig
    from fastrr.log import Logger


class RequestInfo:
    """What middleware may read and change about one request."""

    __slots__ = ("req", "remote", "scheme", "protocol", "extra_headers", "encoding", "origin",
                 "_path")

    def __init__(self, req: _core.Request, remote: str, scheme: str, protocol: str):
        self.req = req
        self.remote = remote  # proxy_ip_parser may replace it
        self.scheme = scheme
        self.protocol = protocol  # "HTTP/1.1", "HTTP/2.0", ...
        self.extra_headers: list[tuple[bytes, bytes]] = []  # added by the headers middleware
        self.encoding: str | None = None  # content coding chosen by gzip
        self.origin: str | None = None  # CORS: the allowed Origin to answer with
        self._path: bytes | None = None

    @property
    def method(self) -> str:
        return self.req.method

    def header(self, name: bytes) -> bytes | None:
        return self.req.get_header(name)

    @property
    def path(self) -> bytes:
        """The percent-decoded path of the target (absolute-form targets too)."""
        if self._path is None:
            target = self.req.target
            if "://" in target:
                rest = target.split("://", 1)[1]
                slash = rest.find("/")
                target = rest[slash:] if slash >= 0 else "/"
            path = target.split("?", 1)[0].split("#", 1)[0]
            self._path = unquote_to_bytes(path)
        return self._path


class Middleware:
    """Base: both hooks do nothing. `has_response` tells the front whether it
    must parse worker responses for this middleware."""

    name = ""
    has_response = False

    def request(self, info: RequestInfo) -> Response | None:
        return None

    def response(self, info: RequestInfo, resp: Response) -> None:
        return None


class Pipeline:
    def __init__(self, chain: list[Middleware]):
        self.chain = chain
        self.has_response = any(mw.has_response for mw in chain)
        self._request_order = list(reversed(chain))

    def request(self, info: RequestInfo) -> tuple[Response | None, int]:
        """Run request hooks outermost first; returns (local answer or None,
        index in `chain` of the middleware that answered)."""
        for mw in self._request_order:
            resp = mw.request(info)
            if resp is not None:
                return resp, self.chain.index(mw)
        return None, -1

    def response(self, info: RequestInfo, resp: Response, answered_by: int = -1) -> None:
        """Response hooks innermost first, skipping the answering middleware and those inside it."""
        for mw in self.chain[answered_by + 1:]:
            if mw.has_response:
                mw.response(info, resp)

    def rewrite(self, info: RequestInfo, max_head: int) -> _core.Request:
        """The request with the headers middleware's additions, re-parsed by the C
        parser (so the context encoder sees them like any other header)."""
        if not info.extra_headers:
            return info.req
        req = info.req
        lines = [b"%s %s HTTP/1.%d\r\n" % (req.method.encode(), req.target.encode("latin-1"), req.http_minor)]
        for name, value in req.headers:
            lines.append(b"%s: %s\r\n" % (name, value))
        for name, value in info.extra_headers:
            lines.append(b"%s: %s\r\n" % (name, value))
        lines.append(b"\r\n")
        try:
            new = _core.parse_request(b"".join(lines), max(max_head, 1 << 20))
        except _core.HttpError:
            return req
        return new if new is not None else req


KNOWN = ("static", "gzip", "headers", "proxy_ip_parser", "sendfile", "http_metrics")


def build_pipeline(cfg: HttpConfig, log: Logger) -> Pipeline | None:
    from fastrr.http.middleware.gzip import GzipMiddleware
    from fastrr.http.middleware.headers import HeadersMiddleware
    from fastrr.http.middleware.proxy_ip import ProxyIpMiddleware
    from fastrr.http.middleware.sendfile import SendfileMiddleware
    from fastrr.http.middleware.static import StaticMiddleware

    factories: dict[str, Any] = {
        "static": lambda: StaticMiddleware(cfg.static, log),
        "gzip": lambda: GzipMiddleware(cfg.gzip),
        "headers": lambda: HeadersMiddleware(cfg.headers),
        "proxy_ip_parser": lambda: ProxyIpMiddleware(cfg.trusted_subnets),
        "sendfile": lambda: SendfileMiddleware(log),
    }
    chain: list[Middleware] = []
    for name in cfg.middleware:
        if name == "http_metrics":
            continue  # counted by the front itself (fastrr/http/request_metrics.py), not a filter
        factory = factories.get(name)
        if factory is None:
            log.warn("http.middleware: not supported by fastrr, skipped", middleware=name)
            continue
        chain.append(factory())
    return Pipeline(chain) if chain else None
