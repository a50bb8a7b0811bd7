"""IndexRegime on a hand-made RUT/SPX sequence: breakouts, streaks, snapshots, arrival order."""

from __future__ import annotations

import random
from calendar import timegm
from datetime import date
from typing import Any

import pytest

from streams.index_regime import IndexRegime
from streams.signals import signal_id

D = date.fromisoformat
DAYS = [D(d) for d in ("2023-12-18", "2023-12-19", "2023-12-20", "2023-12-21", "2023-12-22",
                       "2023-12-25", "2023-12-26", "2023-12-27", "2023-12-28", "2023-12-29",
                       "2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05",
                       "2024-01-08")]
RUT = [100, 105, 101, 102, 103, 104, 104.5, 106, 105, 104, 107, 107.5, 103, 110, 108, 111]
#: whether RUT beats SPX in each session from the second day on (SPX's return is RUT's -/+ 1 %)
BEATS = "WWLWWWLWWWWLWWL"
SPX = [4000.0]
for i, won in enumerate(BEATS, 1):
    SPX.append(SPX[-1] * (RUT[i] / RUT[i - 1] + (-0.01 if won == "W" else 0.01)))


def t_ms(day: date) -> int:
    """16:00 New York in winter."""
    return timegm((day.year, day.month, day.day, 21, 0, 0)) * 1000


def iso(day: date) -> str:
    return f"{day.isoformat()}T21:00:00.000Z"


RUT_EVENTS = [("anchor", t_ms(d), c) for d, c in zip(DAYS, RUT, strict=True)]
SPX_EVENTS = [("other", t_ms(d), c) for d, c in zip(DAYS, SPX, strict=True)]


def run(events: list[tuple[str, int, float]], streak_min_days: int = 3,
        ath_min_history_days: int = 10) -> dict[str, list[Any]]:
    regime = IndexRegime("RUT", "SPX", breakout_min_gap_days=3, streak_min_days=streak_min_days,
                         ath_min_history_days=ath_min_history_days)
    out: dict[str, list[Any]] = {"index": [], "streak": [], "signals": []}
    for role, t, close in events:
        result = regime.add(role, t, close)
        out["index"] += [result.index_snapshot] if result.index_snapshot else []
        out["streak"] += [result.streak_snapshot] if result.streak_snapshot else []
        out["signals"] += [{k: v for k, v in s.asdict().items() if k != "emitted_at"}
                           for s in result.signals]
    out["signals"].sort(key=lambda s: (s["event_time"], s["type"]))
    out["state"] = [regime.to_state()]
    return out


def in_order() -> list[tuple[str, int, float]]:
    return [e for pair in zip(RUT_EVENTS, SPX_EVENTS, strict=True) for e in pair]


def days_of(signals: list[dict[str, Any]], type_: str) -> list[str]:
    return [s["event_time"][:10] for s in signals if s["type"] == type_]


@pytest.mark.parametrize(("history_days", "expected"), [
    (0, ["2023-12-27", "2024-01-01", "2024-01-08"]),
    (9, ["2023-12-27", "2024-01-01", "2024-01-08"]),
    (10, ["2024-01-01", "2024-01-08"]),
    (21, ["2024-01-08"]),
    (22, []),
])
def test_breakouts_need_history_and_a_gap(history_days: int, expected: list[str]) -> None:
    # 12-19 (gap 1 day), 01-02 (1 day) and 01-04 (2 days) are records within the 3-day gap
    for events in (RUT_EVENTS, in_order()):
        assert days_of(run(events, ath_min_history_days=history_days)["signals"],
                       "index_ath") == expected


