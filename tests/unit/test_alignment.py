"""AsOfAligner: calendars that do not overlap, ordering errors, interleaving independence."""

from __future__ import annotations

import bisect
import json
import random
from datetime import UTC, date, datetime, timedelta

import pytest

from foundation.errors import EventOrderError
from streams.alignment import AlignedPoint, AsOfAligner

HOUR = 3600 * 1000
DAY = 24 * HOUR


def ms(day: date, hour: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp() * 1000)


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(n) for n in range((end - start).days + 1)]


def crypto_series(start: date, end: date) -> list[tuple[int, float]]:
    """A 7-day calendar stamped 00:00 UTC; the value encodes the day (100 + day of month)."""
    return [(ms(d), 100.0 + d.day) for d in days(start, end)]


def index_series(
    start: date, end: date, holidays: tuple[date, ...] = ()
) -> list[tuple[int, float]]:
    """A 5-day calendar stamped 21:00 UTC (after the New York close); value 1000 + day."""
    return [(ms(d, 21), 1000.0 + d.day) for d in days(start, end)
            if d.weekday() < 5 and d not in holidays]


def reference(anchors: list[tuple[int, float]], others: list[tuple[int, float]],
              max_staleness_ms: int) -> tuple[list[AlignedPoint], int]:
    """Brute force: final anchors are those at or before the other series' last time."""
    if not others:
        return [], 0
    times = [t for t, _ in others]
    out, skipped = [], 0
    for t, v in anchors:
        if t > times[-1]:
            continue
        i = bisect.bisect_right(times, t) - 1
        if i < 0 or t - times[i] > max_staleness_ms:
            skipped += 1
        else:
            out.append(AlignedPoint(t, v, others[i][1], times[i]))
    return out, skipped


def feed(aligner: AsOfAligner, events: list[tuple[str, int, float]]) -> list[AlignedPoint]:
    out: list[AlignedPoint] = []
    for role, t, v in events:
        if role == "anchor":
            out.extend(aligner.add_anchor(t, v))
        else:
            out.extend(aligner.add_other(t, v))
    return out


def interleave(rng: random.Random, anchors: list[tuple[int, float]],
               others: list[tuple[int, float]]) -> list[tuple[str, int, float]]:
    """A random merge of the two sequences, each kept in its own order."""
    roles = ["anchor"] * len(anchors) + ["other"] * len(others)
    rng.shuffle(roles)
    ia, io = iter(anchors), iter(others)
    return [(role, *(next(ia) if role == "anchor" else next(io))) for role in roles]


def test_weekday_index_against_daily_crypto() -> None:
    # Mon 2024-03-04 .. Sun 2024-03-17: the weekend crypto days are never paired; Monday's
    # index close pairs with Monday 00:00, so its return spans the whole weekend
    anchors = index_series(date(2024, 3, 4), date(2024, 3, 17))
    others = crypto_series(date(2024, 3, 4), date(2024, 3, 18))
    aligner = AsOfAligner(max_staleness_ms=DAY)
    out = feed(aligner, [("other", t, v) for t, v in others]
               + [("anchor", t, v) for t, v in anchors])
    assert [(p.t_ms - p.other_t_ms, p.anchor, p.other) for p in out] == [
        (21 * HOUR, 1000.0 + d, 100.0 + d) for d in (4, 5, 6, 7, 8, 11, 12, 13, 14, 15)
    ]
    assert aligner.skipped == 0 and aligner.pending == []
    # the history kept is only what a later anchor can use
    assert aligner.history_size == 4  # Fri 15 00:00 .. Mon 18 00:00


def test_holiday_is_simply_absent_and_weekend_folds_into_monday() -> None:
    good_friday = date(2024, 3, 29)
    anchors = index_series(date(2024, 3, 25), date(2024, 4, 2), holidays=(good_friday,))
    others = crypto_series(date(2024, 3, 25), date(2024, 4, 3))
    aligner = AsOfAligner(max_staleness_ms=DAY)
    out = feed(aligner, [("anchor", t, v) for t, v in anchors]
               + [("other", t, v) for t, v in others])
    assert [(p.anchor, p.other) for p in out] == [
        (1025.0, 125.0), (1026.0, 126.0), (1027.0, 127.0), (1028.0, 128.0),
        (1001.0, 101.0), (1002.0, 102.0),
    ]
    assert [p.other_t_ms for p in out][4] == ms(date(2024, 4, 1))


