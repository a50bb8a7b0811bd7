"""Rolling moments, Pearson correlation and beta over a window, O(1) per update (pure, no I/O).

``RollingMoments`` is the one engine: the window's values in a ring buffer, their mean and sum
of squared deviations ``M2`` kept on values shifted by a constant ``k`` taken inside the window
(moments about the mean do not depend on a shift); for series with a large offset, e.g. prices
around 1e9, ``x - k`` is then exact and no precision is lost to the offset. With ``u = x - k``
and ``n`` values:

add ``u`` (Welford)::

    n' = n + 1;  d = u - m;  m' = m + d / n';  M2' = M2 + d * (u - m')

remove the oldest ``u`` (the same step run backwards)::

    n' = n - 1;  m' = m - (u - m) / n';  M2' = M2 - (u - m') * (u - m)

``RollingCorrelation`` keeps one such window for x and one for y (``Sxx`` and ``Syy`` are their
M2) and the co-moment of the pairs beside them::

    add:     Sxy' = Sxy + du * (v - mv')
    remove:  Sxy' = Sxy - (u - mu') * (v - mv)

``correlation = Sxy / sqrt(Sxx * Syy)`` and ``beta = Sxy / Sxx`` (slope of y on x). Every
``reanchor_every`` updates the shift, means and (co-)moments are recomputed exactly from the
buffer (two passes, ``math.fsum``), so rounding drift from the removals cannot accumulate and
the amortised cost stays O(1).

Each removal leaves a rounding residue of about ``eps`` times the moment before it. When large
values leave the window (a volatile stretch followed by a calm one), ``M2`` can fall far below
the residue of those removals: a standard deviation or correlation would be wrong, even NaN,
until the next periodic re-anchor. So an update also re-anchors at once when an M2 falls below
``CANCELLATION_RATIO`` of its peak since the last re-anchor.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

#: re-anchor when a co-moment (or M2) falls below this fraction of its peak since the last
#: re-anchor: removals have then cancelled most of its digits (the residue stays below about
#: window * eps / CANCELLATION_RATIO of the value)
CANCELLATION_RATIO = 1e-3


def log_returns(values: np.ndarray) -> np.ndarray:
    """Log returns ``log(v[i] / v[i-1])`` of a price series (one element shorter)."""
    return np.diff(np.log(np.asarray(values, dtype=np.float64)))


def _norm(sxx: float, syy: float) -> float:
    """sqrt(sxx * syy), also when the product under- or overflows (tiny or huge variances)."""
    product = sxx * syy
    if 0.0 < product < math.inf:
        return math.sqrt(product)
    return math.sqrt(sxx) * math.sqrt(syy)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Reference Pearson correlation by a full two-pass recompute.

    NaN below 2 points or when x or y is constant.
    """
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if xa.shape != ya.shape or xa.ndim != 1:
        raise ValueError(f"x and y must be 1-d and of the same length, got {xa.shape} {ya.shape}")
    if xa.size < 2:
        return math.nan
    # shifting by the first value is exact for values of like magnitude and keeps a large
    # offset (prices around 1e9) out of the mean, whose rounding would otherwise dominate
    xs = xa - xa[0]
    ys = ya - ya[0]
    dx = xs - xs.mean()
    dy = ys - ys.mean()
    sxx = float(np.dot(dx, dx))
    syy = float(np.dot(dy, dy))
    if sxx <= 0.0 or syy <= 0.0 or np.all(xa == xa[0]) or np.all(ya == ya[0]):
        return math.nan
    scale = _norm(sxx, syy)
    if scale == 0.0:
        return math.nan
    r = float(np.dot(dx, dy)) / scale
    return min(1.0, max(-1.0, r))


def window_params(
    window: int, min_periods: int | None, reanchor_every: int | None, least_periods: int
) -> tuple[int, int, int]:
    """Validated (window, min_periods, reanchor_every) of a rolling estimator; both default to
    the window. ``least_periods`` is the smallest min_periods that defines the statistic."""
    if isinstance(window, bool) or not isinstance(window, int) or window < 2:
        raise ValueError(f"window must be an int >= 2, got {window!r}")
    if min_periods is None:
        min_periods = window
    if not least_periods <= min_periods <= window:
        raise ValueError(
            f"min_periods must be in {least_periods}..window ({window}), got {min_periods}"
        )
    if reanchor_every is None:
        reanchor_every = window
    if reanchor_every < 1:
        raise ValueError(f"reanchor_every must be >= 1, got {reanchor_every}")
    return window, min_periods, reanchor_every