def test_breakout_signal_content() -> None:
    [signal] = [s for s in run(RUT_EVENTS)["signals"] if s["event_time"] == iso(DAYS[10])]
    assert signal == {
        "id": signal_id("index_ath", "RUT", "2024-01-01T21:00:00.000Z"),
        "type": "index_ath", "subject": "RUT", "event_time": "2024-01-01T21:00:00.000Z",
        "severity": "notice", "value": 107.0,
        "message": "RUT closed at an all-time high of 107.00 on 2024-01-01, 0.9% above its "
                   "previous record of 106.00 set 2023-12-27 (5 days earlier).",
        "evidence": {
            "close": 107, "previous_ath": 106, "previous_ath_day": "2023-12-27",
            "pct_above_previous": pytest.approx(107 / 106 - 1), "days_since_previous_ath": 5,
            "breakout_min_gap_days": 3, "ytd_change": pytest.approx(107 / 104 - 1),
            "history_start": "2023-12-18",
        },
        "schema_version": 1,
    }


def test_index_snapshots() -> None:
    snapshots = run(RUT_EVENTS)["index"]
    assert len(snapshots) == len(DAYS)
    assert snapshots[8] == {"symbol": "RUT", "day": "2023-12-28", "close": 105, "ath": 106,
                            "ath_day": "2023-12-27", "pct_from_ath": pytest.approx(105 / 106 - 1),
                            "ytd_change": None}
    assert snapshots[12] == {"symbol": "RUT", "day": "2024-01-03", "close": 103, "ath": 107.5,
                             "ath_day": "2024-01-02",
                             "pct_from_ath": pytest.approx(103 / 107.5 - 1),
                             "ytd_change": pytest.approx(103 / 104 - 1)}


@pytest.mark.parametrize(("min_days", "expected"), [
    (1, ["2023-12-19", "2023-12-20", "2023-12-22", "2023-12-25", "2023-12-26", "2023-12-28",
         "2023-12-29", "2024-01-01", "2024-01-02", "2024-01-04", "2024-01-05"]),
    (3, ["2023-12-26", "2024-01-01", "2024-01-02"]),
    (4, ["2024-01-02"]),
    (5, []),
])
def test_streak_signals_from_min_days_on_every_extension(min_days: int,
                                                         expected: list[str]) -> None:
    assert days_of(run(in_order(), streak_min_days=min_days)["signals"],
                   "outperformance_streak") == expected


def test_streak_signals_and_snapshots_content() -> None:
    out = run(in_order())
    streaks = [s for s in out["signals"] if s["type"] == "outperformance_streak"]
    assert [(s["value"], s["evidence"]["longest_since"], s["evidence"]["longest_since_length"])
            for s in streaks] == [(3, None, None), (3, "2023-12-26", 3), (4, None, None)]
    first, second = streaks[0], streaks[1]
    assert first["message"] == ("RUT has beaten SPX for 3 trading days in a row (2023-12-26), "
                                "the longest since the data begins (2023-12-18).")
    assert second["message"] == ("RUT has beaten SPX for 3 trading days in a row (2024-01-01), "
                                 "the longest streak since 2023-12-26.")
    assert second["id"] == signal_id("outperformance_streak", "RUT/SPX", iso(DAYS[10]))
    assert (second["subject"], second["severity"]) == ("RUT/SPX", "notice")
    returns = {"index_return": pytest.approx(107 / 104 - 1),
               "benchmark_return": pytest.approx(107 / 104 - 1.01),
               "relative_return": pytest.approx(0.01)}
    assert second["evidence"] == {"streak": 3, "min_days": 3, "longest_since": "2023-12-26",
                                  "longest_since_length": 3, **returns}
    assert len(out["streak"]) == len(BEATS)
    assert [s["streak"] for s in out["streak"]] == [1, 2, 0, 1, 2, 3, 0, 1, 2, 3, 4, 0, 1, 2, 0]
    assert out["streak"][9] == {"subject": "RUT/SPX", "day": "2024-01-01", "streak": 3,
                                "longest_since": "2023-12-26", **returns,
                                "relative_strength_20d": None, "risk_on": False}


