"""Property tests of the incremental estimators over long streams, and references on real data.

Hypothesis draws the shape of a stream (segments of very different offset and scale, constant
and near-constant stretches, random walks, irregular clocks); numpy fills it in from a drawn
seed. At every k-th step and at the end the incremental value must equal a full recompute over
the current window, and a state round trip at a drawn point must not change anything after it.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.drawdown import Drawdown, share_below
from streams.longshort import RatioHistory
from streams.netflow import DAY_MS, RollingNetflow
from streams.rolling import RollingCorrelation, log_returns, pearson

REPLAY = Path(__file__).resolve().parents[2] / "data" / "replay"

# --- stream strategies --------------------------------------------------------------------

MAGNITUDES = [0.0, 1e-3, 1.0, 1e3, 1e6, 1e9]
SCALES = [0.0, 1e-9, 1e-3, 1.0, 1e3, 1e6, 1e9]

segment = st.tuples(
    st.integers(150, 900),  # length
    st.sampled_from(MAGNITUDES),  # offset
    st.sampled_from([-1.0, 1.0]),  # sign of the offset
    st.sampled_from(SCALES),  # noise scale (0: a constant stretch)
    st.sampled_from(["noise", "walk", "near_constant"]),
)
segments = st.lists(segment, min_size=3, max_size=7)
seeds = st.integers(0, 2**32 - 1)


def build(segs: list[tuple[int, float, float, float, str]], seed: int) -> np.ndarray:
    """One series from its segments: offset + scale * noise (or a walk, or the offset times
    1 + 1e-12 noise); ``near_constant`` stresses cancellation in the removals."""
    rng = np.random.default_rng(seed)
    parts = []
    for length, offset, sign, scale, kind in segs:
        z = rng.normal(size=length)
        if kind == "walk":
            z = np.cumsum(z) / math.sqrt(length)
        if kind == "near_constant":
            base = offset if offset else 1.0
            parts.append(sign * base * (1.0 + 1e-12 * z))
        else:
            parts.append(sign * offset + scale * z)
    return np.concatenate(parts)


def same(a: float | None, b: float | None) -> bool:
    """Equal, both None or both NaN (bit-for-bit continuation)."""
    if a is None or b is None:
        return a is None and b is None
    return (math.isnan(a) and math.isnan(b)) or a == b


def ref_beta(x: np.ndarray, y: np.ndarray) -> float:
    dx = (x - x[0]) - (x - x[0]).mean()
    dy = (y - y[0]) - (y - y[0]).mean()
    return float(np.dot(dx, dy) / np.dot(dx, dx))


# --- RollingCorrelation -------------------------------------------------------------------


def check_correlation(rc: RollingCorrelation, x: np.ndarray, y: np.ndarray, i: int) -> None:
    """Correlation and beta of the window ending at i against the two-pass recompute."""
    lo = max(0, i + 1 - rc.window)
    wx, wy = x[lo:i + 1], y[lo:i + 1]
    assert rc.n == wx.size
    r, beta = rc.correlation, rc.beta
    if rc.n < rc.min_periods:
        assert r is None and beta is None
        return
    assert r is not None and beta is not None
    expected = pearson(wx, wy)
    if math.isnan(expected):
        assert math.isnan(r), i
    else:
        # |r| <= 1, so an absolute bound is the relative error of Sxy against sqrt(Sxx Syy)
        assert r == pytest.approx(expected, rel=1e-9, abs=1e-10), i
    if np.all(wx == wx[0]):
        assert math.isnan(beta), i
        return
    expected_beta = ref_beta(wx, wy)
    dy = wy - wy[0]
    dx = wx - wx[0]
    spread = math.sqrt(float(np.dot(dy - dy.mean(), dy - dy.mean())) /
                       float(np.dot(dx - dx.mean(), dx - dx.mean())))
    assert beta == pytest.approx(expected_beta, rel=1e-9, abs=1e-10 * spread), i


#: how much of x's shape y carries. Not tinier than 1e-3: with rho = 3e-167, y is rounding
#: residue after a 1e6 step has left the window (below double precision relative to the
#: window's recent values), which no sum-based rolling estimator resolves (found by this test)
rhos = st.one_of(st.just(0.0), st.floats(1e-3, 1.0), st.floats(-1.0, -1e-3))


@settings(max_examples=150, deadline=None)
@given(xs=segments, ys=segments, seed=seeds, window=st.sampled_from([2, 3, 30, 90, 250]),
       k=st.integers(7, 61), rho=rhos)
def test_rolling_correlation_equals_recompute(
    xs: list, ys: list, seed: int, window: int, k: int, rho: float
) -> None:
    x = build(xs, seed)
    noise = build(ys, seed + 1)
    n = min(x.size, noise.size)
    x, noise = x[:n], noise[:n]
    # y partly follows x (scaled to y's own magnitude), so correlations span -1..1
    sx = float(np.std(x)) or 1.0
    sy = float(np.std(noise)) or 1.0
    y = rho * (x - x.mean()) * (sy / sx) + noise
    rc = RollingCorrelation(window, min_periods=2)
    for i in range(n):
        rc.update(float(x[i]), float(y[i]))
        if i % k == 0 or i == n - 1:
            check_correlation(rc, x, y, i)


def test_calm_after_volatile_stretch_is_exact_at_once() -> None:
    """Regression: after large values leave, Sxx is mostly rounding residue of the removals;
    the estimator used to return NaN (or a wrong value) until the next periodic re-anchor."""
    rng = np.random.default_rng(2)
    window = 90
    for shift in range(0, window, 9):  # every phase of the periodic re-anchor
        m = 1000 + shift
        x = np.concatenate([1e6 * rng.normal(size=m), 1e-3 * rng.normal(size=400)])
        y = 0.5 * x + np.concatenate([1e6 * rng.normal(size=m), 1e-3 * rng.normal(size=400)])
        rc = RollingCorrelation(window)
        for i in range(x.size):
            rc.update(float(x[i]), float(y[i]))
            if i >= m - 5:
                check_correlation(rc, x, y, i)


@settings(max_examples=60, deadline=None)
@given(xs=segments, seed=seeds, window=st.sampled_from([2, 30, 90]), data=st.data())
def test_rolling_correlation_state_round_trip(
    xs: list, seed: int, window: int, data: st.DataObject
) -> None:
    x = build(xs, seed)
    y = np.roll(x, 1) * 0.5 + build(xs, seed + 1)
    cut = data.draw(st.integers(0, x.size - 1))
    a = RollingCorrelation(window, min_periods=2)
    for i in range(cut):
        a.update(float(x[i]), float(y[i]))
    b = RollingCorrelation.from_state(json.loads(json.dumps(a.to_state(), allow_nan=False)))
    for i in range(cut, x.size):
        assert same(a.update(float(x[i]), float(y[i])), b.update(float(x[i]), float(y[i]))), i
        assert same(a.beta, b.beta)
    assert a.to_state() == b.to_state()


# --- RatioHistory -------------------------------------------------------------------------


def check_ratio_history(rh: RatioHistory, values: np.ndarray, i: int, z: float | None) -> None:
    """z of values[i] against values before it, and the window's mean and std after it."""
    history = values[max(0, i - rh.window):i]
    if history.size < rh.min_periods:
        assert z is None, i
    elif np.all(history == history[0]):
        assert z is not None and math.isnan(z), i
    else:
        h = history - history[0]
        expected = ((values[i] - history[0]) - h.mean()) / h.std(ddof=1)
        assert z is not None and z == pytest.approx(expected, rel=1e-9, abs=1e-9), i
    window = values[max(0, i + 1 - rh.window):i + 1]
    w = window - window[0]
    assert rh.mean == pytest.approx(window[0] + w.mean(), rel=1e-12, abs=1e-300), i
    if window.size >= 2:
        assert rh.std == pytest.approx(w.std(ddof=1), rel=1e-9, abs=1e-300), i


