"""`gzip`: compress responses the client accepts, when it pays.

Negotiation (RFC 9110 §12.5.3): Accept-Encoding with q-values; among the
codings the client accepts with q > 0 we prefer br, then zstd, then gzip
(br and zstd only when their PyPI packages are installed and not turned off
in `http.gzip`). A response is compressed only when all hold:
- status 200 (or another 2xx other than 204/206), not HEAD, no Content-Encoding
  or Content-Range yet, no `Cache-Control: no-transform`;
- a compressible Content-Type (text/*, JSON, JavaScript, XML, SVG, ...);
- at least `http.gzip.min_size` bytes;
- the whole body is known: streamed responses (worker STREAM frames) pass
  through untouched so nothing is buffered, and so do files over
  FILE_LIMIT (small static files are read and compressed).
Whenever the answer could have differed by Accept-Encoding, `Vary:
Accept-Encoding` is added. A compressed response's strong ETag becomes weak
(the bytes differ from the identity representation's).
"""

from __future__ import annotations

import gzip as _gzip
import os
from typing import Any

from fastrr.http.middleware import Middleware, RequestInfo
from fastrr.http.response import Response

try:
    import brotli
except ImportError:  # pragma: no cover - optional
    brotli = None
try:
    import zstandard
except ImportError:  # pragma: no cover - optional
    zstandard = None

FILE_LIMIT = 1 << 20
COMPRESSIBLE_PREFIXES = ("text/",)
COMPRESSIBLE_TYPES = {
    "application/json", "application/javascript", "application/x-javascript", "application/xml",
    "application/xhtml+xml", "application/rss+xml", "application/atom+xml", "application/ld+json",
    "application/manifest+json", "application/graphql-response+json", "application/wasm",
    "application/x-www-form-urlencoded", "image/svg+xml", "image/x-icon", "image/vnd.microsoft.icon",
    "font/ttf", "font/otf", "application/vnd.ms-fontobject",
}


def compressible(content_type: str | None) -> bool:
    if not content_type:
        return False
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind.startswith(COMPRESSIBLE_PREFIXES) or kind in COMPRESSIBLE_TYPES \
        or kind.endswith("+json") or kind.endswith("+xml")


def parse_accept_encoding(value: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in value.split(","):
        coding, _, params = item.strip().partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, val = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(val)
                except ValueError:
                    q = 0.0
        out[coding] = q
    return out


class GzipMiddleware(Middleware):
    name = "gzip"
    has_response = True

    def __init__(self, cfg: Any):  # cfg: GzipConfig
        self.min_size = cfg.min_size
        self.level = cfg.level
        self.offer = []
        if cfg.brotli and brotli is not None:
            self.offer.append("br")
        if cfg.zstd and zstandard is not None:
            self.offer.append("zstd")
        self.offer.append("gzip")

    def request(self, info: RequestInfo) -> Response | None:
        header = info.header(b"accept-encoding")
        if header:
            accepted = parse_accept_encoding(header.decode("latin-1"))
            star = accepted.get("*", 0.0)
            best, best_q = None, 0.0
            for coding in self.offer:
                q = accepted.get(coding, star)
                if coding == "gzip":
                    q = max(q, accepted.get("x-gzip", 0.0))
                if q > best_q:
                    best, best_q = coding, q
            info.encoding = best
        return None

    def response(self, info: RequestInfo, resp: Response) -> None:
        status = resp.status
        if status < 200 or status in (204, 206, 304) or resp.get("Content-Encoding") or resp.get("Content-Range"):
            return
        if not compressible(resp.get("Content-Type")):
            return
        if resp.body_length < self.min_size:
            return
        resp.add_vary("Accept-Encoding")
        if info.encoding is None or resp.streaming or info.method == "HEAD":
            return
        cache_control = resp.get("Cache-Control")
        if cache_control and "no-transform" in cache_control.lower():
            return
        if resp.file is not None:
            if resp.file.count > FILE_LIMIT:
                return
            body = os.pread(resp.file.file, resp.file.count, resp.file.offset)
            resp.file.close()
            resp.file = None
            resp.body = body
        resp.body = self._compress(info.encoding, resp.body)
        resp.set("Content-Encoding", info.encoding)
        etag = resp.get("ETag")
        if etag and not etag.startswith("W/"):
            resp.set("ETag", "W/" + etag)

    def _compress(self, coding: str, data: bytes) -> bytes:
        if coding == "br":
            return brotli.compress(data, quality=4)
        if coding == "zstd":
            return zstandard.ZstdCompressor(level=3).compress(data)
        return _gzip.compress(data, compresslevel=self.level, mtime=0)

