"""PairCorrelation on an index (weekday closes) against a crypto series (daily closes)."""

from __future__ import annotations

import heapq
import json
import math
import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from foundation.errors import EventOrderError
from streams.correlation import (
    CorrelationParams,
    CorrelationUpdate,
    PairCorrelation,
    correlation_signals,
)
from streams.signals import signal_id

HOUR = 3_600_000
DAY = 24 * HOUR
PARAMS = CorrelationParams(windows=(10, 30), lookahead_ms=5 * HOUR, max_staleness_ms=96 * HOUR,
                           low=0.1, high=0.5, hysteresis=0.05)
Event = tuple[str, int, float]


def ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def make_series(seed: int = 0) -> tuple[list[Event], list[Event]]:
    """Weekday index closes at 16:00 New York (21:00, then 20:00 UTC after 10 March) and crypto
    closes at 23:59:59.999 UTC every day. The crypto weekday returns follow the index's in
    alternate blocks of 40 sessions and are noise in between; weekend values are junk that the
    alignment must never use."""
    rng = np.random.default_rng(seed)
    days = [date(2024, 1, 2) + timedelta(n) for n in range(220)]
    sessions = [d for d in days if d.weekday() < 5]
    x = rng.normal(0, 0.01, len(sessions))
    coupled = np.array([(i // 40) % 2 == 0 for i in range(len(sessions))])
    y = np.where(coupled, 2 * x, 0) + rng.normal(0, 0.01, len(sessions))
    index = 2000 * np.exp(np.cumsum(x))
    crypto = dict(zip(sessions, 40000 * np.exp(np.cumsum(y)), strict=True))
    anchors = [("anchor", ms(datetime.combine(d, time(16), ZoneInfo("America/New_York"))),
                float(v)) for d, v in zip(sessions, index, strict=True)]
    others = [("other", ms(datetime.combine(d, time(23, 59, 59, 999000), UTC)),
               float(crypto.get(d, rng.uniform(1, 10)))) for d in days + [days[-1] + timedelta(1)]]
    return anchors, others


ANCHORS, OTHERS = make_series()


def feed(events: list[Event], pc: PairCorrelation | None = None,
         round_trip: bool = False) -> list[CorrelationUpdate]:
    pc = pc or PairCorrelation("RUT~BTC", PARAMS)
    updates = []
    for role, t, v in events:
        updates.extend(pc.add(role, t, v))
        if round_trip:
            state = json.loads(json.dumps(pc.to_state()))
            pc = PairCorrelation.from_state("RUT~BTC", PARAMS, state)
    return updates


def interleave(seed: int) -> list[Event]:
    roles = ["anchor"] * len(ANCHORS) + ["other"] * len(OTHERS)
    random.Random(seed).shuffle(roles)
    ia, io = iter(ANCHORS), iter(OTHERS)
    return [next(ia) if role == "anchor" else next(io) for role in roles]


BASELINE = feed(list(heapq.merge(ANCHORS, OTHERS, key=lambda e: e[1])))


def reference() -> list[tuple[int, dict[int, float | None], list[tuple[int, str, str]]]]:
    """(t_ms, correlation per window, regime changes) per index session after the first, from
    numpy on the log returns of (index close on day D, crypto close on day D)."""
    others = {datetime.fromtimestamp(t / 1000, UTC).date(): v for _, t, v in OTHERS}
    days = [datetime.fromtimestamp(t / 1000, UTC).date() for _, t, _ in ANCHORS]
    x = np.diff(np.log([v for _, _, v in ANCHORS]))
    y = np.diff(np.log([others[d] for d in days]))
    regimes: dict[int, str | None] = {w: None for w in PARAMS.windows}
    out = []
    for k in range(1, len(x) + 1):
        corr: dict[int, float | None] = {}
        changes = []
        for w in PARAMS.windows:
            r = corr[w] = float(np.corrcoef(x[k - w:k], y[k - w:k])[0, 1]) if k >= w else None
            if r is None:
                continue
            old, lo, hi, h = regimes[w], PARAMS.low, PARAMS.high, PARAMS.hysteresis
            new = ("coupled" if r >= hi or (old == "coupled" and r >= hi - h) else
                   "decoupled" if r <= lo or (old == "decoupled" and r <= lo + h) else "neutral")
            if old is not None and new != old:
                changes.append((w, old, new))
            regimes[w] = new
        out.append((ANCHORS[k][1], corr, changes))
    return out


def test_correlations_equal_numpy_on_same_day_closes() -> None:
    expected = reference()
    assert len(BASELINE) == len(expected) == len(ANCHORS) - 1
    for update, (t_ms, corr, changes) in zip(BASELINE, expected, strict=True):
        assert update.t_ms == t_ms
        for w, r in corr.items():
            assert update.correlations[w] == (None if r is None else pytest.approx(r, rel=1e-9))
        assert update.changes == changes
    assert sum(len(u.changes) for u in BASELINE) >= 6
    # stamps: 16:00 New York is 21:00 UTC in January and 20:00 UTC after the DST switch
    assert (BASELINE[0].event_time, BASELINE[-1].event_time) == (
        "2024-01-03T21:00:00.000Z", "2024-08-08T20:00:00.000Z")
    assert (BASELINE[0].anchor, BASELINE[0].other) == (ANCHORS[1][2], OTHERS[1][2])


@pytest.mark.parametrize("seed", range(5))
def test_any_interleaving_gives_the_same_updates(seed: int) -> None:
    assert feed(interleave(seed)) == BASELINE


def test_state_round_trip_through_json_continues_identically() -> None:
    assert feed(interleave(7), round_trip=True) == BASELINE


def test_duplicate_or_older_event_raises_and_leaves_state_unchanged() -> None:
    pc = PairCorrelation("RUT~BTC", PARAMS)
    first = feed(ANCHORS[:50] + OTHERS[:60], pc)
    before = pc.to_state()
    for role, t_ms in [("anchor", ANCHORS[49][1]), ("anchor", ANCHORS[10][1]),
                       ("other", OTHERS[59][1]), ("other", OTHERS[0][1])]:
        relation = "a duplicate of" if t_ms in (ANCHORS[49][1], OTHERS[59][1]) else "older than"
        with pytest.raises(EventOrderError, match=f"{role} event at .* is {relation} the last"):
            pc.add(role, t_ms, 1.0)
        assert pc.to_state() == before
    assert first + feed(ANCHORS[50:] + OTHERS[60:], pc) == BASELINE


def signals_of(updates: list[CorrelationUpdate]) -> list[dict[str, object]]:
    return [{k: v for k, v in s.asdict().items() if k != "emitted_at"}
            for u in updates for s in correlation_signals(u, PARAMS)]


def test_regime_changes_become_deterministic_signals() -> None:
    signals = signals_of(BASELINE)
    changes = [(u, w, old, new) for u in BASELINE for w, old, new in u.changes]
    assert len(signals) == len(changes)
    for signal, (update, w, old, new) in zip(signals, changes, strict=True):
        r = update.correlations[w]
        assert r is not None
        verb = {"coupled": "moving together", "decoupled": "moving independently",
                "neutral": "only loosely related"}[new]
        assert signal == {
            "id": signal_id("correlation_regime", f"RUT/BTC:{w}d", update.event_time),
            "type": "correlation_regime",
            "subject": f"RUT/BTC:{w}d",
            "event_time": update.event_time,
            "severity": "notice" if new == "coupled" else "info",
            "value": r,
            "message": f"RUT and BTC daily returns are now {new} over {w} days ({verb}: "
                       f"correlation {r:+.2f}, was {old}).",
            "evidence": {
                "window_days": w, "correlation": r, "beta": update.betas[w],
                "previous_regime": old, "regime": new,
                "thresholds": {"low": 0.1, "high": 0.5, "hysteresis": 0.05},
                "cooldown_days": 0.0, "level_correlation": None,
                "anchor_value": update.anchor, "other_value": update.other,
            },
            "schema_version": 1,
        }
    assert {s["severity"] for s in signals} == {"notice", "info"}
    assert len({s["id"] for s in signals}) == len(signals)
    # replaying the same input gives the same signals, ids included
    assert signals_of(feed(interleave(3))) == signals


def test_cooldown_defers_regime_changes_and_levels_are_reported() -> None:
    """Within the cooldown a flip is held back; once it ends, the standing regime is announced."""
    params = CorrelationParams(windows=(10,), lookahead_ms=5 * HOUR, max_staleness_ms=96 * HOUR,
                               low=0.1, high=0.5, hysteresis=0.05, cooldown_ms=30 * DAY,
                               levels=True)
    free = CorrelationParams(**{**params.__dict__, "cooldown_ms": 0})
    rng = random.Random(7)
    cooled, uncooled = PairCorrelation("A~B", params), PairCorrelation("A~B", free)
    a = b = 100.0
    changes: dict[str, list[tuple[int, str, str, int]]] = {"cooled": [], "free": []}
    for day in range(400):
        coupled = (day // 15) % 2 == 0  # regime flips every 15 days: faster than the cooldown
        x = rng.gauss(0, 0.01)
        a *= math.exp(x)
        b *= math.exp(x if coupled else rng.gauss(0, 0.01))
        t = day * DAY
        for name, pc in (("cooled", cooled), ("free", uncooled)):
            for update in pc.add("anchor", t, a) + pc.add("other", t + HOUR, b):
                changes[name] += [(w, old, new, update.t_ms) for w, old, new in update.changes]
                assert update.level_correlations[10] is None or \
                    -1 <= update.level_correlations[10] <= 1
    assert len(changes["free"]) > len(changes["cooled"]) > 3
    times = [t for *_, t in changes["cooled"]]
    assert all(later - earlier >= 30 * DAY
               for earlier, later in zip(times, times[1:], strict=False))
    # each announcement starts from the regime the previous one announced
    cooled_changes = changes["cooled"]
    assert all(prev[2] == nxt[1]
               for prev, nxt in zip(cooled_changes, cooled_changes[1:], strict=False))