@pytest.mark.parametrize("seed", range(8))
def test_arrival_order_of_index_and_benchmark_does_not_matter(seed: int) -> None:
    roles = ["anchor"] * len(DAYS) + ["other"] * len(DAYS)
    random.Random(seed).shuffle(roles)
    ia, io = iter(RUT_EVENTS), iter(SPX_EVENTS)
    shuffled = [next(ia) if role == "anchor" else next(io) for role in roles]
    assert run(shuffled) == run(in_order())


def test_risk_on_rotation_fires_at_highs_when_outperforming_then_cools_down() -> None:
    """Index 1% under its record and up 4% on the benchmark over 3 sessions: one signal."""
    from streams.index_regime import RiskOnParams

    regime = IndexRegime("RUT", "SPX", 30, 5, ath_min_history_days=0,
                         risk_on=RiskOnParams(0.03, 3, 10.0))
    fired = []
    closes = [(100.0, 100.0), (110.0, 100.0), (100.0, 100.0), (101.0, 100.0), (103.0, 100.0),
              (104.0, 100.0), (105.0, 100.0), (106.0, 100.0)]
    for i, (index, benchmark) in enumerate(closes):
        t = t_ms(date(2024, 3, 4)) + i * 86_400_000
        regime.add("anchor", t, index)
        result = regime.add("other", t, benchmark)
        fired += [s for s in result.signals if s.type == "risk_on_rotation"]
    # at i=5 (104 vs record 110: -5.5%) not at highs; i=6: 105 -> -4.5%; none within 3%
    assert fired == []
    for i, close in enumerate((107.0, 108.0, 100.0, 108.5, 109.0), start=len(closes)):
        t = t_ms(date(2024, 3, 4)) + i * 86_400_000
        regime.add("anchor", t, close)
        fired += [s for s in regime.add("other", t, 100.0).signals
                  if s.type == "risk_on_rotation"]
    # 107 is -2.7% from 110 and up vs 3 sessions ago (104): fires once; 108 stays risk-on;
    # 100 leaves; 108.5 re-enters within the 10-day cooldown: no second signal
    assert len(fired) == 1
    signal = fired[0]
    assert signal.subject == "RUT/SPX" and signal.severity == "warning"
    assert signal.evidence["pct_from_ath"] == pytest.approx(107 / 110 - 1)
    assert signal.value == pytest.approx(1.07 / 1.04 - 1)


def test_intraday_quotes_show_the_session_and_leave_closes_alone() -> None:
    regime = IndexRegime("RUT", "SPX", 30, 3, ath_min_history_days=0)
    for role, t, close in sorted(RUT_EVENTS + SPX_EVENTS, key=lambda e: (e[1], e[0])):
        regime.add(role, t, close)
    before = regime.to_state()
    noon = t_ms(D("2024-01-09")) - 5 * 3600 * 1000  # 11:00 New York
    session = regime.intraday("RUT", noon, 112.0)
    assert session == {"symbol": "RUT", "session_day": "2024-01-09",
                       "event_time": "2024-01-09T16:00:00.000Z", "price": 112.0,
                       "change_from_close": pytest.approx(112 / 111 - 1),
                       "pct_from_ath": pytest.approx(112 / 111 - 1), "above_ath": True}
    assert regime.to_state() == before  # no close, no record, no streak moved
    assert regime.intraday("SPX", noon, 4000.0)["pct_from_ath"] is None


def test_only_quotes_stamped_at_the_1600_close_are_closes() -> None:
    from streams.routing import is_session_close

    assert is_session_close(t_ms(D("2024-01-09")))  # 21:00 UTC in winter = 16:00 New York
    assert not is_session_close(t_ms(D("2024-01-09")) + 60_000)
    assert not is_session_close(t_ms(D("2024-01-09")) - 1)
    summer = timegm((2024, 7, 9, 20, 0, 0)) * 1000  # 16:00 EDT
    assert is_session_close(summer)
