"""The `logs` section: the process-wide logger and `logs.channels.<logger>`.

Keys and defaults are RoadRunner's (roadrunner-server/logger config.go). A
channel is a complete logger config of its own, as there: keys it leaves out
take the channel defaults (level debug, mode development, output stderr), not
the top-level values. `file_logger_options` is the rotating file output of
RoadRunner 2023-2025 (lumberjack's keys and defaults).

Outputs are checked here, without creating anything: a file's directory must
exist and be writable, so a typo fails at start-up with the key named instead
of at the first log line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from fastrr.config.section import Section, choice
from fastrr.config.units import ConfigError, parse_bool, parse_int, parse_str, parse_str_list

LEVELS = {"debug", "info", "warn", "warning", "error", "panic", "fatal"}
MODES = {"development", "production", "raw", "off", "none"}
ENCODINGS = {"console", "json"}
STD_STREAMS = {"stderr", "stdout"}
# RoadRunner keys fastrr does not implement: warned about by name in every channel.
UNSUPPORTED = ("line_ending", "skip_line_ending", "format", "time_format")
_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass
class FileLoggerOptions:
    log_output: str
    max_size: int = 100  # megabytes before the file is rotated
    max_age: int = 24  # days a rotated file is kept
    max_backups: int = 10  # rotated files kept
    compress: bool = False  # gzip rotated files


@dataclass
class LogChannel:
    level: str = "debug"
    mode: str = "development"
    encoding: str | None = None  # None: json in production mode, else console
    output: list[str] = field(default_factory=lambda: ["stderr"])
    err_output: list[str] = field(default_factory=lambda: ["stderr"])
    file_logger_options: FileLoggerOptions | None = None
    key: str = "logs"  # the config path, for errors found when the outputs are opened


@dataclass
class LogsConfig(LogChannel):
    level: str = "info"  # fastrr's top-level default (RoadRunner's is debug)
    channels: dict[str, LogChannel] = field(default_factory=dict)


def output_list(path: str, value: Any) -> list[str]:
    """stderr, stdout or file paths (appended to, created when missing)."""
    outputs = parse_str_list(path, value)
    for out in outputs:
        if out.strip().lower() in STD_STREAMS:
            continue
        check_log_file(path, out)
    return outputs or ["stderr"]


def check_log_file(path: str, file: str) -> None:
    target = os.path.abspath(file)
    directory = os.path.dirname(target)
    if os.path.isdir(target):
        raise ConfigError(path, f"{file!r} is a directory, expected a log file path (or stderr, stdout)")
    if not os.path.isdir(directory):
        raise ConfigError(path, f"the directory of log file {file!r} does not exist: {directory}")
    if not os.access(directory if not os.path.exists(target) else target, os.W_OK):
        raise ConfigError(path, f"log file {file!r} is not writable")


def _file_logger(section: Section) -> FileLoggerOptions:
    log_output = section.get("log_output", parse_str, required=True, expected="the log file path")
    check_log_file(section.key("log_output"), log_output)

    def positive_or_default(name: str, default: int) -> int:
        # 0 means "the default", as lumberjack's zero values do.
        return section.get(name, lambda p, v: parse_int(p, v, 0), default) or default

    opts = FileLoggerOptions(
        log_output=log_output,
        max_size=positive_or_default("max_size", 100),
        max_age=positive_or_default("max_age", 24),
        max_backups=positive_or_default("max_backups", 10),
        compress=section.get("compress", parse_bool, False),
    )
    section.finish()
    return opts


def _read_channel(section: Section, target: LogChannel) -> None:
    target.key = section.path
    target.level = section.get("level", choice(LEVELS), target.level)
    if target.level == "warning":
        target.level = "warn"
    target.mode = section.get("mode", choice(MODES), target.mode)
    target.encoding = section.get("encoding", choice(ENCODINGS), None)
    target.output = section.get("output", output_list, ["stderr"])
    target.err_output = section.get("err_output", output_list, ["stderr"])
    rotation = section.sub("file_logger_options")
    if section.raw.get("file_logger_options") is not None:
        target.file_logger_options = _file_logger(rotation)
    for name in UNSUPPORTED:
        if name in section.raw:
            section.used.add(name)
            section.warnings.append(f"{section.key(name)}: not supported by fastrr yet, ignored")


def parse_logs(section: Section) -> LogsConfig:
    logs = LogsConfig()
    _read_channel(section, logs)
    channels = section.sub("channels")
    for name in channels.raw:
        key = channels.key(str(name))
        if not isinstance(name, str) or not _CHANNEL_NAME.match(name):
            raise ConfigError(key, "expected a logger name of letters, digits, '.', '_' or '-' "
                                   "(a plugin name such as http, jobs, app, server)")
        channel = LogChannel()
        sub = channels.sub(name)
        _read_channel(sub, channel)
        sub.finish()
        logs.channels[name] = channel
    section.finish()
    return logs
