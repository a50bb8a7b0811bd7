"""Long/short cross-section and RatioHistory against scipy, numpy.polyfit and pandas rolling."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from foundation.errors import EventOrderError
from streams.longshort import CoinRatio, CrossSection, RatioHistory, average_ranks, cross_section

DERIVATIVES = Path(__file__).resolve().parents[2] / "data" / "replay"
BINANCE_30M = DERIVATIVES / "binance_btcusdt_global_long_short_30m.csv"


def same(a: float | None, b: float | None) -> bool:
    """Equal, both None or both NaN."""
    if a is None or b is None:
        return a is None and b is None
    return (math.isnan(a) and math.isnan(b)) or a == b


# --- cross-section ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_average_ranks_match_scipy_rankdata(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 10, size=40).astype(float)  # many ties
    np.testing.assert_array_equal(average_ranks(a), stats.rankdata(a, method="average"))


def test_small_cross_section_exact() -> None:
    coins = [
        CoinRatio("BTC", 1, 0.9),
        CoinRatio("ETH", 2, 1.1),
        CoinRatio("AAA", 3, 1.0),
        CoinRatio("BBB", 4, 2.0),
        CoinRatio("CCC", 5, 4.0),
        CoinRatio("DDD", 6, math.nan),  # broken feed: skipped
        CoinRatio("EEE", 7, 0.0),  # no ratio: skipped
        CoinRatio("FFF", 8, math.inf),
    ]
    cs = cross_section(coins)
    assert cs is not None
    assert cs.n == 3
    assert cs.share_long == 2 / 3  # 1.0 is not long-biased
    assert cs.spearman == 1.0
    # ln(ratio) = (rank - 3) * ln 2
    assert cs.slope == pytest.approx(math.log(2), rel=1e-15)
    assert cs.intercept == pytest.approx(-3 * math.log(2), rel=1e-15)


def test_decreasing_cap_more_long_gives_positive_spearman_and_slope() -> None:
    coins = [CoinRatio(f"C{r}", r, 1.0 + 0.1 * r) for r in range(3, 30)]
    cs = cross_section(coins)
    assert cs is not None and cs.spearman == 1.0 and cs.slope > 0 and cs.share_long == 1.0
    coins = [CoinRatio(f"C{r}", r, 3.0 - 0.1 * r) for r in range(3, 30)]
    cs = cross_section(coins)
    assert cs is not None and cs.spearman == -1.0 and cs.slope < 0


def test_nan_cases_and_none() -> None:
    assert cross_section([]) is None
    assert cross_section([CoinRatio("BTC", 1, 2.0), CoinRatio("ETH", 2, 1.5)]) is None
    assert cross_section([CoinRatio("AAA", 3, -1.0), CoinRatio("BBB", 4, 0.0)]) is None
    # two coins: no Spearman, but a line through two points
    cs = cross_section([CoinRatio("AAA", 3, 1.0), CoinRatio("BBB", 5, math.e**2)])
    assert cs is not None and isinstance(cs, CrossSection)
    assert cs.n == 2 and cs.share_long == 0.5 and math.isnan(cs.spearman)
    assert cs.slope == pytest.approx(1.0, rel=1e-15)
    assert cs.intercept == pytest.approx(-3.0, rel=1e-15)
    # one coin: nothing to fit
    cs = cross_section([CoinRatio("AAA", 3, 1.5)])
    assert cs is not None and cs.n == 1 and cs.share_long == 1.0
    assert math.isnan(cs.spearman) and math.isnan(cs.slope) and math.isnan(cs.intercept)
    # constant ratio: no rank correlation, flat line
    cs = cross_section([CoinRatio(f"C{r}", r, 1.25) for r in range(3, 8)])
    assert cs is not None and math.isnan(cs.spearman)
    assert cs.slope == 0.0 and cs.intercept == pytest.approx(math.log(1.25), rel=1e-15)
    # constant rank (tied ranks): no correlation, no slope
    cs = cross_section([CoinRatio(f"C{i}", 5, 1.0 + i) for i in range(4)])
    assert cs is not None and math.isnan(cs.spearman) and math.isnan(cs.slope)
    assert math.isnan(cs.intercept)


def test_exclude_is_configurable() -> None:
    coins = [CoinRatio("BTC", 1, 0.5), CoinRatio("SOL", 5, 2.0)]
    cs = cross_section(coins, exclude=())
    assert cs is not None and cs.n == 2 and cs.share_long == 0.5
    cs = cross_section(coins, exclude={"SOL"})
    assert cs is not None and cs.n == 1 and cs.share_long == 0.0


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        cross_section([CoinRatio("AAA", 3, 1.0), CoinRatio("AAA", 4, 1.0)])
    with pytest.raises(ValueError, match="rank of 'AAA'"):
        cross_section([CoinRatio("AAA", 0, 1.0)])
    with pytest.raises(ValueError, match="rank of 'AAA'"):
        cross_section([CoinRatio("AAA", 3.5, 1.0)])  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(20))
def test_cross_section_matches_scipy_and_polyfit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 200))
    ranks = rng.integers(1, 3 * n, size=n)  # ties in rank possible
    # long bias rising with rank plus noise, rounded so ratios tie too
    ratios = np.round(np.exp(0.002 * ranks + rng.normal(0, 0.3, size=n)), 2)
    coins = [CoinRatio(f"C{i}", int(r), float(v)) for i, (r, v) in enumerate(zip(ranks, ratios,
                                                                                 strict=True))]
    coins += [CoinRatio("BTC", 1, 9.0), CoinRatio("ETH", 2, 0.1)]  # excluded: would change all
    cs = cross_section(coins)
    assert cs is not None and cs.n == n
    assert cs.share_long == np.count_nonzero(ratios > 1) / n
    rho = stats.spearmanr(ratios, ranks).statistic
    assert cs.spearman == pytest.approx(rho, rel=1e-12, abs=1e-14)
    slope, intercept = np.polyfit(ranks.astype(float), np.log(ratios), 1)
    assert cs.slope == pytest.approx(slope, rel=1e-9, abs=1e-14)
    assert cs.intercept == pytest.approx(intercept, rel=1e-9, abs=1e-12)


# --- RatioHistory -------------------------------------------------------------------------


def pandas_z(values: np.ndarray, window: int, min_periods: int) -> np.ndarray:
    """z of each value against the `window` values before it, via pandas rolling."""
    s = pd.Series(values)
    roll = s.rolling(window, min_periods=min_periods)
    return ((s - roll.mean().shift(1)) / roll.std().shift(1)).to_numpy()


def run(rh: RatioHistory, values: np.ndarray, t0: int = 0) -> list[float | None]:
    return [rh.update(t0 + 1000 * i, float(v)) for i, v in enumerate(values)]


def check_against_pandas(
    values: np.ndarray, window: int, min_periods: int, rtol: float = 1e-9
) -> None:
    zs = run(RatioHistory(window, min_periods), values)
    ref = pandas_z(values, window, min_periods)
    for i, (z, r) in enumerate(zip(zs, ref, strict=True)):
        history = values[max(0, i - window):i]
        if history.size < min_periods:
            assert z is None, i
        elif np.all(history == history[0]):
            # pandas' std of a constant window is rounding noise, not exactly 0
            assert z is not None and math.isnan(z), i
        else:
            assert z is not None and z == pytest.approx(r, rel=rtol, abs=1e-9), i


def test_small_example_exact() -> None:
    rh = RatioHistory(3)
    assert run(rh, np.array([1.0, 2.0, 3.0])) == [None, None, None]
    assert rh.update(3000, 5.0) == 3.0  # mean 2, std 1
    assert rh.n == 3 and rh.mean == pytest.approx(10 / 3) and rh.std == pytest.approx(
        math.sqrt(7 / 3))
    rh = RatioHistory(5, min_periods=2)
    assert rh.update(0, 1.0) is None
    assert rh.update(1, 2.0) is None
    assert rh.update(2, 4.0) == pytest.approx(2.5 / math.sqrt(0.5), rel=1e-15)


def test_constant_window_gives_nan_then_recovers() -> None:
    rh = RatioHistory(4)
    zs = run(rh, np.array([0.1] * 4 + [0.3, 0.3, 0.3, 0.3, 0.3]))
    assert zs[:4] == [None] * 4
    z = zs[4]
    assert z is not None and math.isnan(z)  # 0.1 x4 has std 0 exactly
    assert zs[5] == pytest.approx(1.5, rel=1e-12)  # history 0.1 0.1 0.1 0.3: mean .15, std .1
    assert zs[8] is not None and math.isnan(zs[8])  # 0.3 x4
    assert rh.std == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_random_against_pandas(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = np.round(np.exp(rng.normal(0.5, 0.4, size=3000)), 2)
    values[1000:1100] = 1.5  # a constant stretch: std 0 -> NaN
    check_against_pandas(values, window=50, min_periods=10)
    check_against_pandas(values, window=7, min_periods=7)


def read_binance() -> pd.DataFrame:
    """The 30-minute BTCUSDT global long/short file; its 500-row pages are not in time order."""
    df = pd.read_csv(BINANCE_30M)
    assert list(df.columns) == ["Unnamed: 0", "symbol", "longAccount", "longShortRatio",
                                "shortAccount", "timestamp"]
    df["t_ms"] = pd.to_datetime(df["timestamp"], utc=True).astype("int64") // 1_000_000
    return df


def test_real_binance_ratio_in_file_order_rejects_the_older_pages() -> None:
    df = read_binance()
    rh = RatioHistory(48, 12)
    rejected = []
    for i, (t, v) in enumerate(zip(df["t_ms"], df["longShortRatio"], strict=True)):
        before = rh.to_state()
        try:
            rh.update(int(t), float(v))
        except EventOrderError as e:
            assert "older than" in str(e)
            assert rh.to_state() == before
            rejected.append(i)
    # rows 500.. and 1000.. are older pages: every row of them is rejected
    assert rejected == list(range(500, len(df)))
    assert rh.last_t_ms == df["t_ms"].iloc[499]


@pytest.mark.parametrize(("window", "min_periods"), [(48, 48), (336, 48), (12, 3)])
def test_real_binance_ratio_against_pandas(window: int, min_periods: int) -> None:
    df = read_binance().sort_values("t_ms")
    assert df["t_ms"].is_unique and len(df) == 1482
    values = df["longShortRatio"].to_numpy(dtype=float)
    check_against_pandas(values, window, min_periods)
    rh = RatioHistory(window, min_periods)
    zs = [rh.update(int(t), float(v)) for t, v in zip(df["t_ms"], values, strict=True)]
    finite = [z for z in zs if z is not None and math.isfinite(z)]
    assert len(finite) == len(df) - min_periods
    assert max(abs(z) for z in finite) > 2  # the data has crowded episodes


def test_no_drift_over_100k_updates() -> None:
    rng = np.random.default_rng(7)
    n, window = 100_000, 500
    # regime changes of very different scale: removals of the large values leave rounding
    # residue in M2 that the re-anchoring must clear
    values = np.concatenate([
        1000.0 + rng.normal(0, 50, size=20_000),
        1.0 + rng.normal(0, 1e-4, size=30_000),
        np.exp(rng.normal(0.5, 0.5, size=50_000)),
    ])
    assert values.size == n
    rh = RatioHistory(window, 100)
    worst = 0.0
    for i, v in enumerate(values):
        z = rh.update(i, float(v))
        if i % 97 == 0 or i > n - 500 or 20_000 <= i < 20_000 + 2 * window:
            hist = values[max(0, i - window):i]
            if hist.size < 100:
                assert z is None
                continue
            ref = (v - hist.mean()) / hist.std(ddof=1)
            assert z is not None
            err = abs(z - ref) / max(1.0, abs(ref))
            worst = max(worst, err)
    assert worst < 1e-9
    full = values[-window:]
    assert rh.mean == pytest.approx(full.mean(), rel=1e-13)
    assert rh.std == pytest.approx(full.std(ddof=1), rel=1e-11)


def test_state_round_trip_continues_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    values = np.exp(rng.normal(0.4, 0.3, size=700))
    a = RatioHistory(60, 20, reanchor_every=45)
    run(a, values[:333])
    state = json.loads(json.dumps(a.to_state(), allow_nan=False))
    b = RatioHistory.from_state(state)
    assert b.to_state() == a.to_state()
    za = run(a, values[333:], t0=10_000_000)
    zb = run(b, values[333:], t0=10_000_000)
    assert all(same(x, y) for x, y in zip(za, zb, strict=True))
    assert a.to_state() == b.to_state()
    fresh = RatioHistory.from_state(json.loads(json.dumps(RatioHistory(5).to_state())))
    assert fresh.n == 0 and fresh.last_t_ms is None and fresh.mean is None and fresh.std is None


def test_out_of_order_and_bad_values_leave_state_unchanged() -> None:
    rh = RatioHistory(3, 2)
    rh.update(1000, 1.0)
    rh.update(2000, 2.0)
    before = rh.to_state()
    with pytest.raises(EventOrderError, match="t_ms=2000 is a duplicate of .*t_ms=2000"):
        rh.update(2000, 3.0)
    with pytest.raises(EventOrderError, match="t_ms=1500 is older than .*t_ms=2000"):
        rh.update(1500, 3.0)
    for bad in (math.nan, math.inf, -math.inf, -0.5):
        with pytest.raises(ValueError, match="finite and >= 0"):
            rh.update(3000, bad)
    assert rh.to_state() == before
    assert rh.update(3000, 3.0) == pytest.approx(1.5 / math.sqrt(0.5))


def test_constructor_validation() -> None:
    for bad in (1, 0, True, 2.5):
        with pytest.raises(ValueError, match="window"):
            RatioHistory(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_periods"):
        RatioHistory(5, 1)
    with pytest.raises(ValueError, match="min_periods"):
        RatioHistory(5, 6)
    with pytest.raises(ValueError, match="reanchor_every"):
        RatioHistory(5, reanchor_every=0)
    with pytest.raises(ValueError, match="6 values for window 5"):
        RatioHistory.from_state({**RatioHistory(5).to_state(), "values": [1.0] * 6})
