"""Index regime of an index against a benchmark on daily closes (pure, no I/O).

Combines ``AllTimeHigh`` (breakouts, year-to-date) of the index with the
``OutperformanceStreak`` of its daily return over the benchmark's, on closes paired by session.
"""

from __future__ import annotations

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


class IndexRegime:
    def __init__(
        self, index: str, benchmark: str, breakout_min_gap_days: int, streak_min_days: int,
        ath_min_history_days: int = 730,
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

    def add(self, role: str, t_ms: int, close: float) -> RegimeResult:
        """Apply one close (role "anchor" = index, "other" = benchmark)."""
        result = RegimeResult()
        if role == "anchor":
            aligned = self.aligner.add_anchor(t_ms, close)
            self._index_close(t_ms, close, result)
        else:
            aligned = self.aligner.add_other(t_ms, close)
        for point in aligned:
            previous, self.last_pair = self.last_pair, (point.anchor, point.other)
            if previous is not None:
                self._session(point.t_ms, point.anchor / previous[0] - 1,
                              point.other / previous[1] - 1, result)
        return result

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
        result.streak_snapshot = {
            "subject": f"{self.index}/{self.benchmark}",
            "day": day.isoformat(),
            "streak": update.streak,
            "longest_since": longest_since,
            "index_return": index_return,
            "benchmark_return": benchmark_return,
            "relative_return": update.relative_return,
        }
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

    def to_state(self) -> dict[str, Any]:
        return {
            "ath": self.ath.to_state(),
            "streak": self.streak.to_state(),
            "aligner": self.aligner.to_state(),
            "last_pair": list(self.last_pair) if self.last_pair else None,
            "first_day": self.first_day.isoformat() if self.first_day else None,
        }

    @classmethod
    def from_state(cls, index: str, benchmark: str, breakout_min_gap_days: int,
                   streak_min_days: int, ath_min_history_days: int,
                   state: dict[str, Any] | None) -> IndexRegime:
        regime = cls(index, benchmark, breakout_min_gap_days, streak_min_days,
                     ath_min_history_days)
        if state:
            regime.ath = AllTimeHigh.from_state(state["ath"])
            regime.streak = OutperformanceStreak.from_state(state["streak"])
            regime.aligner = AsOfAligner.from_state(state["aligner"])
            last = state["last_pair"]
            regime.last_pair = (last[0], last[1]) if last else None
            first = state.get("first_day")
            regime.first_day = date.fromisoformat(first) if first else None
        return regime
