"""wrk, the load generator: the command line, and its results.

The scripts in wrk-scripts/ print one `WRK_JSON {...}` line from wrk's done()
hook (exact percentiles, error counts); `parse_output` reads it and falls back to
wrk's text report when the line is missing (a script without report.lua).
"""

from __future__ import annotations

import json
import math
import re
import resource
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

JSON_MARKER = "WRK_JSON "
PERCENTILES = ("50", "75", "90", "99", "99.9")


class WrkError(RuntimeError):
    pass


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    latency_ms: dict[str, float]          # "50", "90", "99", ... → ms
    mean_ms: float = float("nan")
    max_ms: float = float("nan")
    errors: dict[str, int] = field(default_factory=dict)   # connect/read/write/status/timeout
    bytes: int = 0
    source: str = "json"                   # "json" (done() hook) or "text"
    wrk_cpu_s: float = 0.0

    @property
    def non_2xx(self) -> int:
        return self.errors.get("status", 0)

    @property
    def socket_errors(self) -> int:
        return sum(v for k, v in self.errors.items() if k != "status")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def parse_json_line(text: str) -> dict | None:
    """The document printed by wrk-scripts/report.lua, or None."""
    for line in reversed(text.splitlines()):
        if line.startswith(JSON_MARKER):
            return json.loads(line[len(JSON_MARKER):])
    return None


def from_json(doc: dict) -> WrkResult:
    duration = float(doc["duration_us"]) / 1e6
    requests = int(doc["requests"])
    lat = doc.get("latency_us", {})
    return WrkResult(
        requests=requests,
        duration_s=duration,
        rps=requests / duration if duration > 0 else 0.0,
        latency_ms={k: _ms(v) for k, v in doc.get("percentiles_us", {}).items()},
        mean_ms=_ms(lat.get("mean")),
        max_ms=_ms(lat.get("max")),
        errors={k: int(v) for k, v in doc.get("errors", {}).items()},
        bytes=int(doc.get("bytes", 0)),
        source="json",
    )


def _ms(us: float | None) -> float:
    return float("nan") if us is None else float(us) / 1000.0


_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}
_DURATION_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _time_ms(value: str, unit: str) -> float:
    return float(value) * _UNIT_MS[unit]


def from_text(text: str) -> WrkResult:
    """wrk's own report (run with --latency for the percentile lines)."""
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise WrkError(f"no result in wrk output:\n{text.strip()[-800:]}")
    requests = int(m.group(1))
    duration = float(m.group(2)) * _DURATION_S[m.group(3)]
    rps_m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    latency: dict[str, float] = {}
    for pm in re.finditer(r"^\s+(\d+(?:\.\d+)?)%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M):
        latency[_pct_key(pm.group(1))] = _time_ms(pm.group(2), pm.group(3))
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0}
    se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if se:
        errors.update(connect=int(se.group(1)), read=int(se.group(2)), write=int(se.group(3)),
                      timeout=int(se.group(4)))
    nx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if nx:
        errors["status"] = int(nx.group(1))
    lat = re.search(r"^\s+Latency\s+([\d.]+)(us|ms|s|m)\s+[\d.]+\w+\s+([\d.]+)(us|ms|s|m)", text, re.M)
    return WrkResult(
        requests=requests,
        duration_s=duration,
        rps=float(rps_m.group(1)) if rps_m else (requests / duration if duration else 0.0),
        latency_ms=latency,
        mean_ms=_time_ms(lat.group(1), lat.group(2)) if lat else float("nan"),
        max_ms=_time_ms(lat.group(3), lat.group(4)) if lat else float("nan"),
        errors=errors,
        source="text",
    )


def _pct_key(pct: str) -> str:
    """'50.000' → '50', '99.900' → '99.9' (the keys report.lua uses)."""
    value = float(pct)
    return f"{value:g}"


def parse_output(text: str) -> WrkResult:
    doc = parse_json_line(text)
    if doc is not None:
        return from_json(doc)
    return from_text(text)


def command(url: str, *, connections: int, duration: float, threads: int = 1, script: Path | None = None,
            script_args: Sequence[str] = (), prefix: Sequence[str] = (), timeout_s: float = 5.0) -> list[str]:
    """wrk's argv. At least one connection per thread (wrk refuses fewer)."""
    threads = max(1, min(threads, connections))
    argv = [*prefix, "wrk", f"-t{threads}", f"-c{connections}", f"-d{_duration_arg(duration)}",
            f"--timeout={_duration_arg(timeout_s)}", "--latency"]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(url)
    if script_args:
        argv += ["--", *script_args]
    return argv


def _duration_arg(seconds: float) -> str:
    """wrk takes whole seconds (its time units are s, m, h): 1.5 → '2s', never below 1 s."""
    return f"{max(1, math.ceil(seconds - 1e-9))}s"


def run(argv: Sequence[str], duration: float) -> WrkResult:
    """Runs wrk (bounded: killed after duration + 30 s) and returns its parsed result with its own CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=duration + 30,
                             start_new_session=True)
    except subprocess.TimeoutExpired as exc:
        raise WrkError(f"wrk did not finish within {duration + 30:.0f} s") from exc
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise WrkError(f"wrk exited with {out.returncode}: {(out.stderr or out.stdout).strip()[-500:]}")
    result = parse_output(out.stdout)
    result.wrk_cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result
