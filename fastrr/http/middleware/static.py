"""`static`: files under `http.static.dir` answered by fastrr, misses go to PHP.

What a hit gets: Content-Type from the extension (Python's mimetypes),
Last-Modified, Accept-Ranges, an ETag when `calculate_etag` (CRC-32 of the
content, cached per inode/size/mtime; `weak: true` gives W/"size-mtime"
instead, which costs no read), 304 for If-None-Match / If-Modified-Since,
206 for one `Range: bytes=` range (several ranges get the whole file, as RFC
9110 allows), 416 for an unsatisfiable one, If-Range honoured. The body is a
FileBody: the front sends it with sendfile, never through Python memory.

What falls through to PHP (as in RoadRunner): methods other than GET/HEAD,
missing files, directories, extensions in `forbid` or not in a non-empty
`allow`, and anything that would resolve outside the directory: `..` is
normalised away before the lookup and symlinks that leave the directory are
refused after it (realpath check), so neither can reach a file outside.
"""

from __future__ import annotations

import mimetypes
import os
import posixpath
import stat
import zlib
from collections import OrderedDict
from email.utils import formatdate, parsedate_to_datetime

from fastrr.http.middleware import Middleware, RequestInfo
from fastrr.http.response import FileBody, Response
from fastrr.http.uploads import file_extension
from fastrr.log import Logger

ETAG_CACHE_SIZE = 4096
ETAG_READ_CHUNK = 1 << 20


def http_date(ts: float) -> str:
    return formatdate(ts, usegmt=True)


def content_type(path: str) -> str:
    kind, _ = mimetypes.guess_type(path, strict=False)
    if kind is None:
        return "application/octet-stream"
    if kind.startswith("text/") or kind in ("application/javascript", "application/json", "image/svg+xml"):
        return kind + "; charset=utf-8"
    return kind


def etag_matches(header: str, etag: str) -> bool:
    """If-None-Match: weak comparison (RFC 9110 §13.1.2)."""
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))


def parse_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """One `bytes=` range → (start, end inclusive); None to ignore the header
    (syntax we do not serve, several ranges); False when unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first == "":
            length = int(last)
            if length <= 0:
                return False
            return max(0, size - length), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start < 0:
        return None
    if start >= size:
        return False
    if end < start:
        return None
    return start, min(end, size - 1)


class StaticMiddleware(Middleware):
    name = "static"
    has_response = False

    def __init__(self, cfg, log: Logger):  # cfg: StaticConfig
        self.log = log
        self.root = os.path.realpath(cfg.dir)
        self.forbid = frozenset(cfg.forbid)
        self.allow = frozenset(cfg.allow)
        self.calculate_etag = cfg.calculate_etag
        self.weak = cfg.weak
        self.extra = list(cfg.response.items())
        self._etags: OrderedDict[tuple[int, int, int, int], str] = OrderedDict()

    def request(self, info: RequestInfo) -> Response | None:
        method = info.method
        if method != "GET" and method != "HEAD":
            return None
        raw = info.path
        if b"\x00" in raw:
            return None
        rel = posixpath.normpath("/" + raw.decode("utf-8", "surrogateescape"))
        if rel == "/" or rel.endswith("/"):
            return None
        ext = file_extension(rel)
        if ext in self.forbid or (self.allow and ext not in self.allow):
            return None
        path = self.root + rel
        try:
            real = os.path.realpath(path)
        except (OSError, ValueError):
            return None
        if not real.startswith(self.root + os.sep):
            return None  # a symlink pointing out of the directory
        try:
            fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except (OSError, ValueError):
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                os.close(fd)
                return None
            return self._serve(info, fd, st, real)
        except BaseException:
            os.close(fd)
            raise

    def _serve(self, info: RequestInfo, fd: int, st: os.stat_result, path: str) -> Response:
        size = st.st_size
        mtime = int(st.st_mtime)
        last_modified = http_date(mtime)
        etag = self._etag(fd, st) if self.calculate_etag else None
        headers = [("Last-Modified", last_modified)]
        if etag:
            headers.append(("ETag", etag))

        inm = info.header(b"if-none-match")
        if inm is not None and etag is not None:
            not_modified = etag_matches(inm.decode("latin-1"), etag)
        elif inm is None:
            not_modified = self._not_modified_since(info.header(b"if-modified-since"), mtime)
        else:
            not_modified = False
        if not_modified:
            os.close(fd)
            resp = Response.local(304, headers=headers)
            resp.headers.extend(self.extra)
            return resp

        headers.insert(0, ("Content-Type", content_type(path)))
        headers.append(("Accept-Ranges", "bytes"))
        headers.extend(self.extra)
        status, offset, count = 200, 0, size
        range_header = info.header(b"range")
        if range_header is not None and self._if_range_ok(info.header(b"if-range"), etag, last_modified):
            span = parse_range(range_header.decode("latin-1"), size)
            if span is False:
                os.close(fd)
                resp = Response.local(416, headers=[("Content-Range", f"bytes */{size}")])
                resp.headers.extend(self.extra)
                return resp
            if span is not None:
                start, end = span  # type: ignore[misc]
                status, offset, count = 206, start, end - start + 1
                headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
        resp = Response.local(status, headers=headers, content_type=None)
        resp.file = FileBody(fd, offset, count)
        return resp

    @staticmethod
    def _not_modified_since(header: bytes | None, mtime: int) -> bool:
        if header is None:
            return False
        try:
            since = parsedate_to_datetime(header.decode("latin-1")).timestamp()
        except (TypeError, ValueError, IndexError):
            return False
        return mtime <= since

    @staticmethod
    def _if_range_ok(header: bytes | None, etag: str | None, last_modified: str) -> bool:
        if header is None:
            return True
        value = header.decode("latin-1").strip()
        if value.startswith('"') or value.startswith("W/"):
            return etag is not None and not etag.startswith("W/") and value == etag
        return value == last_modified

    def _etag(self, fd: int, st: os.stat_result) -> str:
        if self.weak:
            return f'W/"{st.st_size:x}-{st.st_mtime_ns:x}"'
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        tag = self._etags.get(key)
        if tag is not None:
            self._etags.move_to_end(key)
            return tag
        crc = 0
        offset = 0
        while True:
            chunk = os.pread(fd, ETAG_READ_CHUNK, offset)
            if not chunk:
                break
            crc = zlib.crc32(chunk, crc)
            offset += len(chunk)
        tag = f'"{crc:08x}-{st.st_size:x}"'
        self._etags[key] = tag
        if len(self._etags) > ETAG_CACHE_SIZE:
            self._etags.popitem(last=False)
        return tag
