"""A small asyncio client for beanstalkd's text protocol (the commands the driver uses).

One `Connection` is one TCP (or unix) stream; commands on it run one at a
time (a lock), each reading exactly the reply the protocol defines for it.
Replies are parsed strictly: a reply word the command cannot answer, a
number that is not one, a body of the wrong length or without its CRLF is
a `ProtocolError` and the connection is closed, since nothing after a
misread reply can be trusted. beanstalkd's own error replies (BAD_FORMAT,
OUT_OF_MEMORY, DRAINING, JOB_TOO_BIG, ...) are a `ServerError` naming the
reply; the connection stays usable. NOT_FOUND is an answer, not an error:
the commands on one job return False for it.

Note the protocol's rule the driver is built around: a reserved job can
be deleted, released or touched only on the connection that reserved it,
and `reserve-with-timeout` blocks its connection, so the driver keeps one
connection for producing and one for consuming.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

MAX_LINE = 1024  # a reply line is a word and at most two numbers (or a tube name of <= 200 bytes)
IO_TIMEOUT = 10.0  # seconds for a reply to a command that does not wait by design
# A tube name: up to 200 bytes of letters, digits and - + / ; . $ _ ( ), not starting with "-".
TUBE_NAME = re.compile(r"[A-Za-z0-9+/;.$_()][A-Za-z0-9+/;.$_()-]{0,199}")
MAX_PRIORITY = 2**32 - 1
SERVER_ERRORS = ("OUT_OF_MEMORY", "INTERNAL_ERROR", "BAD_FORMAT", "UNKNOWN_COMMAND", "DRAINING", "JOB_TOO_BIG",
                 "EXPECTED_CRLF")


class BeanstalkError(Exception):
    """Base of the client's errors."""


class ProtocolError(BeanstalkError):
    """A reply that does not follow the protocol (the connection is closed)."""


class ServerError(BeanstalkError):
    """beanstalkd refused the command (its reply word is `reply`)."""

    def __init__(self, command: str, reply: str):
        super().__init__(f"beanstalkd answered {reply} to {command}")
        self.reply = reply


class ConnectionLost(BeanstalkError, ConnectionError):
    """The stream closed or timed out (the connection is closed)."""


@dataclass
class Reserved:
    id: int
    body: bytes


DEADLINE_SOON = "DEADLINE_SOON"


def _int(text: str, what: str, line: bytes) -> int:
    if not text.isdigit():
        raise ProtocolError(f"bad {what} {text!r} in beanstalkd reply {line!r}")
    return int(text)


