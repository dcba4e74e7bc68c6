"""Differential tests: the C extension against its pure-Python twin on
generated input (hypothesis), plus h11 and httptools as independent oracles
for the requests the parser accepts."""

from __future__ import annotations

import json
import os
import re

import h11
import httptools
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fastrr._core as C
import fastrr._core_reference as R

# FASTRR_HYPOTHESIS_EXAMPLES=20000 for a long run; the default keeps the suite fast.
SETTINGS = settings(max_examples=int(os.environ.get("FASTRR_HYPOTHESIS_EXAMPLES", "400")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# ----------------------------------------------------------------- requests

METHODS = [b"GET", b"POST", b"PUT", b"OPTIONS", b"CONNECT", b"HEAD", b"PURGE", b"get", b"G(T", b""]
TARGETS = [b"/", b"/a?b=c&d", b"/p?q#f", b"*", b"http://h/x?y", b"h:443", b"[::1]:1", b"/\xe9", b"/a b",
           b"/a\x00", b"", b"a:b", b"//x", b"/%zz", b"/\x7f"]
VERSIONS = [b"HTTP/1.1"] * 4 + [b"HTTP/1.0"] * 2 + [b"HTTP/2.0", b"HTTP/1.2", b"http/1.1", b"HTTP/1.1 ", b"HTTP/1",
                                                   b"HTTP/1.10", b"HTTP/"]
EOLS = [b"\r\n"] * 8 + [b"\n", b"\r", b"\r\r\n"]
NAMES = [b"Host", b"host", b"Content-Length", b"Transfer-Encoding", b"Connection", b"Expect", b"Content-Type",
         b"Cookie", b"X-A", b"x-a", b"User-Agent", b"Bad Name", b"", b"X(", b"\xc3\xa9", b"sec-ch-ua"]
VALUES = [b"", b"h", b"example.com:80", b"5", b"5, 5", b"5, 6", b"+5", b"0", b"chunked", b"CHUNKED", b" chunked ",
          b"gzip, chunked", b"close", b"keep-alive", b"Keep-Alive, Upgrade", b"100-continue", b"multipart/form-data",
          b"application/x-www-form-urlencoded; charset=utf-8", b"a=1; b=%41; c=\"q\"", b"a=%zz; b", b"\xff\xfe",
          b" spaced ", b"a\x00b", b"a\x7f", b"\tx", b"x/y", b"99999999999999999999", b"caf\xc3\xa9", b"\xe2\x82",
          b'q"uo\\te', b"a\x01b"]
SEPS = [b": "] * 6 + [b":", b" : ", b":\t", b"\t:"]


@st.composite
def request_bytes(draw) -> bytes:
    def pick(items: list[bytes]) -> bytes:
        return draw(st.sampled_from(items))

    eol = draw(st.sampled_from(EOLS)) if draw(st.integers(0, 9)) == 0 else b"\r\n"
    out = b"\r\n" * draw(st.integers(0, 6)) if draw(st.integers(0, 5)) == 0 else b""
    out += pick(METHODS) + b" " + pick(TARGETS) + b" " + pick(VERSIONS) + eol
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.integers(0, 30)) == 0:
            out += b" folded" + eol
        out += pick(NAMES) + pick(SEPS) + pick(VALUES) + draw(st.sampled_from(EOLS))
    out += draw(st.sampled_from(EOLS)) + draw(st.binary(max_size=8))
    if draw(st.integers(0, 10)) == 0:  # random single-byte damage
        i = draw(st.integers(0, len(out) - 1))
        out = out[:i] + bytes([draw(st.integers(0, 255))]) + out[i + 1 :]
    return out


@st.composite
def plausible_request(draw) -> bytes:
    """ASCII requests that are mostly valid, for the h11 / httptools oracles."""
    minor = draw(st.integers(0, 1))
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"PURGE", b"OPTIONS"]))
    target = draw(st.sampled_from([b"/", b"/a/b?c=d&e", b"/x%20y", b"http://h.example/p?q", b"/;p=1",
                                   b"/~u/!$&'()*+,"]))
    if method == b"OPTIONS" and draw(st.booleans()):
        target = b"*"
    out = method + b" " + target + b" HTTP/1.%d\r\n" % minor
    fields = [(b"Host", draw(st.sampled_from([b"h.example", b"h:8080", b"[::1]:80", b""])))] if minor else []
    name = st.sampled_from([b"Accept", b"x-custom", b"X-CUSTOM", b"Cookie", b"Connection", b"Expect", b"Content-Type",
                            b"Content-Length", b"Transfer-Encoding", b"a.b", b"!#$%&'*+-.^_`|~"])
    value = st.sampled_from([b"", b"v", b"a, b", b"close", b"keep-alive", b"100-continue", b"5", b"chunked",
                             b"text/html; q=0.9", b"a=1; b=2", b"x\ty", b"  padded  ", b"!\"#$%&'()*+,-./:;<=>?@[]"])
    for _ in range(draw(st.integers(0, 6))):
        fields.append((draw(name), draw(value)))
    fields = draw(st.permutations(fields))
    out += b"".join(n + draw(st.sampled_from([b": ", b":", b":\t"])) + v + b"\r\n" for n, v in fields)
    return out + b"\r\n"


