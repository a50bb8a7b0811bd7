"""band() on hovering values and multi-band jumps, against correlation_band; Cooldown edges."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.hysteresis import Cooldown, band, check_levels
from streams.signals import correlation_band

LEVELS = (("cold", -math.inf), ("warming", 50.0), ("altseason", 75.0))


def walk(
    values: list[float], hysteresis: float = 5.0,
    levels: Sequence[tuple[str, float]] = LEVELS,
) -> list[str]:
    out: list[str] = []
    previous = None
    for v in values:
        previous = band(v, previous, levels, hysteresis)
        out.append(previous)
    return out


def test_without_previous_the_highest_band_reached() -> None:
    assert band(-1e9, None, LEVELS, 5.0) == "cold"
    assert band(49.999, None, LEVELS, 5.0) == "cold"
    assert band(50.0, None, LEVELS, 5.0) == "warming"  # a level belongs to its band
    assert band(74.9, None, LEVELS, 5.0) == "warming"
    assert band(75.0, None, LEVELS, 5.0) == "altseason"
    assert band(math.inf, None, LEVELS, 5.0) == "altseason"
    assert band(-math.inf, None, LEVELS, 5.0) == "cold"
    # below a finite first level: still the first band
    assert band(-3.0, None, (("low", 0.0), ("high", 10.0)), 1.0) == "low"


def test_hovering_at_a_threshold_does_not_flip() -> None:
    hover = [49.0, 50.0, 49.0, 46.0, 50.5, 45.0, 50.0, 44.99, 49.99, 50.0]
    assert walk(hover) == [
        "cold", "warming", "warming", "warming", "warming", "warming", "warming",
        "cold", "cold", "warming",
    ]
    # without hysteresis every crossing flips
    assert walk(hover, hysteresis=0.0) == [
        "cold", "warming", "cold", "cold", "warming", "cold", "warming", "cold", "cold",
        "warming",
    ]


def test_kept_band_boundary_is_inclusive() -> None:
    assert band(70.0, "altseason", LEVELS, 5.0) == "altseason"  # exactly level - hysteresis
    assert band(math.nextafter(70.0, 0.0), "altseason", LEVELS, 5.0) == "warming"
    assert band(45.0, "warming", LEVELS, 5.0) == "warming"
    assert band(44.999999, "warming", LEVELS, 5.0) == "cold"


def test_entering_a_higher_band_needs_its_level() -> None:
    # within the hysteresis below a level, the band depends on where the value came from
    assert band(72.0, "warming", LEVELS, 5.0) == "warming"
    assert band(72.0, "altseason", LEVELS, 5.0) == "altseason"
    assert band(47.0, "cold", LEVELS, 5.0) == "cold"
    assert band(47.0, "warming", LEVELS, 5.0) == "warming"
    assert band(math.nextafter(75.0, 0.0), "cold", LEVELS, 5.0) == "warming"


def test_crossing_two_bands_at_once() -> None:
    assert band(80.0, "cold", LEVELS, 5.0) == "altseason"
    assert band(75.0, "cold", LEVELS, 5.0) == "altseason"
    assert band(30.0, "altseason", LEVELS, 5.0) == "cold"
    # falling from the top into the hysteresis zone of the middle band: the value's own
    # band, the middle band is not "kept" since the value was never in it
    assert band(47.0, "altseason", LEVELS, 5.0) == "cold"
    assert band(60.0, "altseason", LEVELS, 5.0) == "warming"


def test_hysteresis_wider_than_a_band() -> None:
    levels = (("a", -math.inf), ("b", 10.0), ("c", 12.0))
    # the top band is kept down to 12 - 5 = 7, below the middle band's level
    assert band(7.0, "c", levels, 5.0) == "c"
    assert band(6.9, "c", levels, 5.0) == "a"
    assert band(11.0, "c", levels, 5.0) == "c"
    assert band(11.0, "a", levels, 5.0) == "b"


def test_single_band() -> None:
    levels = (("only", 0.0),)
    assert walk([-5.0, 5.0, -100.0], levels=levels) == ["only", "only", "only"]


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=1, max_size=60),
    low=st.floats(-0.5, 0.2),
    gap=st.floats(0.1, 0.8),
    hysteresis=st.floats(0.0, 0.1),
)
def test_matches_correlation_band_at_its_upper_threshold(
    values: list[float], low: float, gap: float, hysteresis: float
) -> None:
    """With the lower threshold ignored, correlation_band's upper threshold is the same rule."""
    high = low + gap
    levels = (("not", -math.inf), ("coupled", high))
    previous_a: str | None = None
    previous_b: str | None = None
    for v in values:
        previous_a = band(v, previous_a, levels, hysteresis)
        b = correlation_band(v, previous_b, -math.inf, high, hysteresis)
        previous_b = b if b == "coupled" else "neutral"
        assert (previous_a == "coupled") == (previous_b == "coupled")


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.floats(-50.0, 150.0, allow_nan=False), min_size=1, max_size=60),
    hysteresis=st.floats(0.0, 20.0),
)
def test_band_invariants(values: list[float], hysteresis: float) -> None:
    names = [name for name, _ in LEVELS]
    previous: str | None = None
    for v in values:
        new = band(v, previous, LEVELS, hysteresis)
        plain = band(v, None, LEVELS, 0.0)
        # never above the value's own band; below it only by keeping the previous band
        assert names.index(new) >= names.index(plain)
        if new != plain:
            assert new == previous and v >= dict(LEVELS)[new] - hysteresis
        previous = new


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="NaN"):
        band(math.nan, None, LEVELS, 5.0)
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="hysteresis"):
            band(1.0, None, LEVELS, bad)
    with pytest.raises(ValueError, match="'hot' is not one of"):
        band(1.0, "hot", LEVELS, 5.0)
    with pytest.raises(ValueError, match="at least one band"):
        band(1.0, None, (), 5.0)
    with pytest.raises(ValueError, match="ascending"):
        check_levels((("a", 1.0), ("b", 1.0)))
    with pytest.raises(ValueError, match="ascending"):
        check_levels((("a", 2.0), ("b", 1.0)))
    with pytest.raises(ValueError, match="unique"):
        check_levels((("a", 1.0), ("a", 2.0)))
    with pytest.raises(ValueError, match="numbers"):
        check_levels((("a", math.nan),))


