"""The `status:` section (rr-plugins.md §4.1).

    status:
      address: 127.0.0.1:2114        # required
      unavailable_status_code: 503   # 0 or absent: 503 (RoadRunner's code; its docs say 500)
      check_timeout: 60              # seconds to read a probe's request; 0 or absent: 60
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastrr.config.section import Section
from fastrr.config.units import ConfigError, parse_duration, parse_int, parse_str

DEFAULT_UNAVAILABLE = 503
DEFAULT_CHECK_TIMEOUT = 60.0


@dataclass
class StatusConfig:
    address: str
    unavailable_status_code: int = DEFAULT_UNAVAILABLE
    check_timeout: float = DEFAULT_CHECK_TIMEOUT

    @property
    def host(self) -> str | None:
        """The bind host; None (every interface) for ":2114", as Go's net/http does."""
        host = self.address.rpartition(":")[0].strip("[]")
        return host or None

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])


def _address(path: str, value: Any) -> str:
    text = parse_str(path, value).strip()
    if "://" in text:
        raise ConfigError(path, f"expected host:port without a scheme (e.g. 127.0.0.1:2114), got {text!r}")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535 or (":" in host and not host.startswith("[")):
        raise ConfigError(path, f"expected host:port (e.g. 127.0.0.1:2114, [::1]:2114 or :2114), got {text!r}")
    return text


def _status_code(path: str, value: Any) -> int:
    code = parse_int(path, value, minimum=None)
    if code == 0:
        return DEFAULT_UNAVAILABLE  # RoadRunner's InitDefaults: zero means the default
    if not 100 <= code <= 599:
        raise ConfigError(path, f"expected an HTTP status code between 100 and 599 (default 503), got {code}")
    return code


def parse_status(section: Section) -> StatusConfig:
    cfg = StatusConfig(address=section.get("address", _address, required=True, expected="host:port, e.g. "
                                           "127.0.0.1:2114"))
    cfg.unavailable_status_code = section.get("unavailable_status_code", _status_code, DEFAULT_UNAVAILABLE)
    timeout = section.get("check_timeout", parse_duration, DEFAULT_CHECK_TIMEOUT)
    cfg.check_timeout = timeout if timeout > 0 else DEFAULT_CHECK_TIMEOUT
    section.finish()
    return cfg
