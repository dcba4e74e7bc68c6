"""Micro-benchmarks of fastrr._core (pytest-benchmark): `make microbench`.

Not part of `make test` (they live outside tests/). Each group compares the C
extension with the pure-Python reference (fastrr._core_reference) and, where
the job is the same, with httptools (llhttp + Python callbacks, which is what a
plain uvloop server would use).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_terminal_summary(terminalreporter, config):
    """One line per group: the median of each variant and its ratio to C (or to the first)."""
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    groups: dict[str, dict[str, float]] = {}
    for bench in session.benchmarks:
        impl = bench.name.split("[")[0].removeprefix("test_")
        params = bench.name.split("[", 1)[1].rstrip("]").split("-") if "[" in bench.name else []
        if impl.endswith("httptools"):
            who = "httptools"
        elif "ref" in params or "c" in params:
            who = "ref" if "ref" in params else "c"
        else:
            who = "-".join(params) or impl
        groups.setdefault(bench.group or impl, {})[who] = bench.stats.median * 1e6
    tr = terminalreporter
    tr.write_sep("=", "medians, µs per call (ratio to c, or to the first variant)")
    for group, rows in groups.items():
        first = next(iter(rows))
        base_name = "c" if "c" in rows else first
        base = rows[base_name]
        cells = []
        for who, us in rows.items():
            ratio = f" ({us / base:.2f}x)" if who != base_name else ""
            cells.append(f"{who} {us:,.2f}{ratio}")
        tr.write_line(f"{group:32s} " + " | ".join(cells))