# --- Cooldown ---------------------------------------------------------------------------


def test_cooldown_boundaries() -> None:
    cd = Cooldown(1000)
    assert cd.cooldown_ms == 1000
    assert cd.ready("a", 0) and cd.last_fired("a") is None
    cd.fired("a", 5000)
    assert cd.last_fired("a") == 5000
    assert not cd.ready("a", 5000)
    assert not cd.ready("a", 5999)
    assert cd.ready("a", 6000)  # exactly cooldown_ms later
    assert not cd.ready("a", 4000)  # older than the last firing
    assert cd.ready("b", 5000)  # keys are independent
    cd.fired("a", 6000)
    assert not cd.ready("a", 6999) and cd.ready("a", 7000)


def test_cooldown_older_firing_does_not_move_back() -> None:
    cd = Cooldown(1000)
    cd.fired("a", 5000)
    cd.fired("a", 3000)
    assert cd.last_fired("a") == 5000
    assert not cd.ready("a", 4500)


def test_zero_cooldown_is_always_ready_from_the_last_firing_on() -> None:
    cd = Cooldown(0)
    cd.fired("a", 10)
    assert cd.ready("a", 10) and cd.ready("a", 11)
    assert not cd.ready("a", 9)


def test_cooldown_state_round_trip() -> None:
    cd = Cooldown(86_400_000)
    cd.fired("score:altseason", 1_700_000_000_000)
    cd.fired("RUT/TOTAL:30d", 1_700_000_100_000)
    restored = Cooldown.from_state(json.loads(json.dumps(cd.to_state())))
    assert restored.to_state() == cd.to_state()
    for key in ("score:altseason", "RUT/TOTAL:30d", "other"):
        for t in (1_700_000_000_000, 1_700_086_399_999, 1_700_086_400_000, 1_700_086_500_000):
            assert restored.ready(key, t) == cd.ready(key, t)
    empty = Cooldown.from_state(json.loads(json.dumps(Cooldown(5).to_state())))
    assert empty.cooldown_ms == 5 and empty.ready("x", 0)


def test_cooldown_validation() -> None:
    for bad in (-1, 1.5, True, None):
        with pytest.raises(ValueError, match="cooldown_ms"):
            Cooldown(bad)  # type: ignore[arg-type]