def parse_outcome(mod, data: bytes, max_head: int):
    try:
        r = mod.parse_request(data, max_head)
    except mod.HttpError as e:
        return ("error", e.status, e.reason)
    if r is None:
        return None
    return ("ok", r.method, r.target, r.http_minor, r.head_len, r.content_length, r.chunked, r.keep_alive,
            r.expect_continue, r.body_kind, r.host, r.headers)


@SETTINGS
@given(request_bytes(), st.integers(10, 400), st.data())
def test_parse_request_matches_reference(data, max_head, draw):
    out = parse_outcome(C, data, max_head)
    assert out == parse_outcome(R, data, max_head)
    # every prefix: still the same answer from both
    cut = draw.draw(st.integers(0, len(data)))
    assert parse_outcome(C, data[:cut], max_head) == parse_outcome(R, data[:cut], max_head)
    if out is not None and out[0] == "ok":
        remote = draw.draw(st.sampled_from(["127.0.0.1", "::1", "\u00e9\x00\"", ""]))
        scheme = draw.draw(st.sampled_from(["http", "https"]))
        parsed = draw.draw(st.booleans())
        uploads = draw.draw(st.sampled_from([None, b"[]", b'{"f":{"name":"a"}}']))
        rc, rr = C.parse_request(data, max_head), R.parse_request(data, max_head)
        ctx = C.encode_http_context(rc, remote, scheme, parsed, uploads)
        assert ctx == R.encode_http_context(rr, remote, scheme, parsed, uploads)
        json.loads(ctx.decode("utf-8"))
        body = data[out[4] :]
        assert C.encode_http_request(rc, remote, scheme, body, parsed, uploads) == R.encode_http_request(
            rr, remote, scheme, body, parsed, uploads)


@SETTINGS
@given(st.binary(max_size=200), st.integers(0, 300))
def test_parse_request_random_bytes(data, max_head):
    assert parse_outcome(C, data, max_head) == parse_outcome(R, data, max_head)


def accepted(data: bytes):
    try:
        return C.parse_request(data, 1 << 16)
    except C.HttpError:
        return None


@SETTINGS
@given(plausible_request())
def test_accepted_requests_agree_with_h11(data):
    r = accepted(data)
    assume(r is not None)
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data[: r.head_len])
    ev = conn.next_event()
    assert isinstance(ev, h11.Request), ev
    assert ev.method.decode() == r.method
    assert ev.target.decode() == r.target
    assert ev.http_version == b"1.%d" % r.http_minor
    ours = r.headers
    if len([n for n, _ in ours if n.lower() == b"content-length"]) > 1:
        # h11 folds identical Content-Length fields into one
        first = next(i for i, (n, _) in enumerate(ours) if n.lower() == b"content-length")
        ours = [h for i, h in enumerate(ours) if i == first or h[0].lower() != b"content-length"]
    assert list(ev.headers.raw_items()) == ours


class _Collect:
    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.url = b""
        self.done = False
        self.parser: httptools.HttpRequestParser | None = None
        self.keep_alive: bool | None = None

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.done = True
        # llhttp resets its flags once the message is complete: ask now
        assert self.parser is not None
        self.keep_alive = self.parser.should_keep_alive()


