"""Shortcut kept from the first measurement: hello JSON only, fastrr vs nginx + php-fpm.

It now runs the `fastrr bench` harness (fastrr/benchmark/), which stops every
process it starts (the old version could leave php-fpm running, because php-fpm
moves into its own process group), and prints the same kind of table:

    python bench/quick.py [--duration 5] [--connections 64] [--runs 1] [--workers 4]
                          [--engine auto|python|c|both]

`--engine` picks fastrr's HTTP front (`http.engine`, through FASTRR_ENGINE);
`both` measures the Python front and the C engine in one invocation (each
against its own nginx + php-fpm run) and ends with a line comparing them.

For the whole comparison (four apps, 8/64/256 connections, plots) use `fastrr bench`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from fastrr.benchmark.cli import main as bench_main
from fastrr.benchmark.report import fmt_num, summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--workers", type=int, default=4, help="PHP workers (fastrr) and fpm children")
    ap.add_argument("--engine", choices=("auto", "python", "c", "both"),
                    default=os.environ.get("FASTRR_ENGINE") or "auto",
                    help="fastrr's HTTP front: auto (fastrr's default), python, c (the C engine) or both "
                         "(default: $FASTRR_ENGINE or auto)")
    args = ap.parse_args()
    engines = ["python", "c"] if args.engine == "both" else [args.engine]
    results: dict[str, dict] = {}
    code = 0
    for engine in engines:
        os.environ["FASTRR_ENGINE"] = engine  # the default of http.engine for the fastrr it starts
        print(f"== fastrr with http.engine: {engine}", flush=True)
        with tempfile.TemporaryDirectory(prefix="fastrr-quick-") as out:
            code = bench_main(quick=True, apps="hello", connections=str(args.connections), repeats=args.runs,
                              duration=args.duration, workers=args.workers, out=out, no_plots=True) or code
            path = Path(out) / "results.json"
            if path.exists():
                results[engine] = json.loads(path.read_text())
    if len(results) > 1:
        print("== front process CPU µs per request (medians), and req/s vs nginx+php-fpm of the same run:")
        for engine, doc in results.items():
            for p in doc.get("points", []):
                ratio = p["ratios"].get("rps", {}).get("median")
                print(f"  {engine:<6} {p['mode']:<8} c{p['connections']:<4} "
                      f"front {fmt_num(summary(p, 'fastrr', 'front_us').median, 1)} µs/req, "
                      f"fastrr {fmt_num(summary(p, 'fastrr', 'rps').median)} req/s, "
                      f"fpm {fmt_num(summary(p, 'fpm', 'rps').median)} req/s, "
                      f"fastrr/fpm {f'{ratio:.2f}x' if ratio else '–'}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
