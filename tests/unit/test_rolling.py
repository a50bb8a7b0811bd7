"""RollingCorrelation against the full-recompute numpy reference."""

from __future__ import annotations

import csv
import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from streams import rolling
from streams.rolling import RollingCorrelation, log_returns, pearson

REPLAY = Path(__file__).resolve().parents[2] / "data" / "replay"


def read_closes(name: str) -> dict[str, float]:
    with open(REPLAY / name, newline="") as f:
        return {row["Date"]: float(row["Close"]) for row in csv.DictReader(f)}


def ref_beta(x: np.ndarray, y: np.ndarray) -> float:
    """Two-pass least-squares slope (shifted by the first value, like ``pearson``)."""
    dx = (x - x[0]) - (x - x[0]).mean()
    dy = (y - y[0]) - (y - y[0]).mean()
    return float(np.dot(dx, dy) / np.dot(dx, dx))


def exact_moments(x: np.ndarray, y: np.ndarray) -> tuple[Fraction, Fraction, Fraction]:
    """Sxx, Syy, Sxy of the given floats in exact rational arithmetic."""
    fx = [Fraction(float(v)) for v in x]
    fy = [Fraction(float(v)) for v in y]
    mx = sum(fx, Fraction(0)) / len(fx)
    my = sum(fy, Fraction(0)) / len(fy)
    sxx = sum(((a - mx) ** 2 for a in fx), Fraction(0))
    syy = sum(((b - my) ** 2 for b in fy), Fraction(0))
    sxy = sum(((a - mx) * (b - my) for a, b in zip(fx, fy, strict=True)), Fraction(0))
    return sxx, syy, sxy


def check_every_window(
    x: np.ndarray, y: np.ndarray, window: int, rtol: float = 1e-9, atol: float = 1e-12,
    **kwargs: int | None,
) -> RollingCorrelation:
    """Feed the whole series and compare correlation and beta at every position."""
    rc = RollingCorrelation(window, **kwargs)
    min_periods = rc.min_periods
    for i in range(len(x)):
        r = rc.update(float(x[i]), float(y[i]))
        lo = max(0, i + 1 - window)
        assert rc.n == i + 1 - lo
        if rc.n < min_periods:
            assert r is None and rc.correlation is None and rc.beta is None
            continue
        expected = pearson(x[lo:i + 1], y[lo:i + 1])
        assert r is not None
        if math.isnan(expected):
            assert math.isnan(r)
            continue
        assert r == pytest.approx(expected, rel=rtol, abs=atol), (i, window)
        assert rc.beta == pytest.approx(ref_beta(x[lo:i + 1], y[lo:i + 1]), rel=rtol, abs=atol)
    return rc


def test_log_returns() -> None:
    out = log_returns(np.array([100.0, 110.0, 99.0]))
    np.testing.assert_allclose(out, [math.log(1.1), math.log(0.9)], rtol=1e-13)


def test_pearson_reference() -> None:
    assert pearson(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])) == pytest.approx(1.0)
    assert pearson(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    assert math.isnan(pearson(np.array([1.0]), np.array([2.0])))
    assert math.isnan(pearson(np.array([1.0, 1.0, 1.0]), np.array([1.0, 2.0, 3.0])))
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=50), rng.normal(size=50)
    assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1], rel=1e-12)


@pytest.mark.parametrize("window", [2, 3, 30, 90])
def test_random_series_every_window(window: int) -> None:
    rng = np.random.default_rng(window)
    x = rng.normal(size=600)
    y = 0.4 * x + rng.normal(size=600)
    check_every_window(x, y, window)


@pytest.mark.parametrize("window,min_periods,reanchor_every", [(30, 5, None), (30, 2, 7),
                                                              (90, 90, 1), (90, 10, 1000)])
