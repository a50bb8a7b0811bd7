"""RollingNetflow against pandas time-based rolling sums and a brute-force fsum; classify, rank."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from foundation.errors import EventOrderError
from streams.netflow import DAY_MS, RollingNetflow, classify, rank_flows

WINDOWS = {"1h": 3_600_000, "1d": DAY_MS, "7d": 7 * DAY_MS}


def random_flows(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Irregular event times (bursts, gaps) and heavy-tailed flows."""
    rng = np.random.default_rng(seed)
    gaps = rng.choice([10, 1, 60_000, 1_800_000, 3_600_000, 5 * DAY_MS], size=n,
                      p=[0.1, 0.05, 0.4, 0.3, 0.14, 0.01])
    t = 1_700_000_000_000 + np.cumsum(gaps)
    inflow = rng.exponential(1000.0, size=n) * (rng.random(n) < 0.7)
    outflow = rng.exponential(1000.0, size=n) * (rng.random(n) < 0.7)
    return t.astype(np.int64), inflow, outflow


def brute_force(t: np.ndarray, x: np.ndarray, i: int, w: int) -> float:
    """Exactly rounded sum of x over rows 0..i with t in (t[i] - w, t[i]]."""
    sel = (t[: i + 1] > t[i] - w)
    return math.fsum(x[: i + 1][sel])


def test_half_open_window_exact() -> None:
    rn = RollingNetflow({"w": 10})
    assert rn.update(0, 5.0, 0.0) == {"w": 5.0}
    assert rn.update(9, 0.0, 2.0) == {"w": 3.0}
    assert rn.update(10, 1.0, 0.0) == {"w": -1.0}  # t=0 is out: (0, 10]
    assert rn.count("w") == 2
    with pytest.raises(EventOrderError, match="t_ms=10 is a duplicate of .*t_ms=10"):
        rn.update(10, 4.0, 0.0)  # the same ms again is a repeat: not counted twice
    assert rn.update(11, 4.0, 0.0) == {"w": 3.0}  # (1, 11]
    assert rn.update(19, 0.0, 0.0) == {"w": 5.0}  # t=9 is out
    assert (rn.inflow("w"), rn.outflow("w"), rn.netflow("w")) == (5.0, 0.0, 5.0)
    assert rn.update(29, 0.0, 7.0) == {"w": -7.0}
    assert rn.count("w") == 1


def test_several_windows_at_once_exact() -> None:
    rn = RollingNetflow({"1d": DAY_MS, "7d": 7 * DAY_MS, "30d": 30 * DAY_MS})
    rn.update(0, 100.0, 0.0)
    rn.update(3 * DAY_MS, 0.0, 40.0)
    assert rn.update(8 * DAY_MS, 0.0, 10.0) == {"1d": -10.0, "7d": -50.0, "30d": 50.0}
    assert rn.update(31 * DAY_MS, 1.0, 0.0) == {"1d": 1.0, "7d": 1.0, "30d": -49.0}
    assert rn.windows == {"1d": DAY_MS, "7d": 7 * DAY_MS, "30d": 30 * DAY_MS}


def test_emptied_window_sums_are_exact_again() -> None:
    rn = RollingNetflow({"w": 1000})
    for i in range(1000):
        rn.update(i, 0.1 * (i % 7), 0.3 * (i % 5))
    # a gap longer than the window: only the new observation is left, without rounding residue
    assert rn.update(10_000, 0.7, 0.2) == {"w": 0.7 - 0.2}
    assert rn.inflow("w") == 0.7 and rn.outflow("w") == 0.2


@pytest.mark.parametrize("seed", range(4))
def test_random_against_pandas_time_rolling(seed: int) -> None:
    t, inflow, outflow = random_flows(seed, 5000)
    rn = RollingNetflow(WINDOWS)
    got: dict[str, list[float]] = {name: [] for name in WINDOWS}
    for ti, a, b in zip(t, inflow, outflow, strict=True):
        for name, v in rn.update(int(ti), float(a), float(b)).items():
            got[name].append(v)
    df = pd.DataFrame({"in": inflow, "out": outflow},
                      index=pd.to_datetime(t, unit="ms", utc=True))
    scale = float(inflow.sum() + outflow.sum())
    for name, w in WINDOWS.items():
        sums = df.rolling(pd.Timedelta(milliseconds=w)).sum()  # closed="right": (t - w, t]
        ref = (sums["in"] - sums["out"]).to_numpy()
        np.testing.assert_allclose(got[name], ref, rtol=1e-9, atol=1e-12 * scale)
    # exact reference at the end and at spot checks, to within a few ulps of the flows
    rn2 = RollingNetflow(WINDOWS)
    for i, (ti, a, b) in enumerate(zip(t, inflow, outflow, strict=True)):
        rn2.update(int(ti), float(a), float(b))
        if i % 37 == 0 or i == len(t) - 1:
            for name, w in WINDOWS.items():
                ref_in = brute_force(t, inflow, i, w)
                ref_out = brute_force(t, outflow, i, w)
                assert rn2.inflow(name) == pytest.approx(ref_in, rel=1e-12, abs=1e-9)
                assert rn2.outflow(name) == pytest.approx(ref_out, rel=1e-12, abs=1e-9)
                assert rn2.count(name) == int(np.count_nonzero(t[: i + 1] > t[i] - w))


