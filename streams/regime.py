"""Index regime math on daily closes: all-time highs and outperformance streaks (pure, no I/O).

``AllTimeHigh`` tracks one index's record close, its breakouts above an old record and its
year-to-date change. ``OutperformanceStreak`` counts consecutive sessions on which the index's
daily return beat the benchmark's, and says since when no streak was that long.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import date
from typing import Any

from streams.order import check_newer


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text is not None else None


@dataclass(frozen=True)
class AthBreakout:
    """A close above an all-time high that had stood for at least the minimum gap."""

    day: date
    close: float
    previous_ath: float
    previous_ath_day: date
    #: fraction above the previous record (0.01 = 1 %)
    pct_above_previous: float
    days_since_previous_ath: int


class AllTimeHigh:
    """All-time high close, breakouts above an old high, and year-to-date change of an index.

    A breakout is a close above the record when the record was set at least
    ``breakout_min_gap_days`` calendar days earlier; record closes in a run (within the gap)
    only move the record, so one rally gives one breakout, not one per day.
    """

    def __init__(self, breakout_min_gap_days: int = 30) -> None:
        if breakout_min_gap_days < 0:
            raise ValueError(f"breakout_min_gap_days must be >= 0, got {breakout_min_gap_days}")
        self.breakout_min_gap_days = breakout_min_gap_days
        self.ath: float | None = None
        self.ath_day: date | None = None
        self.last_close: float | None = None
        self.last_day: date | None = None
        #: last close of the previous calendar year (None in the first year seen)
        self.prev_year_close: float | None = None
        #: close / prev_year_close - 1 of the last close (None in the first year seen)
        self.ytd_change: float | None = None

    def update(self, day: date, close: float) -> AthBreakout | None:
        """Apply a daily close; the breakout it makes, if any.

        EventOrderError for a day not after the last one, ValueError for a close that is not a
        positive finite number; the state is unchanged then.
        """
        check_newer("index close", day, self.last_day)
        close = float(close)
        if not (math.isfinite(close) and close > 0):
            raise ValueError(f"close for {day.isoformat()} must be positive and finite: {close!r}")
        if self.last_day is not None and day.year != self.last_day.year:
            # a missing calendar year in between leaves no previous-year close
            self.prev_year_close = (
                self.last_close if self.last_day.year == day.year - 1 else None
            )
        self.ytd_change = (
            close / self.prev_year_close - 1 if self.prev_year_close is not None else None
        )
        self.last_close = close
        self.last_day = day
        if self.ath is None or self.ath_day is None:
            self.ath, self.ath_day = close, day
            return None
        if close <= self.ath:
            return None
        gap = (day - self.ath_day).days
        breakout = None
        if gap >= self.breakout_min_gap_days:
            breakout = AthBreakout(
                day=day,
                close=close,
                previous_ath=self.ath,
                previous_ath_day=self.ath_day,
                pct_above_previous=close / self.ath - 1,
                days_since_previous_ath=gap,
            )
        self.ath, self.ath_day = close, day
        return breakout

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state (dates as ISO strings)."""
        return {
            "breakout_min_gap_days": self.breakout_min_gap_days,
            "ath": self.ath,
            "ath_day": _iso(self.ath_day),
            "last_close": self.last_close,
            "last_day": _iso(self.last_day),
            "prev_year_close": self.prev_year_close,
            "ytd_change": self.ytd_change,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> AllTimeHigh:
        ath = cls(int(state["breakout_min_gap_days"]))
        ath.ath = state["ath"]
        ath.ath_day = _day(state["ath_day"])
        ath.last_close = state["last_close"]
        ath.last_day = _day(state["last_day"])
        ath.prev_year_close = state["prev_year_close"]
        ath.ytd_change = state["ytd_change"]
        return ath


@dataclass(frozen=True)
class StreakUpdate:
    """The outperformance streak after one session."""

    day: date
    #: consecutive sessions up to ``day`` on which the index beat the benchmark (0: not today)
    streak: int
    #: True when ``day`` extended the streak (the index beat the benchmark)
    extended: bool
    #: end day of the most recent completed streak at least as long as ``streak``
    #: (None when streak is 0 or no earlier streak was that long)
    longest_since: date | None
    longest_since_length: int | None
    #: index_return - benchmark_return
    relative_return: float


class OutperformanceStreak:
    """Consecutive sessions on which an index's daily return beat its benchmark's.

    Completed streaks are kept as a stack of (length, end day) with strictly decreasing lengths
    from bottom to top: a completed streak of length L pops every entry of length <= L, which
    it makes irrelevant (it is at least as long and more recent). The most recent completed
    streak of length >= q is then the topmost entry of length >= q.
    """

    def __init__(self) -> None:
        self.streak = 0
        self.last_day: date | None = None
        #: last day of the current streak (None when streak is 0)
        self.streak_end_day: date | None = None
        self._records: list[tuple[int, date]] = []

    @property
    def records(self) -> list[tuple[int, date]]:
        """The (length, end day) stack, oldest and longest first."""
        return list(self._records)

    def record_since(self, length: int) -> tuple[date, int] | None:
        """End day and length of the most recent completed streak with length >= ``length``."""
        # lengths decrease along the stack, so entries with length >= `length` are a prefix
        count = bisect.bisect_right(self._records, -length, key=lambda r: -r[0])
        if count == 0:
            return None
        found_length, end_day = self._records[count - 1]
        return end_day, found_length

    def update(self, day: date, index_return: float, benchmark_return: float) -> StreakUpdate:
        """Apply one session's returns.

        EventOrderError for a day not after the last one, ValueError for a non-finite return;
        the state is unchanged then.
        """
        check_newer("session returns", day, self.last_day)
        index_return = float(index_return)
        benchmark_return = float(benchmark_return)
        if not (math.isfinite(index_return) and math.isfinite(benchmark_return)):
            raise ValueError(
                f"returns for {day.isoformat()} must be finite: "
                f"{index_return!r}, {benchmark_return!r}"
            )
        self.last_day = day
        extended = index_return > benchmark_return
        if extended:
            self.streak += 1
            self.streak_end_day = day
        elif self.streak > 0:
            assert self.streak_end_day is not None
            self._complete(self.streak, self.streak_end_day)
            self.streak = 0
            self.streak_end_day = None
        since = self.record_since(self.streak) if self.streak > 0 else None
        return StreakUpdate(
            day=day,
            streak=self.streak,
            extended=extended,
            longest_since=since[0] if since else None,
            longest_since_length=since[1] if since else None,
            relative_return=index_return - benchmark_return,
        )

    def _complete(self, length: int, end_day: date) -> None:
        while self._records and self._records[-1][0] <= length:
            self._records.pop()
        self._records.append((length, end_day))

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state (dates as ISO strings)."""
        return {
            "streak": self.streak,
            "last_day": _iso(self.last_day),
            "streak_end_day": _iso(self.streak_end_day),
            "records": [[length, end.isoformat()] for length, end in self._records],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> OutperformanceStreak:
        st = cls()
        st.streak = int(state["streak"])
        st.last_day = _day(state["last_day"])
        st.streak_end_day = _day(state["streak_end_day"])
        st._records = [(int(length), date.fromisoformat(end)) for length, end in state["records"]]
        return st