@settings(max_examples=150, deadline=None)
@given(segs=segments, seed=seeds, window=st.sampled_from([2, 7, 48, 336]),
       min_frac=st.floats(0.0, 1.0), k=st.integers(5, 53))
def test_ratio_history_equals_recompute(
    segs: list, seed: int, window: int, min_frac: float, k: int
) -> None:
    values = np.abs(build(segs, seed))  # ratios are >= 0
    min_periods = 2 + round(min_frac * (window - 2))
    rh = RatioHistory(window, min_periods)
    for i, v in enumerate(values):
        z = rh.update(1000 * i, float(v))
        if i % k == 0 or i == values.size - 1:
            check_ratio_history(rh, values, i, z)


def test_ratio_history_calm_after_volatile_stretch_and_large_offset() -> None:
    """Regressions: z-scores were ~100x off after a volatile stretch left the window (until
    the periodic re-anchor), and ~1e-3 off around a large offset (the values were unshifted)."""
    rng = np.random.default_rng(3)
    window = 90
    for shift in range(0, window, 9):
        m = 1000 + shift
        values = np.concatenate([1e6 + 1e3 * rng.normal(size=m),
                                 1.0 + 1e-4 * rng.normal(size=300),
                                 1e9 + 1e-3 * rng.normal(size=300)])
        rh = RatioHistory(window)
        for i, v in enumerate(values):
            z = rh.update(i, float(v))
            if i >= m - 5:
                check_ratio_history(rh, values, i, z)


