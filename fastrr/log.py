"""Logging in RoadRunner's shape (`logs.{level, mode, encoding, output}`).

RoadRunner logs through zap; tools such as Laravel Octane parse its JSON lines
(`level`, `ts`, `logger`, `msg` plus fields), so the JSON encoding keeps those
names. The console encoding is for people: time, level, logger, message, fields.
Logging is a cold path: nothing here runs per request unless access logs are on.

`logs.channels.<name>` gives the loggers of that name their own sink (level,
mode, outputs); `named()` picks it, so a plugin never knows whether it has one.
With no channels every logger shares the one sink, as before channels existed.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import sys
import threading
import time
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastrr.config.logs import FileLoggerOptions, LogChannel, LogsConfig

LEVELS = {"debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40, "panic": 50, "fatal": 50}
_LEVEL_NAMES = {10: "debug", 20: "info", 30: "warn", 40: "error", 50: "panic"}
OFF = 100  # the level of a sink in mode off/none: above every message
# Loggers whose channel is another name's: fastrr calls the http plugin's pool
# "pool", where RoadRunner's http pool logs as the http plugin.
_CHANNEL_ALIASES = {"pool": "http"}


class Logger:
    """One named logger; all loggers of a process share a `LogSink`."""

    __slots__ = ("name", "sink")

    def __init__(self, sink: LogSink, name: str):
        self.sink = sink
        self.name = name

    def named(self, name: str) -> Logger:
        return Logger(self.sink.for_logger(name), name)

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
    """Where the lines of one or more loggers go. `channels` is shared by the
    root sink and every channel sink: {logger name: its sink}."""

    def __init__(self, level: str = "info", mode: str = "development",
                 encoding: str | None = None, outputs: list[str] | None = None,
                 err_outputs: list[str] | None = None, rotation: FileLoggerOptions | None = None):
        self.level = LEVELS[level]
        self.mode = mode
        self.encoding = encoding or ("json" if mode == "production" or rotation else "console")
        self.streams: list[IO[str]] = []
        self.root = self
        self.channels: dict[str, LogSink] = {}
        self._err_streams: list[IO[str]] = []
        self._failed: set[int] = set()
        if mode in ("off", "none"):
            self.level = OFF  # RoadRunner's no-op logger: nothing is written anywhere
            return
        if rotation is not None:
            # As RoadRunner's file logger: the rotating file replaces `output`.
            self.streams.append(RotatingFile(rotation))  # type: ignore[arg-type]
        else:
            self.streams.extend(_open(out) for out in outputs or ["stderr"])
        self._err_streams.extend(_open(out) for out in err_outputs or ["stderr"])

    def for_logger(self, name: str) -> LogSink:
        channels = self.channels
        if channels:
            # A channel named like the logger, else like its plugin ("jobs.pool" -> "jobs").
            sink = channels.get(name) or channels.get(_CHANNEL_ALIASES.get(name) or name.partition(".")[0])
            if sink is not None:
                return sink
        return self.root

    def add_channel(self, name: str, sink: LogSink) -> None:
        sink.root = self
        sink.channels = self.channels
        self.channels[name] = sink

    def _write_failed(self, stream: IO[str], exc: Exception) -> None:
        # Told once per output (err_output), not once per line: a full disk must
        # not turn every log call into two failing writes.
        if id(stream) in self._failed:
            return
        self._failed.add(id(stream))
        name = getattr(stream, "name", repr(stream))
        for err in self._err_streams:
            if err is stream:
                continue
            try:
                err.write(f"fastrr: logs: cannot write to {name}: {exc}\n")
                err.flush()
            except (OSError, ValueError):
                pass

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
            except (OSError, ValueError) as exc:
                self._write_failed(stream, exc)


def _open(out: str) -> IO[str]:
    name = out.strip().lower()
    if name == "stderr":
        return sys.stderr
    if name == "stdout":
        return sys.stdout
    return open(out, "a", buffering=1, encoding="utf-8")


class RotatingFile:
    """`file_logger_options`: a log file moved aside past `max_size` MB, as
    lumberjack does (`name-<UTC time>.ext`, gzipped with `compress`); at most
    `max_backups` moved files are kept, none older than `max_age` days.
    It has no fileno(), so the C engine hands its access lines to Python
    (which rotates) instead of writing them to the file itself."""

    def __init__(self, opts: FileLoggerOptions):
        self.opts = opts
        self.name = opts.log_output
        self.limit = opts.max_size * 1024 * 1024
        self.file = open(self.name, "a", buffering=1, encoding="utf-8")
        self.size = self.file.tell()
        self.housekeeping = threading.Lock()  # one compress-and-prune at a time

    def write(self, text: str) -> int:
        size = len(text.encode("utf-8", "replace"))
        if self.size and self.size + size > self.limit:
            self.rotate()
        self.size += size
        return self.file.write(text)

    def flush(self) -> None:
        self.file.flush()

    def rotate(self) -> None:
        self.file.close()
        stem, ext = os.path.splitext(self.name)
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime(now)) + ".%03d" % (now % 1 * 1000)
        backup = f"{stem}-{stamp}{ext}"
        try:
            os.replace(self.name, backup)
        finally:
            # Reopened even when the move failed: the log goes on in the same file.
            self.file = open(self.name, "a", buffering=1, encoding="utf-8")
            self.size = self.file.tell()
        # gzip of a 100 MB file takes seconds: not on the event loop (lumberjack
        # compresses in a goroutine too).
        threading.Thread(target=self._compress_and_prune, args=(backup, stem, ext), daemon=True,
                         name="fastrr-log-rotate").start()

    def _compress_and_prune(self, backup: str, stem: str, ext: str) -> None:
        with self.housekeeping:
            self._compress_and_prune_now(backup, stem, ext)

    def _compress_and_prune_now(self, backup: str, stem: str, ext: str) -> None:
        try:
            if self.opts.compress:
                with open(backup, "rb") as src, gzip.open(backup + ".gz.tmp", "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.replace(backup + ".gz.tmp", backup + ".gz")
                os.unlink(backup)
            self._prune(stem, ext)
        except OSError:
            pass  # a backup left as it is is better than a log that stops

    def _prune(self, stem: str, ext: str) -> None:
        directory, base = os.path.split(stem)
        # Only names rotate() makes: other files beside the log are never touched.
        ours = re.compile(re.escape(base) + r"-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}" + re.escape(ext) + r"(\.gz)?")
        backups = []
        for entry in os.scandir(directory or "."):
            if ours.fullmatch(entry.name):
                backups.append((entry.stat().st_mtime, entry.path))
        backups.sort(reverse=True)
        oldest = time.time() - self.opts.max_age * 86400
        for i, (mtime, path) in enumerate(backups):
            if i >= self.opts.max_backups or mtime < oldest:
                try:
                    os.unlink(path)
                except OSError:
                    pass


_default = Logger(LogSink(), "fastrr")


def configure(level: str, mode: str, encoding: str | None, outputs: list[str]) -> Logger:
    global _default
    _default = Logger(LogSink(level, mode, encoding, outputs), "fastrr")
    return _default


def _sink(cfg: LogChannel) -> LogSink:
    from fastrr.config.units import ConfigError

    try:
        return LogSink(cfg.level, cfg.mode, cfg.encoding, cfg.output, cfg.err_output, cfg.file_logger_options)
    except OSError as exc:
        # The config check saw the directory; this is what changed since (or a permission it cannot see).
        if cfg.file_logger_options is not None and exc.filename == cfg.file_logger_options.log_output:
            key = "file_logger_options.log_output"
        else:
            key = "err_output" if exc.filename in cfg.err_output and exc.filename not in cfg.output else "output"
        raise ConfigError(f"{cfg.key}.{key}", f"cannot open log file {exc.filename!r}: {exc.strerror}") from None


def configure_logs(logs: LogsConfig) -> Logger:
    """The process logger from the `logs` section, with its channels.
    Raises ConfigError when an output cannot be opened."""
    global _default
    root = _sink(logs)
    for name, channel in logs.channels.items():
        root.add_channel(name, _sink(channel))
    _default = Logger(root.for_logger("fastrr"), "fastrr")
    return _default


def get_logger(name: str = "fastrr") -> Logger:
    return _default.named(name)
