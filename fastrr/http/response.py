"""A response as data, for the paths that must look at it: middleware, HTTP/2.

The plain HTTP/1.1 path never builds one: the C `build_response` bytes go
straight to the socket. When middleware has a response hook, or the client
speaks HTTP/2, the worker's reply is built by C as HTTP/1.1 bytes (so header
sanitising and name canonicalisation stay in one place) and parsed back here;
local answers (static files, CORS preflight, redirects) are made here directly.

Framing (Content-Length, Transfer-Encoding, Connection) is never stored: it is
derived when the response is encoded for its protocol.
"""

from __future__ import annotations

import os
from http import HTTPStatus

from fastrr import _core

_FRAMING = {"content-length", "transfer-encoding", "connection", "keep-alive"}


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class FileBody:
    """`count` bytes of an open file from `offset`; the response owns the file."""

    __slots__ = ("file", "offset", "count")

    def __init__(self, file: int, offset: int, count: int):
        self.file = file  # an OS file descriptor
        self.offset = offset
        self.count = count

    def close(self) -> None:
        if self.file >= 0:
            try:
                os.close(self.file)
            except OSError:
                pass
            self.file = -1


class Response:
    __slots__ = ("status", "headers", "body", "file", "streaming")

    def __init__(self, status: int, headers: list[tuple[str, str]] | None = None, body: bytes = b"",
                 file: FileBody | None = None, streaming: bool = False):
        self.status = status
        self.headers = headers if headers is not None else []
        self.body = body
        self.file = file
        self.streaming = streaming  # more body arrives later (worker stream frames)

    @classmethod
    def local(cls, status: int, body: bytes = b"", content_type: str | None = "text/plain; charset=utf-8",
              headers: list[tuple[str, str]] | None = None) -> Response:
        """An answer fastrr makes itself: Date and Server as on worker responses."""
        out = [("Date", _core.http_date().decode()), ("Server", "fastrr")]
        if content_type and body:
            out.append(("Content-Type", content_type))
        if headers:
            out.extend(headers)
        return cls(status, out, body)

    @classmethod
    def from_http1(cls, data: bytes) -> Response:
        """Parse what `_core.build_response(..., head_request=False, http_minor=1,
        stream=False)` produced (or its 1xx head)."""
        end = data.find(b"\r\n\r\n")
        head = data[:end] if end >= 0 else data
        body = data[end + 4:] if end >= 0 else b""
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(": ")
            if name.lower() not in _FRAMING:
                headers.append((name, value))
        return cls(status, headers, body)

    # -- headers ---------------------------------------------------------------------

    def get(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [value for key, value in self.headers if key.lower() == lname]

    def remove(self, name: str) -> None:
        lname = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != lname]

    def set(self, name: str, value: str) -> None:
        self.remove(name)
        self.headers.append((name, value))

    def add(self, name: str, value: str) -> None:
        self.headers.append((name, value))

    def add_vary(self, token: str) -> None:
        for value in self.get_all("Vary"):
            if any(part.strip().lower() in (token.lower(), "*") for part in value.split(",")):
                return
        self.add("Vary", token)

    @property
    def body_length(self) -> int:
        return self.file.count if self.file is not None else len(self.body)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()

    # -- HTTP/1.x ---------------------------------------------------------------------

    def encode_http1(self, http_minor: int, keep_alive: bool, head_request: bool) -> bytes:
        """Status line, headers, framing and (unless HEAD/no-body status) the
        in-memory body; a FileBody is sent after these bytes by the caller.
        A streaming response on HTTP/1.1 is chunked and `body` is its first chunk."""
        status = self.status
        out = [f"HTTP/1.{http_minor} {status} {reason_phrase(status)}\r\n"]
        for name, value in self.headers:
            out.append(f"{name}: {value}\r\n")
        no_body = status < 200 or status in (204, 304)
        body = b""
        if status < 200:
            return ("".join(out) + "\r\n").encode("latin-1", "replace")
        if self.streaming:
            if http_minor:
                if not no_body:
                    out.append("Transfer-Encoding: chunked\r\n")
                    if not head_request:
                        body = _core.encode_chunk(self.body)
            else:
                keep_alive = False
                body = b"" if head_request or no_body else self.body
        elif not no_body:
            out.append(f"Content-Length: {self.body_length}\r\n")
            if not head_request:
                body = self.body
        if not keep_alive:
            out.append("Connection: close\r\n")
        elif not http_minor:
            out.append("Connection: keep-alive\r\n")
        out.append("\r\n")
        return "".join(out).encode("latin-1", "replace") + body

    def has_body(self, head_request: bool) -> bool:
        return not head_request and self.status >= 200 and self.status not in (204, 304)