@SETTINGS
@given(plausible_request())
def test_accepted_requests_agree_with_httptools(data):
    r = accepted(data)
    assume(r is not None and r.method != "CONNECT")
    cls = [v for n, v in r.headers if n.lower() == b"content-length"]
    assume(len(cls) <= 1 and all(b"," not in v for v in cls))  # llhttp refuses duplicates, even equal ones
    sink = _Collect()
    p = sink.parser = httptools.HttpRequestParser(sink)
    p.feed_data(data[: r.head_len])
    assert sink.done
    assert p.get_method().decode() == r.method
    assert sink.url.decode() == r.target
    assert p.get_http_version() == "1.%d" % r.http_minor
    # llhttp keeps trailing OWS in values; RFC 9110 §5.5 says it is not part of the value
    assert [(n, v.rstrip(b" \t")) for n, v in sink.headers] == r.headers
    options = {o.strip().lower() for n, v in r.headers if n.lower() == b"connection" for o in v.split(b",")}
    if not {b"close", b"keep-alive"} <= options:
        # with both, llhttp lets keep-alive win on HTTP/1.0; we let close win (RFC 9110 §9.6)
        assert sink.keep_alive == r.keep_alive


# ------------------------------------------------------------------ chunked


@st.composite
def chunked_bytes(draw) -> tuple[bytes, bytes]:
    out, body = b"", b""
    for _ in range(draw(st.integers(0, 4))):
        data = draw(st.binary(min_size=1, max_size=40))
        body += data
        size = b"%x" % len(data)
        if draw(st.booleans()):
            size = size.upper()
        ext = draw(st.sampled_from([b"", b";a", b";a=b", b' ; n="v\\"x"', b";=", b"; a = b ", b";a=\x01"]))
        out += size + ext + b"\r\n" + data + b"\r\n"
    out += b"0" + draw(st.sampled_from([b"", b";x"])) + b"\r\n"
    out += draw(st.sampled_from([b"", b"T: v\r\n", b"T : v\r\n", b" T: v\r\n", b"T: a\x00\r\n"])) + b"\r\n"
    if draw(st.integers(0, 3)) == 0:
        i = draw(st.integers(0, len(out) - 1))
        out = out[:i] + bytes([draw(st.integers(0, 255))]) + out[i + 1 :]
    return out + draw(st.binary(max_size=4)), body


def chunked_outcome(mod, data: bytes, splits: list[int], max_size: int):
    d = mod.ChunkedDecoder(max_size)
    log = []
    pos = 0
    for n in [*splits, len(data)]:
        piece = data[pos : pos + n]
        pos += len(piece)
        try:
            log.append(("fed", d.feed(piece), d.take(), d.done))
        except mod.HttpError as e:
            log.append(("error", e.status, e.reason))
            break
    return log


@SETTINGS
@given(chunked_bytes(), st.lists(st.integers(0, 20), max_size=12), st.integers(0, 200))
def test_chunked_matches_reference(sample, splits, max_size):
    data, body = sample
    out = chunked_outcome(C, data, splits, max_size)
    assert out == chunked_outcome(R, data, splits, max_size)
    whole = chunked_outcome(C, data, [], 1 << 30)
    if whole[-1][0] == "fed" and whole[-1][3] and len(body) <= max_size:
        # split or not, a valid body decodes to the same bytes
        assert b"".join(x[2] for x in out if x[0] == "fed") == whole[0][2]


# ------------------------------------------------------------------- frames


@st.composite
def frame_stream(draw) -> bytes:
    out = b""
    for _ in range(draw(st.integers(0, 5))):
        out += R.encode_frame(draw(st.integers(0, 255)), draw(st.binary(max_size=64)),
                              tuple(draw(st.lists(st.integers(0, 2**32 - 1), max_size=10))), draw(st.integers(0, 255)))
    tail = draw(st.sampled_from([b"", b"", b"echo", b"Could not open input file: x.php\n", b"Could",
                                 b"\x13\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"]))
    return out + tail


