"""Rolling Pearson correlation and beta over a fixed window, O(1) per update (pure, no I/O).

The window's pairs are kept in a ring buffer. Means and co-moments are kept on values shifted
by a constant ``(kx, ky)`` taken inside the window (correlation and beta do not depend on a
shift); for series with a large offset, e.g. prices around 1e9, ``x - kx`` is then exact and
no precision is lost to the offset. With ``u = x - kx``, ``v = y - ky`` and ``n`` pairs:

add ``(u, v)`` (Welford)::

    n' = n + 1
    du = u - mu;  mu' = mu + du / n'
    dv = v - mv;  mv' = mv + dv / n'
    Sxx' = Sxx + du * (u - mu')
    Syy' = Syy + dv * (v - mv')
    Sxy' = Sxy + du * (v - mv')

remove the oldest ``(u, v)`` (the same step run backwards)::

    n' = n - 1
    mu' = mu - (u - mu) / n';  mv' = mv - (v - mv) / n'
    Sxx' = Sxx - (u - mu') * (u - mu)
    Syy' = Syy - (v - mv') * (v - mv)
    Sxy' = Sxy - (u - mu') * (v - mv)

``correlation = Sxy / sqrt(Sxx * Syy)`` and ``beta = Sxy / Sxx`` (slope of y on x). Every
``reanchor_every`` updates the shift, means and co-moments are recomputed exactly from the
buffer (two passes, ``math.fsum``), so rounding drift from the removals cannot accumulate and
the amortised cost stays O(1).

Each removal leaves a rounding residue of about ``eps`` times the co-moment before it. When
large values leave the window (a volatile stretch followed by a calm one), ``Sxx`` or ``Syy``
can fall far below the residue of those removals: the correlation would be wrong, even NaN,
until the next periodic re-anchor. So the update also re-anchors at once when a co-moment falls
below ``CANCELLATION_RATIO`` of its peak since the last re-anchor.
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


class RollingCorrelation:
    """Pearson correlation and beta of the last ``window`` (x, y) pairs, updated in O(1)."""

    def __init__(
        self, window: int, min_periods: int | None = None, reanchor_every: int | None = None
    ) -> None:
        self._window, self._min_periods, self._reanchor_every = window_params(
            window, min_periods, reanchor_every, least_periods=1
        )
        self._xs: deque[float] = deque()
        self._ys: deque[float] = deque()
        self._kx = 0.0  # shifts
        self._ky = 0.0
        self._mu = 0.0  # means of the shifted values
        self._mv = 0.0
        self._sxx = 0.0
        self._syy = 0.0
        self._sxy = 0.0
        # largest Sxx and Syy since the last re-anchor (see CANCELLATION_RATIO)
        self._peak_xx = 0.0
        self._peak_yy = 0.0
        self._since_anchor = 0
        # length of the run of equal values ending at the newest pair: a window is constant
        # (zero variance, exactly) iff the run covers it, which rounding could otherwise hide
        self._run_x = 0
        self._run_y = 0

    @property
    def window(self) -> int:
        return self._window

    @property
    def min_periods(self) -> int:
        return self._min_periods

    @property
    def n(self) -> int:
        """Pairs currently in the window."""
        return len(self._xs)

    @property
    def correlation(self) -> float | None:
        """None below min_periods; NaN when x or y is constant over the window."""
        n = self.n
        if n < self._min_periods:
            return None
        if n < 2 or self._run_x >= n or self._run_y >= n or self._sxx <= 0 or self._syy <= 0:
            return math.nan
        scale = _norm(self._sxx, self._syy)
        if scale == 0.0:
            return math.nan
        r = self._sxy / scale
        return min(1.0, max(-1.0, r))

    @property
    def beta(self) -> float | None:
        """Least-squares slope of y on x; None below min_periods, NaN when x is constant."""
        n = self.n
        if n < self._min_periods:
            return None
        if n < 2 or self._run_x >= n or self._sxx <= 0:
            return math.nan
        return self._sxy / self._sxx

    def update(self, x: float, y: float) -> float | None:
        """Add a pair (evicting the oldest when full); the correlation, or None if too few.

        ValueError for a non-finite value, leaving the state unchanged.
        """
        x = float(x)
        y = float(y)
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"non-finite pair ({x!r}, {y!r}) for a rolling correlation")
        if len(self._xs) == self._window:
            self._remove_oldest()
        self._add(x, y)
        self._since_anchor += 1
        if (
            self._since_anchor >= self._reanchor_every
            or self._sxx < self._peak_xx * CANCELLATION_RATIO
            or self._syy < self._peak_yy * CANCELLATION_RATIO
        ):
            self._reanchor()
        return self.correlation

    def _add(self, x: float, y: float) -> None:
        if not self._xs:
            # shift by the first pair so a large offset never enters the sums
            self._kx, self._ky = x, y
            self._mu = self._mv = self._sxx = self._syy = self._sxy = 0.0
            self._peak_xx = self._peak_yy = 0.0
        w = self._window
        self._run_x = min(self._run_x + 1, w) if self._xs and x == self._xs[-1] else 1
        self._run_y = min(self._run_y + 1, w) if self._ys and y == self._ys[-1] else 1
        self._xs.append(x)
        self._ys.append(y)
        n = len(self._xs)
        u = x - self._kx
        v = y - self._ky
        du = u - self._mu
        dv = v - self._mv
        self._mu += du / n
        self._mv += dv / n
        self._sxx += du * (u - self._mu)
        self._syy += dv * (v - self._mv)
        self._sxy += du * (v - self._mv)
        self._peak_xx = max(self._peak_xx, self._sxx)
        self._peak_yy = max(self._peak_yy, self._syy)

    def _remove_oldest(self) -> None:
        x = self._xs.popleft()
        y = self._ys.popleft()
        n = len(self._xs)  # count after the removal
        if n == 0:
            self._mu = self._mv = self._sxx = self._syy = self._sxy = 0.0
            return
        u = x - self._kx
        v = y - self._ky
        mu = self._mu - (u - self._mu) / n
        mv = self._mv - (v - self._mv) / n
        self._sxx -= (u - mu) * (u - self._mu)
        self._syy -= (v - mv) * (v - self._mv)
        self._sxy -= (u - mu) * (v - self._mv)
        self._mu, self._mv = mu, mv

    def _reanchor(self) -> None:
        """Recompute shift, means and co-moments exactly from the buffer."""
        self._since_anchor = 0
        n = len(self._xs)
        if n == 0:
            return
        self._kx = math.fsum(self._xs) / n
        self._ky = math.fsum(self._ys) / n
        us = [x - self._kx for x in self._xs]
        vs = [y - self._ky for y in self._ys]
        self._mu = math.fsum(us) / n
        self._mv = math.fsum(vs) / n
        dus = [u - self._mu for u in us]
        dvs = [v - self._mv for v in vs]
        self._sxx = math.fsum(d * d for d in dus)
        self._syy = math.fsum(d * d for d in dvs)
        self._sxy = math.fsum(a * b for a, b in zip(dus, dvs, strict=True))
        self._peak_xx, self._peak_yy = self._sxx, self._syy

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state; ``from_state`` continues bit-for-bit from it."""
        return {
            "window": self._window,
            "min_periods": self._min_periods,
            "reanchor_every": self._reanchor_every,
            "xs": list(self._xs),
            "ys": list(self._ys),
            "shift": [self._kx, self._ky],
            "means": [self._mu, self._mv],
            "comoments": [self._sxx, self._syy, self._sxy],
            "peaks": [self._peak_xx, self._peak_yy],
            "since_anchor": self._since_anchor,
            "runs": [self._run_x, self._run_y],
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
        rc._xs = deque(xs)
        rc._ys = deque(ys)
        rc._kx, rc._ky = (float(v) for v in state["shift"])
        rc._mu, rc._mv = (float(v) for v in state["means"])
        rc._sxx, rc._syy, rc._sxy = (float(v) for v in state["comoments"])
        # states saved before the peaks were kept: treat them as just re-anchored
        rc._peak_xx, rc._peak_yy = (float(v) for v in state.get("peaks", [rc._sxx, rc._syy]))
        rc._since_anchor = int(state["since_anchor"])
        rc._run_x, rc._run_y = (int(v) for v in state["runs"])
        return rc
