"""The `app.*` RPC methods roadrunner-php/app-logger calls (rr-plugins.md §7).

| method                  | argument (codec)                 | effect                                      |
|-------------------------|----------------------------------|---------------------------------------------|
| app.Error/Warning/      | the message, a string (JSON)     | a line at that level from the `app` logger  |
| app.Info/Debug          |                                  |                                             |
| app.Log                 | the message, a string (JSON)     | the message as it is on stderr, + newline   |
| app.<Level>WithContext  | applogger.v1.LogEntry (protobuf) | the same, with the attributes as fields     |
| app.LogWithContext      | applogger.v1.LogEntry (protobuf) | `message k1:v1,k2:v2` on stderr             |

Plain methods answer `true` (RoadRunner's Go answers an untouched `false`;
the PHP client ignores it), or an empty body to a raw-codec call; the
WithContext ones answer an empty `applogger.v1.Response`. A payload of the
wrong shape gets an RPC error naming the method and what was expected.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from google.protobuf.message import DecodeError

from fastrr.log import Logger
from fastrr.rpc.codec import RpcError
from fastrr.rpc.protobuf import build_messages

_classes = build_messages("applogger.v1", {
    "LogAttrs": [("key", 1, "string", False), ("value", 2, "string", False)],
    "LogEntry": [("message", 1, "string", False), ("log_attrs", 2, "LogAttrs", True)],
    "Response": [],
})
LogAttrs = _classes["LogAttrs"]
LogEntry = _classes["LogEntry"]
Response = _classes["Response"]
EMPTY_RESPONSE = Response().SerializeToString()

# Level name on the wire -> fastrr level (slog's Error/Warn/Info/Debug).
LEVELS = {"Error": 40, "Warning": 30, "Info": 20, "Debug": 10}
# Names of the JSON record itself: a context key like these would overwrite it,
# so it is written as "context.<key>" (zap would write the key twice).
RECORD_KEYS = frozenset({"level", "ts", "logger", "msg"})


class AppLoggerRpc:
    def __init__(self, log: Logger, stderr: IO[str] | None = None):
        self.log = log
        self.stderr = stderr

    # -- plain forms: a string in, a bool out ----------------------------------------

    def message(self, method: str, arg: Any) -> str:
        if isinstance(arg, str):
            return arg
        if isinstance(arg, bytes):  # raw codec, or msgpack bin
            return arg.decode("utf-8", "replace")
        raise RpcError(f"{method}: expected the log message as a string, got {type(arg).__name__} {arg!r:.80}")

    def plain(self, level: str) -> Any:
        method = f"app.{level}"
        number = LEVELS[level]

        async def handler(arg: Any) -> Any:
            msg = self.message(method, arg)
            if self.log.enabled(number):
                self.log.sink.emit(number, self.log.name, msg, {})
            return b"" if isinstance(arg, bytes) else True

        return handler

    async def raw_log(self, arg: Any) -> Any:
        self.write_stderr(self.message("app.Log", arg))
        return b"" if isinstance(arg, bytes) else True

    # -- WithContext forms: applogger.v1.LogEntry in, Response out ---------------------

    @staticmethod
    def entry(method: str, body: bytes) -> Any:
        entry = LogEntry()
        try:
            entry.ParseFromString(body)
        except DecodeError as exc:
            raise RpcError(f"{method}: malformed applogger.v1.LogEntry message: {exc}") from None
        return entry

    @staticmethod
    def fields(entry: Any) -> dict[str, str]:
        fields: dict[str, str] = {}
        for attr in entry.log_attrs:
            fields[f"context.{attr.key}" if attr.key in RECORD_KEYS else attr.key] = attr.value
        return fields

    def with_context(self, level: str) -> Any:
        method = f"app.{level}WithContext"
        number = LEVELS[level]

        def fast(body: bytes) -> bytes:
            entry = self.entry(method, body)
            if self.log.enabled(number):
                self.log.sink.emit(number, self.log.name, entry.message, self.fields(entry))
            return EMPTY_RESPONSE

        return fast

    def raw_log_with_context(self, body: bytes) -> bytes:
        entry = self.entry("app.LogWithContext", body)
        attrs = ",".join(f"{a.key}:{a.value}" for a in entry.log_attrs)
        self.write_stderr(f"{entry.message} {attrs}" if attrs else entry.message)
        return EMPTY_RESPONSE

    def write_stderr(self, text: str) -> None:
        # RoadRunner writes these to its own stderr, past the logger (no level, no
        # channel): so does fastrr.
        stream = self.stderr or sys.stderr
        try:
            stream.write(text if text.endswith("\n") else text + "\n")
            stream.flush()
        except (OSError, ValueError) as exc:
            raise RpcError(f"app.Log: cannot write to stderr: {exc}") from None