@settings(max_examples=60, deadline=None)
@given(segs=segments, seed=seeds, window=st.sampled_from([2, 12, 48]), data=st.data())
def test_ratio_history_state_round_trip(
    segs: list, seed: int, window: int, data: st.DataObject
) -> None:
    values = np.abs(build(segs, seed))
    cut = data.draw(st.integers(0, values.size - 1))
    a = RatioHistory(window, 2, reanchor_every=data.draw(st.sampled_from([None, 1, 17])))
    for i in range(cut):
        a.update(i, float(values[i]))
    b = RatioHistory.from_state(json.loads(json.dumps(a.to_state(), allow_nan=False)))
    for i in range(cut, values.size):
        assert same(a.update(i, float(values[i])), b.update(i, float(values[i]))), i
        assert same(a.mean, b.mean) and same(a.std, b.std)
    assert a.to_state() == b.to_state()


# --- RollingNetflow -----------------------------------------------------------------------

# no gap of 0: a flow at the same ms as the last one is a duplicate, rejected
GAPS = [1, 10, 1_000, 60_000, 3_600_000, DAY_MS, 10 * DAY_MS]

flow_stream = st.tuples(
    st.lists(st.sampled_from(GAPS), min_size=4, max_size=7, unique=True),  # gap vocabulary
    st.sampled_from([1e-3, 1.0, 1e3]),  # usual flow size
    st.sampled_from([1.0, 1e3, 1e6, 1e9, 1e12]),  # whale multiplier
    st.floats(0.0, 0.05),  # whale probability
    st.floats(0.0, 0.5),  # probability of a zero flow
)


def make_flows(
    spec: tuple[list[int], float, float, float, float], seed: int, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gaps, size, whale, p_whale, p_zero = spec
    rng = np.random.default_rng(seed)
    t = 1_700_000_000_000 + np.cumsum(rng.choice(gaps, size=n)).astype(np.int64)

    def flows() -> np.ndarray:
        f = rng.exponential(size, size=n) * np.where(rng.random(n) < p_whale, whale, 1.0)
        return f * (rng.random(n) >= p_zero)

    return t, flows(), flows()


@settings(max_examples=100, deadline=None)
@given(spec=flow_stream, seed=seeds, n=st.integers(1000, 5000), k=st.integers(5, 41),
       lengths=st.lists(st.sampled_from([1, 1000, 3_600_000, DAY_MS, 7 * DAY_MS]),
                        min_size=1, max_size=3, unique=True))
def test_rolling_netflow_equals_recompute(
    spec: tuple[list[int], float, float, float, float], seed: int, n: int, k: int,
    lengths: list[int],
) -> None:
    t, inflow, outflow = make_flows(spec, seed, n)
    windows = {f"w{length}": length for length in lengths}
    # the compensated sums may keep a residue of about eps**2 of a whale that has left
    # (1e-21 after a 1e11 whale, say) until their next exact recompute
    residue = 1e-28 * np.maximum.accumulate(np.maximum(inflow, outflow))
    rn = RollingNetflow(windows)
    for i in range(n):
        out = rn.update(int(t[i]), float(inflow[i]), float(outflow[i]))
        assert set(out) == set(windows)
        if i % k and i != n - 1:
            continue
        for name, length in windows.items():
            lo = int(np.searchsorted(t[:i + 1], t[i] - length, side="right"))  # (t - w, t]
            ref_in = math.fsum(inflow[lo:i + 1])
            ref_out = math.fsum(outflow[lo:i + 1])
            assert rn.count(name) == i + 1 - lo
            # sums of flows >= 0: relative to themselves; the netflow relative to both
            tol = {"rel": 1e-13, "abs": residue[i]}
            assert rn.inflow(name) == pytest.approx(ref_in, **tol), (i, name)
            assert rn.outflow(name) == pytest.approx(ref_out, **tol), (i, name)
            assert abs(out[name] - (ref_in - ref_out)) <= (
                1e-13 * (ref_in + ref_out) + 2 * residue[i]), (i, name)


def test_rolling_netflow_residue_of_a_whale_is_second_order() -> None:
    """A whale, a few small flows, then only zeros: until the next exact recompute the sums
    may keep a residue, but of the order eps**2 of the whale (not eps, as a plain sum)."""
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(2000):
        whale = float(10.0 ** rng.uniform(6, 12))
        smalls = rng.exponential(1e-3, size=int(rng.integers(1, 5)))
        rn = RollingNetflow({"w": 100})
        rn.update(0, whale, whale / 3)
        for t, small in enumerate(smalls, start=1):
            rn.update(t, float(small), float(small) / 7)
        for t in range(smalls.size + 1, 150):
            rn.update(t, 0.0, 0.0)
            if t >= 100 + smalls.size:  # only zeros left in the window
                worst = max(worst, abs(rn.inflow("w")) / whale, abs(rn.outflow("w")) / whale)
    assert worst < 1e-30


@settings(max_examples=60, deadline=None)
@given(spec=flow_stream, seed=seeds, data=st.data())
def test_rolling_netflow_state_round_trip(
    spec: tuple[list[int], float, float, float, float], seed: int, data: st.DataObject
) -> None:
    n = 2000
    t, inflow, outflow = make_flows(spec, seed, n)
    windows = {"1h": 3_600_000, "1d": DAY_MS}
    cut = data.draw(st.integers(0, n - 1))
    a = RollingNetflow(windows)
    for i in range(cut):
        a.update(int(t[i]), float(inflow[i]), float(outflow[i]))
    b = RollingNetflow.from_state(json.loads(json.dumps(a.to_state(), allow_nan=False)))
    for i in range(cut, n):
        args = (int(t[i]), float(inflow[i]), float(outflow[i]))
        assert a.update(*args) == b.update(*args), i
    assert a.to_state() == b.to_state()


# --- Drawdown and share_below -------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(coins=st.integers(1, 12), n=st.integers(500, 3000), seed=seeds,
       vol=st.sampled_from([0.0, 1e-9, 0.01, 0.1, 1.0]),
       start=st.sampled_from([1e-3, 1.0, 1e3, 1e9]), decimals=st.sampled_from([None, 2]),
       threshold=st.sampled_from([-0.8, -0.5, -0.1]), k=st.integers(3, 37), data=st.data())
