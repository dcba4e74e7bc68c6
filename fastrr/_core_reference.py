"""Pure-Python twin of :mod:`fastrr._core`, used only by the tests as a
differential oracle.

Every function here has the same semantics as its C counterpart, including
the order in which problems are detected (so that the HttpError reasons
match). It is written for clarity, not speed; nothing in the server imports
it. When the two disagree, one of them has a bug: decide from the RFC and
csrc/README.md which one, and fix it.
"""

from __future__ import annotations

import email.utils
import zlib
from collections.abc import Sequence

FLAG_CONTROL = 0x01
FLAG_RAW = 0x04
FLAG_JSON = 0x08
FLAG_MSGPACK = 0x10
FLAG_GOB = 0x20
FLAG_ERROR = 0x40
FLAG_PROTO = 0x80
STREAM = 0x01
STOP = 0x02
PING = 0x04
PONG = 0x08
BODY_OTHER = 0
BODY_URLENCODED = 1
BODY_MULTIPART = 2
LAST_CHUNK = b"0\r\n\r\n"

MAX_HEADERS = 100
MAX_LEADING_EMPTY_LINES = 4

CR, LF, SP, HT = 0x0D, 0x0A, 0x20, 0x09


class HttpError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class FrameError(Exception):
    pass


# ---------------------------------------------------------------- char sets

TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
FIELD_VCHAR_WS = frozenset([HT, *range(0x20, 0x7F), *range(0x80, 0x100)])
TARGET_CHAR = frozenset([*range(0x21, 0x7F), *range(0x80, 0x100)])
QDTEXT = frozenset([HT, SP, 0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F), *range(0x80, 0x100)])
QUOTED_PAIR_CHAR = frozenset([HT, SP, *range(0x21, 0x7F), *range(0x80, 0x100)])
COOKIE_VALUE_CHAR = frozenset(c for c in range(0x20, 0x7F) if c not in b'";\\')
HOST_CHAR = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!$%&'()*+,-.:;=[]_~")
HEXDIGITS = b"0123456789abcdefABCDEF"
DIGITS = b"0123456789"
OWS = (SP, HT)


def _lower(b: bytes) -> bytes:
    # ASCII only, like the C side (bytes.lower() is ASCII-only too).
    return b.lower()


def _trim_ows(b: bytes) -> bytes:
    return b.strip(b" \t")


# ------------------------------------------------------------------ request


class Request:
    """Same attributes as fastrr._core.Request."""

    def __init__(self) -> None:
        self.method = ""
        self.target = ""
        self.http_minor = 1
        self.head_len = 0
        self.content_length = -1
        self.chunked = False
        self.keep_alive = False
        self.expect_continue = False
        self.body_kind = BODY_OTHER
        self.host: str | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._target_form = 0

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return list(self._headers)

    def get_header(self, name: bytes) -> bytes | None:
        low = _lower(bytes(name))
        for n, v in self._headers:
            if _lower(n) == low:
                return v
        return None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target!r} HTTP/1.{self.http_minor}>"


class _Incomplete(Exception):
    pass


TARGET_ORIGIN, TARGET_ABSOLUTE, TARGET_ASTERISK, TARGET_AUTHORITY = 0, 1, 2, 3


def _classify_target(method: bytes, t: bytes) -> int | None:
    if method == b"CONNECT":
        colon = t.rfind(b":")
        if colon <= 0 or colon + 1 == len(t):
            return None
        if not all(c in DIGITS for c in t[colon + 1 :]):
            return None
        if not all(c in HOST_CHAR for c in t[:colon]):
            return None
        return TARGET_AUTHORITY
    if t[0] == ord("/"):
        return TARGET_ORIGIN
    if t == b"*":
        return TARGET_ASTERISK if method == b"OPTIONS" else None
    if not chr(t[0]).isascii() or not chr(t[0]).isalpha():
        return None
    i = 1
    while i < len(t) and (chr(t[i]).isascii() and (chr(t[i]).isalnum() or t[i] in b"+-.")):
        i += 1
    if t[i : i + 3] != b"://":
        return None
    return TARGET_ABSOLUTE


def _parse_content_length(v: bytes, cl: int) -> int:
    """Returns the new content length; raises HttpError."""
    i, n = 0, len(v)
    while True:
        while i < n and v[i] in OWS:
            i += 1
        s = i
        x = 0
        while i < n and v[i] in DIGITS:
            x = x * 10 + (v[i] - 48)
            if x > 1 << 62:
                raise HttpError(400, "invalid content-length")
            i += 1
        if i == s:
            raise HttpError(400, "invalid content-length")
        while i < n and v[i] in OWS:
            i += 1
        if cl >= 0 and cl != x:
            raise HttpError(400, "conflicting content-length")
        cl = x
        if i == n:
            return cl
        if v[i] != ord(","):
            raise HttpError(400, "invalid content-length")
        i += 1


