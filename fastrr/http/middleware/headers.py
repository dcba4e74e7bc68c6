"""`headers`: fixed request/response headers and CORS (`http.headers`).

- `request`: each header is *added* to every request PHP sees.
- `response`: each header is *set* (replacing the app's) on every response
  that passes this middleware, PHP's or a local one.
- `cors`: preflights (OPTIONS + Origin + Access-Control-Request-Method) are
  answered here, 204, without PHP. For an allowed origin the answer carries
  Allow-Origin / Allow-Methods / Allow-Headers / Max-Age / Allow-Credentials;
  for a refused one it carries none of them, so the browser blocks the call.
  Actual cross-origin requests get Allow-Origin, Expose-Headers and
  Allow-Credentials on their response; every response to a request with
  Origin gets `Vary: Origin` unless the answer is the literal `*`.

Origins: `allowed_origin` is `*` or a comma list (entries may hold one `*`
wildcard, e.g. `https://*.example.com`); `allowed_origin_regex` is a regular
expression matched against the whole Origin. `*` with allow_credentials
echoes the request's Origin, since browsers refuse `*` with credentials.
"""

from __future__ import annotations

import re
from typing import Any

from fastrr.http.middleware import Middleware, RequestInfo
from fastrr.http.response import Response

DEFAULT_METHODS = "GET,POST,HEAD"


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class Cors:
    def __init__(self, cfg: Any):  # cfg: CorsConfig
        origins = _split(cfg.allowed_origin)
        self.any_origin = "*" in origins
        self.exact = {o.lower() for o in origins if "*" not in o}
        self.wildcards = [re.compile(re.escape(o.lower()).replace(r"\*", "[^/]*") + r"\Z")
                          for o in origins if "*" in o and o != "*"]
        self.regex = re.compile(cfg.allowed_origin_regex) if cfg.allowed_origin_regex else None
        headers = _split(cfg.allowed_headers)
        self.any_header = "*" in headers
        self.headers = {h.lower() for h in headers}
        self.headers_value = ", ".join(headers)
        methods = [m.upper() for m in _split(cfg.allowed_methods or DEFAULT_METHODS)]
        self.any_method = "*" in methods
        self.methods = set(methods)
        self.methods_value = ", ".join(methods)
        self.credentials = cfg.allow_credentials
        self.exposed = ", ".join(_split(cfg.exposed_headers))
        self.max_age = cfg.max_age

    def allowed_origin(self, origin: str) -> str | None:
        """The Access-Control-Allow-Origin value for `origin`, None if refused."""
        low = origin.lower()
        if self.any_origin:
            return origin if self.credentials else "*"
        if low in self.exact or any(w.match(low) for w in self.wildcards) or \
                (self.regex is not None and self.regex.fullmatch(origin)):
            return origin
        return None

    def preflight(self, info: RequestInfo, origin: str) -> Response:
        headers: list[tuple[str, str]] = [("Vary", "Origin, Access-Control-Request-Method, "
                                                   "Access-Control-Request-Headers")]
        allow = self.allowed_origin(origin)
        method = (info.header(b"access-control-request-method") or b"").decode("latin-1").strip().upper()
        requested = (info.header(b"access-control-request-headers") or b"").decode("latin-1")
        asked = [h.strip().lower() for h in requested.split(",") if h.strip()]
        ok = allow is not None and (self.any_method or method in self.methods or method in ("GET", "HEAD", "POST")) \
            and (self.any_header or all(h in self.headers for h in asked))
        if ok:
            assert allow is not None
            headers.append(("Access-Control-Allow-Origin", allow))
            headers.append(("Access-Control-Allow-Methods", method if self.any_method else self.methods_value))
            if asked:
                headers.append(("Access-Control-Allow-Headers",
                                ", ".join(asked) if self.any_header else self.headers_value))
            if self.credentials:
                headers.append(("Access-Control-Allow-Credentials", "true"))
            if self.max_age > 0:
                headers.append(("Access-Control-Max-Age", str(self.max_age)))
        return Response.local(204, headers=headers)

    def decorate(self, info: RequestInfo, resp: Response) -> None:
        origin = info.origin
        if origin is None:
            return
        allow = self.allowed_origin(origin)
        if allow != "*":
            resp.add_vary("Origin")
        if allow is None:
            return
        resp.set("Access-Control-Allow-Origin", allow)
        if self.credentials:
            resp.set("Access-Control-Allow-Credentials", "true")
        if self.exposed:
            resp.set("Access-Control-Expose-Headers", self.exposed)


class HeadersMiddleware(Middleware):
    name = "headers"
    has_response = True

    def __init__(self, cfg: Any):  # cfg: HeadersConfig
        self.add_request = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in cfg.request.items()]
        self.set_response = list(cfg.response.items())
        self.cors = Cors(cfg.cors) if cfg.cors is not None else None

    def request(self, info: RequestInfo) -> Response | None:
        if self.cors is not None:
            origin = info.header(b"origin")
            if origin is not None:
                text = origin.decode("latin-1")
                if info.method == "OPTIONS" and info.header(b"access-control-request-method") is not None:
                    return self._finish_local(self.cors.preflight(info, text))
                info.origin = text
        if self.add_request:
            info.extra_headers.extend(self.add_request)
        return None

    def _finish_local(self, resp: Response) -> Response:
        for name, value in self.set_response:
            resp.set(name, value)
        return resp

    def response(self, info: RequestInfo, resp: Response) -> None:
        if resp.status < 200:
            return
        for name, value in self.set_response:
            resp.set(name, value)
        if self.cors is not None:
            self.cors.decorate(info, resp)
