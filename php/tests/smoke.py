#!/usr/bin/env python3
"""Drive a PHP worker over pipes without the fastrr server, and check its answers.

    python3 php/tests/smoke.py                 # runs the checks against tests/workers/app.php
    python3 php/tests/smoke.py --mode psr7     # the same with APP_MODE=psr7
    python3 php/tests/smoke.py --bench 20000   # time /hello round trips instead

Only the standard library: the goridge frame codec below is a second,
independent implementation of the format the PHP library writes.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CONTROL, JSON, PROTO, ERROR = 0x01, 0x08, 0x80, 0x40
STREAM, STOP, PING, PONG = 0x01, 0x02, 0x04, 0x08


def frame(payload: bytes, options: tuple[int, ...] = (), flags: int = 0, byte10: int = 0) -> bytes:
    head = struct.pack("<BBI", 0x10 | (3 + len(options)), flags, len(payload))
    crc = struct.pack("<I", zlib.crc32(head) & 0xFFFFFFFF)
    return head + crc + bytes([byte10, 0]) + struct.pack(f"<{len(options)}I", *options) + payload


class Worker:
    def __init__(self, script: str, env: dict[str, str] | None = None):
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            ["php", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env
        )

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def read_exact(self, n: int) -> bytes:
        assert self.proc.stdout is not None
        buf = b""
        while len(buf) < n:
            chunk = self.proc.stdout.read(n - len(buf))
            if not chunk:
                raise EOFError(f"worker closed stdout after {len(buf)} of {n} bytes")
            buf += chunk
        return buf

    def read_frame(self) -> tuple[int, int, list[int], bytes]:
        head = self.read_exact(12)
        hl = head[0] & 0x0F
        assert head[0] >> 4 == 1, f"bad version byte {head[:12]!r}"
        flags = head[1]
        (length,) = struct.unpack("<I", head[2:6])
        (crc,) = struct.unpack("<I", head[6:10])
        assert crc == zlib.crc32(head[:6]) & 0xFFFFFFFF, "CRC mismatch"
        assert head[11] == 0
        opts = list(struct.unpack(f"<{hl - 3}I", self.read_exact((hl - 3) * 4)))
        return flags, head[10], opts, self.read_exact(length)

    def handshake(self) -> int:
        self.send(frame(b'{"pid":4242}', flags=CONTROL | JSON))
        flags, b10, opts, payload = self.read_frame()
        assert flags == CONTROL and opts == [] and b10 == 0, (flags, b10, opts)
        pid = json.loads(payload)["pid"]
        assert pid == self.proc.pid, (pid, self.proc.pid)
        return pid

    def request(self, ctx: dict | bytes, body: bytes = b"", flags: int = JSON) -> None:
        c = ctx if isinstance(ctx, bytes) else json.dumps(ctx).encode()
        self.send(frame(c + body, (len(c),), flags))

    def response(self) -> tuple[int, int, dict | bytes, bytes]:
        """One response frame: (flags, byte10, context, body)."""
        flags, b10, opts, payload = self.read_frame()
        if flags & ERROR:
            assert opts == []
            return flags, b10, {}, payload
        assert len(opts) == 1, opts
        ctx_raw, body = payload[: opts[0]], payload[opts[0]:]
        ctx = json.loads(ctx_raw) if flags & JSON else ctx_raw
        return flags, b10, ctx, body

    def stop(self) -> int:
        self.send(frame(b'{"stop":true}', flags=CONTROL | JSON))
        return self.proc.wait(timeout=5)

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")


def ctx(path: str, method: str = "GET", query: str = "", **kw) -> dict:
    c = {
        "remoteAddr": "127.0.0.1",
        "protocol": "HTTP/1.1",
        "method": method,
        "uri": f"http://localhost{path}" + (f"?{query}" if query else ""),
        "headers": {"Accept": ["*/*"]},
        "cookies": {},
        "rawQuery": query,
        "parsed": False,
        "uploads": None,
        "attributes": {},
    }
    c.update(kw)
    return c


def pb_varint(n: int) -> bytes:
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def pb_field(num: int, data: bytes) -> bytes:
    return pb_varint(num << 3 | 2) + pb_varint(len(data)) + data


def pb_map(num: int, m: dict[str, list[str]]) -> bytes:
    out = b""
    for k, vs in m.items():
        hv = b"".join(pb_field(1, v.encode()) for v in vs)
        out += pb_field(num, pb_field(1, k.encode()) + pb_field(2, hv))
    return out


def proto_request(path: str) -> bytes:
    return (
        pb_field(1, b"10.0.0.1") + pb_field(2, b"HTTP/2.0") + pb_field(3, b"POST")
        + pb_field(4, f"https://example.com{path}?a=1".encode())
        + pb_map(5, {"Content-Type": ["application/json"], "X-Many": ["1", "2"]})
        + pb_map(6, {"sid": ["abc"]}) + pb_field(7, b"a=1") + pb_map(10, {"attr": ["v"]})
    )


def check(mode: str) -> None:
    env = {"APP_MODE": mode}
    w = Worker(os.path.join(ROOT, "tests/workers/app.php"), env)
    w.handshake()
    ok = 0

    def expect(cond: bool, what: str) -> None:
        nonlocal ok
        if not cond:
            raise AssertionError(what)
        ok += 1

    w.request(ctx("/hello"))
    f, b10, c, body = w.response()
    expect(f == JSON and b10 == 0 and c["status"] == 200 and json.loads(body) == {"hello": "world"}, f"/hello {c} {body!r}")
    expect(c["headers"] == {"Content-Type": ["application/json"]}, f"/hello headers {c}")

    w.request(ctx("/pid"))
    _, _, c, body = w.response()
    expect(json.loads(body)["count"] == 2, f"/pid {body!r}")

    echo_ctx = ctx(
        "/echo", "POST", "a=1&b[]=2&b[]=3",
        headers={"Content-Type": ["application/x-www-form-urlencoded"], "X-Many": ["1", "2"]},
        cookies={"sid": "abc"}, parsed=True, attributes={"attr": "v"},
    )
    w.request(echo_ctx, b'{"name":"x","list":["1","2"]}')
    _, _, c, body = w.response()
    e = json.loads(body)
    expect(e["method"] == "POST" and e["query"] == {"a": "1", "b": ["2", "3"]}, f"echo query {e}")
    expect(e["cookies"] == {"sid": "abc"} and e["parsed"] is True, f"echo cookies {e}")
    expect(e["parsedBody"] == {"name": "x", "list": ["1", "2"]}, f"echo parsedBody {e}")
    expect(e["headers"]["X-Many"] == ["1", "2"] and e["attributes"] == {"attr": "v"}, f"echo headers {e}")
    expect(e["protocol"] == "HTTP/1.1" and e["remoteAddr"] == "127.0.0.1", f"echo proto {e}")

    # Protobuf context (what RoadRunner >= 2024.1 sends): answered in protobuf, flags 0x80.
    w.request(proto_request("/echo"), b'{"x":1}', flags=PROTO)
    f, _, c, body = w.response()
    e = json.loads(body)
    expect(f == PROTO and c.startswith(b"\x08\xc8\x01"), f"proto response ctx {c!r}")
    expect(e["method"] == "POST" and e["uri"] == "https://example.com/echo?a=1" and e["body"] == '{"x":1}', f"proto echo {e}")
    expect(e["headers"]["X-Many"] == ["1", "2"] and e["cookies"] == {"sid": "abc"} and e["attributes"] == {"attr": "v"}, f"proto echo {e}")
    expect(e["protocol"] == ("HTTP/2.0" if mode != "psr7" else "HTTP/2") and e["remoteAddr"] == "10.0.0.1", f"proto {e}")

    w.request(ctx("/stdout"))
    _, _, c, body = w.response()
    expect(json.loads(body) == {"ok": True}, "/stdout")

    w.request(ctx("/error"))
    f, _, c, body = w.response()
    expect(f == ERROR and body == b"boom: something failed", f"/error {f} {body!r}")

    w.request(ctx("/headers"))
    _, _, c, body = w.response()
    h = {k.lower(): v for k, v in c["headers"].items()}
    expect(h["x-multi"] == ["a", "b"] and h["x-lower-case"] == ["yes"] and len(h["set-cookie"]) == 2, f"/headers {c}")

    w.request(ctx("/early-hints"))
    f, b10, c, body = w.response()
    expect(c["status"] == 103 and b10 == STREAM and body == b"", f"103 {c} {b10}")
    expect(c["headers"]["Link"] == ["</style.css>; rel=preload; as=style"], f"103 link {c}")
    f, b10, c, body = w.response()
    expect(c["status"] == 200 and b10 == 0 and json.loads(body) == {"ok": True}, f"103 final {c}")

    # Streaming with back-pressure: a PING on every 5th chunk, PONG expected before more.
    w.request(ctx("/stream", query="n=12&ms=0"))
    chunks = []
    while True:
        f, b10, c, body = w.response()
        chunks.append(body)
        if b10 & PING:
            expect(len(chunks) % 5 == 0, f"PING on chunk {len(chunks)}")
            w.send(frame(b"", byte10=PONG))
        if not b10 & STREAM:
            break
    expect(b"".join(chunks) == b"".join(b"chunk %d\n" % i for i in range(12)), f"stream {chunks}")

    # Stream cancel: STOP while streaming → generator stopped, one final empty frame.
    w.request(ctx("/stream", query="n=1000&ms=5"))
    f, b10, c, body = w.response()
    expect(b10 & STREAM and body == b"chunk 0\n", "stream first chunk")
    w.send(frame(b"", byte10=STOP))
    n = 1
    while True:
        f, b10, c, body = w.response()
        n += 1
        if b10 & PING:
            w.send(frame(b"", byte10=PONG))
        if not b10 & STREAM:
            break
    expect(body == b"" and n < 20, f"stream stop took {n} frames")
    w.send(frame(b"", byte10=PONG))  # a late PONG must be ignored by the next waitPayload

    w.request(ctx("/big", query="kb=3000"))
    _, _, c, body = w.response()
    expect(body == b"x" * 3000 * 1024, "/big")

    w.request(ctx("/status", query="code=204"))
    _, _, c, body = w.response()
    expect(c["status"] == 204 and body == b"", f"/status {c}")

    w.request(ctx("/nope"))
    _, _, c, body = w.response()
    expect(c["status"] == 404 and json.loads(body) == {"error": "not found"}, "404")

    marker = os.path.join(tempfile.mkdtemp(), "marker")
    w.request(ctx("/stop-once", query=f"marker={marker}"))
    flags, b10, opts, payload = w.read_frame()
    expect(flags == 0 and opts == [13] and payload == b'{"stop":true}', f"stop frame {flags} {opts} {payload!r}")
    rc = w.proc.wait(timeout=5)
    err = w.stderr()
    expect(rc == 0, f"exit after stop {rc}")
    expect("stray output from app" in err, f"stderr {err!r}")

    # Second worker: marker exists now; graceful stop via CONTROL.
    w = Worker(os.path.join(ROOT, "tests/workers/app.php"), env)
    w.handshake()
    w.request(ctx("/stop-once", query=f"marker={marker}"))
    _, _, c, body = w.response()
    expect(json.loads(body)["stopped_before"] is True, "stop-once second time")
    w.request(ctx("/crash"))
    expect(w.proc.wait(timeout=5) == 1, "/crash exits 1")

    w = Worker(os.path.join(ROOT, "tests/workers/app.php"), env)
    w.handshake()
    expect(w.stop() == 0, "graceful stop exits 0")
    print(f"smoke [{mode}]: {ok} checks passed")


def bench(n: int, mode: str, script: str) -> None:
    w = Worker(os.path.join(ROOT, script), {"APP_MODE": mode})
    w.handshake()
    req = frame(json.dumps(ctx("/hello", headers={
        "Accept": ["*/*"], "User-Agent": ["wrk"], "Accept-Encoding": ["gzip"],
        "Connection": ["keep-alive"], "X-Forwarded-For": ["10.1.1.1"], "Cookie": ["a=b"],
    })).encode() + b"", (len(json.dumps(ctx("/hello", headers={
        "Accept": ["*/*"], "User-Agent": ["wrk"], "Accept-Encoding": ["gzip"],
        "Connection": ["keep-alive"], "X-Forwarded-For": ["10.1.1.1"], "Cookie": ["a=b"],
    })).encode()),), JSON)
    for _ in range(1000):
        w.send(req)
        w.read_frame()
    t_cpu = _child_cpu(w.proc.pid)
    t0 = time.perf_counter()
    for _ in range(n):
        w.send(req)
        w.read_frame()
    dt = time.perf_counter() - t0
    cpu = _child_cpu(w.proc.pid) - t_cpu
    print(f"{script} [{mode}]: {n / dt:,.0f} round trips/s, {dt / n * 1e6:.1f} µs wall, "
          f"worker CPU {cpu / n * 1e6:.2f} µs per request")
    w.stop()


def _child_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", default="http", choices=["http", "psr7"])
    ap.add_argument("--bench", type=int, default=0)
    ap.add_argument("--script", default="tests/workers/app.php")
    a = ap.parse_args()
    if a.bench:
        bench(a.bench, a.mode, a.script)
    else:
        check(a.mode)
    sys.exit(0)
