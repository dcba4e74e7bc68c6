"""Leak-trend recycling: a least-squares line through a worker's RSS over its
last `leak_window` requests, updated in O(1) per sample.

The C engine (csrc/engine_loop.c, trend_sample) runs the same arithmetic on its own
samples; this class is the Python front's (and the jobs pools') copy, and the
reference the C one follows. Samples are RSS pages relative to the worker's first
sample, with x = 0..n-1 the position in the window, so every sum is an exact
integer (no float drift however long the worker lives): sliding the window drops
the oldest sample (x = 0) and shifts the others down by one, which takes Σy off Σxy.

A worker is reported when, over a full window:
- the fitted climb (slope x (window - 1)) is at least `min_climb` bytes: allocator
  noise and slow warm-up growth stay below it;
- the fit is a line (r² >= LEAK_MIN_FIT): a single step (one request that
  allocates 20 MB and keeps it) fits a line with r² <= 0.75 wherever it falls in
  the window, so a one-off spike never reads as a trend;
- at that rate the worker reaches the limit within `horizon` requests.
After a report the window starts over, so a worker is reported at most once per
window (the pool may be busy recycling another one then, and hears again later).
"""

from __future__ import annotations

LEAK_MIN_FIT = 0.9
LEAK_LABEL = "leakTrend"  # how these recycles are counted in informer.Stats' `recycled`


class LeakTrend:
    __slots__ = ("window", "ring", "n", "head", "base", "sy", "syy", "sxy", "sx_full", "den_full")

    def __init__(self, window: int):
        self.window = window
        self.ring = [0] * window
        self.n = 0
        self.head = 0  # the oldest sample once the window is full
        self.base = -1  # the first sample's pages
        self.sy = self.syy = self.sxy = 0
        # Σx and n·Σx² − (Σx)² of a full window (x = 0..window-1): constants
        self.sx_full = window * (window - 1) // 2
        self.den_full = window * ((window - 1) * window * (2 * window - 1) // 6) - self.sx_full ** 2

    def reset(self) -> None:
        self.n = self.head = 0
        self.base = -1
        self.sy = self.syy = self.sxy = 0

    def add(self, pages: int) -> bool:
        """One sample; True once the window is full (slope() and fit() mean something)."""
        base = self.base
        if base < 0:
            base = self.base = pages
        y = pages - base
        n, count = self.window, self.n
        sy = self.sy
        if count < n:
            self.ring[count] = y
            self.sxy += count * y
            self.n = count = count + 1
            self.sy = sy + y
            self.syy += y * y
            return count == n
        head = self.head
        ring = self.ring
        old = ring[head]
        sy -= old
        # the others move from x to x - 1 (Σy without the oldest), the new one is at x = n - 1
        self.sxy += (n - 1) * y - sy
        self.sy = sy + y
        self.syy += y * y - old * old
        ring[head] = y
        self.head = head + 1 if head + 1 < n else 0
        return True

    def _terms(self) -> tuple[int, int, int]:
        n = self.n
        sx = n * (n - 1) // 2
        sxx = (n - 1) * n * (2 * n - 1) // 6
        return n * self.sxy - sx * self.sy, n * sxx - sx * sx, n * self.syy - self.sy * self.sy

    def slope(self) -> float:
        """Pages per request."""
        num, den, _ = self._terms()
        return num / den if den else 0.0

    def fit(self) -> float:
        """r² of the line (0 when memory is flat)."""
        num, den, var = self._terms()
        if num <= 0 or den <= 0 or var <= 0:
            return 0.0
        return num * num / (den * var)


def leaking(trend: LeakTrend, pages: int, page_size: int, limit: int, min_climb: int,
            horizon: int) -> tuple[float, int] | None:
    """Add a sample; (bytes per request, requests until `limit`) when the worker is
    to be recycled for its trend (and the window then starts over), else None.
    Per request on the Python front: the integer update and one integer comparison
    (climb below the minimum, the usual case); floats only past that."""
    if not trend.add(pages):
        return None
    n = trend.window
    num = n * trend.sxy - trend.sx_full * trend.sy
    den = trend.den_full
    # slope * (n - 1) * page_size >= min_climb, as integers: slope = num / den pages per request
    if num <= 0 or num * (n - 1) * page_size < min_climb * den:
        return None
    var = n * trend.syy - trend.sy * trend.sy
    if var <= 0 or num * num < LEAK_MIN_FIT * den * var:
        return None
    slope = num / den * page_size
    left = int(max(0, limit - pages * page_size) / slope)
    if left > horizon:
        return None
    trend.reset()
    return slope, left