def test_drawdowns_and_share_below_equal_recompute(
    coins: int, n: int, seed: int, vol: float, start: float, decimals: int | None,
    threshold: float, k: int, data: st.DataObject,
) -> None:
    """Log-price walks over many orders of magnitude (ties at the high when rounded)."""
    rng = np.random.default_rng(seed)
    prices = start * np.exp(np.cumsum(rng.normal(0.0, vol, size=(n, coins)), axis=0))
    if decimals is not None:
        prices = np.maximum(np.round(prices, decimals), 10.0**-decimals)
    running = np.maximum.accumulate(prices, axis=0)
    expected = prices / running - 1
    symbols = [f"C{j}" for j in range(coins)]
    trackers = {s: Drawdown() for s in symbols}
    cut = data.draw(st.integers(0, n - 1))
    for i in range(n):
        if i == cut:  # the trackers continue from a JSON round trip
            trackers = {s: Drawdown.from_state(json.loads(json.dumps(dd.to_state())))
                        for s, dd in trackers.items()}
        for j, s in enumerate(symbols):
            got = trackers[s].update(1000 * i, float(prices[i, j]))
            assert got == expected[i, j]  # the same float operations: exactly equal
        if i % k and i != n - 1:
            continue
        for j, s in enumerate(symbols):
            dd = trackers[s]
            first = int(np.flatnonzero(prices[:i + 1, j] == running[i, j])[0])
            assert dd.ath == running[i, j] and dd.ath_t_ms == 1000 * first
        drawdowns = {s: trackers[s].drawdown or 0.0 for s in symbols}
        drawdowns["BTC"] = drawdowns["ETH"] = -0.99  # excluded
        assert share_below(drawdowns, threshold) == (
            np.count_nonzero(expected[i] <= threshold) / coins)


# --- real series --------------------------------------------------------------------------


def read_closes(name: str) -> pd.Series:
    with open(REPLAY / name, newline="") as f:
        rows = {row["Date"]: float(row["Close"]) for row in csv.DictReader(f)}
    return pd.Series(rows).sort_index()


