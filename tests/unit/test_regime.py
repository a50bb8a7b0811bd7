"""AllTimeHigh and OutperformanceStreak, against brute force and the real RUT/SPX closes."""

from __future__ import annotations

import csv
import json
import random
from datetime import date, timedelta
from pathlib import Path

import pytest

from foundation.errors import EventOrderError
from streams.regime import AllTimeHigh, AthBreakout, OutperformanceStreak, StreakUpdate

REPLAY = Path(__file__).resolve().parents[2] / "data" / "replay"
D = date.fromisoformat


def read_closes(name: str) -> dict[date, float]:
    with open(REPLAY / name, newline="") as f:
        return {D(row["Date"]): float(row["Close"]) for row in csv.DictReader(f)}


def rut_spx_returns() -> list[tuple[date, float, float]]:
    """(day, RUT return, SPX return) on consecutive common dates."""
    rut = read_closes("russell2000_rut.csv")
    spx = read_closes("sp500_gspc.csv")
    days = sorted(set(rut) & set(spx))
    return [(d, rut[d] / rut[p] - 1, spx[d] / spx[p] - 1)
            for p, d in zip(days, days[1:], strict=False)]


def brute_force_streaks(
    sessions: list[tuple[date, float, float]],
) -> list[tuple[int, bool, date | None, int | None]]:
    """(streak, extended, longest_since, its length) per session, by scanning all history."""
    completed: list[tuple[int, date]] = []
    streak, end = 0, None
    out = []
    for day, a, b in sessions:
        if a > b:
            streak, end = streak + 1, day
        else:
            if streak:
                assert end is not None
                completed.append((streak, end))
            streak = 0
        since = None
        if streak:
            since = next(((e, n) for n, e in reversed(completed) if n >= streak), None)
        out.append((streak, a > b, since[0] if since else None, since[1] if since else None))
    return out


def brute_force_breakouts(closes: list[tuple[date, float]], gap: int) -> list[AthBreakout]:
    out = []
    for i in range(1, len(closes)):
        day, close = closes[i]
        best = max(c for _, c in closes[:i])
        best_day = max(d for d, c in closes[:i] if c == best)
        if close > best and (day - best_day).days >= gap:
            out.append(AthBreakout(day, close, best, best_day, close / best - 1,
                                   (day - best_day).days))
    return out


# ---------------------------------------------------------------- AllTimeHigh


def test_first_close_initialises_only() -> None:
    ath = AllTimeHigh()
    assert ath.update(D("2024-01-02"), 100.0) is None
    assert (ath.ath, ath.ath_day, ath.last_close, ath.last_day) == (100.0, D("2024-01-02"),
                                                                    100.0, D("2024-01-02"))
    assert ath.ytd_change is None and ath.prev_year_close is None


def test_breakout_needs_an_old_record() -> None:
    ath = AllTimeHigh(breakout_min_gap_days=30)
    ath.update(D("2024-01-02"), 100.0)
    assert ath.update(D("2024-01-03"), 101.0) is None  # a new record, 1 day after the last
    assert ath.update(D("2024-01-20"), 102.0) is None  # still within 30 days of the last
    assert ath.update(D("2024-02-01"), 90.0) is None
    assert ath.update(D("2024-02-19"), 102.0) is None  # equal is not above
    assert ath.update(D("2024-02-20"), 102.5) == AthBreakout(
        day=D("2024-02-20"), close=102.5, previous_ath=102.0, previous_ath_day=D("2024-01-20"),
        pct_above_previous=102.5 / 102.0 - 1, days_since_previous_ath=31,
    )
    assert (ath.ath, ath.ath_day) == (102.5, D("2024-02-20"))
    assert ath.update(D("2024-02-21"), 103.0) is None  # the rally goes on silently
    # exactly the gap counts
    assert ath.update(D("2024-03-22"), 103.1) is not None
    zero_gap = AllTimeHigh(0)
    zero_gap.update(D("2024-01-02"), 1.0)
    assert zero_gap.update(D("2024-01-03"), 2.0) is not None


