"""A small HTTP/1.1 server for the operational endpoints: the status probes and the metrics scrape.

Their clients are load balancers, orchestrators and Prometheus: tiny GETs,
a few a second. So this serves only what they need, on asyncio streams, and
bounds everything a client could abuse:
- a request head of at most `max_head` bytes (else 431), a body of at most
  `max_body` bytes (Content-Length or chunked, read and dropped; else 413);
- the head and body must arrive within `read_timeout`; a kept-alive
  connection may idle `idle_timeout` more before its next request;
- at most `max_connections` at once: more are closed unanswered.
Keep-alive as HTTP/1.1 has it (`Connection: close` ends it; HTTP/1.0 closes);
HEAD gets the headers only. A handler that raises answers 500 and is logged;
the connection and the listener go on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import parse_qs, unquote, urlsplit

from fastrr.log import Logger

TEXT = "text/plain; charset=utf-8"


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class Request:
    method: str
    path: str  # percent-decoded
    query: dict[str, list[str]]  # a name to all its values, in order
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names; repeats joined with ", "


Handler = Callable[[Request], Answer]


class BadRequest(Exception):
    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status = status


def reason(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return f"status code {code}"  # what Go writes for a code it has no text for


def text_answer(status: int, text: str) -> Answer:
    """`413 Payload Too Large: why` as Go's http.Error writes such answers."""
    return Answer(status, f"{status} {reason(status)}: {text}\n".encode(), TEXT)


class EndpointServer:
    def __init__(self, host: str | None, port: int, handler: Handler, log: Logger, *, name: str,
                 read_timeout: float = 10.0, idle_timeout: float = 60.0, max_head: int = 16 << 10,
                 max_body: int = 64 << 10, max_connections: int = 256):
        self.host = host or None
        self.port = port
        self.handler = handler
        self.log = log
        self.name = name  # the plugin, in log lines
        self.read_timeout = read_timeout
        self.idle_timeout = idle_timeout
        self.max_head = max_head
        self.max_body = max_body
        self.max_connections = max_connections
        self.server: asyncio.Server | None = None
        self.connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Raises OSError when the address cannot be bound."""
        self.server = await asyncio.start_server(self._connection, self.host, self.port, limit=self.max_head,
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
        if len(self.connections) >= self.max_connections:
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
            self.log.error(f"{self.name}: connection failed", error=repr(exc))
        finally:
            self.connections.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = True
        while True:
            timeout = self.read_timeout if first else self.read_timeout + self.idle_timeout
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            except asyncio.IncompleteReadError as exc:
                if exc.partial.strip():
                    await self._send(writer, text_answer(400, "incomplete request"), False, True)
                return
            except asyncio.LimitOverrunError:
                await self._send(writer, text_answer(431, "request head too large"), False, True)
                return
            first = False
            try:
                request, keep_alive = await self._request(reader, head)
            except BadRequest as exc:
                await self._send(writer, text_answer(exc.status, str(exc)), False, True)
                return
            answer = self._answer(request)
            await self._send(writer, answer, request.method == "HEAD", not keep_alive)
            if not keep_alive:
                return

    def _answer(self, request: Request) -> Answer:
        try:
            return self.handler(request)
        except Exception as exc:  # a bug behind one route must not take the endpoint down
            self.log.error(f"{self.name}: answering {request.method} {request.path} failed", error=repr(exc))
            return text_answer(500, f"{self.name} failed to answer (see the server log)")

    async def _request(self, reader: asyncio.StreamReader, head: bytes) -> tuple[Request, bool]:
        """One request whose body has been read and dropped, and whether the connection stays open."""
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
        path, query = self._target(target)
        return Request(method, path, query, headers), keep_alive

    @staticmethod
    def _target(target: str) -> tuple[str, dict[str, list[str]]]:
        if target == "*":
            return "*", {}
        if target.startswith("/"):
            path, _, query = target.partition("?")
            query = query.partition("#")[0]
        elif target.lower().startswith(("http://", "https://")):
            parts = urlsplit(target)  # absolute-form, as a proxy would send it
            path, query = parts.path or "/", parts.query
        else:
            raise BadRequest(400, "malformed request target")
        try:
            values = parse_qs(query, keep_blank_values=True)
        except ValueError:
            values = {}
        return unquote(path), values

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
        if length > self.max_body:
            raise BadRequest(413, f"request body over {self.max_body} bytes")
        await asyncio.wait_for(reader.readexactly(length), self.read_timeout)

    async def _drop_chunked(self, reader: asyncio.StreamReader) -> None:
        total = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BadRequest(400, "malformed chunk size") from None
            total += size
            if total > self.max_body:
                raise BadRequest(413, f"request body over {self.max_body} bytes")
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailer fields, dropped
                return
            await reader.readexactly(size + 2)

    async def _send(self, writer: asyncio.StreamWriter, answer: Answer, head_only: bool, close: bool) -> None:
        lines = [f"HTTP/1.1 {answer.status} {reason(answer.status)}",
                 f"Content-Type: {answer.content_type}",
                 f"Content-Length: {len(answer.body)}",
                 f"Date: {formatdate(usegmt=True)}",
                 "Cache-Control: no-store"]
        if answer.content_type == TEXT:
            lines.append("X-Content-Type-Options: nosniff")
        lines.extend(f"{name}: {value}" for name, value in answer.headers)
        if close:
            lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if not head_only:
            writer.write(answer.body)
        await asyncio.wait_for(writer.drain(), self.read_timeout)
