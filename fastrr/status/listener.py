"""A small HTTP/1.1 server for the probes, on asyncio streams.

Probes are tiny GETs from load balancers and orchestrators, so this serves
only what they need, and bounds everything a client could abuse:
- a request head of at most MAX_HEAD bytes (else 431), a body of at most
  MAX_BODY bytes (Content-Length or chunked, read and dropped; else 413);
- the head and body must arrive within `check_timeout` (RoadRunner's read
  timeouts; a kept-alive connection may idle IDLE_TIMEOUT more before its next one);
- at most MAX_CONNECTIONS at once: more are closed unanswered.
Keep-alive as HTTP/1.1 has it (`Connection: close` ends it; HTTP/1.0 closes);
HEAD gets the headers only. Any method is served, as Go's ServeMux does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import parse_qs, unquote, urlsplit

from fastrr.log import Logger
from fastrr.status.checks import TEXT, Answer

MAX_HEAD = 8192
MAX_BODY = 64 * 1024
MAX_CONNECTIONS = 256
IDLE_TIMEOUT = 60.0

# (method, path, query) -> the answer; the query maps a name to all its values, in order.
Handler = Callable[[str, str, dict[str, list[str]]], Answer]


class BadRequest(Exception):
    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status = status


def reason(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return f"status code {code}"  # what Go writes for a code it has no text for


class ProbeListener:
    def __init__(self, host: str | None, port: int, read_timeout: float, handler: Handler, log: Logger):
        self.host = host
        self.port = port
        self.read_timeout = read_timeout
        self.handler = handler
        self.log = log
        self.server: asyncio.Server | None = None
        self.connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Raises OSError when the address cannot be bound."""
        self.server = await asyncio.start_server(self._connection, self.host, self.port, limit=MAX_HEAD,
                                                 reuse_address=True)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.connections):
            task.cancel()
        if self.connections:
            await asyncio.gather(*self.connections, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()
            self.server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self.connections) >= MAX_CONNECTIONS:
            writer.close()
            return
        self.connections.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass  # the client went away, was too slow, or sent an endless chunk line: nothing to answer
        except asyncio.CancelledError:
            pass  # stop(): the listener closes with its connections
        except Exception as exc:
            self.log.error("status: probe connection failed", error=repr(exc))
        finally:
            self.connections.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = True
        while True:
            # A further request on a kept-alive connection may first idle for IDLE_TIMEOUT.
            timeout = self.read_timeout if first else self.read_timeout + IDLE_TIMEOUT
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            except asyncio.IncompleteReadError as exc:
                if exc.partial.strip():
                    await self._send(writer, Answer(400, b"400 Bad Request: incomplete request\n", TEXT),
                                     False, True)
                return
            except asyncio.LimitOverrunError:
                await self._send(writer, Answer(431, b"431 Request Header Fields Too Large\n", TEXT), False, True)
                return
            first = False
            try:
                method, target, keep_alive = await self._request(reader, head)
            except BadRequest as exc:
                await self._send(writer, Answer(exc.status, f"{exc.status} {reason(exc.status)}: {exc}\n".encode(),
                                                TEXT), False, True)
                return
            answer = self._route(method, target)
            await self._send(writer, answer, method == "HEAD", not keep_alive)
            if not keep_alive:
                return

    async def _request(self, reader: asyncio.StreamReader, head: bytes) -> tuple[str, str, bool]:
        """(method, target, keep-alive) of one request whose body has been read and dropped."""
        lines = head[:-4].decode("latin-1").split("\r\n")
        while lines and not lines[0]:
            lines.pop(0)  # RFC 9112 §2.2: empty lines before the request line are ignored
        parts = lines[0].split(" ") if lines else []
        if len(parts) != 3 or not parts[0].isalpha():
            raise BadRequest(400, "malformed request line")
        method, target, version = parts
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            raise BadRequest(505 if version.startswith("HTTP/") else 400, f"unsupported protocol {version!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise BadRequest(400, "malformed header line")
            key = name.lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        keep_alive = "close" not in tokens if version == "HTTP/1.1" else False
        await self._drop_body(reader, headers)
        return method, target, keep_alive

    async def _drop_body(self, reader: asyncio.StreamReader, headers: dict[str, str]) -> None:
        coding = headers.get("transfer-encoding")
        if coding is not None:
            if coding.strip().lower() != "chunked":
                raise BadRequest(501, f"transfer coding {coding!r} is not supported")
            if "content-length" in headers:
                raise BadRequest(400, "both Transfer-Encoding and Content-Length")
            await asyncio.wait_for(self._drop_chunked(reader), self.read_timeout)
            return
        length_text = headers.get("content-length")
        if length_text is None:
            return
        if not length_text.isdigit():
            raise BadRequest(400, "invalid Content-Length")
        length = int(length_text)
        if length > MAX_BODY:
            raise BadRequest(413, f"request body over {MAX_BODY} bytes")
        await asyncio.wait_for(reader.readexactly(length), self.read_timeout)

    @staticmethod
    async def _drop_chunked(reader: asyncio.StreamReader) -> None:
        total = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BadRequest(400, "malformed chunk size") from None
            total += size
            if total > MAX_BODY:
                raise BadRequest(413, f"request body over {MAX_BODY} bytes")
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailer fields, dropped
                return
            await reader.readexactly(size + 2)

    def _route(self, method: str, target: str) -> Answer:
        if target == "*":
            if method == "OPTIONS":
                return Answer(200, b"", TEXT)
            return Answer(400, b"400 Bad Request\n", TEXT)
        if target.startswith("/"):
            path, _, query = target.partition("?")
            query = query.partition("#")[0]
        elif target.lower().startswith(("http://", "https://")):
            parts = urlsplit(target)  # absolute-form, as a proxy would send it
            path, query = parts.path or "/", parts.query
        else:
            return Answer(400, b"400 Bad Request: malformed request target\n", TEXT)
        try:
            values = parse_qs(query, keep_blank_values=True)
        except ValueError:
            values = {}
        return self.handler(method, unquote(path), values)

    async def _send(self, writer: asyncio.StreamWriter, answer: Answer, head_only: bool, close: bool) -> None:
        lines = [f"HTTP/1.1 {answer.status} {reason(answer.status)}",
                 f"Content-Type: {answer.content_type}",
                 f"Content-Length: {len(answer.body)}",
                 f"Date: {formatdate(usegmt=True)}",
                 "Cache-Control: no-store"]
        if answer.content_type == TEXT:
            lines.append("X-Content-Type-Options: nosniff")
        if close:
            lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if not head_only:
            writer.write(answer.body)
        await asyncio.wait_for(writer.drain(), self.read_timeout)