def test_year_to_date() -> None:
    ath = AllTimeHigh()
    ath.update(D("2023-12-28"), 100.0)
    ath.update(D("2023-12-29"), 110.0)
    assert ath.ytd_change is None  # first year seen
    ath.update(D("2024-01-02"), 121.0)
    assert ath.prev_year_close == 110.0
    assert ath.ytd_change == pytest.approx(0.1, rel=1e-12)
    ath.update(D("2024-06-03"), 99.0)
    assert ath.ytd_change == pytest.approx(-0.1, rel=1e-12)
    ath.update(D("2024-12-31"), 132.0)
    ath.update(D("2025-01-02"), 66.0)
    assert ath.prev_year_close == 132.0 and ath.ytd_change == pytest.approx(-0.5)
    ath.update(D("2027-01-04"), 70.0)  # no close at all in 2026
    assert ath.prev_year_close is None and ath.ytd_change is None


def test_ath_rejects_old_days_and_bad_closes_without_changing_state() -> None:
    ath = AllTimeHigh()
    ath.update(D("2024-01-02"), 100.0)
    ath.update(D("2024-01-03"), 99.0)
    before = ath.to_state()
    with pytest.raises(EventOrderError, match="2024-01-03 is a duplicate of .*2024-01-03"):
        ath.update(D("2024-01-03"), 150.0)
    with pytest.raises(EventOrderError, match="2023-12-29 is older than .*2024-01-03"):
        ath.update(D("2023-12-29"), 150.0)
    for bad in (float("nan"), float("inf"), 0.0, -5.0):
        with pytest.raises(ValueError):
            ath.update(D("2024-01-04"), bad)
    assert ath.to_state() == before


def test_ath_on_real_rut_closes() -> None:
    rut = sorted(read_closes("russell2000_rut.csv").items())
    ath = AllTimeHigh(30)
    breakouts = [b for day, close in rut if (b := ath.update(day, close)) is not None]
    assert breakouts == brute_force_breakouts(rut, 30)
    assert len(breakouts) == 23
    # the first record close since the 2018 high, and the break above the November 2021 high
    by_day = {b.day: b for b in breakouts}
    assert (by_day[D("2020-11-13")].previous_ath_day,
            by_day[D("2020-11-13")].days_since_previous_ath) == (D("2018-08-31"), 805)
    b = by_day[D("2025-09-18")]
    assert (b.previous_ath, b.previous_ath_day, b.days_since_previous_ath) == (
        2442.739990234375, D("2021-11-08"), 1410)
    assert b.pct_above_previous == pytest.approx(0.010218017896822973, rel=1e-12)
    # 2021-03-11 is exactly 30 days after the 2021-02-09 record
    assert by_day[D("2021-03-11")].days_since_previous_ath == 30
    assert (ath.ath, ath.ath_day) == (2718.77001953125, D("2026-01-22"))
    assert (ath.last_day, ath.prev_year_close) == (D("2026-02-23"), 2481.909912109375)
    assert ath.ytd_change == pytest.approx(2620.988525390625 / 2481.909912109375 - 1, rel=1e-15)


def test_ath_state_round_trip_continues_identically() -> None:
    rut = sorted(read_closes("russell2000_rut.csv").items())
    for cut in (0, 1, 500, 2000, len(rut) - 1):
        original = AllTimeHigh(45)
        for day, close in rut[:cut]:
            original.update(day, close)
        restored = AllTimeHigh.from_state(json.loads(json.dumps(original.to_state())))
        assert restored.to_state() == original.to_state()
        for day, close in rut[cut:]:
            assert restored.update(day, close) == original.update(day, close)
            assert restored.ytd_change == original.ytd_change
        assert restored.to_state() == original.to_state()


# ---------------------------------------------------------------- OutperformanceStreak


def run_streak(
    st: OutperformanceStreak, sessions: list[tuple[date, float, float]]
) -> list[StreakUpdate]:
    return [st.update(day, a, b) for day, a, b in sessions]


def as_tuples(updates: list[StreakUpdate]) -> list[tuple[int, bool, date | None, int | None]]:
    return [(u.streak, u.extended, u.longest_since, u.longest_since_length) for u in updates]


