"""What /health, /ready and /jobs answer: RoadRunner's status ≥ v5.1 rules (rr-plugins.md §4.2).

A probe is one plugin's `health()` or `ready()` hook (server/plugin.py):
(code, why), None for a plugin without that check, or an exception (a probe
error). The answer is a JSON array of {"plugin_name", "error_message",
"status_code"}, one entry per plugin probed:

| probe result   | entry code, error_message                   | HTTP status             |
|----------------|---------------------------------------------|-------------------------|
| code ≥ 500     | unavailable code, "internal server error, see logs" | unavailable code |
| 100..400       | that code, ""                               | unchanged               |
| other codes    | that code, "unexpected status code"         | unchanged               |
| an exception   | see ERROR_CODES                             | see ERROR_CODES         |

Without `?plugin=` every plugin that has the check is probed (in start
order); with it, the named ones in query order, unknown names skipped (so
`[]` is a valid answer). The HTTP status starts at 200.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from fastrr.log import Logger
from fastrr.server.endpoint import Answer

JSON = "application/json"
SHUTTING_DOWN = "service is shutting down\n"
JOBS_NOT_FOUND = "jobs plugin not found\n"

Probe = Callable[[], "tuple[int, str] | None"]

# A probe that raised: (entry code, whether the HTTP status becomes the unavailable code), by
# (route, targeted); None is the unavailable code. RoadRunner's handlers differ here (§4.2 table).
ERROR_CODES: dict[tuple[str, bool], tuple[int | None, bool]] = {
    ("health", False): (None, True),
    ("health", True): (500, False),
    ("ready", False): (500, False),
    ("ready", True): (500, True),
}


def dumps(value: Any) -> bytes:
    """Compact, as Go's json.Marshal writes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class Checker:
    """Runs the probes of one kind ("health" or "ready") and remembers each plugin's last code,
    so the log shows a change once instead of every probe."""

    def __init__(self, kind: str, unavailable: int, log: Logger):
        self.kind = kind
        self.unavailable = unavailable
        self.log = log
        self.last: dict[str, int] = {}

    def answer(self, probes: dict[str, Probe], names: list[str] | None) -> Answer:
        """`probes`: plugin name -> hook, in start order; `names`: the ?plugin= values (None: absent)."""
        targeted = names is not None
        status = 200
        report = []
        for name in self._selected(probes, names):
            entry, failed = self.probe(name, probes[name], targeted)
            if entry is None:
                continue
            if failed:
                status = self.unavailable
            report.append(entry)
        return Answer(status, dumps(report))

    @staticmethod
    def _selected(probes: dict[str, Probe], names: list[str] | None) -> Iterable[str]:
        if names is None:
            return list(probes)
        return [name for name in names if name in probes]

    def probe(self, name: str, hook: Probe, targeted: bool) -> tuple[dict[str, Any] | None, bool]:
        """The report entry (None: no such check) and whether the HTTP status becomes the unavailable code."""
        try:
            result = hook()
        except Exception as exc:  # a probe error is an answer, never a dropped connection
            self._note(name, 500, f"{type(exc).__name__}: {exc}")
            entry_code, failed = ERROR_CODES[(self.kind, targeted)]
            code = self.unavailable if entry_code is None else entry_code
            return {"plugin_name": name, "error_message": str(exc), "status_code": code}, failed
        if result is None:
            return None, False
        code, why = result
        self._note(name, code, why)
        if code >= 500:
            return {"plugin_name": name, "error_message": "internal server error, see logs",
                    "status_code": self.unavailable}, True
        if 100 <= code <= 400:
            return {"plugin_name": name, "error_message": "", "status_code": code}, False
        return {"plugin_name": name, "error_message": "unexpected status code", "status_code": code}, False

    def _note(self, name: str, code: int, why: str) -> None:
        before = self.last.get(name)
        self.last[name] = code
        if before == code:
            return
        state = "healthy" if self.kind == "health" else "ready"
        if code >= 500:
            # (not yet ready while booting is expected: info; losing it later is worth a warning)
            level = self.log.info if before is None else self.log.warn
            level(f"status: {name} is not {state}", plugin=name, code=code, reason=why)
        elif before is not None:
            self.log.info(f"status: {name} is {state} again", plugin=name, code=code)


def jobs_report(rows: list[dict[str, Any]]) -> bytes:
    """/jobs: one entry per pipeline, RoadRunner's JobsReport keys, from the rows of jobs.states()."""
    return dumps([{"pipeline": r["pipeline"], "priority": r["priority"], "ready": r["ready"], "queue": r["queue"],
                   "active": r["active"], "delayed": r["delayed"], "reserved": r["reserved"],
                   "driver": r["driver"], "error_message": r["error"] or ""} for r in rows])