def test_no_drift_over_100k_updates() -> None:
    rng = np.random.default_rng(11)
    n = 100_000
    t = np.cumsum(rng.integers(1, 120_000, size=n)).astype(np.int64)
    # rare whale transfers 1e12 times the usual size: one leaving the window must not leave
    # rounding residue behind in the sums of the small ones (the windows never empty here)
    inflow = rng.exponential(1.0, size=n) * np.where(rng.random(n) < 0.01, 1e12, 1.0)
    outflow = rng.exponential(1.0, size=n) * np.where(rng.random(n) < 0.01, 1e12, 1.0)
    windows = {"1h": 3_600_000, "1d": DAY_MS}
    rn = RollingNetflow(windows)
    worst = 0.0
    for i in range(n):
        rn.update(int(t[i]), float(inflow[i]), float(outflow[i]))
        if i % 101 == 0 or i > n - 50:
            for name, w in windows.items():
                sel = slice(int(np.searchsorted(t, t[i] - w, side="right")), i + 1)
                ref = math.fsum(inflow[sel]) - math.fsum(outflow[sel])
                scale = max(float(inflow[sel].max()), float(outflow[sel].max()))
                worst = max(worst, abs(rn.netflow(name) - ref) / scale)
    assert worst < 1e-12


def test_state_round_trip_continues_bit_for_bit() -> None:
    t, inflow, outflow = random_flows(5, 2000)
    a = RollingNetflow(WINDOWS)
    for ti, x, y in zip(t[:900], inflow[:900], outflow[:900], strict=True):
        a.update(int(ti), float(x), float(y))
    state = json.loads(json.dumps(a.to_state(), allow_nan=False))
    b = RollingNetflow.from_state(state)
    assert b.to_state() == a.to_state()
    for ti, x, y in zip(t[900:], inflow[900:], outflow[900:], strict=True):
        assert a.update(int(ti), float(x), float(y)) == b.update(int(ti), float(x), float(y))
    assert a.to_state() == b.to_state()
    empty = RollingNetflow.from_state(json.loads(json.dumps(RollingNetflow({"w": 5}).to_state())))
    assert empty.last_t_ms is None and empty.update(1, 2.0, 3.0) == {"w": -1.0}


def test_out_of_order_and_bad_values_leave_state_unchanged() -> None:
    rn = RollingNetflow({"w": 100})
    rn.update(50, 1.0, 0.0)
    before = rn.to_state()
    with pytest.raises(EventOrderError, match="t_ms=49 is older than .*t_ms=50"):
        rn.update(49, 1.0, 0.0)
    for bad_in, bad_out in ((-1.0, 0.0), (0.0, -1e-9), (math.nan, 0.0), (0.0, math.inf)):
        with pytest.raises(ValueError, match="finite and >= 0"):
            rn.update(60, bad_in, bad_out)
    with pytest.raises(EventOrderError, match="t_ms=50 is a duplicate of .*t_ms=50"):
        rn.update(50, 0.0, 3.0)  # the same ms again: a repeat
    assert rn.to_state() == before
    assert rn.update(51, 0.0, 3.0) == {"w": -2.0}


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="at least one window"):
        RollingNetflow({})
    for bad in (0, -5, 1.5, True):
        with pytest.raises(ValueError, match="window 'w'"):
            RollingNetflow({"w": bad})  # type: ignore[dict-item]


def test_classify() -> None:
    assert classify(-100.0, 100.0) == "accumulation"
    assert classify(-100.5, 100.0) == "accumulation"
    assert classify(-99.9, 100.0) == "neutral"
    assert classify(0.0, 100.0) == "neutral"
    assert classify(99.9, 100.0) == "neutral"
    assert classify(100.0, 100.0) == "distribution"
    assert classify(1e9, 100.0) == "distribution"
    assert classify(-1e-300, 0.0) == "accumulation"
    assert classify(1e-300, 0.0) == "distribution"
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="threshold"):
            classify(0.0, bad)
    with pytest.raises(ValueError, match="netflow"):
        classify(math.nan, 1.0)


def test_rank_flows() -> None:
    flows = {"ETH": 5.0, "SOL": -20.0, "ARB": -20.0, "BTC": -300.0, "DOGE": 0.0}
    assert rank_flows(flows) == [
        ("BTC", -300.0), ("ARB", -20.0), ("SOL", -20.0), ("DOGE", 0.0), ("ETH", 5.0)
    ]
    assert rank_flows({}) == []
    with pytest.raises(ValueError, match="'X'"):
        rank_flows({"A": 1.0, "X": math.nan})
