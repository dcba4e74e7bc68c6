"""Requests of the differential suite: a small builder, the hand-written edge cases, and the
hypothesis strategies that generate more. Each is sent as the same bytes to both servers."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from urllib.parse import quote

from hypothesis import strategies as st

from tests.differential.conftest import HOST


@dataclass
class Req:
    name: str
    method: str = "GET"
    target: str = "/page.php"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    chunked: bool = False

    @property
    def chunked_multipart(self) -> bool:
        """A chunked multipart body: the server parses it without counting it, so its
        CONTENT_LENGTH is "" where nginx passes the length it read (php/README.md)."""
        return self.chunked and any(k.lower() == "content-type" and v.lower().startswith("multipart/")
                                    for k, v in self.headers)

    def raw(self) -> bytes:
        head = [f"{self.method} {self.target} HTTP/1.1", f"Host: {HOST}"]
        head += [f"{k}: {v}" for k, v in self.headers]
        body = b""
        if self.body is not None:
            if self.chunked:
                head.append("Transfer-Encoding: chunked")
                half = len(self.body) // 2
                for part in (self.body[:half], self.body[half:]):
                    if part:
                        body += b"%x\r\n%s\r\n" % (len(part), part)
                body += b"0\r\n\r\n"
            else:
                head.append(f"Content-Length: {len(self.body)}")
                body = self.body
        head.append("Connection: close")
        return ("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + body


FORM = "application/x-www-form-urlencoded"


def form(name: str, body: str, method: str = "POST", content_type: str = FORM, **kw: object) -> Req:
    return Req(name, method, headers=[("Content-Type", content_type)], body=body.encode(), **kw)  # type: ignore[arg-type]


def multipart(parts: list[tuple[str, str | None, bytes, str | None]], boundary: str = "XyZzy-b0undary") -> bytes:
    """(name, filename or None, content, content type or None) parts, raw names and filenames."""
    out = b""
    for name, filename, content, ctype in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n".encode()
        if ctype is not None:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def mp_req(name: str, parts: list[tuple[str, str | None, bytes, str | None]], method: str = "POST",
           target: str = "/page.php") -> Req:
    return Req(name, method, target, [("Content-Type", "multipart/form-data; boundary=XyZzy-b0undary")],
               multipart(parts))


def basic(user_pass: str) -> tuple[str, str]:
    return ("Authorization", "Basic " + base64.b64encode(user_pass.encode()).decode())


DEEP = "a" + "[x]" * 70
MANY_VARS = "&".join(f"v{i}=1" for i in range(1005))

CASES: list[Req] = [
    Req("plain GET"),
    Req("nested and repeated query keys", target="/page.php?a[]=1&a[]=2&b[x][y]=z&c=1&c=2&d[]=&d[k]=v"),
    Req("dots and spaces in names", target="/page.php?a.b=1&c%20d=2&e[f.g]=3&h+i=4&.j=5&k[=6&l]=7"),
    Req("UTF-8 and percent escapes", target="/page.php?%C3%A9=%C3%BC&x=%ZZ&y=%&z=%e2%82%ac&w=%00n"),
    Req("empty and missing values", target="/page.php?a=&b&=c&&d==e&f=g=h"),
    Req("plus signs", target="/page.php?a=b+c&d%2Be=f%2B"),
    Req("nesting past max_input_nesting_level", target=f"/page.php?{DEEP}=deep&ok=1"),
    Req("past max_input_vars in the query", target=f"/page.php?{MANY_VARS}"),
    Req("empty query after ?", target="/page.php?"),
    Req("cookies, simple", headers=[("Cookie", "a=1; b=2")]),
    Req("cookie with bracket names", headers=[("Cookie", "d[e]=arr; d[f]=x; g[]=1; g[]=2")]),
    Req("cookie names with dots and spaces", headers=[("Cookie", "c.d=e; s p=v;  lead=1")]),
    Req("repeated cookie names", headers=[("Cookie", "x=1; x=2; y[a]=1; y=2; z=1; z[a]=2")]),
    Req("cookie value escapes", headers=[("Cookie", "v=%20a%2Bb+c; q=\"quoted\"; e=a=b")]),
    Req("cookies without values or names", headers=[("Cookie", "novalue; =x; ;; k=v")]),
    Req("cookie names PHP decodes or not", headers=[("Cookie", "n%41me=1; a%5Bb%5D=2; __Host-x=3")]),
    form("urlencoded POST", "x=1&y[]=2&y[]=3&z=%C3%A9+a"),
    form("urlencoded POST with charset", "x=1", content_type=f"{FORM}; charset=UTF-8"),
    form("urlencoded POST, upper-case type", "x=1", content_type="Application/X-WWW-Form-Urlencoded"),
    form("urlencoded POST past max_input_vars", MANY_VARS),
    form("urlencoded POST nesting past the limit", f"{DEEP}=deep&ok=1"),
    form("GET and POST merged in $_REQUEST", "a=post&arr[k]=p&arr[j]=p", target="/page.php?a=get&arr[k]=g&g=1"),
    form("JSON POST", '{"a": [1, 2], "b": "c"}', content_type="application/json"),
    form("text POST", "just some text", content_type="text/plain"),
    Req("POST without a Content-Type", "POST", body=b"a=1&b=2"),
    Req("POST with an empty body", "POST", headers=[("Content-Type", FORM)], body=b""),
    form("PUT urlencoded", "x=1&y=2", method="PUT"),
    form("PATCH urlencoded", "x=1", method="PATCH"),
    form("PUT JSON", '{"put": true}', method="PUT", content_type="application/json"),
    Req("DELETE without a body", "DELETE", target="/page.php?id=3"),
    form("DELETE with a form body", "id=3", method="DELETE"),
    form("chunked urlencoded POST", "x=1&y[]=2&long=" + "z" * 300, chunked=True),
    form("chunked JSON POST", '{"chunked": "yes"}', content_type="application/json", chunked=True),
    mp_req("multipart fields and a file", [("f1", None, b"v1", None), ("arr[]", None, b"a", None),
                                           ("arr[]", None, b"b", None),
                                           ("up", "hello.txt", b"hello world\n", "text/plain")]),
    mp_req("multipart nested file arrays", [("docs[a][]", "a1.txt", b"A1", "text/plain"),
                                            ("docs[a][]", "a2.bin", b"\x00\xff", "application/octet-stream"),
                                            ("docs[b]", "b.txt", b"B", None)]),
    mp_req("multipart empty file field", [("empty", "", b"", "application/octet-stream"), ("x", None, b"1", None)]),
    mp_req("multipart filenames with paths", [("p1", "C:\\dir\\win.txt", b"w", "text/plain"),
                                              ("p2", "../../etc/passwd", b"u", "text/plain"),
                                              ("p3", "dir/sub/file.txt", b"d", "text/plain")]),
    mp_req("multipart UTF-8 names", [("é[ü]", None, b"\xc3\xa9", None),
                                     ("fé", "naïve.txt", b"n", "text/plain")]),
    mp_req("multipart dots in names", [("a.b", None, b"1", None), ("c d[e.f]", None, b"2", None),
                                       ("g.h", "g.txt", b"g", "text/plain")]),
    mp_req("PUT multipart", [("x", None, b"1", None), ("f", "f.txt", b"F", "text/plain")], method="PUT"),
    Req("Basic auth", headers=[basic("user:pa:ss")]),
    Req("Basic auth, empty password", headers=[basic("user:")]),
    Req("Basic auth, not base64", headers=[("Authorization", "Basic !!!notbase64")]),
    Req("Bearer auth", headers=[("Authorization", "Bearer tok")]),
    Req("status 404", target="/page.php?_status=404"),
    Req("redirect", target="/page.php?_location=/elsewhere%3Fa=1"),
    Req("redirect with 301", target="/page.php?_location=https://example.test/x&_status=301"),
    Req("cookies set", target="/page.php?_cookies=1"),
    Req("a header set", target="/page.php?_header=v%C3%A9"),
    Req("HEAD", "HEAD", target="/page.php?h=1"),
    Req("OPTIONS", "OPTIONS"),
    Req("a very long header", headers=[("X-Long", "v" * 7000)]),
    Req("a header with an underscore", headers=[("X_Under", "1"), ("X-Under", "2")]),
    Req("only a header with an underscore", headers=[("X_Only", "1"), ("X-Real_IP", "6.6.6.6")]),
    Req("repeated headers", headers=[("X-Dup", "1"), ("X-Dup", "2"), ("Accept", "a/b"), ("Accept", "c/d")]),
    Req("header spelling", headers=[("x-lower", "l"), ("X-UPPER", "u"), ("X-Mixed-Case", "m")]),
    Req("empty header value", headers=[("X-Empty", "")]),
    Req("header with spaces around", headers=[("X-Spaced", "  v  ")]),
    Req("path info", target="/page.php/extra/path?x=1"),
    Req("encoded path info", target="/page.php/a%20b/%C3%A9?x=1"),
    Req("GET with a Content-Type and no body", headers=[("Content-Type", FORM)]),
]


# -- generated requests --------------------------------------------------------------------

_NAME_CHARS = st.sampled_from(list("abcXYZ09_.-+ ") + ["%20", "%5B", "%5D", "%2E", "[", "]", "[]", "é", "%C3%A9"])
_name = st.lists(_NAME_CHARS, min_size=1, max_size=5).map("".join)
_bracket = st.one_of(st.just(""), st.just("[]"), _name.map(lambda n: f"[{n}]"))
_key = st.tuples(_name, st.lists(_bracket, max_size=3)).map(lambda t: t[0] + "".join(t[1]))
_VALUE_CHARS = st.sampled_from(list("abc019 +=&;,/?") + ["%20", "%2B", "%26", "%3D", "é", "%E2%82%AC", "%"])
_value = st.lists(_VALUE_CHARS, max_size=6).map("".join)
_pair = st.one_of(st.tuples(_key, _value).map(lambda kv: f"{kv[0]}={kv[1]}"), _key)
_query = st.lists(_pair, max_size=6).map("&".join)


def _safe_query(q: str) -> str:
    """What a client puts on the request line: raw spaces, non-ASCII and '#' percent-encoded."""
    return quote(q, safe="!$&'()*+,;=:@/?%[]")


_COOKIE_NAME = st.lists(st.sampled_from(list("abz09_.-") + ["[", "]", "[]", " ", "%41", "%5B"]),
                        min_size=1, max_size=5).map("".join)
_COOKIE_VALUE = st.lists(st.sampled_from(list("ab01+=/") + ["%20", "%3B", "%2B", '"']), max_size=5).map("".join)
_cookie = st.lists(st.tuples(_COOKIE_NAME, _COOKIE_VALUE).map(lambda t: f"{t[0]}={t[1]}"), min_size=1,
                   max_size=5).map("; ".join)


@st.composite
def generated(draw: st.DrawFn) -> Req:
    method = draw(st.sampled_from(["GET", "GET", "POST", "POST", "PUT", "DELETE", "PATCH", "HEAD"]))
    query = _safe_query(draw(_query))
    target = "/page.php" + (f"?{query}" if query or draw(st.booleans()) else "")
    headers: list[tuple[str, str]] = []
    if draw(st.booleans()):
        headers.append(("Cookie", draw(_cookie)))
    if draw(st.booleans()):
        headers.append(("X-Gen", draw(st.text(st.sampled_from("ab ,;=\"'"), max_size=20)).strip() or "v"))
    kind = draw(st.sampled_from(["none", "form", "form", "json", "multipart"])) if method != "GET" else "none"
    body: bytes | None = None
    if kind == "form":
        headers.append(("Content-Type", FORM))
        body = _safe_query(draw(_query)).encode()
    elif kind == "json":
        headers.append(("Content-Type", "application/json"))
        body = b'{"n": %d}' % draw(st.integers(0, 99))
    elif kind == "multipart":
        parts = draw(st.lists(st.tuples(_key.map(lambda k: k.replace("%", "").replace('"', "")),
                                        st.one_of(st.none(), st.sampled_from(["", "a.txt", "b c.bin"])),
                                        st.binary(max_size=40)), min_size=1, max_size=4))
        headers.append(("Content-Type", "multipart/form-data; boundary=XyZzy-b0undary"))
        body = multipart([(n, f, c, "application/octet-stream" if f is not None else None) for n, f, c in parts])
    chunked = body is not None and draw(st.booleans())
    return Req("generated", method, target, headers, body, chunked)
