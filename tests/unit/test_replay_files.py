"""The bundled replay files as events: the altcoin market cap and the long/short ratios."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from producers.replay import load_replay
from schemas.records import LongShortRatio, MarketCap

REPLAY = Path(__file__).resolve().parents[2] / "data" / "replay"


def test_total3_is_coinmarketcap_total_minus_btc_and_eth() -> None:
    events = load_replay(REPLAY, date(2025, 5, 8), date(2025, 5, 8))
    [total3] = [e.record for e in events if isinstance(e.record, MarketCap)
                and e.record.asset == "TOTAL3"]
    with (REPLAY / "crypto_global_metrics_coinmarketcap.csv").open() as fh:
        row = next(csv.DictReader(fh))
    # 3.019e12 total, 64.41 % BTC and 7.31 % ETH dominance on 2025-05-08
    assert total3.market_cap == pytest.approx(3019069391515.34 * (1 - 0.64407774843714
                                                                   - 0.07311835125146))
    assert total3.event_time == "2025-05-08T01:42:59.999Z" == row["last_updated"]
    assert total3.source == "replay:coinmarketcap total-btc-eth"


def test_long_short_ratios_of_both_exchanges() -> None:
    binance = [e.record for e in load_replay(REPLAY, date(2024, 8, 1), date(2024, 9, 30))
               if isinstance(e.record, LongShortRatio)]
    # the rows span 2024-08-12 12:30 .. 2024-09-12 UTC, every 30 minutes
    assert len(binance) == 1482 == len({r.event_time for r in binance})
    first = binance[0]
    assert first.event_time == "2024-08-12T12:30:00.000Z"
    assert (first.exchange, first.symbol, first.period, first.variant) == (
        "binanceusdm", "BTC/USDT:USDT", "30m", "global_account")
    assert first.long_share + first.short_share == pytest.approx(1.0, abs=1e-4)
    okx = [e.record for e in load_replay(REPLAY, date(2026, 5, 31), date(2026, 6, 26))
           if isinstance(e.record, LongShortRatio)]
    assert len(okx) == 625 and all(r.exchange == "okx" for r in okx)
    # ts 1780239600000 = 2026-05-31 15:00 UTC (23:00 in the file's UTC+8 column), ratio 3.44
    assert (okx[0].event_time, okx[0].ratio) == ("2026-05-31T15:00:00.000Z", 3.44)
    assert okx[0].long_share == pytest.approx(3.44 / 4.44)