class RollingEstimator:
    """A statistic over the last ``window`` observations, defined from ``min_periods`` of them,
    with an exact re-anchor every ``reanchor_every`` updates (see ``window_params``)."""

    def __init__(
        self, window: int, min_periods: int | None, reanchor_every: int | None,
        least_periods: int,
    ) -> None:
        self._window, self._min_periods, self._reanchor_every = window_params(
            window, min_periods, reanchor_every, least_periods
        )

    @property
    def window(self) -> int:
        return self._window

    @property
    def min_periods(self) -> int:
        return self._min_periods


class RollingMoments:
    """Mean and ``M2`` (sum of squared deviations) of the last ``window`` values, in O(1).

    The engine of the rolling estimators (see the module docstring). ``push`` is the whole
    update of one window; an estimator over several windows of the same length (x and y of a
    correlation) runs ``add``, ``remove_oldest`` and ``reanchor`` on all of them together, so
    their re-anchor counts stay equal.
    """

    def __init__(self, window: int, reanchor_every: int) -> None:
        self.window = window
        self.reanchor_every = reanchor_every
        self.values: deque[float] = deque()
        self.shift = 0.0
        self.mean = 0.0  # of the shifted values
        self.m2 = 0.0
        self.peak = 0.0  # largest M2 since the last re-anchor (see CANCELLATION_RATIO)
        self.since_anchor = 0
        # length of the run of equal values ending at the newest one: the window is constant
        # (M2 exactly 0) iff the run covers it, which rounding in M2 could otherwise hide
        self.run = 0

    @classmethod
    def restore(
        cls, window: int, reanchor_every: int, values: list[float], *, shift: float,
        mean: float, m2: float, peak: float, since_anchor: int, run: int,
    ) -> RollingMoments:
        """The engine in a saved state (the estimators' ``from_state``)."""
        moments = cls(window, reanchor_every)
        moments.values = deque(values)
        moments.shift, moments.mean, moments.m2, moments.peak = shift, mean, m2, peak
        moments.since_anchor = since_anchor
        moments.run = run
        return moments

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def constant(self) -> bool:
        """All values in the window are equal (exactly, whatever M2's rounding)."""
        return self.run >= len(self.values)

    @property
    def due(self) -> bool:
        """A re-anchor is due: ``reanchor_every`` additions since the last, or M2 cancelled."""
        return (
            self.since_anchor >= self.reanchor_every or self.m2 < self.peak * CANCELLATION_RATIO
        )

    def deviation(self, x: float) -> float:
        """``x`` minus the window's mean (on the shifted values, where no offset is lost)."""
        return (x - self.shift) - self.mean

    def push(self, x: float) -> float:
        """Add ``x``, evicting the oldest value when full, and re-anchor when due.

        ``x``'s deviation from the mean before it was added.
        """
        if len(self.values) == self.window:
            self.remove_oldest()
        d = self.add(x)
        if self.due:
            self.reanchor()
        return d

    def add(self, x: float) -> float:
        """Append ``x`` to a window that is not full; its deviation from the mean before it."""
        if not self.values:
            # shift by the first value so a large offset never enters the sums
            self.shift = x
            self.mean = self.m2 = self.peak = 0.0
        same = bool(self.values) and x == self.values[-1]
        self.run = min(self.run + 1, self.window) if same else 1
        self.values.append(x)
        u = x - self.shift
        d = u - self.mean
        self.mean += d / len(self.values)
        self.m2 += d * (u - self.mean)
        self.peak = max(self.peak, self.m2)
        self.since_anchor += 1
        return d

    def remove_oldest(self) -> float:
        """Drop the oldest value and return it."""
        x = self.values.popleft()
        n = len(self.values)  # count after the removal
        if n == 0:
            self.mean = self.m2 = 0.0
            return x
        u = x - self.shift
        mean = self.mean - (u - self.mean) / n
        self.m2 -= (u - mean) * (u - self.mean)
        self.mean = mean
        return x

    def reanchor(self) -> list[float]:
        """Recompute shift, mean and M2 exactly from the buffer; the values' deviations."""
        self.since_anchor = 0
        n = len(self.values)
        if n == 0:
            return []
        self.shift = math.fsum(self.values) / n
        self.mean = math.fsum(x - self.shift for x in self.values) / n
        deviations = [self.deviation(x) for x in self.values]
        self.m2 = self.peak = math.fsum(d * d for d in deviations)
        return deviations


