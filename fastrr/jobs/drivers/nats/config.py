"""The nats driver's keys: RoadRunner's `nats:` section and its pipeline options
(rr-jobs.md §1.2, `natsjobs/config.go`), read without importing the NATS client.

    nats:
      addr: nats://127.0.0.1:4222          # nats://user:password@host:port for credentials
    jobs:
      pipelines:
        emails:
          driver: nats
          config: {subject: emails, stream: emails-stream, prefetch: 10, ack_wait: 30s}

RoadRunner's defaults: `prefetch` 10 (100 for `jobs.Declare`), `subject`
"default", `stream` "default-stream", `ack_wait` 30s, `delete_after_ack`,
`delete_stream_on_stop` and `deliver_new` false. RoadRunner stores
`deliver_new` and `rate_limit` and never uses them; fastrr does (driver.py):
`deliver_new` makes a *new* durable consumer start at the messages published
after it was made, and `rate_limit` bounds the jobs this fastrr hands out
per second from the pipeline. Its default is 0, no bound, not RoadRunner's
1000: RoadRunner never applied that number, and as a bound it would cut a
pipeline that handles ~4800 jobs/s here to ~1000; a value set in the config
or a Declare (RoadRunner's PHP library sends 100) is applied, and logged at
start.

`ack_wait` is a duration (`30s`, `1m`) or a number of seconds, in YAML and in
Declare (where RoadRunner reads an int of seconds); RoadRunner's YAML reads a
bare int as nanoseconds, which no one means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastrr.config.section import Section
from fastrr.config.units import ConfigError, parse_bool, parse_duration, parse_int, parse_str
from fastrr.jobs.config import PipelineConfig, Reader

GLOBAL_SECTION: str | None = "nats"
DEFAULT_ADDR = "nats://127.0.0.1:4222"  # nats.go's DefaultURL, RoadRunner's default
MIN_ACK_WAIT = 1.0  # seconds: the in-progress heartbeat runs at a third of it

# JetStream names: no whitespace, no `.`, `*`, `>` (they are subject tokens in
# the API), no path separators (the file store makes directories of them).
_NAME_BAD = re.compile(r"[\s.*>/\\]")
# A subject to publish to: dot-separated tokens, no wildcards, no whitespace.
_SUBJECT = re.compile(r"[^\s.*>]+(\.[^\s.*>]+)*")


@dataclass
class NatsBroker:
    addr: str = DEFAULT_ADDR


def _addr(path: str, value: Any) -> str:
    text = parse_str(path, value).strip()
    if not text:
        raise ConfigError(path, "expected a NATS URL such as nats://127.0.0.1:4222, got an empty string")
    for url in text.split(","):
        parts = urlsplit(url.strip() if "://" in url else f"nats://{url.strip()}")
        if parts.scheme not in ("nats", "tls", "ws", "wss") or not parts.hostname:
            raise ConfigError(path, f"expected a NATS URL such as nats://127.0.0.1:4222, got {url.strip()!r}")
        try:
            parts.port  # noqa: B018 (raises ValueError for a bad port)
        except ValueError:
            raise ConfigError(path, f"bad port in {url.strip()!r}") from None
    return text


def parse_global(section: Section) -> NatsBroker:
    return NatsBroker(addr=section.get("addr", _addr, DEFAULT_ADDR))


def _prefetch(path: str, value: Any) -> int:
    n = parse_int(path, value)
    if n < 1:
        raise ConfigError(path, f"expected at least 1 unacked job (the consumer's MaxAckPending), got {n}")
    return n


def _subject(path: str, value: Any) -> str:
    text = parse_str(path, value).strip()
    if not _SUBJECT.fullmatch(text):
        raise ConfigError(path, f"expected a NATS subject to publish to (tokens separated by dots, no spaces, "
                                f"no * or > wildcards), got {value!r}")
    return text


def _stream(path: str, value: Any) -> str:
    text = parse_str(path, value).strip()
    if not text or _NAME_BAD.search(text):
        raise ConfigError(path, f"expected a JetStream stream name (no spaces, '.', '*', '>', '/' or '\\'), "
                                f"got {value!r}")
    return text


def _ack_wait(path: str, value: Any) -> float:
    seconds = parse_duration(path, value)
    if seconds < MIN_ACK_WAIT:
        raise ConfigError(path, f"expected at least {MIN_ACK_WAIT:g}s (fastrr reports a running job in "
                                f"progress every third of it), got {value!r}")
    return seconds


OPTIONS: dict[str, tuple[Reader, Any]] = {
    "prefetch": (_prefetch, 10),
    "subject": (_subject, "default"),
    "stream": (_stream, "default-stream"),
    "ack_wait": (_ack_wait, 30.0),
    "delete_after_ack": (parse_bool, False),
    "delete_stream_on_stop": (parse_bool, False),
    "deliver_new": (parse_bool, False),
    "rate_limit": (parse_int, 0),  # jobs per second, 0: no bound (RoadRunner: 1000, never applied)
}
DECLARE_DEFAULTS: dict[str, Any] = {"prefetch": 100}


def check(pipe: PipelineConfig, path: str) -> None:
    """Options that do not fit together (each reader checked its own value)."""
    stream = pipe.options["stream"]
    if stream.endswith(DELAY_STREAM_SUFFIX):
        raise ConfigError(f"{path}.stream", f"stream names ending in {DELAY_STREAM_SUFFIX!r} are fastrr's own "
                                            f"(the delayed jobs of stream {stream[:-len(DELAY_STREAM_SUFFIX)]!r})")
    if pipe.options["subject"].startswith(DELAY_SUBJECT_PREFIX + "."):
        raise ConfigError(f"{path}.subject", f"subjects under {DELAY_SUBJECT_PREFIX}. are fastrr's own "
                                             f"(delayed jobs)")


# Where fastrr keeps delayed jobs (driver.py): a stream of its own next to the
# pipeline's, so the pipeline's stream config is never touched for them.
DELAY_STREAM_SUFFIX = "-fastrr-delayed"
DELAY_SUBJECT_PREFIX = "fastrr-delayed"
