"""`fastrr workers` output in `rr workers`'s shape: a title line per plugin and
a boxed table PID | STATUS | EXECS | MEMORY | CPU% | CREATED, rows by PID,
numbers formatted as go-humanize formats them (`1,234`, `26 MB`, `2 minutes ago`)."""

from __future__ import annotations

import math
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

STATUS_STYLES = {
    "ready": "cyan", "working": "green", "inactive": "yellow", "invalid": "yellow",
    "stopped": "red", "errored": "red",
}
_SI = ("B", "kB", "MB", "GB", "TB", "PB", "EB")


def si_bytes(size: int) -> str:
    """Size in SI units, one decimal under 10: 82 B, 1.5 kB, 26 MB."""
    if size < 10:
        return f"{size} B"
    exp = min(int(math.floor(math.log(size) / math.log(1000))), len(_SI) - 1)
    value = math.floor(size / 1000 ** exp * 10 + 0.5) / 10
    return f"{value:.1f} {_SI[exp]}" if value < 10 else f"{value:.0f} {_SI[exp]}"


_MINUTE, _HOUR, _DAY, _WEEK = 60, 3600, 86400, 7 * 86400
_MONTH, _YEAR = 30 * _DAY, 365 * _DAY
# (below this many seconds, format, divisor): go-humanize's relative time table.
_AGES = (
    (1, "now", 1), (2, "1 second ago", 1), (_MINUTE, "{} seconds ago", 1),
    (2 * _MINUTE, "1 minute ago", 1), (_HOUR, "{} minutes ago", _MINUTE),
    (2 * _HOUR, "1 hour ago", 1), (_DAY, "{} hours ago", _HOUR),
    (2 * _DAY, "1 day ago", 1), (_WEEK, "{} days ago", _DAY),
    (2 * _WEEK, "1 week ago", 1), (_MONTH, "{} weeks ago", _WEEK),
    (2 * _MONTH, "1 month ago", 1), (_YEAR, "{} months ago", _MONTH),
    (18 * _MONTH, "1 year ago", 1), (2 * _YEAR, "2 years ago", 1),
)


def relative_age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for limit, fmt, unit in _AGES:
        if seconds < limit:
            return fmt.format(int(seconds // unit))
    return f"{int(seconds // _YEAR)} years ago"


def workers_table(plugin: str, workers: list[dict[str, Any]], now: float) -> list[Any]:
    """The title line and the table for one plugin's `informer.Workers` rows."""
    title = Text.assemble("Workers of [", (plugin, "yellow"), "]:")
    table = Table(box=box.SQUARE, header_style="bold")
    for name in ("PID", "STATUS", "EXECS", "MEMORY", "CPU%", "CREATED"):
        table.add_column(name)
    for w in sorted(workers, key=lambda row: row.get("pid", 0)):
        status = str(w.get("statusStr", ""))
        table.add_row(
            str(w.get("pid", "")),
            Text(status, STATUS_STYLES.get(status, "")),
            f"{int(w.get('numExecs', 0)):,}",
            si_bytes(int(w.get("memoryUsage", 0))),
            f"{float(w.get('CPUPercent', 0.0)):.2f}",
            relative_age(now - int(w.get("created", 0)) / 1e9),
        )
    return [title, table]


def services_table(plugin: str, workers: list[dict[str, Any]], now: float) -> list[Any]:
    """`rr workers`'s table for the service plugin's raw processes: PID | MEMORY | CPU% | COMMAND."""
    title = Text.assemble("Workers of [", (plugin, "yellow"), "]:")
    table = Table(box=box.SQUARE, header_style="bold")
    for name in ("PID", "MEMORY", "CPU%", "COMMAND"):
        table.add_column(name)
    for w in sorted(workers, key=lambda row: row.get("pid", 0)):
        table.add_row(str(w.get("pid", "")), si_bytes(int(w.get("memoryUsage", 0))),
                      f"{float(w.get('CPUPercent', 0.0)):.2f}", str(w.get("command", "")))
    return [title, table]


def exits_lines(exits: list[dict[str, Any]], now: float) -> list[Any]:
    """Below the table: the last workers that ended without being asked to
    (`informer.Stats` "exits"), so a crash is not only in the server's log."""
    if not exits:
        return []
    lines: list[Any] = [Text("Recent unexpected worker exits:", "bold")]
    for e in exits[-5:]:
        code = e.get("code")
        how = f"killed by signal {-code}" if isinstance(code, int) and code < 0 else f"exit code {code}"
        text = f"  {e.get('pid')} {relative_age(now - int(e.get('at', 0)) / 1e9)}: {how}"
        detail = e.get("error") or " | ".join(e.get("stderr") or [])
        if detail:
            text += f" — {detail}"
        lines.append(Text(text, "red"))
    return lines


def jobs_table(rows: list[dict[str, Any]]) -> list[Any]:
    """`rr workers`'s jobs part: "Jobs of [jobs]:" and Status | Pipeline | Driver | Queue |
    Active | Delayed | Reserved, from `informer.Jobs` rows (RoadRunner's keys); then a line
    per pipeline with an error (fastrr's: RoadRunner prints no error)."""
    title = Text.assemble("Jobs of [", ("jobs", "yellow"), "]:")
    table = Table(box=box.SQUARE, header_style="bold")
    for name in ("Status", "Pipeline", "Driver", "Queue", "Active", "Delayed", "Reserved"):
        table.add_column(name)
    errors = []
    for row in sorted(rows, key=lambda r: str(r.get("Pipeline", ""))):
        ready = bool(row.get("Ready"))
        status = Text("READY" if ready else "PAUSED/STOPPED", "green" if ready else "yellow")
        if row.get("ErrorMessage"):
            # a broker pipeline redialing (or a storage failing): fastrr's own
            # status, so an operator sees it without reading the logs
            status = Text("DISCONNECTED", "red")
            errors.append(Text.assemble("  ", (str(row.get("Pipeline", "")), "bold"), f": {row['ErrorMessage']}"))
        table.add_row(status,
                      str(row.get("Pipeline", "")), str(row.get("Driver", "")), str(row.get("Queue", "")),
                      f"{int(row.get('Active', 0)):,}", f"{int(row.get('Delayed', 0)):,}",
                      f"{int(row.get('Reserved', 0)):,}")
    return [title, table, *errors]


def pipelines_table(names: list[str]) -> Table:
    """`rr jobs --list/--pause/...`: a one-column table."""
    table = Table(box=box.SQUARE, header_style="bold")
    table.add_column("Pipeline(s)")
    for name in names:
        table.add_row(name)
    return table