def _connection_options(v: bytes) -> tuple[bool, bool]:
    close = keep = False
    for part in v.split(b","):
        tok = _lower(_trim_ows(part))
        if tok == b"close":
            close = True
        elif tok == b"keep-alive":
            keep = True
    return close, keep


def _match(d: bytes, p: int, lit: bytes) -> int:
    avail = d[p : p + len(lit)]
    if avail != lit[: len(avail)]:
        return -1
    return 1 if len(avail) == len(lit) else 0


def _parse_head(d: bytes) -> Request:  # noqa: C901 - mirrors the C state machine
    n = len(d)
    p = 0
    i = 0
    while True:
        if p == n:
            raise _Incomplete
        if d[p] == CR:
            if p + 1 == n:
                raise _Incomplete
            if d[p + 1] != LF:
                raise HttpError(400, "bare CR")
            if i == MAX_LEADING_EMPTY_LINES:
                raise HttpError(400, "too many empty lines before request line")
            p += 2
            i += 1
            continue
        if d[p] == LF:
            raise HttpError(400, "bare LF")
        break

    m = p
    while p < n and d[p] in TCHAR:
        p += 1
    if p == n:
        raise _Incomplete
    if d[p] != SP:
        if p != m and d[p] in (CR, LF):
            raise HttpError(400, "invalid request line")
        raise HttpError(400, "invalid method")
    if p == m:
        raise HttpError(400, "invalid method")
    method = d[m:p]

    p += 1
    t = p
    while p < n and d[p] in TARGET_CHAR:
        p += 1
    if p == n:
        raise _Incomplete
    if d[p] != SP:
        raise HttpError(400, "invalid request line" if d[p] in (CR, LF) else "invalid request target")
    if p == t:
        raise HttpError(400, "invalid request target")
    target = d[t:p]
    form = _classify_target(method, target)
    if form is None:
        raise HttpError(400, "invalid request target")

    p += 1
    r = _match(d, p, b"HTTP/")
    if r < 0:
        raise HttpError(400, "invalid HTTP version")
    if r == 0:
        raise _Incomplete
    p += 5
    r = _match(d, p, b"1.")
    if r < 0:
        raise HttpError(400, "unsupported HTTP version" if d[p] in DIGITS else "invalid HTTP version")
    if r == 0:
        raise _Incomplete
    p += 2
    if p == n:
        raise _Incomplete
    if d[p] in b"01":
        minor = d[p] - 48
    else:
        raise HttpError(400, "unsupported HTTP version" if d[p] in DIGITS else "invalid HTTP version")
    p += 1
    if p == n:
        raise _Incomplete
    if d[p] == CR:
        if p + 1 == n:
            raise _Incomplete
        if d[p + 1] != LF:
            raise HttpError(400, "bare CR")
        p += 2
    elif d[p] == LF:
        raise HttpError(400, "bare LF")
    else:
        raise HttpError(400, "unsupported HTTP version" if d[p] in DIGITS else "invalid HTTP version")

    req = Request()
    headers: list[tuple[bytes, bytes]] = []
    host_count = te_count = 0
    cl_seen = conn_close = conn_keep = expect = ctype_seen = False
    cl = -1
    host_value = b""
    while True:
        if p == n:
            raise _Incomplete
        c = d[p]
        if c == CR:
            if p + 1 == n:
                raise _Incomplete
            if d[p + 1] != LF:
                raise HttpError(400, "bare CR")
            p += 2
            break
        if c == LF:
            raise HttpError(400, "bare LF")
        if c in OWS:
            raise HttpError(400, "obs-fold in header section" if headers else "whitespace before first header")
        ns = p
        while p < n and d[p] in TCHAR:
            p += 1
        if p == n:
            raise _Incomplete
        if d[p] != ord(":"):
            raise HttpError(400, "whitespace before colon" if d[p] in OWS else "invalid header name")
        if p == ns:
            raise HttpError(400, "invalid header name")
        name = d[ns:p]
        p += 1
        while p < n and d[p] in OWS:
            p += 1
        vs = p
        while p < n and d[p] in FIELD_VCHAR_WS:
            p += 1
        if p == n:
            raise _Incomplete
        if d[p] == CR:
            if p + 1 == n:
                raise _Incomplete
            if d[p + 1] != LF:
                raise HttpError(400, "bare CR")
        elif d[p] == LF:
            raise HttpError(400, "bare LF")
        else:
            raise HttpError(400, "invalid header value")
        value = d[vs:p].rstrip(b" \t")
        p += 2
        if len(headers) == MAX_HEADERS:
            raise HttpError(431, "too many headers")
        headers.append((name, value))

        low = _lower(name)
        if low == b"host":
            host_count += 1
            if host_count == 1:
                host_value = value
        elif low == b"expect":
            if _lower(value) == b"100-continue":
                expect = True
        elif low == b"connection":
            c1, k1 = _connection_options(value)
            conn_close |= c1
            conn_keep |= k1
        elif low == b"content-type":
            if not ctype_seen:
                ctype_seen = True
                lv = _lower(value)
                if b"application/x-www-form-urlencoded" in lv:
                    req.body_kind = BODY_URLENCODED
                elif b"multipart/form-data" in lv:
                    req.body_kind = BODY_MULTIPART
        elif low == b"content-length":
            cl_seen = True
            cl = _parse_content_length(value, cl)
        elif low == b"transfer-encoding":
            te_count += 1
            if te_count > 1:
                raise HttpError(400, "multiple transfer-encoding headers")
            if _lower(value) != b"chunked":
                raise HttpError(400, "unsupported transfer-encoding")

    if host_count > 1:
        raise HttpError(400, "multiple host headers")
    if host_count == 0 and minor == 1:
        raise HttpError(400, "missing host header")
    if host_count and not all(c in HOST_CHAR for c in host_value):
        raise HttpError(400, "invalid host header")
    if te_count:
        if cl_seen:
            raise HttpError(400, "content-length and transfer-encoding both present")
        if minor == 0:
            raise HttpError(400, "transfer-encoding in HTTP/1.0 request")
        req.chunked = True

    req.method = method.decode("ascii")
    req.target = target.decode("latin-1")
    req.http_minor = minor
    req.head_len = p
    req.content_length = cl
    req.keep_alive = (not conn_close) if minor == 1 else (conn_keep and not conn_close)
    req.expect_continue = expect if minor == 1 else False
    req.host = host_value.decode("latin-1") if host_count else None
    req._headers = headers
    req._target_form = form
    return req


