"""BarBuilder against pandas resampling of real trades, and its late-event rule."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from foundation.errors import EventOrderError
from streams.bars import BarBuilder

WS = Path(__file__).resolve().parents[1] / "data" / "ws"
SHARED_WS = Path(__file__).resolve().parents[3] / "shared" / "data" / "ws"


def recorded_agg_trades() -> pd.DataFrame:
    """Real Binance USD-M aggTrades (cryptofeed's recorded session): symbol, time, price, qty."""
    path = next(p / "cryptofeed_BINANCE_FUTURES.ws.1.0.txt" for p in (WS, SHARED_WS)
                if (p / "cryptofeed_BINANCE_FUTURES.ws.1.0.txt").is_file())
    rows = []
    for line in path.read_text().splitlines()[1:]:
        _, _, frame = line.partition(": ")
        data = json.loads(frame).get("data", {})
        if data.get("e") == "aggTrade":
            rows.append((data["s"], int(data["T"]), float(data["p"]), float(data["q"])))
    return pd.DataFrame(rows, columns=["symbol", "t_ms", "price", "amount"])


@pytest.mark.parametrize("symbol", ["SUSHIUSDT", "CTKUSDT", "AKROUSDT"])
@pytest.mark.parametrize("seconds", [5, 60])
def test_bars_match_pandas_resampling_of_real_trades(symbol: str, seconds: int) -> None:
    """The recording lasts about 30 s, so 5 s bars give several closed bars per symbol."""
    trades = recorded_agg_trades()
    trades = trades[trades.symbol == symbol].sort_values("t_ms", kind="stable")
    assert len(trades) >= 5
    builder = BarBuilder((seconds,), allowed_lateness_ms=0)
    closed = []
    for row in trades.itertuples():
        closed += builder.add(int(row.t_ms), float(row.price), float(row.amount))
    frame = trades.set_index(pd.to_datetime(trades.t_ms, unit="ms"))
    rule = f"{seconds}s"
    expected = frame.price.resample(rule).ohlc()
    expected["volume"] = frame.amount.resample(rule).sum()
    expected["trades"] = frame.price.resample(rule).count()
    expected = expected[expected.trades > 0]
    # every bar but the still-open last one has closed, equal to pandas' resampling
    assert len(closed) == len(expected) - 1 >= (1 if seconds == 60 else 3)
    for bar, (start, row) in zip(closed, expected.iloc[:-1].iterrows(), strict=True):
        assert bar.start_ms == int(start.value // 1_000_000)
        assert (bar.open, bar.high, bar.low, bar.close, bar.trades) == (
            row.open, row.high, row.low, row.close, row.trades)
        assert bar.volume == pytest.approx(row.volume, rel=1e-12)
    assert builder.current(seconds) is not None


def test_late_trades_land_in_their_bar_until_lateness_then_are_rejected() -> None:
    builder = BarBuilder((60, 3600), allowed_lateness_ms=5_000)
    assert builder.add(10_000, 100.0, 1.0) == []
    assert builder.add(61_000, 101.0, 1.0) == []       # next minute; first bar still open
    assert builder.add(30_000, 99.0, 2.0) == []        # late but within lateness: lands
    closed = builder.add(65_000, 102.0, 1.0)           # end 60 s + 5 s lateness: closes
    assert [(b.start_ms, b.open, b.low, b.close, b.volume, b.trades) for b in closed] == [
        (0, 100.0, 99.0, 99.0, 3.0, 2)]
    with pytest.raises(EventOrderError, match="late: its 1m bar closed at t_ms=60000"):
        builder.add(59_000, 98.0, 1.0)
    hour = builder.current(3600)
    assert hour is not None and (hour.trades, hour.low) == (4, 99.0)  # rejected trade not in
    state = builder.to_state()
    again = BarBuilder.from_state((60, 3600), 5_000, json.loads(json.dumps(state)))
    assert again.add(3_605_001, 103.0, 1.0) == builder.add(3_605_001, 103.0, 1.0)


@pytest.mark.parametrize(("price", "amount"), [(float("nan"), 1.0), (-1.0, 1.0), (1.0, -2.0)])
def test_bad_trades_are_rejected_without_changing_state(price: float, amount: float) -> None:
    builder = BarBuilder((60,), 0)
    builder.add(1_000, 10.0, 1.0)
    with pytest.raises(ValueError):
        builder.add(2_000, price, amount)
    bar = builder.current(60)
    assert bar is not None and bar.trades == 1


def test_a_trade_delivered_again_is_a_duplicate_even_in_a_bar_still_open() -> None:
    """At least once: after a crash or a rebalance the trades since the last commit come
    again, at the same input position, to the state recovered from the changelog."""
    builder = BarBuilder((60, 3600), allowed_lateness_ms=5_000)
    builder.add(10_000, 100.0, 1.0, (2, 7))
    builder.add(20_000, 101.0, 2.0, (2, 8))
    recovered = BarBuilder.from_state((60, 3600), 5_000, json.loads(json.dumps(
        builder.to_state())))
    for offset in (7, 8):
        with pytest.raises(EventOrderError, match=f"duplicate: offset {offset} of partition 2"):
            recovered.add(10_000 + 10_000 * (offset - 7), 100.0, 1.0, (2, offset))
    recovered.add(30_000, 102.0, 1.0, (2, 9))
    recovered.add(30_000, 102.0, 1.0, (0, 3))  # another partition counts its own offsets
    for interval in (60, 3600):
        bar = recovered.current(interval)
        assert bar is not None and (bar.trades, bar.volume, bar.close) == (4, 5.0, 102.0)
    # a state saved before positions were kept still loads, and keeps none
    old = {k: v for k, v in builder.to_state().items() if k != "applied"}
    assert BarBuilder.from_state((60, 3600), 5_000, old).applied == {}