def parse_stats(data: bytes) -> dict[str, str]:
    """The YAML mapping of stats-tube / stats-job (`---` then `key: value` lines), flat."""
    out: dict[str, str] = {}
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if not line or line == "---":
            continue
        key, sep, value = line.partition(":")
        if not sep or not key:
            raise ProtocolError(f"bad stats line {raw!r}")
        out[key.strip()] = value.strip().strip('"')
    return out


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, where: str):
        self.reader = reader
        self.writer = writer
        self.where = where
        self.lock = asyncio.Lock()
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int, unix_path: str = "", timeout: float = IO_TIMEOUT) -> Connection:
        """Dial beanstalkd (OSError / TimeoutError when it cannot be reached)."""
        if unix_path:
            coro = asyncio.open_unix_connection(unix_path, limit=MAX_LINE * 64)
            where = f"unix://{unix_path}"
        else:
            coro = asyncio.open_connection(host, port, limit=MAX_LINE * 64)
            where = f"tcp://{host}:{port}"
        reader, writer = await asyncio.wait_for(coro, timeout)
        return cls(reader, writer, where)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()

    # -- one command, one reply ---------------------------------------------------------

    async def _call(self, command: bytes, body: bytes | None, answers: dict[str, int],
                    timeout: float = IO_TIMEOUT) -> tuple[str, list[str], bytes | None]:
        """Send `command` (+ `body`), read one reply. `answers`: reply word -> how many
        numeric args it has; a word in BODY_REPLIES is followed by <bytes> of data."""
        if self.closed:
            raise ConnectionLost(f"connection to {self.where} is closed")
        async with self.lock:
            try:
                self.writer.write(command + b"\r\n" + (body + b"\r\n" if body is not None else b""))
                return await asyncio.wait_for(self._drain_and_read(answers), timeout)
            except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
                self.close()
                text = "closed the connection" if isinstance(exc, asyncio.IncompleteReadError) else str(exc)
                raise ConnectionLost(f"{self.where}: {text or type(exc).__name__}") from None
            except TimeoutError:
                self.close()
                raise ConnectionLost(f"{self.where}: no reply to {command.split(b' ')[0].decode()} "
                                     f"within {timeout:g}s") from None
            except asyncio.LimitOverrunError:
                self.close()
                raise ProtocolError(f"{self.where}: reply line longer than {MAX_LINE} bytes") from None
            except ProtocolError:
                self.close()
                raise

    async def _drain_and_read(self, answers: dict[str, int]) -> tuple[str, list[str], bytes | None]:
        await self.writer.drain()
        line = await self.reader.readuntil(b"\r\n")
        if len(line) > MAX_LINE:
            raise ProtocolError(f"reply line longer than {MAX_LINE} bytes")
        parts = line[:-2].decode("ascii", "replace").split(" ")
        word, args = parts[0], parts[1:]
        if word in SERVER_ERRORS and not args:
            return word, args, None
        if word not in answers:
            raise ProtocolError(f"unexpected beanstalkd reply {line!r}")
        want = answers[word]
        has_body = word in ("RESERVED", "OK", "FOUND")
        if len(args) != want or any(not a for a in args):
            raise ProtocolError(f"malformed beanstalkd reply {line!r}")
        data = None
        if has_body:
            size = _int(args[-1], "byte count", line)
            raw = await self.reader.readexactly(size + 2)
            if raw[-2:] != b"\r\n":
                raise ProtocolError(f"beanstalkd reply body of {size} bytes is not followed by CRLF")
            data = raw[:-2]
        return word, args, data

    @staticmethod
    def _raise_server_error(command: str, word: str) -> None:
        if word in SERVER_ERRORS:
            raise ServerError(command, word)

    # -- the commands -----------------------------------------------------------------------

    async def use(self, tube: str) -> None:
        word, args, _ = await self._call(f"use {tube}".encode(), None, {"USING": 1})
        self._raise_server_error("use", word)
        if args[0] != tube:
            raise ProtocolError(f"use {tube}: beanstalkd answered USING {args[0]}")

    async def watch(self, tube: str) -> int:
        word, args, _ = await self._call(f"watch {tube}".encode(), None, {"WATCHING": 1})
        self._raise_server_error("watch", word)
        return _int(args[0], "count", b"WATCHING")

    async def ignore(self, tube: str) -> bool:
        """False: NOT_IGNORED (it is the only tube watched)."""
        word, args, _ = await self._call(f"ignore {tube}".encode(), None, {"WATCHING": 1, "NOT_IGNORED": 0})
        self._raise_server_error("ignore", word)
        return word == "WATCHING"

    async def put(self, body: bytes, priority: int, delay: int, ttr: int) -> int:
        """The new job's id (ServerError BURIED when beanstalkd is out of memory for its heap)."""
        command = f"put {priority} {delay} {ttr} {len(body)}".encode()
        word, args, _ = await self._call(command, body, {"INSERTED": 1, "BURIED": 1})
        if word in SERVER_ERRORS:
            # beanstalkd may not have read the body (BAD_FORMAT): it would take it for
            # a command, so the connection is out of step and is closed
            self.close()
            raise ServerError("put", word)
        if word == "BURIED":
            raise ServerError("put", "BURIED")
        return _int(args[0], "job id", b"INSERTED")

    async def reserve(self, timeout: int) -> Reserved | str | None:
        """A job; None when `timeout` s passed (TIMED_OUT); DEADLINE_SOON when a job this
        connection reserved is about to reach its TTR."""
        word, args, data = await self._call(f"reserve-with-timeout {timeout}".encode(), None,
                                            {"RESERVED": 2, "TIMED_OUT": 0, DEADLINE_SOON: 0},
                                            timeout=timeout + IO_TIMEOUT)
        self._raise_server_error("reserve-with-timeout", word)
        if word == "TIMED_OUT":
            return None
        if word == DEADLINE_SOON:
            return DEADLINE_SOON
        assert data is not None
        return Reserved(_int(args[0], "job id", b"RESERVED"), data)

    async def _job_command(self, command: str, ok: str, also: tuple[str, ...] = ()) -> bool:
        """True: `ok` (or one of `also`); False: NOT_FOUND."""
        answers = {ok: 0, "NOT_FOUND": 0, **{word: 0 for word in also}}
        word, _, _ = await self._call(command.encode(), None, answers)
        self._raise_server_error(command.split(" ")[0], word)
        return word != "NOT_FOUND"

    async def delete(self, job_id: int) -> bool:
        return await self._job_command(f"delete {job_id}", "DELETED")

    async def release(self, job_id: int, priority: int, delay: int) -> bool:
        # BURIED: beanstalkd could not grow its heap and buried the job rather than lose it
        return await self._job_command(f"release {job_id} {priority} {delay}", "RELEASED", ("BURIED",))

    async def bury(self, job_id: int, priority: int) -> bool:
        return await self._job_command(f"bury {job_id} {priority}", "BURIED")

    async def touch(self, job_id: int) -> bool:
        return await self._job_command(f"touch {job_id}", "TOUCHED")

    async def _stats(self, command: str) -> dict[str, str] | None:
        word, _, data = await self._call(command.encode(), None, {"OK": 1, "NOT_FOUND": 0})
        self._raise_server_error(command.split(" ")[0], word)
        if word == "NOT_FOUND":
            return None
        assert data is not None
        return parse_stats(data)

    async def stats_tube(self, tube: str) -> dict[str, str] | None:
        """None: no such tube (beanstalkd drops a tube nobody uses or watches and that holds no job)."""
        return await self._stats(f"stats-tube {tube}")

    async def stats_job(self, job_id: int) -> dict[str, str] | None:
        return await self._stats(f"stats-job {job_id}")
