"""AltseasonScore: hand-computed scores, renormalised weights, staleness, bands, state."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foundation.errors import EventOrderError
from streams.score import (
    COMPONENTS,
    DAY_MS,
    DEFAULT_WEIGHTS,
    AltseasonScore,
    ScoreUpdate,
)

#: raw values that map to component 1.0 (top) in every component
TOP = {"index_ath": 0.0, "relative_strength": 0.05, "correlation": 0.6, "long_bias": 1.0,
       "accumulation": 1.0, "breadth": 0.0}


def feed(score: AltseasonScore, updates: list[tuple[str, int, float]]) -> list[ScoreUpdate | None]:
    return [score.update(c, t, raw) for c, t, raw in updates]


def test_component_mappings() -> None:
    s = AltseasonScore()
    cases = {
        "index_ath": [(0.0, 1.0), (-0.05, 0.75), (-0.10, 0.5), (-0.20, 0.0), (-0.5, 0.0),
                      (0.01, 1.0)],
        "relative_strength": [(0.0, 0.5), (0.03, 0.8), (-0.03, 0.2), (0.05, 1.0), (-0.05, 0.0),
                              (0.2, 1.0), (-0.2, 0.0)],
        "correlation": [(0.0, 0.0), (0.3, 0.5), (0.6, 1.0), (0.95, 1.0), (-0.4, 0.0)],
        "long_bias": [(0.0, 0.0), (0.35, 0.35), (1.0, 1.0), (1.2, 1.0), (-0.1, 0.0)],
        "accumulation": [(0.25, 0.25), (1.5, 1.0)],
        "breadth": [(0.0, 1.0), (0.3, 0.7), (1.0, 0.0), (1.3, 0.0)],
    }
    assert set(cases) == set(COMPONENTS)
    for component, pairs in cases.items():
        for raw, expected in pairs:
            assert s.component_value(component, raw) == pytest.approx(expected, abs=1e-15), (
                component, raw)
    custom = AltseasonScore(ath_range=0.4, rs_range=0.1, corr_full=0.3)
    assert custom.component_value("index_ath", -0.1) == pytest.approx(0.75)
    assert custom.component_value("relative_strength", 0.05) == pytest.approx(0.75)
    assert custom.component_value("correlation", 0.15) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="'nope'"):
        s.component_value("nope", 0.0)


def test_hand_computed_two_components() -> None:
    s = AltseasonScore()
    assert s.update("index_ath", 0, -0.05) is None  # one component: below min_components
    u = s.update("relative_strength", 1000, 0.01)
    assert u is not None
    # weights 0.25 and 0.20 renormalised to 5/9 and 4/9; components 0.75 and 0.6
    assert u.score == pytest.approx(100 * (5 / 9 * 0.75 + 4 / 9 * 0.6), rel=1e-14)
    assert u.score == pytest.approx(68.3333333333333, rel=1e-12)
    assert u.t_ms == 1000 and u.band == "warming" and u.previous_band is None
    assert u.changed is False  # the first band is not a change
    assert list(u.contributions) == ["index_ath", "relative_strength"]
    ath = u.contributions["index_ath"]
    assert ath == pytest.approx({"raw": -0.05, "component": 0.75, "weight": 0.25,
                                 "normalized_weight": 5 / 9, "contribution": 100 * 5 / 9 * 0.75,
                                 "age_ms": 1000})
    assert u.contributions["relative_strength"]["age_ms"] == 0
    assert u.missing == ["correlation", "long_bias", "accumulation", "breadth"]


def test_hand_computed_all_components_and_band_changes() -> None:
    s = AltseasonScore()
    # weakest first: the scores on the way (52, 55, 53.6, 66, 74.5) stay below 75
    updates = feed(s, [("breadth", 0, 0.3), ("accumulation", 0, 0.4), ("long_bias", 0, 0.6),
                       ("correlation", 0, 0.3), ("relative_strength", 0, 0.05),
                       ("index_ath", 0, 0.0)])
    assert updates[0] is None
    assert [u.score for u in updates[1:] if u] == pytest.approx([52, 55, 295 / 5.5, 66, 74.5])
    assert {u.band for u in updates[1:] if u} == {"warming"}
    u = updates[-1]
    assert u is not None and u.missing == []
    assert list(u.contributions) == list(COMPONENTS)
    # 100 * (.25 * 1 + .2 * 1 + .15 * .5 + .15 * .6 + .15 * .4 + .1 * .7)
    assert u.score == pytest.approx(74.5, rel=1e-14) and u.band == "warming"
    assert [c["normalized_weight"] for c in u.contributions.values()] == pytest.approx(
        [0.25, 0.2, 0.15, 0.15, 0.15, 0.1], rel=1e-15)
    steps = [
        (("long_bias", 1, 0.7), 76.0, "altseason", True),
        (("long_bias", 2, 0.35), 70.75, "altseason", False),  # within 5 below 75: kept
        (("breadth", 3, 0.35), 70.25, "altseason", False),
        (("breadth", 4, 0.4), 69.75, "warming", True),  # more than 5 below: left
        (("breadth", 5, 0.3), 70.75, "warming", False),  # back up, but below 75: not entered
        (("index_ath", 6, -0.2), 45.75, "warming", False),  # within 5 below 50: kept
        (("relative_strength", 7, 0.0), 35.75, "cold", True),
        (("index_ath", 8, -0.19), 37.0, "cold", False),
        (("index_ath", 9, 0.0), 60.75, "warming", True),
    ]
    previous = "warming"
    for (component, t, raw), score, band, changed in steps:
        u = s.update(component, t, raw)
        assert u is not None
        assert u.score == pytest.approx(score, rel=1e-13), (component, t)
        assert (u.band, u.previous_band, u.changed) == (band, previous, changed), (component, t)
        previous = band
    assert s.band == "warming"


def test_top_and_bottom() -> None:
    s = AltseasonScore()
    u = feed(s, [(c, 0, raw) for c, raw in TOP.items()])[-1]
    assert u is not None and u.score == 100.0 and u.band == "altseason"
    s = AltseasonScore()
    bottom = {"index_ath": -1.0, "relative_strength": -1.0, "correlation": -1.0,
              "long_bias": 0.0, "accumulation": 0.0, "breadth": 1.0}
    u = feed(s, [(c, 0, raw) for c, raw in bottom.items()])[-1]
    assert u is not None and u.score == 0.0 and u.band == "cold"


def test_missing_components_renormalise_the_weights() -> None:
    s = AltseasonScore()
    u = feed(s, [("correlation", 0, 0.6), ("breadth", 0, 0.5), ("long_bias", 0, 0.2)])[-1]
    assert u is not None
    # weights .15 .15 .10 over 0.4: 0.375, 0.375, 0.25; components 1.0, 0.2, 0.5
    assert {k: c["normalized_weight"] for k, c in u.contributions.items()} == pytest.approx(
        {"correlation": 0.375, "long_bias": 0.375, "breadth": 0.25}, rel=1e-15)
    assert u.score == pytest.approx(100 * (0.375 + 0.375 * 0.2 + 0.25 * 0.5), rel=1e-14)
    assert u.missing == ["index_ath", "relative_strength", "accumulation"]


def test_stale_components_drop_out() -> None:
    week = 7 * DAY_MS
    s = AltseasonScore()
    feed(s, [("index_ath", 0, 0.0), ("relative_strength", 0, 0.05)])
    u = s.update("correlation", week, 0.0)
    assert u is not None and u.missing == ["long_bias", "accumulation", "breadth"]
    assert u.contributions["index_ath"]["age_ms"] == week  # exactly max_age_ms: still fresh
    # one ms later the two week-old components are stale: only two fresh ones are left
    u = s.update("long_bias", week + 1, 1.0)
    assert u is not None
    assert list(u.contributions) == ["correlation", "long_bias"]
    assert u.missing == ["index_ath", "relative_strength", "accumulation", "breadth"]
    assert u.score == pytest.approx(50.0, rel=1e-15)  # equal weights .15, components 0 and 1
    # below min_components: no score, and the band is left as it was
    band = s.band
    assert s.update("long_bias", 3 * week, 1.0) is None
    assert s.band == band
    # a refreshed component counts again
    u = s.update("index_ath", 3 * week, -0.1)
    assert u is not None and list(u.contributions) == ["index_ath", "long_bias"]


def test_freshness_is_judged_against_the_updated_components_time() -> None:
    s = AltseasonScore(max_age_ms=1000)
    feed(s, [("index_ath", 5000, 0.0), ("relative_strength", 5000, 0.0)])
    # another agent lagging 2 s behind: as of 3000 the other two are from its future
    assert s.update("correlation", 3000, 0.6) is None
    u = s.update("correlation", 4500, 0.6)
    assert u is not None and u.t_ms == 4500
    assert u.missing == ["long_bias", "accumulation", "breadth"]
    assert u.contributions["index_ath"]["age_ms"] == -500  # 500 ms ahead of the update
    assert u.contributions["correlation"]["age_ms"] == 0


def test_same_time_replaces_older_time_is_rejected() -> None:
    s = AltseasonScore()
    feed(s, [("index_ath", 100, 0.0), ("breadth", 100, 0.5)])
    u = s.update("breadth", 100, 0.0)  # a recomputed cross-section at the same time
    assert u is not None and u.contributions["breadth"]["component"] == 1.0
    before = s.to_state()
    with pytest.raises(EventOrderError, match="breadth at t_ms=99 is older .*t_ms=100"):
        s.update("breadth", 99, 0.1)
    with pytest.raises(ValueError, match="unknown score component 'btc_dominance'"):
        s.update("btc_dominance", 200, 0.5)
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="'breadth' at t_ms=200 must be finite"):
            s.update("breadth", 200, bad)
    for bad_t in (1.5, "200", True):
        with pytest.raises(ValueError, match="t_ms of 'breadth'"):
            s.update("breadth", bad_t, 0.5)  # type: ignore[arg-type]
    assert s.to_state() == before


def test_weights_configuration() -> None:
    s = AltseasonScore({"index_ath": 1.0, "breadth": 0.0})
    assert s.weights == {**DEFAULT_WEIGHTS, "index_ath": 1.0, "breadth": 0.0}
    u = feed(s, [("breadth", 0, 0.0), ("index_ath", 0, -0.1), ("long_bias", 0, 1.0)])[-1]
    assert u is not None
    # a weight of 0 disables breadth: neither used nor missing
    assert list(u.contributions) == ["index_ath", "long_bias"]
    assert "breadth" not in u.missing
    assert u.score == pytest.approx(100 * (1.0 * 0.5 + 0.15 * 1.0) / 1.15, rel=1e-14)
    # only the disabled one and one other: not enough for a score
    s = AltseasonScore({"breadth": 0.0})
    assert feed(s, [("breadth", 0, 0.0), ("index_ath", 0, -0.1)]) == [None, None]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"weights": {"btc_dominance": 0.1}}, "unknown score component 'btc_dominance'"),
    ({"weights": {"breadth": -0.1}}, "weight of 'breadth'"),
    ({"weights": {"correlation": math.nan}}, "weight of 'correlation'"),
    ({"weights": {"long_bias": math.inf}}, "weight of 'long_bias'"),
    ({"weights": dict.fromkeys(COMPONENTS, 0.0)}, "all 0"),
    ({"ath_range": 0.0}, "ath_range"),
    ({"rs_range": -0.05}, "rs_range"),
    ({"corr_full": math.nan}, "corr_full"),
    ({"max_age_ms": -1}, "max_age_ms"),
    ({"max_age_ms": 1.5}, "max_age_ms"),
    ({"min_components": 0}, "min_components"),
    ({"min_components": 7}, "min_components"),
    ({"weights": {"breadth": 0.0}, "min_components": 6}, r"min_components .* in 1\.\.5 "),
    ({"hysteresis": -1.0}, "hysteresis"),
])
def test_invalid_settings(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AltseasonScore(**kwargs)


def test_min_components_one() -> None:
    s = AltseasonScore(min_components=1)
    u = s.update("breadth", 0, 0.2)
    assert u is not None and u.score == pytest.approx(80.0) and u.band == "altseason"


# --- properties -------------------------------------------------------------------------

update_strategy = st.tuples(
    st.sampled_from(COMPONENTS),
    st.integers(0, 3 * DAY_MS),  # time step, so components go stale now and then
    st.floats(-2.0, 2.0, allow_nan=False),
)


def reference(values: dict[str, tuple[int, float]], now: int, s: AltseasonScore) -> float | None:
    """Plain weighted mean of the fresh components, as specified."""
    fresh = {c: v for c, v in values.items() if now - v[0] <= 7 * DAY_MS}
    if len(fresh) < 2:
        return None
    total = sum(DEFAULT_WEIGHTS[c] for c in fresh)
    return 100 * sum(DEFAULT_WEIGHTS[c] * s.component_value(c, raw)
                     for c, (_, raw) in fresh.items()) / total


@settings(max_examples=200, deadline=None)
@given(st.lists(update_strategy, min_size=1, max_size=80))
def test_contributions_sum_to_the_score(steps: list[tuple[str, int, float]]) -> None:
    s = AltseasonScore()
    values: dict[str, tuple[int, float]] = {}
    t = 0
    for component, dt, raw in steps:
        t += dt
        values[component] = (t, raw)
        u = s.update(component, t, raw)
        expected = reference(values, t, s)
        if expected is None:
            assert u is None
            continue
        assert u is not None
        contributions = [c["contribution"] for c in u.contributions.values()]
        assert u.score == min(100.0, math.fsum(contributions))
        assert 0.0 <= u.score <= 100.0
        assert u.score == pytest.approx(expected, rel=1e-12, abs=1e-12)
        assert math.fsum(c["normalized_weight"] for c in u.contributions.values()) == (
            pytest.approx(1.0, rel=1e-15))
        assert sorted([*u.contributions, *u.missing], key=COMPONENTS.index) == list(COMPONENTS)
        assert all(0 <= c["age_ms"] <= 7 * DAY_MS for c in u.contributions.values())
        assert u.changed == (u.previous_band is not None and u.band != u.previous_band)


@settings(max_examples=100, deadline=None)
@given(st.lists(update_strategy, min_size=2, max_size=80), st.data())
def test_state_round_trip_mid_stream_is_identical(
    steps: list[tuple[str, int, float]], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(steps)))
    times = []
    t = 0
    for _, dt, _ in steps:
        t += dt
        times.append(t)
    updates = [(c, ti, raw) for (c, _, raw), ti in zip(steps, times, strict=True)]
    a = AltseasonScore({"accumulation": 0.3}, hysteresis=2.5)
    first = feed(a, updates[:cut])
    b = AltseasonScore.from_state(json.loads(json.dumps(a.to_state(), allow_nan=False)))
    assert b.to_state() == a.to_state()
    assert feed(a, updates[cut:]) == feed(b, updates[cut:])
    assert a.to_state() == b.to_state()
    # deterministic: the same inputs again give the same outputs
    again = AltseasonScore({"accumulation": 0.3}, hysteresis=2.5)
    assert feed(again, updates[:cut]) == first


def test_custom_levels_survive_the_state() -> None:
    levels = (("bear", -math.inf), ("neutral", 40.0), ("bull", 60.0), ("mania", 90.0))
    s = AltseasonScore(levels=levels, hysteresis=2.0)
    u = feed(s, [("breadth", 0, 0.5), ("accumulation", 0, 0.65)])[-1]
    # weights .1 and .15: (0.1 * 0.5 + 0.15 * 0.65) / 0.25 = 0.59
    assert u is not None and u.score == pytest.approx(59.0) and u.band == "neutral"
    state = json.loads(json.dumps(s.to_state(), allow_nan=False))
    assert state["levels"][0] == ["bear", None]  # JSON has no -inf
    restored = AltseasonScore.from_state(state)
    assert restored.to_state() == s.to_state()
    for t, raw in ((1, 0.7), (2, 0.6), (3, 0.57), (4, 0.56), (5, 0.9)):
        a, b = s.update("accumulation", t, raw), restored.update("accumulation", t, raw)
        assert a == b and a is not None
    assert s.band == "bull"  # 74 at the end
    with pytest.raises(ValueError, match="ascending"):
        AltseasonScore(levels=(("a", 50.0), ("b", 50.0)))


def test_state_validation() -> None:
    s = AltseasonScore()
    feed(s, [("index_ath", 0, 0.0), ("breadth", 0, 0.1)])
    state = s.to_state()
    with pytest.raises(ValueError, match="unknown component 'x'"):
        AltseasonScore.from_state({**state, "values": {"x": [0, 1.0]}})
    with pytest.raises(ValueError, match="unknown band 'hot'"):
        AltseasonScore.from_state({**state, "band": "hot"})
    fresh = AltseasonScore.from_state(json.loads(json.dumps(AltseasonScore().to_state())))
    assert fresh.band is None and fresh.newest_t_ms is None
