"""Write the seed corpora of the fuzz targets into DIR/<target>/.

    python csrc/fuzz/seeds.py build/fuzz/seeds

http_parser: every request of tests/core/corpus (valid and invalid) plus a few
             shapes the corpus lacks; chunked: the chunked bodies found there
             plus hand-made ones; frame: goridge streams as workers write them;
             response: worker replies with the 3-byte option prefix that
             fuzz_response.c expects. Also used by tests/fuzz (the same seeds
             through the Python API).
"""

from __future__ import annotations

import hashlib
import struct
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.core.helpers import unescape  # noqa: E402


def frame(flags: int, payload: bytes = b"", options: tuple[int, ...] = (), byte10: int = 0) -> bytes:
    head = bytes([0x10 | (3 + len(options)), flags]) + struct.pack("<I", len(payload))
    head += struct.pack("<I", zlib.crc32(head)) + bytes([byte10, 0])
    return head + b"".join(struct.pack("<I", o) for o in options) + payload


def http_seeds() -> list[bytes]:
    out = [unescape(p.read_bytes()) for p in sorted((ROOT / "tests/core/corpus").glob("*/*.http"))]
    out += [
        b"POST /f HTTP/1.1\r\nHost: a\r\nCookie: a=1; b=\"x%20y\"; c\r\nCookie: a=2\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 3\r\n\r\nabc",
        b"GET http://h:8/p?q=1#f HTTP/1.1\r\nHost: h:8\r\nX-A: \xc3\xa9\xff\xed\xa0\x80\r\n\r\n",
        b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
        b"OPTIONS * HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
    ]
    return out


def chunked_seeds(requests: list[bytes]) -> list[bytes]:
    out = []
    for raw in requests:
        head_end = raw.find(b"\r\n\r\n")
        if b"chunked" in raw[:head_end].lower() and head_end >= 0:
            out.append(raw[head_end + 4 :])
    out += [
        b"5\r\nhello\r\n6;name=value;flag\r\n world\r\nA; q=\"x \\\" y\"\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
        b"0\r\n\r\nGET / HTTP/1.1\r\n",
        b"000010\r\n0123456789abcdef\r\n0;x=y\r\nA: 1\r\nB: 2\r\n\r\n",
        b"ffffffffffffffff\r\n",
        b"1 ;a = \"b\"\r\nx\r\n0\r\n\r\n",
    ]
    return out


def frame_seeds() -> list[bytes]:
    ctx = b'{"status":200,"headers":{"Content-Type":["text/plain"]}}'
    return [
        frame(0x01, b'{"pid":1234}'),
        frame(0, ctx + b"hello", (len(ctx),)),
        frame(0x80, ctx + b"x" * 300, (len(ctx),), 0x01) + frame(0x80, ctx + b"y", (len(ctx),), 0x05)
        + frame(0x80, ctx, (len(ctx),)),
        frame(0x40, b"something failed"),
        frame(0, b'{"stop":true}', (13,)),
        frame(0x09, b'{"stop":true}') + frame(0, b"", (), 0x08) + frame(0, b"", (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)),
        b"Could not open input file: worker.php\n",
        b"hello from a stray echo" + frame(0, b"x", (0,)),
        frame(0x04, b"z" * 70000),
    ]


def response_seeds() -> list[bytes]:
    ctxs = [
        b'{"status":200,"headers":{"Content-Type":["application/json"],"X-A":["1","2"]}}',
        b'{"headers":[],"status":404}',
        b'{"status":204,"headers":null}',
        b'{"status":103,"headers":{"Link":["</a>; rel=preload"]}}',
        b'{"status":301,"headers":{"Location":"/x","Date":["today"],"Server":["php"]}}',
        b'{"status":200,"extra":{"a":[1,2.5e3,true,false,null,"\\u00e9"]},"headers":{"Set-Cookie":'
        b'["a=1","b=\\ud83d\\ude00"],"Bad Name":["x"],"X":["a\\r\\nb\\u0000c"],"Content-Length":["9"]}}',
        b'{"status":200}',
        b"{}",
    ]
    out = []
    for i, ctx in enumerate(ctxs):
        for opts in (0x05, 0x07, 0x0D, 0x01, 0x00, 0x0C):
            body = b"body-" * (i + 1)
            out.append(bytes([opts]) + struct.pack("<H", len(ctx)) + ctx + body)
    return out


def write(dirpath: Path, items: list[bytes]) -> None:
    dirpath.mkdir(parents=True, exist_ok=True)
    for data in items:
        (dirpath / hashlib.sha1(data).hexdigest()).write_bytes(data)


def all_seeds() -> dict[str, list[bytes]]:
    http = http_seeds()
    return {"http_parser": http, "chunked": chunked_seeds(http), "frame": frame_seeds(),
            "response": response_seeds()}


def main() -> None:
    out = Path(sys.argv[1])
    for target, items in all_seeds().items():
        write(out / target, items)


if __name__ == "__main__":
    main()
