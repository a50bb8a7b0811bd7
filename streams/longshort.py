"""Long/short account ratio views: the altcoin cross-section and per-series crowding (pure, no I/O).

``cross_section`` tests the analysts' pattern "as market cap decreases, long bias increases":
a positive Spearman correlation of ratio against market-cap rank (1 = largest) and a positive
slope of ``ln(ratio)`` on rank. ``RatioHistory`` flags crowding in one (exchange, symbol,
variant) series by the z-score of each new ratio against the window of ratios before it.

``RatioHistory`` keeps the window's mean and sum of squared deviations in
``streams.rolling.RollingMoments``, the engine of the rolling correlation too: Welford's add and
remove steps on shifted values, with an exact re-anchor every ``reanchor_every`` updates and
when the sum has cancelled, so rounding drift cannot accumulate and an update costs O(1).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from schemas.records import Signal
from streams.order import check_newer
from streams.rolling import RollingEstimator, RollingMoments, pearson
from streams.signals import make_signal


@dataclass(frozen=True)
class CoinRatio:
    """One coin's long/short ratio and its market-cap rank (1 = largest)."""

    symbol: str
    rank: int
    ratio: float


@dataclass(frozen=True)
class CrossSection:
    """Long bias of the altcoins against their market-cap rank."""

    #: altcoins used (not excluded, finite ratio > 0)
    n: int
    #: fraction of them with ratio > 1 (more long than short accounts)
    share_long: float
    #: Spearman correlation of ratio vs rank (> 0: smaller caps are more long);
    #: NaN below 3 coins or when ratio or rank is constant
    spearman: float
    #: least-squares ``ln(ratio) = intercept + slope * rank``; NaN below 2 distinct ranks
    slope: float
    intercept: float


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties getting the average of the ranks they span (as scipy's rankdata)."""
    a = np.asarray(values, dtype=np.float64)
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    # start index of each run of equal values, plus the end
    bounds = np.flatnonzero(np.concatenate(([True], sorted_a[1:] != sorted_a[:-1], [True])))
    starts, ends = bounds[:-1], bounds[1:]
    run_ranks = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(a.size, dtype=np.float64)
    ranks[order] = np.repeat(run_ranks, ends - starts)
    return ranks


def cross_section(
    coins: Sequence[CoinRatio], exclude: Collection[str] = ("BTC", "ETH")
) -> CrossSection | None:
    """Cross-section of the altcoins' ratios; None when no coin qualifies.

    Coins in ``exclude`` (exact symbols) and coins without a finite ratio > 0 (a missing or
    broken feed) are skipped. ValueError for a rank below 1 or a symbol given twice.
    """
    seen: set[str] = set()
    ranks: list[float] = []
    ratios: list[float] = []
    for coin in coins:
        if coin.symbol in seen:
            raise ValueError(f"symbol {coin.symbol!r} appears twice in the cross-section")
        seen.add(coin.symbol)
        if isinstance(coin.rank, bool) or not isinstance(coin.rank, int) or coin.rank < 1:
            raise ValueError(f"rank of {coin.symbol!r} must be an int >= 1, got {coin.rank!r}")
        ratio = float(coin.ratio)
        if coin.symbol in exclude or not (math.isfinite(ratio) and ratio > 0):
            continue
        ranks.append(float(coin.rank))
        ratios.append(ratio)
    n = len(ratios)
    if n == 0:
        return None
    x = np.array(ranks)
    r = np.array(ratios)
    share_long = float(np.count_nonzero(r > 1.0)) / n
    spearman = pearson(average_ranks(r), average_ranks(x)) if n >= 3 else math.nan
    slope = intercept = math.nan
    if np.any(x != x[0]):
        y = np.log(r)
        dx = x - x.mean()
        slope = float(np.dot(dx, y - y.mean()) / np.dot(dx, dx))
        intercept = float(y.mean() - slope * x.mean())
    return CrossSection(
        n=n, share_long=share_long, spearman=spearman, slope=slope, intercept=intercept
    )


class RatioHistory(RollingEstimator):
    """Z-score of each new ratio of one (exchange, symbol, variant) series vs its recent past.

    The past is the last ``window`` ratios before the new one; the standard deviation is the
    sample one (ddof 1, as pandas' ``rolling().std()``).
    """

    def __init__(
        self, window: int, min_periods: int | None = None, reanchor_every: int | None = None
    ) -> None:
        super().__init__(window, min_periods, reanchor_every, least_periods=2)
        self._moments = RollingMoments(self._window, self._reanchor_every)
        self.last_t_ms: int | None = None

    @property
    def n(self) -> int:
        """Ratios currently in the window."""
        return self._moments.n

    @property
    def mean(self) -> float | None:
        m = self._moments
        return m.shift + m.mean if m.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation of the window; None below 2 ratios."""
        m = self._moments
        if m.n < 2:
            return None
        if m.constant:
            return 0.0
        return math.sqrt(max(m.m2, 0.0) / (m.n - 1))

    def zscore(self, ratio: float) -> float | None:
        """Z-score of ``ratio`` against the current window, without adding it.

        None below min_periods, NaN when the window is constant.
        """
        if self._moments.n < self._min_periods:
            return None
        std = self.std
        if not std:
            return math.nan
        return self._moments.deviation(float(ratio)) / std

    def update(self, t_ms: int, ratio: float) -> float | None:
        """Z-score of the new ratio against the window before it, then add it to the window.

        EventOrderError for a t_ms not after the last one, ValueError for a ratio that is not
        finite and >= 0; the state is unchanged then.
        """
        check_newer("long/short ratio", t_ms, self.last_t_ms)
        ratio = float(ratio)
        if not (math.isfinite(ratio) and ratio >= 0):
            raise ValueError(f"long/short ratio at t_ms={t_ms} must be finite and >= 0: {ratio!r}")
        z = self.zscore(ratio)
        self.last_t_ms = t_ms
        self._moments.push(ratio)
        return z

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state; ``from_state`` continues bit-for-bit from it."""
        m = self._moments
        return {
            "window": self._window,
            "min_periods": self._min_periods,
            "reanchor_every": self._reanchor_every,
            "values": list(m.values),
            "shift": m.shift,
            "mean": m.mean,
            "m2": m.m2,
            "m2_peak": m.peak,
            "since_anchor": m.since_anchor,
            "run": m.run,
            "last_t_ms": self.last_t_ms,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RatioHistory:
        rh = cls(int(state["window"]), int(state["min_periods"]), int(state["reanchor_every"]))
        values = [float(v) for v in state["values"]]
        if len(values) > rh._window:
            raise ValueError(
                f"ratio history state has {len(values)} values for window {rh._window}"
            )
        m2 = float(state["m2"])
        # states saved before the shift and peak were kept: unshifted, just re-anchored
        rh._moments = RollingMoments.restore(
            rh._window, rh._reanchor_every, values, shift=float(state.get("shift", 0.0)),
            mean=float(state["mean"]), m2=m2, peak=float(state.get("m2_peak", m2)),
            since_anchor=int(state["since_anchor"]), run=int(state["run"]),
        )
        last = state["last_t_ms"]
        rh.last_t_ms = int(last) if last is not None else None
        return rh


def coin_of(symbol: str) -> str:
    """The base coin of a ccxt unified symbol: "SOL/USDT:USDT" -> "SOL"."""
    return symbol.split("/")[0]


def long_share_of(ratios: Sequence[float]) -> float | None:
    """Fraction of ratios above 1 (more long than short); None for none."""
    return sum(1 for r in ratios if r > 1.0) / len(ratios) if ratios else None


def crowding_signal(series: str, event_time: str, ratio: float, z: float, mean: float | None,
                    window: int, threshold: float, min_ratio: float,
                    cooldown_hours: float) -> Signal:
    """``long_crowding``: a ratio far above its own history (z-score) and clearly long."""
    exchange, symbol, variant = series.split("|")
    return make_signal(
        "long_crowding",
        f"{exchange}:{symbol}:{variant}",
        event_time,
        "warning",
        ratio,
        f"Long crowding on {exchange} {symbol}: the {variant.replace('_', ' ')} long/short "
        f"ratio is {ratio:.2f}, {z:.1f} standard deviations above its last {window} readings "
        f"(mean {mean:.2f}). Crowded longs often precede volatility and long squeezes.",
        {
            "ratio": ratio,
            "zscore": z,
            "history_mean": mean,
            "window": window,
            "zscore_threshold": threshold,
            "min_ratio": min_ratio,
            "cooldown_hours": cooldown_hours,
        },
    )