def frame_outcome(mod, data: bytes, splits: list[int], max_payload: int):
    r = mod.FrameReader(max_payload)
    log = []
    pos = 0
    for n in [*splits, len(data)]:
        piece = data[pos : pos + n]
        pos += len(piece)
        try:
            log.append(("fed", r.feed(piece), r.pending))
        except mod.FrameError as e:
            log.append(("error", str(e)))
            break
    return log


@SETTINGS
@given(frame_stream(), st.lists(st.integers(0, 30), max_size=10), st.integers(0, 80))
def test_frames_match_reference(data, splits, max_payload):
    assert frame_outcome(C, data, splits, max_payload) == frame_outcome(R, data, splits, max_payload)


@SETTINGS
@given(st.integers(0, 255), st.binary(max_size=100), st.lists(st.integers(0, 2**32 - 1), max_size=10),
       st.integers(0, 255))
def test_encode_frame_matches_reference(flags, payload, options, byte10):
    assert C.encode_frame(flags, payload, tuple(options), byte10) == R.encode_frame(flags, payload, tuple(options),
                                                                                    byte10)


# ----------------------------------------------------------------- response

header_name = st.sampled_from(["Content-Type", "x-foo", "SET-COOKIE", "Date", "server", "Content-Length",
                               "connection", "Transfer-Encoding", "Bad Name", "", "X\r\nY", "caf\u00e9", "a_b"])
header_value = st.text(st.sampled_from("ab \t\r\n\x00\u00e9\U0001F600\"\\/:;"), max_size=12)
headers = st.one_of(
    st.none(), st.just([]),
    st.dictionaries(header_name, st.one_of(header_value, st.lists(header_value, max_size=3)), max_size=5))


@st.composite
def response_context(draw) -> bytes:
    obj: dict = {}
    keys = draw(st.permutations(["status", "headers", "extra"]))
    for k in keys[: draw(st.integers(0, 3))]:
        if k == "status":
            obj[k] = draw(st.one_of(st.integers(-5, 700), st.sampled_from([200, 204, 304, 103, 101, 100]),
                                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=3)))
        elif k == "headers":
            obj[k] = draw(headers)
        else:
            obj[k] = draw(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                                       lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c,
                                                                                           max_size=3),
                                       max_leaves=8))
    data = json.dumps(obj, ensure_ascii=draw(st.booleans())).encode()
    if draw(st.integers(0, 5)) == 0 and data:
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1 :]
    return data


DATE_RE = re.compile(rb"Date: [^\r]*\r\n")


def response_outcome(mod, payload: bytes, ctx_len: int, *args):
    try:
        st_, data = mod.build_response(payload, ctx_len, *args)
    except mod.FrameError:
        return "FrameError"
    return st_, DATE_RE.sub(b"Date: X\r\n", data)


@SETTINGS
@given(response_context(), st.binary(max_size=20), st.booleans(), st.booleans(), st.integers(0, 1), st.booleans())
def test_build_response_matches_reference(ctx, body, keep_alive, head, minor, stream):
    args = (keep_alive, head, minor, stream)
    assert response_outcome(C, ctx + body, len(ctx), *args) == response_outcome(R, ctx + body, len(ctx), *args)


@SETTINGS
@given(st.binary(max_size=300))
def test_encode_chunk_matches_reference(data):
    assert C.encode_chunk(data) == R.encode_chunk(data)


@pytest.mark.parametrize("mod", [C, R], ids=["c", "ref"])
def test_json_escape_is_go_compatible(mod):
    """Every byte string becomes valid UTF-8 JSON, one U+FFFD per bad byte."""
    raw = bytes(range(256)) + b"\xe2\x82\xac\xf0\x9f\x98\x80\xed\xa0\x80"
    r = mod.parse_request(b"GET / HTTP/1.1\r\nHost: h\r\nCookie: a=%" + b"%".join(b"%02x" % i for i in range(256))
                          + b"\r\n\r\n", 1 << 16)
    cookie = json.loads(mod.encode_http_context(r, "r", "http"))["cookies"]["a"]
    expected = bytes(range(256)).decode("latin-1")
    expected = "".join(ch if ord(ch) < 0x80 else "\ufffd" for ch in expected)
    assert cookie == expected
    assert R.json_escape(raw).decode("utf-8")
