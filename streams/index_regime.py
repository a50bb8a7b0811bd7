"""Index regime of an index against a benchmark on daily closes (pure, no I/O).

Combines ``AllTimeHigh`` (breakouts, year-to-date) of the index with the
``OutperformanceStreak`` of its daily return over the benchmark's, on closes paired by session.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from schemas.records import Signal
from streams.alignment import AsOfAligner
from streams.correlation import ms_to_iso
from streams.regime import AllTimeHigh, OutperformanceStreak
from streams.signals import make_signal

NEW_YORK = ZoneInfo("America/New_York")
#: closes of the same session are stamped at the same instant; allow clock noise only
SAME_SESSION_MS = 12 * 3600 * 1000


def session_day(t_ms: int) -> date:
    """The New York trading date of an index event."""
    return datetime.fromtimestamp(t_ms / 1000, UTC).astimezone(NEW_YORK).date()


@dataclass
class RegimeResult:
    """What one observation changed: snapshots for the serving layer, and signals."""

    index_snapshot: dict[str, Any] | None = None
    streak_snapshot: dict[str, Any] | None = None
    signals: list[Signal] = field(default_factory=list)
    #: (score component, raw value) pairs: "index_ath" and "relative_strength"
    components: list[tuple[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class RiskOnParams:
    """When small caps are "at highs and outperforming" (README: risk_on_rotation)."""

    max_pct_from_ath: float = 0.03
    relative_strength_days: int = 20
    cooldown_days: float = 10.0


class IndexRegime:
    def __init__(
        self, index: str, benchmark: str, breakout_min_gap_days: int, streak_min_days: int,
        ath_min_history_days: int = 730, risk_on: RiskOnParams | None = None,
    ) -> None:
        self.index = index
        #: the record is only known over the history seen; below this much, a new high in the
        #: data may still be below the true all-time high, so no breakout is signalled
        self.ath_min_history_days = ath_min_history_days
        self.first_day: date | None = None
        self.benchmark = benchmark
        self.streak_min_days = streak_min_days
        self.ath = AllTimeHigh(breakout_min_gap_days)
        self.streak = OutperformanceStreak()
        self.aligner = AsOfAligner(SAME_SESSION_MS)
        self.last_pair: tuple[float, float] | None = None
        self.risk_on_params = risk_on or RiskOnParams()
        #: index / benchmark level ratios of the last relative_strength_days + 1 sessions
        self.level_ratios: deque[float] = deque(
            maxlen=self.risk_on_params.relative_strength_days + 1)
        self.risk_on = False
        self.risk_on_fired_ms: int | None = None

    def add(self, role: str, t_ms: int, close: float) -> RegimeResult:
        """Apply one close (role "anchor" = index, "other" = benchmark)."""
        result = RegimeResult()
        if role == "intraday":
            raise ValueError("intraday quotes go to IndexRegime.intraday")
        if role == "anchor":
            aligned = self.aligner.add_anchor(t_ms, close)
            self._index_close(t_ms, close, result)
        else:
            aligned = self.aligner.add_other(t_ms, close)
        for point in aligned:
            previous, self.last_pair = self.last_pair, (point.anchor, point.other)
            self.level_ratios.append(point.anchor / point.other)
            if previous is not None:
                self._session(point.t_ms, point.anchor / previous[0] - 1,
                              point.other / previous[1] - 1, result)
        return result

    def intraday(self, symbol: str, t_ms: int, price: float) -> dict[str, Any]:
        """A quote during the session: where the index stands now against its record and its
        last close. Closes alone move the record, the streak and the signals."""
        ath = self.ath.ath if symbol == self.index else None
        last_close = None
        if self.last_pair:
            last_close = self.last_pair[0] if symbol == self.index else self.last_pair[1]
        snapshot = {
            "symbol": symbol,
            "session_day": session_day(t_ms).isoformat(),
            "event_time": ms_to_iso(t_ms),
            "price": price,
            "change_from_close": price / last_close - 1 if last_close else None,
            "pct_from_ath": price / ath - 1 if ath else None,
            "above_ath": ath is not None and price > ath,
        }
        return snapshot

    def _index_close(self, t_ms: int, close: float, result: RegimeResult) -> None:
        day = session_day(t_ms)
        breakout = self.ath.update(day, close)
        self.first_day = self.first_day or day
        result.index_snapshot = {
            "symbol": self.index,
            "day": day.isoformat(),
            "close": close,
            "ath": self.ath.ath,
            "ath_day": self.ath.ath_day.isoformat() if self.ath.ath_day else None,
            "pct_from_ath": close / self.ath.ath - 1 if self.ath.ath else None,
            "ytd_change": self.ath.ytd_change,
        }
        if self.ath.ath and (day - self.first_day).days >= self.ath_min_history_days:
            result.components.append(("index_ath", close / self.ath.ath - 1))
        if breakout is None or (day - self.first_day).days < self.ath_min_history_days:
            return
        result.signals.append(make_signal(
            "index_ath",
            self.index,
            ms_to_iso(t_ms),
            "notice",
            close,
            f"{self.index} closed at an all-time high of {close:,.2f} on {day}, "
            f"{breakout.pct_above_previous:.1%} above its previous record of "
            f"{breakout.previous_ath:,.2f} set {breakout.previous_ath_day} "
            f"({breakout.days_since_previous_ath} days earlier).",
            {
                "close": close,
                "previous_ath": breakout.previous_ath,
                "previous_ath_day": breakout.previous_ath_day.isoformat(),
                "pct_above_previous": breakout.pct_above_previous,
                "days_since_previous_ath": breakout.days_since_previous_ath,
                "breakout_min_gap_days": self.ath.breakout_min_gap_days,
                "ytd_change": self.ath.ytd_change,
                "history_start": self.first_day.isoformat(),
            },
        ))

    def _session(self, t_ms: int, index_return: float, benchmark_return: float,
                 result: RegimeResult) -> None:
        day = session_day(t_ms)
        update = self.streak.update(day, index_return, benchmark_return)
        longest_since = update.longest_since.isoformat() if update.longest_since else None
        strength = self.relative_strength
        result.streak_snapshot = {
            "subject": f"{self.index}/{self.benchmark}",
            "day": day.isoformat(),
            "streak": update.streak,
            "longest_since": longest_since,
            "index_return": index_return,
            "benchmark_return": benchmark_return,
            "relative_return": update.relative_return,
            f"relative_strength_{self.risk_on_params.relative_strength_days}d": strength,
            "risk_on": self.risk_on,
        }
        if strength is not None:
            result.components.append(("relative_strength", strength))
            self._risk_on(t_ms, day, strength, update.streak, result)
        if not (update.extended and update.streak >= self.streak_min_days):
            return
        since = (f"the longest streak since {longest_since}" if longest_since
                 else f"the longest since the data begins ({self.first_day})")
        result.signals.append(make_signal(
            "outperformance_streak",
            f"{self.index}/{self.benchmark}",
            ms_to_iso(t_ms),
            "notice",
            update.streak,
            f"{self.index} has beaten {self.benchmark} for {update.streak} trading days in a "
            f"row ({day}), {since}.",
            {
                "streak": update.streak,
                "min_days": self.streak_min_days,
                "longest_since": longest_since,
                "longest_since_length": update.longest_since_length,
                "index_return": index_return,
                "benchmark_return": benchmark_return,
                "relative_return": update.relative_return,
            },
        ))

    @property
    def relative_strength(self) -> float | None:
        """Relative strength: (index / benchmark now) / (index / benchmark N sessions ago) - 1."""
        if len(self.level_ratios) < (self.level_ratios.maxlen or 0):
            return None
        return self.level_ratios[-1] / self.level_ratios[0] - 1

    def _risk_on(self, t_ms: int, day: date, strength: float, streak: int,
                 result: RegimeResult) -> None:
        """Signal small caps entering "at highs and outperforming", at most once a cooldown."""
        params = self.risk_on_params
        ath = self.ath.ath
        if ath is None or (day - (self.first_day or day)).days < self.ath_min_history_days:
            return
        pct_from_ath = self.last_pair[0] / ath - 1 if self.last_pair else -1.0
        was, self.risk_on = self.risk_on, pct_from_ath >= -params.max_pct_from_ath \
            and strength > 0
        cooled = self.risk_on_fired_ms is None \
            or t_ms - self.risk_on_fired_ms >= params.cooldown_days * 86_400_000
        if not self.risk_on or was or not cooled:
            return
        self.risk_on_fired_ms = t_ms
        days = params.relative_strength_days
        result.signals.append(make_signal(
            "risk_on_rotation",
            f"{self.index}/{self.benchmark}",
            ms_to_iso(t_ms),
            "warning",
            strength,
            f"Risk-on rotation: {self.index} closed {abs(pct_from_ath):.1%} "
            f"{'below' if pct_from_ath < 0 else 'at'} its all-time high of {ath:,.2f} and has "
            f"outperformed {self.benchmark} by {strength:+.1%} over {days} sessions ({day}); "
            f"small caps at highs and leading is the risk appetite that has tended to spill "
            f"over into altcoins.",
            {
                "pct_from_ath": pct_from_ath,
                "ath": ath,
                "ath_day": self.ath.ath_day.isoformat() if self.ath.ath_day else None,
                f"relative_strength_{days}d": strength,
                "streak": streak,
                "max_pct_from_ath": params.max_pct_from_ath,
                "cooldown_days": params.cooldown_days,
            },
        ))

    def to_state(self) -> dict[str, Any]:
        return {
            "level_ratios": list(self.level_ratios),
            "risk_on": self.risk_on,
            "risk_on_fired_ms": self.risk_on_fired_ms,
            "ath": self.ath.to_state(),
            "streak": self.streak.to_state(),
            "aligner": self.aligner.to_state(),
            "last_pair": list(self.last_pair) if self.last_pair else None,
            "first_day": self.first_day.isoformat() if self.first_day else None,
        }

    @classmethod
    def from_state(cls, index: str, benchmark: str, breakout_min_gap_days: int,
                   streak_min_days: int, ath_min_history_days: int,
                   state: dict[str, Any] | None,
                   risk_on: RiskOnParams | None = None) -> IndexRegime:
        regime = cls(index, benchmark, breakout_min_gap_days, streak_min_days,
                     ath_min_history_days, risk_on)
        if state:
            regime.level_ratios.extend(state.get("level_ratios", []))
            regime.risk_on = bool(state.get("risk_on", False))
            regime.risk_on_fired_ms = state.get("risk_on_fired_ms")
            regime.ath = AllTimeHigh.from_state(state["ath"])
            regime.streak = OutperformanceStreak.from_state(state["streak"])
            regime.aligner = AsOfAligner.from_state(state["aligner"])
            last = state["last_pair"]
            regime.last_pair = (last[0], last[1]) if last else None
            first = state.get("first_day")
            regime.first_day = date.fromisoformat(first) if first else None
        return regime
