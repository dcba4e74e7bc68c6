"""Logging in RoadRunner's shape (`logs.{level, mode, encoding, output}`).

RoadRunner logs through zap; tools such as Laravel Octane parse its JSON lines
(`level`, `ts`, `logger`, `msg` plus fields), so the JSON encoding keeps those
names. The console encoding is for people: time, level, logger, message, fields.
Logging is a cold path: nothing here runs per request unless access logs are on.
"""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Any

LEVELS = {"debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40, "panic": 50, "fatal": 50}
_LEVEL_NAMES = {10: "debug", 20: "info", 30: "warn", 40: "error", 50: "panic"}


class Logger:
    """One named logger; all loggers of a process share a `LogSink`."""

    __slots__ = ("name", "sink")

    def __init__(self, sink: LogSink, name: str):
        self.sink = sink
        self.name = name

    def named(self, name: str) -> Logger:
        return Logger(self.sink, name)

    def enabled(self, level: int) -> bool:
        return level >= self.sink.level

    def debug(self, msg: str, **fields: Any) -> None:
        if 10 >= self.sink.level:
            self.sink.emit(10, self.name, msg, fields)

    def info(self, msg: str, **fields: Any) -> None:
        if 20 >= self.sink.level:
            self.sink.emit(20, self.name, msg, fields)

    def warn(self, msg: str, **fields: Any) -> None:
        if 30 >= self.sink.level:
            self.sink.emit(30, self.name, msg, fields)

    def error(self, msg: str, **fields: Any) -> None:
        if 40 >= self.sink.level:
            self.sink.emit(40, self.name, msg, fields)


class LogSink:
    def __init__(self, level: str = "info", mode: str = "development",
                 encoding: str | None = None, outputs: list[str] | None = None):
        self.level = LEVELS[level]
        self.mode = mode
        self.encoding = encoding or ("json" if mode == "production" else "console")
        self.streams: list[IO[str]] = []
        for out in outputs or ["stderr"]:
            if out == "stderr":
                self.streams.append(sys.stderr)
            elif out == "stdout":
                self.streams.append(sys.stdout)
            else:
                self.streams.append(open(out, "a", buffering=1, encoding="utf-8"))

    def emit(self, level: int, logger: str, msg: str, fields: dict[str, Any]) -> None:
        if self.mode == "raw":
            line = msg
        elif self.encoding == "json":
            record: dict[str, Any] = {"level": _LEVEL_NAMES[level], "ts": round(time.time(), 6),
                                      "logger": logger, "msg": msg}
            record.update(fields)
            line = json.dumps(record, ensure_ascii=False, default=str)
        else:
            now = time.time()
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03dZ" % (now % 1 * 1000)
            line = f"{stamp}\t{_LEVEL_NAMES[level].upper()}\t{logger}\t{msg}"
            if fields:
                line += "\t" + json.dumps(fields, ensure_ascii=False, default=str)
        for stream in self.streams:
            try:
                stream.write(line + "\n")
                stream.flush()
            except (OSError, ValueError):
                pass


_default = Logger(LogSink(), "fastrr")


def configure(level: str, mode: str, encoding: str | None, outputs: list[str]) -> Logger:
    global _default
    _default = Logger(LogSink(level, mode, encoding, outputs), "fastrr")
    return _default


def get_logger(name: str = "fastrr") -> Logger:
    return _default.named(name)