def test_streak_small_example() -> None:
    start = D("2024-01-01")
    # W = index beat benchmark, L = it did not (a tie is not a beat)
    pattern = "WWWLWLWWWWLWWWLW"
    sessions = [(start + timedelta(i), 0.01 if c == "W" else 0.0, 0.0)
                for i, c in enumerate(pattern)]
    sessions[3] = (sessions[3][0], 0.002, 0.002)  # a tie
    updates = run_streak(OutperformanceStreak(), sessions)
    assert [u.streak for u in updates] == [1, 2, 3, 0, 1, 0, 1, 2, 3, 4, 0, 1, 2, 3, 0, 1]
    day = [s[0] for s in sessions]
    assert updates[4].longest_since == day[2] and updates[4].longest_since_length == 3
    assert updates[8].longest_since == day[2]  # 3 again: the 3 ending on day 2
    assert updates[9].longest_since is None  # 4: the longest on record
    assert updates[13].longest_since == day[9]  # 3: the 4-day streak is the most recent >= 3
    assert updates[13].longest_since_length == 4
    assert updates[15].longest_since == day[13] and updates[15].longest_since_length == 3
    assert updates[3].longest_since is None and not updates[3].extended
    assert updates[0].relative_return == pytest.approx(0.01)


@pytest.mark.parametrize("seed", range(30))
def test_streak_matches_brute_force_on_random_sequences(seed: int) -> None:
    rng = random.Random(seed)
    p = rng.choice([0.3, 0.5, 0.7, 0.9])
    start = D("2000-01-03")
    sessions = []
    for i in range(rng.randint(1, 1500)):
        b = rng.gauss(0, 0.01)
        u = rng.random()
        a = b if u > 0.97 else (b + abs(rng.gauss(0, 0.01)) if u < p else b - 0.001)
        sessions.append((start + timedelta(i), a, b))
    st = OutperformanceStreak()
    updates = run_streak(st, sessions)
    assert as_tuples(updates) == brute_force_streaks(sessions)
    # the stack holds strictly decreasing lengths, a few entries only
    lengths = [n for n, _ in st.records]
    assert lengths == sorted(set(lengths), reverse=True)


def test_streak_on_real_rut_vs_spx() -> None:
    sessions = rut_spx_returns()
    assert len(sessions) == 4058
    st = OutperformanceStreak()
    updates = run_streak(st, sessions)
    assert as_tuples(updates) == brute_force_streaks(sessions)
    by_day = {u.day: u for u in updates}
    # January 2026: 14 sessions in a row, the longest in the data (which starts in 2010)
    assert [by_day[d].streak for d in (D("2026-01-14"), D("2026-01-15"), D("2026-01-22"))] == [
        9, 10, 14]
    assert (by_day[D("2026-01-14")].longest_since,
            by_day[D("2026-01-14")].longest_since_length) == (D("2017-09-01"), 9)
    assert by_day[D("2026-01-13")].longest_since == D("2019-01-11")
    assert by_day[D("2026-01-15")].longest_since is None
    assert by_day[D("2026-01-23")].streak == 0 and not by_day[D("2026-01-23")].extended
    assert max(u.streak for u in updates) == 14
    assert st.records == [(14, D("2026-01-22")), (2, D("2026-02-09")), (1, D("2026-02-19"))]


def test_streak_state_round_trip_and_order_errors() -> None:
    sessions = rut_spx_returns()
    for cut in (0, 1, 1000, 4000):
        original = OutperformanceStreak()
        run_streak(original, sessions[:cut])
        restored = OutperformanceStreak.from_state(json.loads(json.dumps(original.to_state())))
        assert restored.to_state() == original.to_state()
        assert run_streak(restored, sessions[cut:]) == run_streak(original, sessions[cut:])
    st = OutperformanceStreak()
    st.update(D("2024-01-02"), 0.01, 0.0)
    before = st.to_state()
    with pytest.raises(EventOrderError, match="2024-01-02 is a duplicate"):
        st.update(D("2024-01-02"), 0.01, 0.0)
    with pytest.raises(EventOrderError, match="older than"):
        st.update(D("2024-01-01"), 0.01, 0.0)
    with pytest.raises(ValueError):
        st.update(D("2024-01-03"), float("nan"), 0.0)
    assert st.to_state() == before