def test_anchor_released_by_other_reaching_its_time_exactly_and_after() -> None:
    aligner = AsOfAligner(max_staleness_ms=10)
    assert aligner.add_other(100, 1.0) == []
    assert aligner.add_anchor(105, 7.0) == []  # other may still send something <= 105
    assert aligner.pending == [(105, 7.0)]
    assert aligner.add_anchor(110, 8.0) == []
    assert aligner.add_other(105, 2.0) == [AlignedPoint(105, 7.0, 2.0, 105)]
    assert aligner.add_other(200, 3.0) == [AlignedPoint(110, 8.0, 2.0, 105)]
    assert aligner.add_anchor(150, 9.0) == []  # final at once, but 45 ms stale: skipped
    assert aligner.skipped == 1
    assert aligner.add_anchor(200, 10.0) == [AlignedPoint(200, 10.0, 3.0, 200)]


def test_other_series_stops_then_resumes_stale() -> None:
    anchors = index_series(date(2024, 5, 6), date(2024, 5, 17))  # two weeks, Mon-Fri
    others = crypto_series(date(2024, 5, 6), date(2024, 5, 8))  # crypto feed stops Wed 00:00
    aligner = AsOfAligner(max_staleness_ms=DAY, max_pending=100)
    out = feed(aligner, [("other", t, v) for t, v in others]
               + [("anchor", t, v) for t, v in anchors])
    assert [p.anchor for p in out] == [1006.0, 1007.0]  # Mon, Tue: the feed had passed them
    # Wednesday onwards waits: the feed could still deliver a value before 21:00
    assert [t for t, _ in aligner.pending] == [t for t, _ in anchors[2:]]
    assert aligner.skipped == 0
    state = json.loads(json.dumps(aligner.to_state()))
    assert len(state["pending_t"]) == 8 and len(state["other_t"]) == 1
    # it resumes on Thursday of the second week: Wed 8 pairs with Wed 00:00 (21 h), Thu 9 ..
    # Wed 15 have only Wed 8 00:00 (>= 45 h old) and are skipped, Thu 16 and Fri 17 pair again
    out = feed(aligner, [("other", t, v) for t, v in crypto_series(date(2024, 5, 16),
                                                                   date(2024, 5, 18))])
    assert [(p.anchor, p.other) for p in out] == [(1008.0, 108.0), (1016.0, 116.0),
                                                  (1017.0, 117.0)]
    assert aligner.skipped == 5 and aligner.pending == []
    # with a 3-day staleness limit Thursday 9 and Friday 10 would have paired with Wed 8
    loose = AsOfAligner.from_state({**state, "max_staleness_ms": 3 * DAY})
    out = feed(loose, [("other", t, v) for t, v in crypto_series(date(2024, 5, 16),
                                                                 date(2024, 5, 18))])
    assert [(p.anchor, p.other) for p in out] == [(1008.0, 108.0), (1009.0, 108.0),
                                                  (1010.0, 108.0), (1016.0, 116.0),
                                                  (1017.0, 117.0)]


def test_anchor_before_any_other_is_skipped() -> None:
    aligner = AsOfAligner(max_staleness_ms=DAY)
    assert aligner.add_anchor(ms(date(2024, 1, 2), 21), 1.0) == []
    assert aligner.add_other(ms(date(2024, 1, 3)), 2.0) == []
    assert aligner.skipped == 1 and aligner.pending == []


def test_out_of_order_and_duplicates_raise_and_leave_state() -> None:
    aligner = AsOfAligner(max_staleness_ms=DAY)
    aligner.add_other(1000, 1.0)
    aligner.add_anchor(2000, 5.0)
    before = aligner.to_state()
    with pytest.raises(EventOrderError, match=r"other event at t_ms=1000 .*t_ms=1000"):
        aligner.add_other(1000, 1.5)
    with pytest.raises(EventOrderError, match=r"other event at t_ms=999 .*t_ms=1000"):
        aligner.add_other(999, 1.5)
    with pytest.raises(EventOrderError, match=r"anchor event at t_ms=1500 .*t_ms=2000"):
        aligner.add_anchor(1500, 5.0)
    with pytest.raises(EventOrderError, match=r"anchor event at t_ms=2000"):
        aligner.add_anchor(2000, 5.0)
    with pytest.raises(ValueError):
        aligner.add_other(3000, float("nan"))
    with pytest.raises(ValueError):
        aligner.add_anchor(2.5e3, 1.0)  # type: ignore[arg-type]
    assert aligner.to_state() == before
    assert aligner.add_other(2000, 1.5) == [AlignedPoint(2000, 5.0, 1.5, 2000)]


