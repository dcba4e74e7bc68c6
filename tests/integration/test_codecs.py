"""`http.codec: json | proto` end to end.

The same PHP app (tests/workers/app.php, HttpWorker and PSR-7 modes) answers
identically whichever request context fastrr sends; fastrr's PHP library
picks the codec per request and answers in kind (checked on the wire with
codec_spy.py); raw_worker.php shows the exact context bytes a worker gets;
and Google's own protobuf library for PHP decodes fastrr's http.v1.Request
(and encodes responses fastrr reads) - when php-google-protobuf is installed.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time

import httpx
import pytest

import fastrr._core as C
from tests.conftest import WORKERS, worker_cmd
from tests.core import pb_http

MODES = ["http", "psr7"]


def codec_config(codec: str) -> dict:
    return {"http": {"codec": codec, "pool": {"num_workers": 1}}}


# ------------------------------------------------------------------ same answers

REQUESTS = [
    ("GET", "/echo?a=1&b[]=2&b[]=3", [("X-Custom", "v1"), ("x-multi", "1"), ("X-MULTI", "2"),
                                      ("Cookie", "sess=abc%20def; theme=dark"), ("Cookie", "sess=last; bad name=x"),
                                      ("X-Bin", b"a\xffb")], b""),
    ("POST", "/echo", [("Content-Type", "application/json")], b'{"x":[1,2,"\xc3\xa9"]}'),
    ("POST", "/echo?q=%E2%82%AC", [("Content-Type", "application/x-www-form-urlencoded")],
     b"name=fastrr&tags[]=a&tags[]=b&user[role]=admin"),
    ("HEAD", "/echo", [], b""),
    ("GET", "/headers", [], b""),
    ("GET", "/stream?n=5", [], b""),
    ("GET", "/status?code=204", [], b""),
    ("GET", "/nope", [("Accept", "*/*")], b""),
]


def normalise(r: httpx.Response, port: int) -> tuple:
    headers = [(k.lower(), v) for k, v in r.headers.multi_items() if k.lower() != "date"]
    body = r.content.replace(str(port).encode(), b"PORT")
    if r.headers.get("content-type", "").startswith("application/json"):
        # the worker's pid is in the body (and so in its length)
        headers = [(k, v) for k, v in headers if k != "content-length"]
        if body:
            data = json.loads(body)
            data.pop("pid", None)
            body = json.dumps(data, sort_keys=True).encode()
    return r.status_code, headers, body


def raw_exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        out = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return out
            out += chunk


def spied_data_frames(log, requests: int, replies: int, timeout: float = 5.0) -> tuple[list, list]:
    """codec_spy.py's log once it holds `requests` request frames and `replies`
    reply frames with options [ctx_len] (or the timeout passed): (requests, replies),
    each a split log line (direction, flags, ...)."""
    deadline = time.monotonic() + timeout
    while True:
        frames = [line.split() for line in log.read_text().splitlines()]
        data_in = [f for f in frames if f[0] == "in" and len(f) == 4]
        data_out = [f for f in frames if f[0] == "out" and len(f) == 4]
        if (len(data_in) >= requests and len(data_out) >= replies) or time.monotonic() > deadline:
            return data_in, data_out
        time.sleep(0.05)


@pytest.mark.parametrize("mode", MODES)
def test_same_answers_json_and_proto(fastrr, mode):
    servers = {codec: fastrr.start(codec_config(codec), env={"APP_MODE": mode}) for codec in ("json", "proto")}
    answers = {}
    for codec, server in servers.items():
        with httpx.Client(base_url=server.base) as client:
            answers[codec] = [normalise(client.request(m, p, headers=h, content=b), server.port)
                              for m, p, h, b in REQUESTS]
    for req, a, b in zip(REQUESTS, answers["json"], answers["proto"], strict=True):
        assert a == b, req
    echo = json.loads(answers["proto"][0][2])
    assert echo["headers"]["X-Multi"] == ["1", "2"]
    assert ("Host" in echo["headers"]) == (mode == "psr7")  # PSR-7 puts it back from the uri
    assert echo["headers"]["X-Bin"] == ["a\ufffdb"]
    # the server's cookie map (RoadRunner's rules); PSR7Worker reads the header by PHP's
    assert echo["cookies"] == ({"sess": "abc def", "theme": "dark", "bad_name": "x"} if mode == "psr7"
                               else {"sess": "last", "theme": "dark"})
    assert echo["query"] == {"a": "1", "b": ["2", "3"]}
    assert echo["uri"].startswith("http://127.0.0.1:PORT/echo?a=1&b")  # PSR-7 percent-encodes the brackets
    form = json.loads(answers["proto"][2][2])
    assert form["parsed"] is True and form["parsedBody"]["user"] == {"role": "admin"}
    assert form["query"] == {"q": "\u20ac"}
    assert answers["proto"][5][2] == b"".join(b"chunk %d\n" % i for i in range(5))
    # 103 Early Hints, then the final answer, byte for byte (Date aside)
    raw = {}
    for codec, server in servers.items():
        out = raw_exchange(server.port, b"GET /early-hints HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw[codec] = re.sub(rb"Date: [^\r]*\r\n", b"", out)
    assert raw["json"] == raw["proto"]
    assert raw["proto"].startswith(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n"
                                   b"HTTP/1.1 200 OK\r\n")


# ------------------------------------------------------------ replies in kind

@pytest.mark.parametrize(("codec", "flag"), [("json", C.FLAG_JSON), ("proto", C.FLAG_PROTO)])
@pytest.mark.parametrize("mode", MODES)
def test_worker_replies_in_kind(fastrr, tmp_path, codec, flag, mode):
    log = tmp_path / "frames.log"
    cmd = f"{sys.executable} {WORKERS / 'codec_spy.py'} {log} {worker_cmd()}"
    server = fastrr.start({"server": {"command": cmd}, **codec_config(codec)}, env={"APP_MODE": mode})
    with httpx.Client(base_url=server.base) as client:
        assert client.get("/hello").json() == {"hello": "world"}
        assert client.get("/stream?n=7").text == "".join(f"chunk {i}\n" for i in range(7))
        assert client.get("/early-hints").json() == {"ok": True}
    data_in, data_out = spied_data_frames(log, requests=3, replies=1 + 8 + 2)
    assert len(data_in) == 3
    assert {int(f[1]) for f in data_in} == {flag}
    assert len(data_out) == 1 + 8 + 2  # /hello, 7 chunks + the end, 103 + final
    assert {int(f[1]) for f in data_out} == {flag}


# ------------------------------------------------------------ raw context bytes

def test_raw_worker_gets_http_v1_request(fastrr):
    server = fastrr.start(codec_config("proto"), script="raw_worker.php")
    r = httpx.post(server.url("/p/a?x=1&y=%20"), content=b"body",
                   headers={"X-A": "1", "Cookie": "a=%41; b=2", "Content-Type": "text/plain"})
    assert r.status_code == 200
    assert "content-type" not in r.headers  # raw_worker's protobuf reply: status only
    m = pb_http.parse_request(r.content)
    assert m.remote_addr == "127.0.0.1" and m.protocol == "HTTP/1.1" and m.method == "POST"
    assert m.uri == f"http://127.0.0.1:{server.port}/p/a?x=1&y=%20"
    assert m.raw_query == "x=1&y=%20" and not m.parsed and m.uploads == b""
    assert list(m.header["X-A"].value) == [b"1"] and list(m.header["Content-Type"].value) == [b"text/plain"]
    assert "Host" not in m.header
    assert {k: list(v.value) for k, v in m.cookies.items()} == {"a": [b"A"], "b": [b"2"]}
    # the same server with codec json: the JSON context, answered with FLAG_JSON
    server = fastrr.start(codec_config("json"), script="raw_worker.php")
    r = httpx.get(server.url("/p"))
    assert r.headers["content-type"] == "application/json" and r.json()["uri"].endswith("/p")


def test_codec_config_is_checked(fastrr):
    server = fastrr.start(codec_config("msgpack"), wait=False)
    assert server.proc.wait(20) == 1
    assert "http.codec" in server.output() and "json, proto" in server.output()


# ------------------------------------------------ Google's protobuf library (PHP)

GPB = WORKERS / "gpb_check.php"


def gpb(mode: str, data: bytes) -> bytes:
    res = subprocess.run(["php", str(GPB), mode], input=data, capture_output=True, timeout=60)
    if res.returncode == 3:
        pytest.skip("php-google-protobuf is not installed")
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    return res.stdout


GPB_REQUESTS = [
    b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-Y: z\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    (b"GET /caf\xe9?q=\xff\xe2\x82 HTTP/1.1\r\nHost: h.example:81\r\nX-A: \xc3\xa9t\xc3\xa9\r\nx-a: a\xffb\xc3\r\n"
     b"Cookie: c=%ff%41; d=\"q\"; c2=%e2%82%ac; bad name=1\r\nCOOKIE: c=last\r\nX-Empty:\r\n\r\n"),
    (b"POST /long/" + b"p" * 300 + b"?" + b"q" * 200 + b" HTTP/1.1\r\nHost: h\r\nX-Long: " + b"v" * 20000 +
     b"\r\nCookie: big=" + b"w" * 5000 + b"\r\n\r\n"),
]


@pytest.mark.parametrize("raw", GPB_REQUESTS, ids=["simple", "http10", "utf8-and-cookies", "long"])
def test_google_php_protobuf_decodes_our_requests(raw):
    r = C.parse_request(raw, 1 << 20)
    uploads = b'{"f":{"name":"a.txt","size":3}}' if b"POST" in raw[:4] else None
    data = C.encode_http_context_proto(r, "192.0.2.1", "https", uploads is not None, uploads)
    out = json.loads(gpb("request", data))
    m = pb_http.parse_request(data)  # Python's protobuf: the expectation

    def pairs(payload: bytes, number: int, field) -> list:
        return [[k, [v.hex() for v in field[k].value]] for k in pb_http.map_keys(payload, number)]

    want = {
        "remoteAddr": m.remote_addr, "protocol": m.protocol, "method": m.method, "uri": m.uri,
        "headers": pairs(data, 5, m.header), "cookies": pairs(data, 6, m.cookies), "rawQuery": m.raw_query,
        "parsed": m.parsed, "uploads": m.uploads.decode(), "attributes": [],
    }
    assert out["google"] == want
    assert out["fastrr"] == {**want, "uploads": json.dumps(json.loads(m.uploads), separators=(",", ":"))
                             if m.uploads else ""}


def test_google_php_protobuf_responses_read_by_fastrr():
    spec = {"status": 201, "headers": [["Content-Type", [b"text/plain".hex()]], ["X-Multi", ["61", "62"]],
                                       ["x-raw", [b"\xff\x00\r\n".hex()]], ["Empty", []]]}
    ctx = gpb("response", json.dumps(spec).encode())
    assert json.loads(C.proto_response_to_json(ctx).replace(b"\xff", b"?")) == {
        "status": 201, "headers": {"Content-Type": ["text/plain"], "X-Multi": ["a", "b"], "x-raw": ["?\x00\r\n"],
                                   "Empty": []}}
    status, data = C.build_response(ctx + b"hi", len(ctx), True, False, 1, False, C.FLAG_PROTO)
    assert status == 201
    assert b"\r\nX-Multi: a\r\nX-Multi: b\r\n" in data and b"\r\nX-Raw: \xff\r\n" in data
    assert data.endswith(b"\r\n\r\nhi")