@pytest.mark.parametrize("other", ["btc_usd.csv", "sp500_gspc.csv"])
def test_real_rut_correlation_against_pandas_rolling(other: str) -> None:
    rut = read_closes("russell2000_rut.csv")
    oth = read_closes(other)
    days = rut.index.intersection(oth.index)
    assert len(days) > 2500
    x = pd.Series(log_returns(rut[days].to_numpy()))
    y = pd.Series(log_returns(oth[days].to_numpy()))
    for window in (30, 90):
        ref = x.rolling(window).corr(y).to_numpy()
        ref_beta = (x.rolling(window).cov(y) / x.rolling(window).var()).to_numpy()
        rc = RollingCorrelation(window)
        got, betas = [], []
        for a, b in zip(x, y, strict=True):
            got.append(rc.update(a, b))
            betas.append(rc.beta)
        assert all(g is None for g in got[:window - 1])
        np.testing.assert_allclose(np.array(got[window - 1:], dtype=float), ref[window - 1:],
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(np.array(betas[window - 1:], dtype=float),
                                   ref_beta[window - 1:], rtol=1e-9, atol=1e-12)


def test_real_total_market_cap_vs_btc_correlation_against_pandas() -> None:
    """Total market cap (CoinGecko) against BTC closes: a snapshot at 00:00 UTC of day D + 1 is
    the market as BTC closed day D."""
    with open(REPLAY / "crypto_total_mcap_coingecko.csv", newline="") as f:
        caps = {(pd.Timestamp(int(r["snapped_at"]), unit="ms") - pd.Timedelta(days=1))
                .strftime("%Y-%m-%d"): float(r["market_cap"]) for r in csv.DictReader(f)}
    total = pd.Series(caps).sort_index()
    btc = read_closes("btc_usd.csv")
    days = total.index.intersection(btc.index)
    assert len(days) > 3000
    x = pd.Series(log_returns(total[days].to_numpy()))
    y = pd.Series(log_returns(btc[days].to_numpy()))
    window = 30
    ref = x.rolling(window).corr(y).to_numpy()
    rc = RollingCorrelation(window)
    got = np.array([np.nan if (r := rc.update(a, b)) is None else r
                    for a, b in zip(x, y, strict=True)])
    np.testing.assert_allclose(got[window - 1:], ref[window - 1:], rtol=1e-9, atol=1e-12)
    assert np.nanmedian(got) > 0.8  # BTC is most of the market


def read_long_short(name: str, time_col: str, ratio_col: str) -> pd.DataFrame:
    df = pd.read_csv(REPLAY / name)
    t = df[time_col]
    if not pd.api.types.is_numeric_dtype(t):  # text timestamps, UTC
        t = pd.to_datetime(t, utc=True).astype("int64") // 1_000_000
    out = pd.DataFrame({"t_ms": t.astype("int64"), "ratio": df[ratio_col].astype(float)})
    return out.sort_values("t_ms").drop_duplicates("t_ms").reset_index(drop=True)


@pytest.mark.parametrize(("name", "time_col", "ratio_col"), [
    ("binance_btcusdt_global_long_short_30m.csv", "timestamp", "longShortRatio"),
    ("okx_sol_usdt_swap_long_short_1h.csv", "ts", "ratio"),
])
@pytest.mark.parametrize(("window", "min_periods"), [(24, 24), (48, 12), (168, 48)])
def test_real_long_short_zscores_against_pandas_rolling(
    name: str, time_col: str, ratio_col: str, window: int, min_periods: int
) -> None:
    df = read_long_short(name, time_col, ratio_col)
    assert len(df) > 600
    s = df["ratio"]
    roll = s.rolling(window, min_periods=min_periods)
    ref_z = ((s - roll.mean().shift(1)) / roll.std().shift(1)).to_numpy()
    # the window after each ratio, from its first one on
    mean = s.rolling(window, min_periods=1).mean().to_numpy()
    std = s.rolling(window, min_periods=2).std().to_numpy()
    rh = RatioHistory(window, min_periods)
    for i, (t, v) in enumerate(zip(df["t_ms"], s, strict=True)):
        z = rh.update(int(t), float(v))
        history = s.iloc[max(0, i - window):i]
        if len(history) < min_periods:
            assert z is None
        elif history.nunique() == 1:
            assert z is not None and math.isnan(z)  # pandas: rounding noise, not 0
        else:
            assert z == pytest.approx(ref_z[i], rel=1e-8, abs=1e-9), i
        assert rh.mean == pytest.approx(mean[i], rel=1e-12)
        if s.iloc[max(0, i + 1 - window):i + 1].nunique() == 1:
            assert rh.std == (0.0 if i else None)
        else:
            assert rh.std == pytest.approx(std[i], rel=1e-8)
