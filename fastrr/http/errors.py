"""Responses the server writes itself (no PHP involved): DESIGN.md's error table.

A cold path: built per call, small, always `text/plain` with a one-line reason
so a client (and whoever reads its logs) can tell what happened.
"""

from __future__ import annotations

from fastrr import _core

REASONS = {
    400: "Bad Request", 404: "Not Found", 408: "Request Timeout", 413: "Content Too Large",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}


def error_response(status: int, detail: str, keep_alive: bool, extra: bytes = b"", head: bool = False) -> bytes:
    reason = REASONS.get(status, "Error")
    body = f"{status} {reason}: {detail}\n".encode() if detail else f"{status} {reason}\n".encode()
    head_lines = (
        b"HTTP/1.1 %d %s\r\nDate: %s\r\nServer: fastrr\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: %d\r\n%s%s\r\n"
        % (status, reason.encode(), _core.http_date(), len(body), extra,
           b"" if keep_alive else b"Connection: close\r\n")
    )
    return head_lines if head else head_lines + body
