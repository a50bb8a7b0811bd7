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
    #: Pearson correlation of the aligned levels (not returns), when enabled
    level_correlations: dict[int, float | None] = field(default_factory=dict)
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
    #: a regime change is signalled at most once per cooldown per window; a change inside it
    #: is signalled when the cooldown ends if the regime still differs from the last signalled
    cooldown_ms: int = 0
    levels: bool = False


class PairCorrelation:
    """Aligned log-return correlations of an anchor series against another, over windows."""

    def __init__(self, pair: str, params: CorrelationParams) -> None:
        self.pair = pair
        self.params = params
        self.aligner = AsOfAligner(params.max_staleness_ms)
        self.windows = {w: RollingCorrelation(w) for w in params.windows}
        self.level_windows = {w: RollingCorrelation(w) for w in params.windows} \
            if params.levels else {}
        self.regimes: dict[int, str | None] = {w: None for w in params.windows}
        #: the regime last announced by a signal, and when (event time)
        self.signalled: dict[int, str | None] = {w: None for w in params.windows}
        self.signalled_ms: dict[int, int | None] = {w: None for w in params.windows}
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
            for window, levels in self.level_windows.items():
                update.level_correlations[window] = levels.update(point.anchor, point.other)
            for window, rolling in self.windows.items():
                r = rolling.update(x, y)
                update.correlations[window] = r
                update.betas[window] = rolling.beta
                if r is not None and math.isfinite(r):
                    self._classify(window, r, update)
                update.regimes[window] = self.regimes[window]
            updates.append(update)
        return updates

    def _classify(self, window: int, r: float, update: CorrelationUpdate) -> None:
        band = correlation_band(r, self.regimes[window], self.params.low, self.params.high,
                                self.params.hysteresis)
        first = self.regimes[window] is None
        self.regimes[window] = band
        if first:
            self.signalled[window] = band
            return
        last, since = self.signalled[window], self.signalled_ms[window]
        if band != last and (since is None or update.t_ms - since >= self.params.cooldown_ms):
            update.changes.append((window, last or band, band))
            self.signalled[window], self.signalled_ms[window] = band, update.t_ms

    def to_state(self) -> dict[str, Any]:
        return {
            "aligner": self.aligner.to_state(),
            "windows": {str(w): r.to_state() for w, r in self.windows.items()},
            "levels": {str(w): r.to_state() for w, r in self.level_windows.items()},
            "regimes": {str(w): band for w, band in self.regimes.items()},
            "signalled": {str(w): [self.signalled[w], self.signalled_ms[w]]
                          for w in self.windows},
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
                pc.signalled[w], pc.signalled_ms[w] = state.get("signalled", {}).get(
                    str(w), [pc.regimes[w], None])
            if str(w) in state.get("levels", {}) and params.levels:
                pc.level_windows[w] = RollingCorrelation.from_state(state["levels"][str(w)])
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
                "cooldown_days": params.cooldown_ms / 86_400_000,
                "level_correlation": update.level_correlations.get(window),
                "anchor_value": update.anchor,
                "other_value": update.other,
            },
        ))
    return signals
