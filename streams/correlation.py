"""Rolling correlation of one pair of series on different clocks (pure, no I/O).

Each anchor observation (e.g. a RUT daily close) is paired with the other series' value as of
``lookahead`` after it (see ``SignalSettings.alignment_lookahead_hours``), the pair's daily log
returns feed one ``RollingCorrelation`` per window, and each window's value is classified into a
regime band whose changes become ``correlation_regime`` signals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from schemas.decode import iso_utc
from schemas.records import Signal
from streams.alignment import AsOfAligner
from streams.rolling import RollingCorrelation
from streams.signals import correlation_band, make_signal


def ms_to_iso(t_ms: int) -> str:
    return iso_utc(datetime.fromtimestamp(t_ms / 1000, UTC))


@dataclass
class CorrelationUpdate:
    """The state of a pair after one aligned point."""

    pair: str
    t_ms: int
    anchor: float
    other: float
    correlations: dict[int, float | None]
    betas: dict[int, float | None]
    regimes: dict[int, str | None]
    #: (window, previous regime, new regime) for each window whose regime changed
    changes: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def event_time(self) -> str:
        return ms_to_iso(self.t_ms)


@dataclass(frozen=True)
class CorrelationParams:
    windows: tuple[int, ...]
    lookahead_ms: int
    max_staleness_ms: int
    low: float
    high: float
    hysteresis: float


class PairCorrelation:
    """Aligned log-return correlations of an anchor series against another, over windows."""

    def __init__(self, pair: str, params: CorrelationParams) -> None:
        self.pair = pair
        self.params = params
        self.aligner = AsOfAligner(params.max_staleness_ms)
        self.windows = {w: RollingCorrelation(w) for w in params.windows}
        self.regimes: dict[int, str | None] = {w: None for w in params.windows}
        self.last: tuple[float, float] | None = None

    def add(self, role: str, t_ms: int, value: float) -> list[CorrelationUpdate]:
        """Apply one observation; EventOrderError if it is not newer than its series' last."""
        if role == "anchor":
            aligned = self.aligner.add_anchor(t_ms + self.params.lookahead_ms, value)
        else:
            aligned = self.aligner.add_other(t_ms, value)
        updates = []
        for point in aligned:
            previous, self.last = self.last, (point.anchor, point.other)
            if previous is None:
                continue
            x = math.log(point.anchor / previous[0])
            y = math.log(point.other / previous[1])
            update = CorrelationUpdate(
                self.pair, point.t_ms - self.params.lookahead_ms, point.anchor, point.other,
                {}, {}, {},
            )
            for window, rolling in self.windows.items():
                r = rolling.update(x, y)
                update.correlations[window] = r
                update.betas[window] = rolling.beta
                if r is not None and math.isfinite(r):
                    band = correlation_band(
                        r, self.regimes[window], self.params.low, self.params.high,
                        self.params.hysteresis,
                    )
                    old = self.regimes[window]
                    if old is not None and band != old:
                        update.changes.append((window, old, band))
                    self.regimes[window] = band
                update.regimes[window] = self.regimes[window]
            updates.append(update)
        return updates

    def to_state(self) -> dict[str, Any]:
        return {
            "aligner": self.aligner.to_state(),
            "windows": {str(w): r.to_state() for w, r in self.windows.items()},
            "regimes": {str(w): band for w, band in self.regimes.items()},
            "last": list(self.last) if self.last else None,
        }

    @classmethod
    def from_state(
        cls, pair: str, params: CorrelationParams, state: dict[str, Any] | None
    ) -> PairCorrelation:
        pc = cls(pair, params)
        if not state:
            return pc
        pc.aligner = AsOfAligner.from_state(state["aligner"])
        for w in params.windows:
            if str(w) in state["windows"]:
                pc.windows[w] = RollingCorrelation.from_state(state["windows"][str(w)])
                pc.regimes[w] = state["regimes"].get(str(w))
        last = state["last"]
        pc.last = (last[0], last[1]) if last else None
        return pc


def correlation_signals(update: CorrelationUpdate, params: CorrelationParams) -> list[Signal]:
    """One ``correlation_regime`` signal per window whose regime changed at this point."""
    anchor, other = update.pair.split("~")
    signals = []
    for window, old, new in update.changes:
        r = update.correlations[window]
        assert r is not None
        verb = {"coupled": "moving together", "decoupled": "moving independently",
                "neutral": "only loosely related"}[new]
        signals.append(make_signal(
            "correlation_regime",
            f"{anchor}/{other}:{window}d",
            update.event_time,
            "notice" if new == "coupled" else "info",
            r,
            f"{anchor} and {other} daily returns are now {new} over {window} days "
            f"({verb}: correlation {r:+.2f}, was {old}).",
            {
                "window_days": window,
                "correlation": r,
                "beta": update.betas[window],
                "previous_regime": old,
                "regime": new,
                "thresholds": {"low": params.low, "high": params.high,
                               "hysteresis": params.hysteresis},
                "anchor_value": update.anchor,
                "other_value": update.other,
            },
        ))
    return signals
