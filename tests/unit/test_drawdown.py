"""Drawdown against numpy's running maximum on the real BTC closes; share_below."""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from foundation.errors import EventOrderError
from streams.drawdown import Drawdown, share_below

REPLAY = Path(__file__).resolve().parents[2] / "data" / "replay"


def day_ms(day: str) -> int:
    d = date.fromisoformat(day)
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 1000


def read_btc() -> tuple[np.ndarray, np.ndarray]:
    with open(REPLAY / "btc_usd.csv", newline="") as f:
        rows = [(day_ms(r["Date"]), float(r["Close"])) for r in csv.DictReader(f)]
    return np.array([t for t, _ in rows], dtype=np.int64), np.array([c for _, c in rows])


def first_ath_index(prices: np.ndarray) -> np.ndarray:
    """Index of the first price equal to the running maximum, at every position."""
    running = np.maximum.accumulate(prices)
    out = np.empty(prices.size, dtype=np.int64)
    j = 0
    for i in range(prices.size):
        if running[i] != running[j]:
            j = i
        out[i] = j
    return out


def test_real_btc_closes_against_numpy_running_max() -> None:
    t, close = read_btc()
    assert close.size == 4211 and np.all(np.diff(t) > 0)
    dd = Drawdown()
    got = np.array([dd.update(int(ti), float(c)) for ti, c in zip(t, close, strict=True)])
    ref = close / np.maximum.accumulate(close) - 1
    np.testing.assert_array_equal(got, ref)  # the same float operations: exactly equal
    assert dd.ath == close.max() and dd.ath_t_ms == t[int(np.argmax(close))]
    assert dd.drawdown == got[-1] and dd.last_t_ms == t[-1]
    # the 2018 bear market took BTC more than 80 % below its December 2017 record
    assert got.min() < -0.8
    assert t[int(np.argmin(got))] < day_ms("2019-01-01")


@pytest.mark.parametrize("seed", range(5))
def test_random_prices_with_ties_at_the_high(seed: int) -> None:
    rng = np.random.default_rng(seed)
    prices = np.round(np.exp(np.cumsum(rng.normal(0, 0.05, size=2000))), 1)  # ties at the ATH
    prices = np.maximum(prices, 0.1)
    dd = Drawdown()
    first = first_ath_index(prices)
    running = np.maximum.accumulate(prices)
    for i, p in enumerate(prices):
        v = dd.update(1000 * i, float(p))
        assert v == p / running[i] - 1
        assert dd.ath == running[i] and dd.ath_t_ms == 1000 * first[i]
        assert v <= 0


def test_small_example_exact() -> None:
    dd = Drawdown()
    assert dd.update(1, 100.0) == 0.0
    assert dd.update(2, 50.0) == -0.5
    assert dd.update(3, 100.0) == 0.0 and dd.ath_t_ms == 1  # equal to the record: not new
    assert dd.update(4, 200.0) == 0.0 and dd.ath_t_ms == 4
    assert dd.update(5, 20.0) == -0.9
    assert (dd.ath, dd.drawdown, dd.last_t_ms) == (200.0, -0.9, 5)


def test_state_round_trip_continues_identically() -> None:
    t, close = read_btc()
    a = Drawdown()
    assert Drawdown.from_state(json.loads(json.dumps(a.to_state()))).to_state() == a.to_state()
    for ti, c in zip(t[:2000], close[:2000], strict=True):
        a.update(int(ti), float(c))
    b = Drawdown.from_state(json.loads(json.dumps(a.to_state(), allow_nan=False)))
    assert b.to_state() == a.to_state()
    for ti, c in zip(t[2000:], close[2000:], strict=True):
        assert a.update(int(ti), float(c)) == b.update(int(ti), float(c))
    assert a.to_state() == b.to_state()


def test_out_of_order_and_bad_prices_leave_state_unchanged() -> None:
    dd = Drawdown()
    dd.update(1000, 10.0)
    dd.update(2000, 8.0)
    before = dd.to_state()
    with pytest.raises(EventOrderError, match="t_ms=2000 is a duplicate of .*t_ms=2000"):
        dd.update(2000, 20.0)
    with pytest.raises(EventOrderError, match="t_ms=1500 is older than .*t_ms=2000"):
        dd.update(1500, 20.0)
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="positive and finite"):
            dd.update(3000, bad)
    assert dd.to_state() == before
    assert dd.update(3000, 5.0) == -0.5


def test_share_below_exact() -> None:
    drawdowns = {"BTC": -0.9, "ETH": -0.85, "AAA": -0.8, "BBB": -0.79, "CCC": -0.95, "DDD": 0.0}
    assert share_below(drawdowns) == 0.5  # AAA (at the threshold) and CCC of four
    assert share_below(drawdowns, threshold=-0.9) == 0.25
    assert share_below(drawdowns, exclude=()) == 4 / 6
    assert share_below(drawdowns, threshold=-0.5, exclude={"DDD"}) == 1.0
    assert share_below({}) is None
    assert share_below({"BTC": -0.9, "ETH": -0.9}) is None
    with pytest.raises(ValueError, match="'AAA'"):
        share_below({"AAA": math.nan})
    with pytest.raises(ValueError, match="threshold"):
        share_below({"AAA": -0.5}, threshold=math.nan)


@pytest.mark.parametrize("seed", range(5))
def test_share_below_random_against_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = np.round(-rng.random(300), 2)
    drawdowns = {f"C{i}": float(v) for i, v in enumerate(values)}
    drawdowns["BTC"] = drawdowns["ETH"] = -0.99
    assert share_below(drawdowns, -0.8) == np.count_nonzero(values <= -0.8) / values.size