def test_min_periods_and_reanchor_options(
    window: int, min_periods: int, reanchor_every: int | None
) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_t(3, size=400)
    y = -0.7 * x + rng.normal(size=400)
    check_every_window(x, y, window, min_periods=min_periods, reanchor_every=reanchor_every)


def test_window_2_is_plus_or_minus_one() -> None:
    rc = RollingCorrelation(2)
    assert rc.update(1.0, 5.0) is None
    assert rc.update(2.0, 7.0) == 1.0
    assert rc.beta == 2.0
    assert rc.update(4.0, 3.0) == -1.0
    assert rc.beta == -2.0
    assert math.isnan(rc.update(4.0, 9.0) or 0.0)  # x constant over the window
    assert math.isnan(rc.beta or 0.0)


def test_real_btc_vs_rut_log_returns() -> None:
    btc = read_closes("btc_usd.csv")
    rut = read_closes("russell2000_rut.csv")
    days = sorted(set(btc) & set(rut))
    assert len(days) > 2500
    x = log_returns(np.array([rut[d] for d in days]))
    y = log_returns(np.array([btc[d] for d in days]))
    for window in (30, 90):
        rc = check_every_window(x, y, window)
        # the last 90-day value, recomputed independently
        assert rc.correlation == pytest.approx(
            np.corrcoef(x[-window:], y[-window:])[0, 1], rel=1e-9
        )


@pytest.mark.parametrize("scale", [1.0, 1e-3])
def test_large_offset_is_numerically_stable(scale: float) -> None:
    rng = np.random.default_rng(11)
    n = 2000
    base = rng.normal(size=n).cumsum() * scale
    x = 1e9 + base
    y = 2e9 + 0.5 * base + rng.normal(size=n) * scale
    for window in (2, 30, 90):
        check_every_window(x, y, window, rtol=1e-9, atol=0.0)
        # values before the first re-anchor too
        check_every_window(x[:200], y[:200], window, rtol=1e-9, atol=0.0, min_periods=2)


def test_large_offset_against_exact_arithmetic() -> None:
    """An independent check of the reference and of the rolling value: exact rationals."""
    rng = np.random.default_rng(3)
    n, window = 400, 30
    x = 1e9 + rng.normal(size=n) * 1e-2
    y = 1e9 - 0.3 * (x - 1e9) + rng.normal(size=n) * 1e-2
    rc = RollingCorrelation(window)
    for i in range(n):
        r = rc.update(float(x[i]), float(y[i]))
        if i >= window - 1 and i % 7 == 0:
            sxx, syy, sxy = exact_moments(x[i + 1 - window:i + 1], y[i + 1 - window:i + 1])
            exact_r = float(sxy) / math.sqrt(float(sxx) * float(syy))
            assert r == pytest.approx(exact_r, rel=1e-12), i
            assert rc.beta == pytest.approx(float(sxy / sxx), rel=1e-12), i
            assert pearson(x[i + 1 - window:i + 1], y[i + 1 - window:i + 1]) == pytest.approx(
                exact_r, rel=1e-12
            )


def test_naive_sums_would_fail_at_this_offset() -> None:
    """The offset checks are meaningful: textbook sums lose everything at 1e9."""
    rng = np.random.default_rng(11)
    x = 1e9 + rng.normal(size=30) * 1e-3
    y = 1e9 + rng.normal(size=30) * 1e-3
    sxx, _, _ = exact_moments(x, y)
    naive_sxx = float(np.sum(x * x) - np.sum(x) ** 2 / len(x))
    assert abs(naive_sxx - float(sxx)) > 100 * float(sxx)
    rc = RollingCorrelation(30)
    for a, b in zip(x, y, strict=True):
        rc.update(float(a), float(b))
    assert rc.correlation == pytest.approx(pearson(x, y), rel=1e-12)


