"""Where fastrr's non-Python files are: the PHP library (php/), the benchmark apps
(bench/apps, bench/floor.c) and wrk-scripts/.

From a checkout (or an editable install) they are the checkout's own directories,
next to the fastrr package. A wheel carries a copy of them as package data in
fastrr/_tree/ (setup.py puts it there), so `pip install fastrr` gives PHP users the
library — `require (fastrr php-path) . '/autoload.php'` — and `fastrr bench` its apps.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parent
BUNDLED = PACKAGE / "_tree"
# the wheel's copy names the same top-level directories as a checkout
TREE_DIRS = ("php", "bench", "wrk-scripts")


def in_checkout() -> bool:
    """True when running from the source tree (it has the PHP library beside the package)."""
    return (CHECKOUT / "php" / "autoload.php").is_file() and (CHECKOUT / "pyproject.toml").is_file()


def tree() -> Path:
    """The directory that holds php/, bench/ and wrk-scripts/."""
    return CHECKOUT if in_checkout() else BUNDLED


def php_dir() -> Path:
    return tree() / "php"


def results_dir() -> Path:
    """Where `fastrr bench` writes: bench/results in a checkout, else ./fastrr-bench-results
    (never inside site-packages)."""
    return CHECKOUT / "bench" / "results" if in_checkout() else Path.cwd() / "fastrr-bench-results"