def test_max_pending_drops_oldest() -> None:
    aligner = AsOfAligner(max_staleness_ms=100, max_pending=3)
    aligner.add_other(0, 1.0)
    for t in (10, 20, 30, 40, 50):
        assert aligner.add_anchor(t, float(t)) == []
    assert aligner.dropped == 2
    assert [t for t, _ in aligner.pending] == [30, 40, 50]
    assert [p.t_ms for p in aligner.add_other(60, 2.0)] == [30, 40, 50]


def test_history_before_first_anchor_is_capped() -> None:
    aligner = AsOfAligner(max_staleness_ms=DAY, max_history=5)
    for t in range(10):
        aligner.add_other(t, float(t))
    assert aligner.history_size == 5 and aligner.history_dropped == 5
    assert aligner.add_anchor(7, 0.5) == [AlignedPoint(7, 0.5, 7.0, 7)]
    assert aligner.history_size == 3  # 7, 8, 9


def test_history_stays_small_on_a_long_stream() -> None:
    anchors = index_series(date(2020, 1, 1), date(2023, 12, 31))
    others = crypto_series(date(2020, 1, 1), date(2024, 1, 1))
    rng = random.Random(0)
    aligner = AsOfAligner(max_staleness_ms=4 * DAY)
    largest = 0
    out: list[AlignedPoint] = []
    for role, t, v in interleave(rng, anchors, others):
        out.extend(aligner.add_anchor(t, v) if role == "anchor" else aligner.add_other(t, v))
        largest = max(largest, aligner.history_size)
    assert out == reference(anchors, others, 4 * DAY)[0]
    assert len(out) == len(anchors) == 1043
    # bounded by how far the random merge lets one series run ahead, not by the stream length
    assert largest < 200


@pytest.mark.parametrize("seed", range(40))
def test_any_interleaving_gives_the_same_output(seed: int) -> None:
    rng = random.Random(seed)
    # small time range so equal times across the series (and staleness edges) happen often
    anchor_times = sorted(rng.sample(range(0, 400), rng.randint(0, 60)))
    other_times = sorted(rng.sample(range(0, 400), rng.randint(0, 80)))
    anchors = [(t, rng.uniform(1, 2)) for t in anchor_times]
    others = [(t, rng.uniform(1, 2)) for t in other_times]
    staleness = rng.choice([0, 3, 10, 50])
    expected, expected_skipped = reference(anchors, others, staleness)
    last_other = other_times[-1] if other_times else None
    expected_pending = [a for a in anchors if last_other is None or a[0] > last_other]
    orders = [
        [("anchor", *a) for a in anchors] + [("other", *o) for o in others],
        [("other", *o) for o in others] + [("anchor", *a) for a in anchors],
    ] + [interleave(rng, anchors, others) for _ in range(50)]
    for events in orders:
        aligner = AsOfAligner(staleness, max_pending=1000)
        assert feed(aligner, events) == expected
        assert aligner.skipped == expected_skipped
        assert aligner.pending == expected_pending
        assert aligner.dropped == 0
    # a restart from saved state anywhere in the stream continues identically
    events = interleave(rng, anchors, others)
    for cut in range(0, len(events) + 1, 7):
        aligner = AsOfAligner(staleness, max_pending=1000)
        out = feed(aligner, events[:cut])
        restored = AsOfAligner.from_state(json.loads(json.dumps(aligner.to_state())))
        assert out + feed(restored, events[cut:]) == expected
        assert restored.skipped == expected_skipped


def test_state_round_trip_is_json_and_complete() -> None:
    aligner = AsOfAligner(max_staleness_ms=DAY, max_pending=50, max_history=70)
    feed(aligner, [("other", 10, 1.0), ("anchor", 20, 2.0), ("other", 30, 3.0),
                   ("anchor", 40, 4.0), ("anchor", 5 * DAY, 5.0)])
    state = aligner.to_state()
    assert json.loads(json.dumps(state)) == state
    restored = AsOfAligner.from_state(json.loads(json.dumps(state)))
    assert restored.to_state() == state
    assert (restored.max_pending, restored.max_history) == (50, 70)


def test_a_state_written_before_the_columns_still_loads() -> None:
    aligner = AsOfAligner(max_staleness_ms=100)
    feed(aligner, [("other", 10, 1.0), ("anchor", 20, 2.0), ("anchor", 200, 3.0)])
    state = aligner.to_state()
    old = {k: v for k, v in state.items() if not k.endswith(("_t", "_v"))
           or k in ("last_anchor_t", "last_other_t")}
    old["other"] = [list(p) for p in zip(state["other_t"], state["other_v"], strict=True)]
    old["pending"] = [list(p) for p in zip(state["pending_t"], state["pending_v"], strict=True)]
    assert AsOfAligner.from_state(old).to_state() == state
