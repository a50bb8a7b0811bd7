"""The ccxt.pro source: recorded frames through ccxt's own parsers into our records, URL
overrides and config errors, without a network."""

from __future__ import annotations

import json
from typing import Any

import ccxt.pro as ccxtpro
import pytest
from wsfixtures import COINBASE, KRAKEN_FUTURES, load_recording

from foundation.errors import ConfigError
from producers.live.ccxt_ws import from_config, rehost, ticker_record, trade_tick
from producers.live.core import MalformedInput
from schemas.decode import decode_event
from schemas.records import CryptoTick, CryptoTicker


def recorded(path: Any, kind: str, field: str = "type") -> list[dict[str, Any]]:
    return [f for f in map(json.loads, load_recording(path).frames) if f.get(field) == kind]


def test_coinbase_exchange_matches_become_taker_side_ticks() -> None:
    exchange = ccxtpro.coinbaseexchange()
    exchange.set_markets([{"id": "SKL-USD", "symbol": "SKL/USD", "base": "SKL", "quote": "USD",
                           "baseId": "SKL", "quoteId": "USD", "type": "spot", "spot": True}])
    matches = [m for m in recorded(COINBASE, "match") if m["product_id"] == "SKL-USD"]
    # the recording's first SKL-USD match: {"trade_id":1568268, "side":"sell", "size":"450",
    # "price":"0.791", "time":"2021-04-17T16:43:37.121358Z"}: a sell MAKER, so a buy taker
    assert (matches[0]["trade_id"], matches[0]["side"]) == (1568268, "sell")
    tick = trade_tick(exchange.parse_ws_trade(matches[0]), "coinbaseexchange")
    assert tick == CryptoTick(exchange="coinbaseexchange", symbol="SKL/USD",
                              event_time="2021-04-17T16:43:37.121Z", price=0.791, amount=450.0,
                              side="buy", trade_id="1568268")
    for match in matches:
        tick = trade_tick(exchange.parse_ws_trade(match), "coinbaseexchange")
        assert tick.side == {"buy": "sell", "sell": "buy"}[match["side"]]
        assert (tick.price, tick.amount, tick.trade_id) == (
            float(match["price"]), float(match["size"]), str(match["trade_id"]))
        assert decode_event(CryptoTick, tick.dumps()) == tick


def test_kraken_futures_trades_and_snapshots_become_ticks() -> None:
    exchange = ccxtpro.krakenfutures()
    exchange.set_markets([{"id": "PI_LTCUSD", "symbol": "LTC/USD:LTC", "base": "LTC",
                           "quote": "USD", "settle": "LTC", "baseId": "LTC", "quoteId": "USD",
                           "type": "swap", "spot": False, "swap": True, "contract": True}])
    live = [t for t in recorded(KRAKEN_FUTURES, "trade", "feed") if "uid" in t]
    ltc = next(t for t in live if t["product_id"] == "PI_LTCUSD")
    assert trade_tick(exchange.parse_ws_trade(ltc), "krakenfutures") == CryptoTick(
        exchange="krakenfutures", symbol="LTC/USD:LTC", event_time="2021-07-22T23:02:09.946Z",
        price=119.44, amount=320.0, side="buy", trade_id="e2429e31-8b9d-4195-900e-fd42be2dec89")
    snapshot = next(s for s in recorded(KRAKEN_FUTURES, "trade_snapshot", "feed")
                    if s["product_id"] == "PI_LTCUSD")
    ticks = [trade_tick(exchange.parse_ws_trade(t), "krakenfutures") for t in snapshot["trades"]]
    assert len({t.trade_id for t in ticks}) == 100
    assert [t.side for t in ticks] == [t["side"] for t in snapshot["trades"]]


def test_tickers_and_what_cannot_be_normalised() -> None:
    ticker = {"symbol": "BTC/USDT", "timestamp": 1626992741012, "bid": 1.0, "ask": 2.0,
              "last": 1.5, "markPrice": None}
    record = ticker_record(ticker, "okx", 0)
    assert record == CryptoTicker(exchange="okx", symbol="BTC/USDT", kind="ticker",
                                  event_time="2021-07-22T22:25:41.012Z", bid=1.0, ask=2.0,
                                  last=1.5)
    assert ticker_record({**ticker, "timestamp": None}, "okx", 999).event_time.endswith(".999Z")
    with pytest.raises(MalformedInput, match="without bid, ask, last or mark price"):
        ticker_record({"symbol": "BTC/USDT", "timestamp": 1}, "okx", 0)
    trade = {"symbol": "BTC/USDT", "timestamp": 1, "price": 1.0, "amount": 1.0, "side": None,
             "id": None}
    assert trade_tick(trade, "okx").side == "unknown"
    with pytest.raises(MalformedInput, match="without a usable symbol"):
        trade_tick({**trade, "symbol": "BTC/USD:BTC-210924"}, "krakenfutures")
    with pytest.raises(MalformedInput, match="without a timestamp"):
        trade_tick({**trade, "timestamp": None}, "okx")
    with pytest.raises(MalformedInput, match="trade.price: missing, must be a finite number"):
        trade_tick({**trade, "price": None}, "okx")
    with pytest.raises(MalformedInput, match=r"trade.amount: -1.0 must be >= 0"):
        trade_tick({**trade, "amount": -1.0}, "okx")
    with pytest.raises(MalformedInput, match=r"ticker.bid: -1 must be >= 0"):
        ticker_record({**ticker, "bid": -1}, "okx", 0)
    with pytest.raises(MalformedInput, match=r"ticker.last: True must be a finite number"):
        ticker_record({**ticker, "last": True}, "okx", 0)


def test_url_overrides_keep_paths_and_reach_the_exchange_object() -> None:
    urls = {"spot": "wss://stream.binance.com:9443/ws", "x": ["https://api.{hostname}/v1"]}
    assert rehost(urls, "ws://127.0.0.1:5") == {"spot": "ws://127.0.0.1:5/ws",
                                                "x": ["ws://127.0.0.1:5/v1"]}
    source = from_config({"type": "ccxt_ws", "name": "k", "exchange": "krakenfutures",
                          "symbols": ["BTC/USD:BTC"], "ws_url": "ws://127.0.0.1:5",
                          "rest_url": "http://127.0.0.1:6"}, "sources[0]")
    exchange = source.new_exchange()
    assert exchange.urls["api"]["ws"] == "ws://127.0.0.1:5/ws/v1"
    assert exchange.urls["api"]["public"] == "http://127.0.0.1:6/derivatives/api/"


@pytest.mark.parametrize(("changes", "message"), [
    ({"exchange": "ftx"}, "sources[3].exchange: 'ftx' is not one of binance, binanceusdm"),
    ({"symbols": ["BTC/USD:BTC-210924"]},
     "sources[3].symbols[0]: 'BTC/USD:BTC-210924' is not a ccxt unified spot or perpetual"),
    ({"channels": ["orderbook"]}, "sources[3].channels[0]: 'orderbook' is not one of trades"),
    ({"options": [1]}, "sources[3].options: must be a mapping"),
    ({"apiKey": "x"}, "sources[3].apiKey: secrets never go in the config file"),
    ({"ws_url": "ftp://x"}, "sources[3].ws_url: 'ftp://x' must start with wss:// or ws://"),
])
def test_config_errors_name_the_field(changes: dict[str, Any], message: str) -> None:
    data = {"type": "ccxt_ws", "name": "c", "exchange": "okx", "symbols": ["BTC/USDT"],
            **changes}
    with pytest.raises(ConfigError) as info:
        from_config(data, "sources[3]")
    assert message in str(info.value)