class RollingCorrelation(RollingEstimator):
    """Pearson correlation and beta of the last ``window`` (x, y) pairs, updated in O(1)."""

    def __init__(
        self, window: int, min_periods: int | None = None, reanchor_every: int | None = None
    ) -> None:
        super().__init__(window, min_periods, reanchor_every, least_periods=1)
        self._x = RollingMoments(self._window, self._reanchor_every)
        self._y = RollingMoments(self._window, self._reanchor_every)
        self._sxy = 0.0  # co-moment of the pairs

    @property
    def n(self) -> int:
        """Pairs currently in the window."""
        return self._x.n

    @property
    def correlation(self) -> float | None:
        """None below min_periods; NaN when x or y is constant over the window."""
        xm, ym = self._x, self._y
        n = len(xm.values)
        if n < self._min_periods:
            return None
        sxx, syy = xm.m2, ym.m2
        if n < 2 or xm.constant or ym.constant or sxx <= 0 or syy <= 0:
            return math.nan
        scale = _norm(sxx, syy)
        if scale == 0.0:
            return math.nan
        r = self._sxy / scale
        return min(1.0, max(-1.0, r))

    @property
    def beta(self) -> float | None:
        """Least-squares slope of y on x; None below min_periods, NaN when x is constant."""
        xm = self._x
        n = len(xm.values)
        if n < self._min_periods:
            return None
        if n < 2 or xm.constant or xm.m2 <= 0:
            return math.nan
        return self._sxy / xm.m2

    def update(self, x: float, y: float) -> float | None:
        """Add a pair (evicting the oldest when full); the correlation, or None if too few.

        ValueError for a non-finite value, leaving the state unchanged.
        """
        x = float(x)
        y = float(y)
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"non-finite pair ({x!r}, {y!r}) for a rolling correlation")
        xm, ym = self._x, self._y
        if len(xm.values) == self._window:
            # evict the oldest pair: Sxy' = Sxy - (u - mu') * (v - mv), y's mean before the
            # removal and x's after it (a full window keeps >= 1 pair, window >= 2)
            dv = ym.deviation(ym.values[0])
            ym.remove_oldest()
            self._sxy -= xm.deviation(xm.remove_oldest()) * dv
        elif not xm.values:
            self._sxy = 0.0
        du = xm.add(x)
        ym.add(y)
        self._sxy += du * ym.deviation(y)
        if xm.due or ym.due:
            dus = xm.reanchor()
            dvs = ym.reanchor()
            self._sxy = math.fsum(a * b for a, b in zip(dus, dvs, strict=True))
        return self.correlation

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state; ``from_state`` continues bit-for-bit from it."""
        x, y = self._x, self._y
        return {
            "window": self._window,
            "min_periods": self._min_periods,
            "reanchor_every": self._reanchor_every,
            "xs": list(x.values),
            "ys": list(y.values),
            "shift": [x.shift, y.shift],
            "means": [x.mean, y.mean],
            "comoments": [x.m2, y.m2, self._sxy],
            "peaks": [x.peak, y.peak],
            "since_anchor": x.since_anchor,
            "runs": [x.run, y.run],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RollingCorrelation:
        rc = cls(int(state["window"]), int(state["min_periods"]), int(state["reanchor_every"]))
        xs = [float(v) for v in state["xs"]]
        ys = [float(v) for v in state["ys"]]
        if len(xs) != len(ys) or len(xs) > rc._window:
            raise ValueError(
                f"rolling state has {len(xs)} x and {len(ys)} y values for window {rc._window}"
            )
        kx, ky = (float(v) for v in state["shift"])
        mu, mv = (float(v) for v in state["means"])
        sxx, syy, rc._sxy = (float(v) for v in state["comoments"])
        # states saved before the peaks were kept: treat them as just re-anchored
        peak_x, peak_y = (float(v) for v in state.get("peaks", [sxx, syy]))
        since_anchor = int(state["since_anchor"])
        run_x, run_y = (int(v) for v in state["runs"])
        rc._x = RollingMoments.restore(
            rc._window, rc._reanchor_every, xs, shift=kx, mean=mu, m2=sxx, peak=peak_x,
            since_anchor=since_anchor, run=run_x,
        )
        rc._y = RollingMoments.restore(
            rc._window, rc._reanchor_every, ys, shift=ky, mean=mv, m2=syy, peak=peak_y,
            since_anchor=since_anchor, run=run_y,
        )
        return rc
