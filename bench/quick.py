"""Shortcut kept from the first measurement: hello JSON only, fastrr vs nginx + php-fpm.

It now runs the `fastrr bench` harness (fastrr/benchmark/), which stops every
process it starts (the old version could leave php-fpm running, because php-fpm
moves into its own process group), and prints the same kind of table:

    python bench/quick.py [--duration 5] [--connections 64] [--runs 1] [--workers 4]

For the whole comparison (four apps, 8/64/256 connections, plots) use `fastrr bench`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from fastrr.benchmark.cli import main as bench_main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--workers", type=int, default=4, help="PHP workers (fastrr) and fpm children")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fastrr-quick-") as out:
        return bench_main(quick=True, apps="hello", connections=str(args.connections), repeats=args.runs,
                          duration=args.duration, workers=args.workers, out=out, no_plots=True)


if __name__ == "__main__":
    sys.exit(main())
