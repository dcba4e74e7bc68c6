"""The `websockets:` section: RoadRunner 2.x's keys (rr-plugins.md §8.1), then fastrr's own.

    http:
      middleware: [websockets]       # turns the plugin on (with the section below)
    websockets:
      broker: default                # required: a broker of the `broadcast:` section
      path: /ws                      # GET + Upgrade: websocket here
      allowed_origin: "*"            # one pattern, at most one `*` wildcard; another Origin gets 405
      pool: {num_workers: 2}         # the PHP workers that authorize (RR_MODE=http, RR_BROADCAST_PATH)
      # fastrr:
      ping_interval: 30s             # server pings; a peer that has not ponged by the next ping is closed
      max_message_size: 1048576      # bytes of one client message (after inflation); over it: close 1009
      send_queue: 1048576            # bytes buffered for a client; over it: close 1008 "slow consumer"
      close_timeout: 5s              # how long a closing handshake (and a slow consumer's close) may take
      compression: true              # negotiate permessage-deflate
      rate_limit: {messages: 100, burst: 200, close_after: 10s}   # client messages per second
      sse: {path: /events, history: 1000}   # Server-Sent Events for the same topics (off without a
                                     # path); a resume replays at most `history` messages

RoadRunner's wording is kept where it had some: an empty broker is "broker key
should be specified". The pool defaults to 2 workers with 1m allocate/destroy
timeouts, as RoadRunner's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastrr.config.section import Section
from fastrr.config.units import ConfigError, parse_bool, parse_duration, parse_int, parse_str
from fastrr.pool.config import PoolConfig, parse_pool

MIB = 1 << 20


@dataclass
class RateLimit:
    messages: float = 100.0  # per second, refilled continuously (token bucket); 0: no limit
    burst: int = 200  # the bucket's size
    close_after: float = 10.0  # a client still over the limit this long is closed with 1008


@dataclass
class SseConfig:
    path: str = ""  # "": off
    history: int = 1000  # at most this many retained messages are replayed on a resume


@dataclass
class WebsocketsConfig:
    broker: str
    path: str = "/ws"
    allowed_origin: str = "*"
    pool: PoolConfig = field(default_factory=PoolConfig)
    ping_interval: float = 30.0
    max_message_size: int = MIB
    send_queue: int = MIB
    close_timeout: float = 5.0
    compression: bool = True
    rate_limit: RateLimit = field(default_factory=RateLimit)
    sse: SseConfig = field(default_factory=SseConfig)
    # the origin pattern split at its `*` (RoadRunner's wildcard): None = any origin
    origin_match: tuple[str, str] | None = None
    origin_exact: str | None = None

    def origin_allowed(self, origin: str) -> bool:
        """RoadRunner's check: "*" allows all (a missing Origin too); otherwise the
        lower-cased Origin must equal the pattern, or start and end as it does
        around its one `*`. No Origin header never matches a pattern."""
        if self.origin_match is None and self.origin_exact is None:
            return True
        origin = origin.lower()
        if self.origin_exact is not None:
            return origin == self.origin_exact
        assert self.origin_match is not None
        prefix, suffix = self.origin_match
        return len(origin) >= len(prefix) + len(suffix) and origin.startswith(prefix) and origin.endswith(suffix)


def _path(key: str, value: Any) -> str:
    text = parse_str(key, value).strip()
    if not text.startswith("/") or "?" in text or "#" in text or " " in text:
        raise ConfigError(key, f"expected an absolute URL path such as /ws, got {value!r}")
    return text


def _positive_size(section: Section, name: str, default: int, minimum: int) -> int:
    value = section.get(name, parse_int, default)
    if value < minimum:
        raise ConfigError(section.key(name), f"expected at least {minimum} bytes, got {value}")
    return value


def _rate_limit(section: Section) -> RateLimit:
    rl = RateLimit()
    key = section.key("messages")
    raw = section.get("messages", lambda p, v: v, rl.messages)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
        raise ConfigError(key, f"expected a number of messages per second (0: no limit), got {raw!r}")
    rl.messages = float(raw)
    rl.burst = section.get("burst", parse_int, rl.burst)
    if rl.messages and rl.burst < 1:
        raise ConfigError(section.key("burst"), f"expected at least 1 message, got {rl.burst}")
    rl.close_after = section.get("close_after", parse_duration, rl.close_after)
    if rl.close_after <= 0:
        raise ConfigError(section.key("close_after"), f"expected a duration above 0, got {rl.close_after:g}s")
    section.finish()
    return rl


def parse_websockets(section: Section) -> WebsocketsConfig:
    broker = section.get("broker", parse_str, "").strip()
    if not broker:
        raise ConfigError(section.key("broker"), "broker key should be specified (a broker of the broadcast "
                                                 "section, e.g. default)")
    cfg = WebsocketsConfig(broker=broker)
    cfg.path = section.get("path", _path, "/ws")
    origin = section.get("allowed_origin", parse_str, "*").strip().lower() or "*"
    if origin != "*":
        if origin.count("*") > 1:
            raise ConfigError(section.key("allowed_origin"),
                              f"expected one origin pattern with at most one * wildcard, got {origin!r}")
        if "*" in origin:
            prefix, _, suffix = origin.partition("*")
            cfg.origin_match = (prefix, suffix)
        else:
            cfg.origin_exact = origin
    cfg.allowed_origin = origin
    pool_section = section.sub("pool")
    cfg.pool = parse_pool(pool_section, 2)  # RoadRunner: 2 workers unless num_workers says otherwise
    cfg.ping_interval = section.get("ping_interval", parse_duration, cfg.ping_interval)
    if cfg.ping_interval < 0:
        raise ConfigError(section.key("ping_interval"), "expected a duration (0: no pings)")
    cfg.max_message_size = _positive_size(section, "max_message_size", cfg.max_message_size, 128)
    cfg.send_queue = _positive_size(section, "send_queue", cfg.send_queue, 4096)
    cfg.close_timeout = section.get("close_timeout", parse_duration, cfg.close_timeout)
    if cfg.close_timeout <= 0:
        raise ConfigError(section.key("close_timeout"), f"expected a duration above 0, got {cfg.close_timeout:g}s")
    cfg.compression = section.get("compression", parse_bool, True)
    cfg.rate_limit = _rate_limit(section.sub("rate_limit"))
    sse = section.sub("sse")
    cfg.sse = SseConfig(path=sse.get("path", _path, ""))
    cfg.sse.history = sse.get("history", parse_int, cfg.sse.history)
    sse.finish()
    if cfg.sse.path and cfg.sse.path == cfg.path:
        raise ConfigError(sse.key("path"), f"expected a path other than websockets.path ({cfg.path})")
    section.finish()
    return cfg