def parse_request(buf: bytes | bytearray | memoryview, max_head: int) -> Request | None:
    if max_head < 0:
        raise ValueError("max_head must be >= 0")
    max_head = min(max_head, 0xFFFFFFFF)
    data = bytes(buf)
    capped = len(data) > max_head
    try:
        return _parse_head(data[:max_head] if capped else data)
    except _Incomplete:
        if capped:
            raise HttpError(431, "request header fields too large") from None
        return None


# ------------------------------------------------------------------ chunked


class ChunkedDecoder:
    """Byte-at-a-time twin of the C state machine."""

    MAX_LINE = 4096
    MAX_TRAILER = 16384

    def __init__(self, max_size: int) -> None:
        if max_size < 0:
            raise ValueError("max_size must be >= 0")
        self.max_size = max_size
        self._state = "size_start"
        self._size = 0
        self._total = 0
        self._line = 0
        self._trailer = 0
        self._out = bytearray()
        self._error: HttpError | None = None

    @property
    def done(self) -> bool:
        return self._state == "done" and self._error is None

    def take(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def _fail(self, status: int, reason: str) -> HttpError:
        self._state = "done"
        self._error = HttpError(status, reason)
        return self._error

    def feed(self, data: bytes | bytearray | memoryview) -> int:  # noqa: C901
        if self._error is not None:
            raise HttpError(self._error.status, self._error.reason)
        data = bytes(data)
        p, n = 0, len(data)
        line_states = ("size_start", "size", "size_bws", "ext_pre_name", "ext_name", "ext_post_name",
                       "ext_pre_value", "ext_token", "ext_quoted", "ext_quoted_esc", "ext_post_value", "size_lf")
        trailer_states = ("trailer_start", "trailer_name", "trailer_value", "trailer_lf", "final_lf")
        while p < n and self._state != "done":
            st = self._state
            c = data[p]
            if st == "data":
                k = min(n - p, self._size)
                self._out += data[p : p + k]
                p += k
                self._size -= k
                self._total += k
                if self._size == 0:
                    self._state = "data_cr"
                continue
            if st in line_states:
                self._line += 1
                if self._line > self.MAX_LINE:
                    raise self._fail(400, "chunk size line too long")
            if st in trailer_states:
                self._trailer += 1
                if self._trailer > self.MAX_TRAILER:
                    raise self._fail(400, "trailer section too large")
            if st in ("size_start", "size"):
                if c in HEXDIGITS:
                    if self._size > (2**64 - 1) >> 4:
                        raise self._fail(400, "chunk size overflow")
                    self._size = (self._size << 4) | int(chr(c), 16)
                    if self._size > self.max_size - self._total:
                        raise self._fail(413, "request body too large")
                    st = "size"
                elif st == "size_start":
                    raise self._fail(400, "bare LF" if c == LF else "invalid chunk size")
                elif c == ord(";"):
                    st = "ext_pre_name"
                elif c in OWS:
                    st = "size_bws"
                elif c == CR:
                    st = "size_lf"
                else:
                    raise self._fail(400, "bare LF" if c == LF else "invalid chunk size")
            elif st == "size_bws":
                if c == ord(";"):
                    st = "ext_pre_name"
                elif c not in OWS:
                    raise self._fail(400, "invalid chunk size")
            elif st == "ext_pre_name":
                if c in TCHAR:
                    st = "ext_name"
                elif c not in OWS:
                    raise self._fail(400, "invalid chunk extension")
            elif st in ("ext_name", "ext_post_name"):
                if st == "ext_name" and c in TCHAR:
                    pass
                elif c in OWS:
                    st = "ext_post_name"
                elif c == ord("="):
                    st = "ext_pre_value"
                elif c == ord(";"):
                    st = "ext_pre_name"
                elif c == CR:
                    st = "size_lf"
                else:
                    raise self._fail(400, "bare LF" if c == LF else "invalid chunk extension")
            elif st == "ext_pre_value":
                if c == ord('"'):
                    st = "ext_quoted"
                elif c in TCHAR:
                    st = "ext_token"
                elif c not in OWS:
                    raise self._fail(400, "invalid chunk extension")
            elif st in ("ext_token", "ext_post_value"):
                if st == "ext_token" and c in TCHAR:
                    pass
                elif c in OWS:
                    st = "ext_post_value"
                elif c == ord(";"):
                    st = "ext_pre_name"
                elif c == CR:
                    st = "size_lf"
                else:
                    raise self._fail(400, "bare LF" if c == LF else "invalid chunk extension")
            elif st == "ext_quoted":
                if c == ord('"'):
                    st = "ext_post_value"
                elif c == ord("\\"):
                    st = "ext_quoted_esc"
                elif c not in QDTEXT:
                    raise self._fail(400, "invalid chunk extension")
            elif st == "ext_quoted_esc":
                if c not in QUOTED_PAIR_CHAR:
                    raise self._fail(400, "invalid chunk extension")
                st = "ext_quoted"
            elif st == "size_lf":
                if c != LF:
                    raise self._fail(400, "bare CR")
                self._line = 0
                st = "data" if self._size else "trailer_start"
            elif st == "data_cr":
                if c != CR:
                    raise self._fail(400, "missing CRLF after chunk data")
                st = "data_lf"
            elif st == "data_lf":
                if c != LF:
                    raise self._fail(400, "missing CRLF after chunk data")
                st = "size_start"
            elif st == "trailer_start":
                if c == CR:
                    st = "final_lf"
                elif c in TCHAR:
                    st = "trailer_name"
                elif c == LF:
                    raise self._fail(400, "bare LF")
                elif c in OWS:
                    raise self._fail(400, "obs-fold in trailer section")
                else:
                    raise self._fail(400, "invalid trailer field name")
            elif st == "trailer_name":
                if c == ord(":"):
                    st = "trailer_value"
                elif c not in TCHAR:
                    raise self._fail(400, "whitespace before colon" if c in OWS else "invalid trailer field name")
            elif st == "trailer_value":
                if c == CR:
                    st = "trailer_lf"
                elif c == LF:
                    raise self._fail(400, "bare LF")
                elif c not in FIELD_VCHAR_WS:
                    raise self._fail(400, "invalid trailer field value")
            elif st == "trailer_lf":
                if c != LF:
                    raise self._fail(400, "bare CR")
                st = "trailer_start"
            elif st == "final_lf":
                if c != LF:
                    raise self._fail(400, "bare CR")
                st = "done"
            self._state = st
            p += 1
        return p


# ------------------------------------------------------------------- frames


def crc32(data: bytes | bytearray | memoryview) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def encode_frame(flags: int, payload: bytes | bytearray | memoryview = b"",
                 options: Sequence[int] = (), byte10: int = 0) -> bytes:
    if not 0 <= flags <= 255 or not 0 <= byte10 <= 255:
        raise ValueError("flags and byte10 must be in 0..255")
    if len(options) > 10:
        raise ValueError(f"at most 10 options, got {len(options)}")
    if any(not 0 <= o <= 0xFFFFFFFF for o in options):
        raise ValueError("options must be in 0..2**32-1")
    payload = bytes(payload)
    head = bytes([0x10 | (3 + len(options)), flags]) + len(payload).to_bytes(4, "little")
    head += crc32(head).to_bytes(4, "little") + bytes([byte10, 0])
    head += b"".join(o.to_bytes(4, "little") for o in options)
    return head + payload


COULD_NOT_OP = b"Could not op"
STDOUT_MSG = "validation failed on the message sent to STDOUT: "


class FrameReader:
    def __init__(self, max_payload: int) -> None:
        if max_payload < 0:
            raise ValueError("max_payload must be >= 0")
        self.max_payload = max_payload
        self._buf = bytearray()
        self._error: str | None = None

    @property
    def pending(self) -> int:
        return len(self._buf)

    def _fail(self, msg: str) -> FrameError:
        self._error = msg
        self._buf.clear()  # a failed reader holds nothing usable: pending is 0
        return FrameError(msg)

    def feed(self, data: bytes | bytearray | memoryview) -> list[tuple[int, int, tuple[int, ...], bytes]] | None:
        if self._error is not None:
            raise FrameError(self._error)
        self._buf += bytes(data)
        out: list[tuple[int, int, tuple[int, ...], bytes]] = []
        try:
            self._parse(out)
        except FrameError:
            if not out:
                raise
            # frames before the bad bytes are delivered; the next feed() raises
        return out or None

    def _parse(self, out: list[tuple[int, int, tuple[int, ...], bytes]]) -> None:
        buf = self._buf
        while buf:
            if len(buf) < 12:
                if buf[0] >> 4 != 1 and not COULD_NOT_OP.startswith(bytes(buf)):
                    raise self._fail(STDOUT_MSG + repr(bytes(buf[:200])))
                break
            h = bytes(buf[:12])
            if h == COULD_NOT_OP:
                text = bytes(buf).decode("utf-8", "replace").strip()
                if not bytes(buf).startswith(b"Could not open input file"):
                    text = f"Could not open input file (worker output so far: {text!r})"
                raise self._fail(text)
            if int.from_bytes(h[6:10], "little") != crc32(h[:6]) or h[0] >> 4 != 1:
                raise self._fail(STDOUT_MSG + repr(bytes(buf[:200])))
            hl = h[0] & 0x0F
            if hl < 3:
                raise self._fail(f"invalid frame header: header length {hl} words (< 3)")
            plen = int.from_bytes(h[2:6], "little")
            if plen > self.max_payload:
                raise self._fail(f"frame payload too large: {plen} bytes (max {self.max_payload})")
            hsize = 4 * hl
            if len(buf) < hsize + plen:
                break
            opts = tuple(int.from_bytes(buf[12 + 4 * i : 16 + 4 * i], "little") for i in range(hl - 3))
            out.append((h[1], h[10], opts, bytes(buf[hsize : hsize + plen])))
            del buf[: hsize + plen]


# ------------------------------------------------------------ JSON (write)


def utf8_seq_len(s: bytes, i: int) -> int:
    """Length of the valid UTF-8 sequence at s[i] (s[i] >= 0x80), else 0."""
    c = s[i]
    lo, hi = 0x80, 0xBF
    if c < 0xC2:
        return 0
    if c < 0xE0:
        need = 2
    elif c < 0xF0:
        need = 3
        if c == 0xE0:
            lo = 0xA0
        elif c == 0xED:
            hi = 0x9F
    elif c < 0xF5:
        need = 4
        if c == 0xF0:
            lo = 0x90
        elif c == 0xF4:
            hi = 0x8F
    else:
        return 0
    if len(s) - i < need:
        return 0
    if not lo <= s[i + 1] <= hi:
        return 0
    if any(not 0x80 <= s[i + k] <= 0xBF for k in range(2, need)):
        return 0
    return need


def json_escape(s: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == 0x22 or c == 0x5C:
            out += b"\\" + bytes([c])
            i += 1
        elif c < 0x20:
            out += b"\\u%04x" % c
            i += 1
        elif c < 0x80:
            out.append(c)
            i += 1
        else:
            k = utf8_seq_len(s, i)
            if k:
                out += s[i : i + k]
                i += k
            else:
                out += "\ufffd".encode()
                i += 1
    return bytes(out)


def canonical_header_key(name: bytes) -> bytes:
    """Go's textproto.CanonicalMIMEHeaderKey (names that are tokens)."""
    if not name or not all(c in TCHAR for c in name):
        return name
    out = bytearray()
    upper = True
    for c in name:
        if upper and 0x61 <= c <= 0x7A:
            c -= 32
        elif not upper and 0x41 <= c <= 0x5A:
            c += 32
        out.append(c)
        upper = c == 0x2D
    return bytes(out)


def _cookies(req: Request) -> list[tuple[bytes, bytes]]:
    found: list[tuple[bytes, bytes]] = []
    ws = b" \t\r\n"
    for name, value in req._headers:
        if _lower(name) != b"cookie":
            continue
        for part in value.split(b";"):
            part = part.strip(ws)
            if not part:
                continue
            cname, eq, cval = part.partition(b"=")
            cname = cname.strip(ws)
            if not cname or not all(c in TCHAR for c in cname):
                continue
            if len(cval) > 1 and cval[:1] == b'"' and cval[-1:] == b'"':
                cval = cval[1:-1]
            if not all(c in COOKIE_VALUE_CHAR for c in cval):
                continue
            decoded = _pct_decode(cval)
            if decoded is None:
                continue
            found.append((cname, decoded))
    # the last value of a name wins, emitted where that last one is
    last = {n: i for i, (n, _) in enumerate(found)}
    return [(n, v) for i, (n, v) in enumerate(found) if last[n] == i]


def _pct_decode(v: bytes) -> bytes | None:
    out = bytearray()
    i = 0
    while i < len(v):
        if v[i] == 0x25:
            if i + 2 >= len(v) or v[i + 1] not in HEXDIGITS or v[i + 2] not in HEXDIGITS:
                return None
            out.append(int(v[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(v[i])
            i += 1
    return bytes(out)


def encode_http_context(req: Request, remote_addr: str, scheme: str, parsed: bool = False,
                        uploads: bytes | None = None) -> bytes:
    if uploads is not None and len(uploads) == 0:
        raise ValueError("uploads must be None or non-empty JSON")
    e = json_escape
    target = req.target.encode("latin-1")
    out = bytearray(b'{"remoteAddr":"' + e(remote_addr.encode()) + b'","protocol":"HTTP/1.')
    out += str(req.http_minor).encode() + b'","method":"' + e(req.method.encode()) + b'","uri":"'
    if req._target_form != TARGET_ABSOLUTE:
        out += e(scheme.encode()) + b"://"
        if req.host is not None and req._target_form != TARGET_AUTHORITY:
            out += e(req.host.encode("latin-1"))
    out += e(target) + b'","headers":{'
    groups: dict[bytes, list[bytes]] = {}
    names: dict[bytes, bytes] = {}
    for name, value in req._headers:
        low = _lower(name)
        if low == b"host":
            continue
        if low not in groups:
            groups[low] = []
            names[low] = canonical_header_key(name)
        groups[low].append(value)
    out += b",".join(
        b'"' + names[k] + b'":[' + b",".join(b'"' + e(v) + b'"' for v in vs) + b"]" for k, vs in groups.items()
    )
    out += b'},"cookies":{'
    out += b",".join(b'"' + n + b'":"' + e(v) + b'"' for n, v in _cookies(req))
    out += b'},"rawQuery":"'
    q = target.find(b"?")
    if q >= 0:
        out += e(target[q + 1 :].split(b"#", 1)[0])
    out += b'","parsed":' + (b"true" if parsed else b"false") + b',"uploads":'
    out += bytes(uploads) if uploads is not None else b"null"
    out += b',"attributes":{}}'
    return bytes(out)


def encode_http_request(req: Request, remote_addr: str, scheme: str, body: bytes | bytearray | memoryview,
                        parsed: bool, uploads: bytes | None = None) -> bytes:
    ctx = encode_http_context(req, remote_addr, scheme, parsed, uploads)
    return encode_frame(FLAG_JSON, ctx + bytes(body), (len(ctx),))


# ------------------------------------------------------------- JSON (read)


class _JsonError(Exception):
    pass


class _Reader:
    """Strict JSON pull reader over bytes, same rules as csrc/json.c."""

    def __init__(self, data: bytes) -> None:
        self.d = data
        self.p = 0

    def ws(self) -> None:
        while self.p < len(self.d) and self.d[self.p] in b" \t\n\r":
            self.p += 1

    def peek(self) -> int | None:
        return self.d[self.p] if self.p < len(self.d) else None

    def expect(self, ch: bytes) -> None:
        if self.peek() != ch[0]:
            raise _JsonError(f"expected {ch!r}")
        self.p += 1

    def string(self) -> bytes:
        d = self.d
        self.p += 1
        out = bytearray()
        while True:
            if self.p >= len(d):
                raise _JsonError("unterminated string")
            c = d[self.p]
            if c == 0x22:
                self.p += 1
                return bytes(out)
            if c < 0x20:
                raise _JsonError("control character in string")
            if c != 0x5C:
                out.append(c)
                self.p += 1
                continue
            if self.p + 1 >= len(d):
                raise _JsonError("unterminated string")
            esc = d[self.p + 1]
            simple = {0x22: b'"', 0x5C: b"\\", 0x2F: b"/", 0x62: b"\b", 0x66: b"\f",
                      0x6E: b"\n", 0x72: b"\r", 0x74: b"\t"}
            if esc in simple:
                out += simple[esc]
                self.p += 2
                continue
            if esc != 0x75:
                raise _JsonError("invalid escape")
            cp = self._hex4(self.p + 2)
            self.p += 6
            if 0xD800 <= cp <= 0xDBFF:
                lo = None
                if d[self.p : self.p + 2] == b"\\u":
                    try:
                        lo = self._hex4(self.p + 2)
                    except _JsonError:
                        lo = None
                if lo is not None and 0xDC00 <= lo <= 0xDFFF:
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                    self.p += 6
                else:
                    cp = 0xFFFD
            elif 0xDC00 <= cp <= 0xDFFF:
                cp = 0xFFFD
            out += chr(cp).encode()

    def _hex4(self, at: int) -> int:
        h = self.d[at : at + 4]
        if len(h) < 4 or not all(c in HEXDIGITS for c in h):
            raise _JsonError("invalid \\u escape")
        return int(h, 16)

    def number(self) -> tuple[bytes, bool]:
        d, s = self.d, self.p
        p = s
        integral = True
        if p < len(d) and d[p] == 0x2D:
            p += 1
        if p >= len(d):
            raise _JsonError("invalid number")
        if d[p] == 0x30:
            p += 1
        elif 0x31 <= d[p] <= 0x39:
            while p < len(d) and d[p] in DIGITS:
                p += 1
        else:
            raise _JsonError("invalid number")
        if p < len(d) and d[p] == 0x2E:
            integral = False
            p += 1
            q = p
            while p < len(d) and d[p] in DIGITS:
                p += 1
            if p == q:
                raise _JsonError("invalid number")
        if p < len(d) and d[p] in b"eE":
            integral = False
            p += 1
            if p < len(d) and d[p] in b"+-":
                p += 1
            q = p
            while p < len(d) and d[p] in DIGITS:
                p += 1
            if p == q:
                raise _JsonError("invalid number")
        self.p = p
        return d[s:p], integral

    def literal(self, lit: bytes) -> None:
        if self.d[self.p : self.p + len(lit)] != lit:
            raise _JsonError("invalid literal")
        self.p += len(lit)

    def skip(self, depth: int) -> None:
        if depth <= 0:
            raise _JsonError("nesting too deep")
        self.ws()
        c = self.peek()
        if c is None:
            raise _JsonError("unexpected end of data")
        if c == 0x22:
            self.string()
        elif c == 0x74:
            self.literal(b"true")
        elif c == 0x66:
            self.literal(b"false")
        elif c == 0x6E:
            self.literal(b"null")
        elif c in b"[{":
            obj = c == 0x7B
            close = 0x7D if obj else 0x5D
            self.p += 1
            self.ws()
            if self.peek() == close:
                self.p += 1
                return
            while True:
                if obj:
                    self.ws()
                    if self.peek() != 0x22:
                        raise _JsonError("expected object key")
                    self.string()
                    self.ws()
                    self.expect(b":")
                self.skip(depth - 1)
                self.ws()
                c = self.peek()
                if c == 0x2C:
                    self.p += 1
                    continue
                if c == close:
                    self.p += 1
                    return
                raise _JsonError("expected separator")
        else:
            self.number()


RESPONSE_DROP = (b"content-length", b"transfer-encoding", b"connection")


def _sanitize_value(v: bytes) -> bytes:
    return v.replace(b"\r", b" ").replace(b"\n", b" ").replace(b"\0", b" ").strip(b" \t")


def _parse_response_context(ctx: bytes) -> tuple[int, list[bytes], bool, bool]:
    r = _Reader(ctx)
    status = 200
    lines: list[bytes] = []
    has_date = has_server = False
    r.ws()
    if r.peek() != 0x7B:
        raise _JsonError("context must be a JSON object")
    r.p += 1
    r.ws()
    if r.peek() == 0x7D:
        r.p += 1
    else:
        while True:
            r.ws()
            if r.peek() != 0x22:
                raise _JsonError("expected object key")
            key = r.string()
            r.ws()
            r.expect(b":")
            if key == b"status":
                r.ws()
                c = r.peek()
                if c is None or not (c == 0x2D or c in DIGITS):
                    raise _JsonError("status must be an integer")
                text, integral = r.number()
                if not integral:
                    raise _JsonError("status must be an integer")
                neg = text[:1] == b"-"
                v = 0
                for ch in text[1:] if neg else text:
                    if v < 100000000:
                        v = v * 10 + ch - 48
                status = -v if neg else v
            elif key == b"headers":
                hd, hs = _parse_response_headers(r, lines)
                has_date |= hd
                has_server |= hs
            else:
                r.skip(64)
            r.ws()
            c = r.peek()
            if c == 0x2C:
                r.p += 1
                continue
            if c == 0x7D:
                r.p += 1
                break
            raise _JsonError("expected ',' or '}'")
    r.ws()
    if r.p != len(ctx):
        raise _JsonError("data after the context object")
    return status, lines, has_date, has_server


def _parse_response_headers(r: _Reader, lines: list[bytes]) -> tuple[bool, bool]:
    has_date = has_server = False
    r.ws()
    c = r.peek()
    if c is None:
        raise _JsonError("unexpected end of data")
    if c == 0x6E:
        r.literal(b"null")
        return False, False
    if c == 0x5B:
        r.p += 1
        r.ws()
        if r.peek() == 0x5D:
            r.p += 1
            return False, False
        raise _JsonError("headers must be an object")
    if c != 0x7B:
        raise _JsonError("headers must be an object")
    r.p += 1
    r.ws()
    if r.peek() == 0x7D:
        r.p += 1
        return False, False
    while True:
        r.ws()
        if r.peek() != 0x22:
            raise _JsonError("expected header name")
        name = r.string()
        keep = bool(name) and all(ch in TCHAR for ch in name) and _lower(name) not in RESPONSE_DROP
        cname = canonical_header_key(name)
        r.ws()
        r.expect(b":")
        r.ws()
        c = r.peek()
        values: list[bytes] = []
        if c == 0x22:
            values.append(r.string())
        elif c == 0x5B:
            r.p += 1
            r.ws()
            if r.peek() == 0x5D:
                r.p += 1
            else:
                while True:
                    r.ws()
                    if r.peek() != 0x22:
                        raise _JsonError("header values must be strings")
                    values.append(r.string())
                    r.ws()
                    c = r.peek()
                    if c == 0x2C:
                        r.p += 1
                        continue
                    if c == 0x5D:
                        r.p += 1
                        break
                    raise _JsonError("expected ',' or ']'")
        else:
            raise _JsonError("header values must be a string or an array of strings")
        if keep and values:
            for v in values:
                lines.append(cname + b": " + _sanitize_value(v) + b"\r\n")
            has_date |= cname == b"Date"
            has_server |= cname == b"Server"
        r.ws()
        c = r.peek()
        if c == 0x2C:
            r.p += 1
            continue
        if c == 0x7D:
            r.p += 1
            return has_date, has_server
        raise _JsonError("expected ',' or '}'")


REASONS = {
    100: "Continue", 101: "Switching Protocols", 102: "Processing", 103: "Early Hints",
    200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information", 204: "No Content",
    205: "Reset Content", 206: "Partial Content", 207: "Multi-Status", 208: "Already Reported", 226: "IM Used",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
    305: "Use Proxy", 307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
    408: "Request Timeout", 409: "Conflict", 410: "Gone", 411: "Length Required", 412: "Precondition Failed",
    413: "Content Too Large", 414: "URI Too Long", 415: "Unsupported Media Type", 416: "Range Not Satisfiable",
    417: "Expectation Failed", 418: "I'm a teapot", 421: "Misdirected Request", 422: "Unprocessable Content",
    423: "Locked", 424: "Failed Dependency", 425: "Too Early", 426: "Upgrade Required",
    428: "Precondition Required", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
    451: "Unavailable For Legal Reasons",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout", 505: "HTTP Version Not Supported", 506: "Variant Also Negotiates",
    507: "Insufficient Storage", 508: "Loop Detected", 510: "Not Extended", 511: "Network Authentication Required",
}


def http_date() -> bytes:
    return email.utils.formatdate(usegmt=True).encode()


def encode_chunk(data: bytes | bytearray | memoryview) -> bytes:
    data = bytes(data)
    if not data:
        return b""
    return b"%x\r\n" % len(data) + data + b"\r\n"


def build_response(payload: bytes | bytearray | memoryview, ctx_len: int, keep_alive: bool, head_request: bool,
                   http_minor: int, stream: bool = False) -> tuple[int, bytes]:
    payload = bytes(payload)
    if http_minor not in (0, 1):
        raise ValueError("http_minor must be 0 or 1")
    if ctx_len < 0 or ctx_len > len(payload):
        raise FrameError(f"context length {ctx_len} outside the payload ({len(payload)} bytes)")
    lines: list[bytes] = []
    status, has_date, has_server = 200, False, False
    if ctx_len:
        try:
            status, lines, has_date, has_server = _parse_response_context(payload[:ctx_len])
        except _JsonError as exc:
            raise FrameError(f"invalid response context from worker: {exc}") from None
    if not 100 <= status <= 599:
        raise FrameError(f"unknown status code from worker: {status}")
    if status == 101:
        raise FrameError("status 101 (Switching Protocols) from worker is not supported")
    body = payload[ctx_len:]
    head = b"HTTP/1.%d %d %s\r\n" % (http_minor, status, REASONS.get(status, "Unknown").encode()) + b"".join(lines)
    if status < 200:
        if http_minor == 0:
            return status, b""
        return status, head + b"\r\n"
    if not has_date:
        head += b"Date: " + http_date() + b"\r\n"
    if not has_server:
        head += b"Server: fastrr\r\n"
    no_body = status in (204, 304)
    close = not keep_alive
    chunked = False
    if not no_body:
        if stream:
            if http_minor == 1:
                head += b"Transfer-Encoding: chunked\r\n"
                chunked = True
            else:
                close = True
        else:
            head += b"Content-Length: %d\r\n" % len(body)
    if close:
        head += b"Connection: close\r\n"
    elif http_minor == 0:
        head += b"Connection: keep-alive\r\n"
    head += b"\r\n"
    if no_body or head_request:
        return status, head
    if chunked:
        return status, head + encode_chunk(body)
    return status, head + body