def test_long_stream_has_no_drift(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    n, window = 100_000, 90
    # regime changes in scale and offset stress the removal formulas
    scale = np.repeat(rng.choice([1e-4, 1.0, 1e3], size=n // 1000), 1000)
    x = rng.normal(size=n) * scale + 50.0
    y = 0.3 * x + rng.normal(size=n) * scale
    rc = RollingCorrelation(window)
    checked = 0
    for i in range(n):
        r = rc.update(float(x[i]), float(y[i]))
        if i >= window and (i % 997 == 0 or i == n - 1):
            expected = pearson(x[i + 1 - window:i + 1], y[i + 1 - window:i + 1])
            assert r == pytest.approx(expected, rel=1e-9, abs=0.0), i
            checked += 1
    assert checked > 100
    # without re-anchoring (periodic or on cancellation) the removals do drift: the re-anchor
    # is what keeps it exact
    monkeypatch.setattr(rolling, "CANCELLATION_RATIO", 0.0)
    drifting = RollingCorrelation(window, reanchor_every=10**9)
    worst = 0.0
    for i in range(n):
        r = drifting.update(float(x[i]), float(y[i]))
        if i >= window and i % 997 == 0:
            expected = pearson(x[i + 1 - window:i + 1], y[i + 1 - window:i + 1])
            worst = max(worst, abs((r or 0.0) - expected))
    assert worst > 1e-9


def test_constant_window_is_nan_exactly() -> None:
    rc = RollingCorrelation(3, reanchor_every=1000)
    for x, y in [(0.1, 1.0), (0.7, 2.0), (0.3, 0.5), (0.3, 1.5), (0.3, 2.5)]:
        rc.update(x, y)
    assert math.isnan(rc.correlation or 0.0)
    assert math.isnan(rc.beta or 0.0)
    assert rc.update(0.4, 3.0) == pytest.approx(pearson(np.array([0.3, 0.3, 0.4]),
                                                        np.array([1.5, 2.5, 3.0])))
    rc2 = RollingCorrelation(3)
    for x, y in [(1.0, 2.0), (2.0, 2.0), (3.0, 2.0)]:
        rc2.update(x, y)
    assert math.isnan(rc2.correlation or 0.0)
    assert rc2.beta == 0.0


def test_non_finite_input_raises_and_leaves_state() -> None:
    rc = RollingCorrelation(5, min_periods=2)
    rc.update(1.0, 2.0)
    rc.update(2.0, 3.5)
    before = rc.to_state()
    for bad in [(math.nan, 1.0), (1.0, math.inf), (-math.inf, 0.0)]:
        with pytest.raises(ValueError):
            rc.update(*bad)
    assert rc.to_state() == before


def test_invalid_parameters() -> None:
    for kwargs in [{"window": 1}, {"window": 5, "min_periods": 0},
                   {"window": 5, "min_periods": 6}, {"window": 5, "reanchor_every": 0}]:
        with pytest.raises(ValueError):
            RollingCorrelation(**kwargs)


@pytest.mark.parametrize("window,reanchor_every", [(2, None), (30, None), (30, 7), (90, 1)])
def test_state_round_trip_is_bit_for_bit(window: int, reanchor_every: int | None) -> None:
    rng = np.random.default_rng(window)
    x = 1e6 + rng.normal(size=700)
    y = rng.normal(size=700) + 0.2 * x
    original = RollingCorrelation(window, min_periods=2, reanchor_every=reanchor_every)
    for cut in (0, 1, window // 2, window + 3, 350):
        restored = None
        for i in range(700):
            if i == cut:
                saved = json.loads(json.dumps(original.to_state()))
                restored = RollingCorrelation.from_state(saved)
            r0 = original.update(float(x[i]), float(y[i]))
            if restored is not None:
                r1 = restored.update(float(x[i]), float(y[i]))
                assert (r0 is None and r1 is None) or (r0 == r1), i
                assert restored.beta == original.beta
                assert restored.n == original.n
        assert restored is not None
        assert restored.to_state() == original.to_state()
        original = RollingCorrelation(window, min_periods=2, reanchor_every=reanchor_every)
