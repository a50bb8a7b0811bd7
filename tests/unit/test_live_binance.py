"""Binance stream parsing against real recorded frames (tests/data/ws), without a network."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from wsfixtures import BINANCE_FUTURES, BINANCE_SPOT, binance_agg_trades, load_recording

from producers.live.binance_ws import (
    agg_trade_tick,
    book_ticker,
    connection_urls,
    from_config,
    mark_price_ticker,
    parse_combined,
)
from producers.live.core import MalformedInput, MemoryEmitter
from schemas.decode import decode_event
from schemas.records import CryptoTick, CryptoTicker

FUTURES = load_recording(BINANCE_FUTURES)
SPOT = load_recording(BINANCE_SPOT)
FUTURES_SYMBOLS = ["SUSHI/USDT:USDT", "AKRO/USDT:USDT", "KEEP/USDT:USDT", "CTK/USDT:USDT"]


def futures_source(**extra: Any) -> Any:
    return from_config({"type": "binance_ws", "name": "bf", "market": "usdm",
                        "symbols": FUTURES_SYMBOLS, "channels": ["aggTrade", "bookTicker"],
                        **extra}, "sources[0]")


def test_recorded_futures_trades_normalise_to_these_ticks() -> None:
    frames = [f for f in FUTURES.frames if "@aggTrade" in f]
    # the first frames of the recording, written out by hand from the raw JSON
    stream, data = parse_combined(frames[0])
    assert stream == "ctkusdt@aggTrade"
    assert agg_trade_tick(data, "binanceusdm", "CTK/USDT:USDT") == (CryptoTick(
        exchange="binanceusdm", symbol="CTK/USDT:USDT", event_time="2021-07-22T22:25:41.421Z",
        price=1.011, amount=10.0, side="buy", trade_id="16599292"), 16599292)
    sells = [parse_combined(f)[1] for f in frames if '"m":true' in f]
    assert sells[0] == {"e": "aggTrade", "E": 1626992742291, "a": 14888302, "s": "AKROUSDT",
                        "p": "0.01731", "q": "312", "f": 27931348, "l": 27931348,
                        "T": 1626992742134, "m": True}
    assert agg_trade_tick(sells[0], "binanceusdm", "AKRO/USDT:USDT")[0] == CryptoTick(
        exchange="binanceusdm", symbol="AKRO/USDT:USDT", event_time="2021-07-22T22:25:42.134Z",
        price=0.01731, amount=312.0, side="sell", trade_id="14888302")


def test_every_recorded_trade_field_by_field_and_valid_on_the_topic() -> None:
    trades = binance_agg_trades(FUTURES.frames) + binance_agg_trades(SPOT.frames)
    assert len(trades) == 91 + 2
    for data in trades:
        tick, trade_id = agg_trade_tick(data, "x", "A/B")
        assert trade_id == data["a"] and tick.trade_id == str(data["a"])
        assert tick.price == float(data["p"]) and tick.amount == float(data["q"])
        assert tick.side == ("sell" if data["m"] else "buy")
        assert tick.event_time.endswith(f".{data['T'] % 1000:03d}Z")
        assert decode_event(CryptoTick, tick.dumps()) == tick


def test_book_tickers_use_the_exchange_time_or_else_the_time_of_receipt() -> None:
    _, futures = parse_combined(next(f for f in FUTURES.frames if "@bookTicker" in f))
    assert book_ticker(futures, "binanceusdm", "SUSHI/USDT:USDT", 0) == CryptoTicker(
        exchange="binanceusdm", symbol="SUSHI/USDT:USDT", event_time="2021-07-22T22:25:41.012Z",
        kind="book", bid=7.611, ask=7.612)
    _, spot = parse_combined(next(f for f in SPOT.frames if "@bookTicker" in f))
    assert "E" not in spot and "T" not in spot  # spot book tickers carry no time
    ticker = book_ticker(spot, "binance", "NKN/USDT", 1633998512999)
    assert (ticker.event_time, ticker.bid, ticker.ask) == ("2021-10-12T00:28:32.999Z", 0.3521,
                                                           0.3526)
    assert decode_event(CryptoTicker, ticker.dumps()) == ticker


def test_mark_price_update() -> None:
    # the example event of Binance's USD-M "Mark Price Stream" documentation
    data = {"e": "markPriceUpdate", "E": 1562305380000, "s": "BTCUSDT", "p": "11794.15000000",
            "i": "11784.62659091", "P": "11784.25641265", "r": "0.00038167", "T": 1562306400000}
    assert mark_price_ticker(data, "binanceusdm", "BTC/USDT:USDT") == CryptoTicker(
        exchange="binanceusdm", symbol="BTC/USDT:USDT", event_time="2019-07-05T05:43:00.000Z",
        kind="mark", mark_price=11794.15, funding_rate=0.00038167)


@pytest.mark.parametrize(("raw", "reason"), [
    ("{", "not JSON"),
    ("[1]", "not a JSON object"),
    ('{"result": null, "id": 1}', "not a combined-stream event"),
])
def test_frames_that_are_not_events(raw: str, reason: str) -> None:
    with pytest.raises(MalformedInput, match=reason):
        parse_combined(raw)


GOOD = {"a": 1, "p": "1.5", "q": "2", "T": 1626992741421, "m": False}


@pytest.mark.parametrize(("changes", "reason"), [
    ({"a": "1"}, "aggTrade without an integer 'a'"),
    ({"p": None}, "aggTrade.p: missing, must be a finite number"),
    ({"p": "abc"}, "aggTrade.p: 'abc' must be a finite number"),
    ({"p": "NaN"}, "aggTrade.p: 'NaN' must be a finite number"),
    ({"p": 10**400}, "aggTrade.p: 1000000.* must be a finite number"),
    ({"p": "0"}, "aggTrade.p: '0' must be > 0"),
    ({"q": "-1"}, "aggTrade.q: '-1' must be >= 0"),
    ({"m": "false"}, "aggTrade without a boolean 'm'"),
    ({"T": 1.5}, "aggTrade without an integer 'T'"),
])
def test_malformed_trades_say_why(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(MalformedInput, match=reason):
        agg_trade_tick({**GOOD, **changes}, "x", "A/B")
    with pytest.raises(MalformedInput, match="aggTrade.q: missing"):
        agg_trade_tick({k: v for k, v in GOOD.items() if k != "q"}, "x", "A/B")


async def test_recorded_session_through_the_source(caplog: pytest.LogCaptureFixture) -> None:
    source = futures_source()
    out = MemoryEmitter(source.stats)
    bad = '{"stream": "ctkusdt@aggTrade", "data": {"a": 1}}'
    with caplog.at_level(logging.WARNING):
        for frame in [*FUTURES.frames, bad, bad, "garbage"]:
            await source.handle(frame, out)
    topics = [topic for topic, _, _ in out.records]
    assert topics.count("ticks") == 91 and topics.count("tickers") == 613
    assert source.stats.messages == len(FUTURES.frames) + 3
    # depth and kline frames were not subscribed: they are malformed here, as are the bad ones
    unsubscribed = sum(1 for f in FUTURES.frames if "@depth" in f or "@kline" in f)
    assert source.stats.malformed == unsubscribed + 3
    # logged once per reason: depth, kline, the bad trade, garbage
    assert sum("skipping malformed" in r.message for r in caplog.records) == 4
    keys = {key for topic, key, _ in out.records if topic == "ticks"}
    assert keys == {f"binanceusdm:{s}" for s in FUTURES_SYMBOLS}
    # a replay of the whole session (as after a reconnect) produces nothing new
    for frame in FUTURES.frames:
        await source.handle(frame, out)
    assert topics.count("ticks") == len([t for t, _, _ in out.records if t == "ticks"])
    assert source.stats.duplicates == 91


def test_streams_are_split_by_the_documented_limits() -> None:
    streams = [f"s{i}usdt@aggTrade" for i in range(2500)]
    urls = connection_urls("wss://stream.binance.com:9443", streams, 1024)
    assert [u.count("@") for u in urls] == [1024, 1024, 452]
    assert urls[0].startswith("wss://stream.binance.com:9443/stream?streams=s0usdt@aggTrade/")
    symbols = [f"C{i}/USDT:USDT" for i in range(150)]
    source = from_config({"type": "binance_ws", "name": "f", "market": "usdm",
                          "symbols": symbols, "channels": ["aggTrade", "markPrice"]}, "s")
    assert [u.count("@") for u in source.urls] == [200, 100]
    assert all(u.startswith("wss://fstream.binance.com/stream?") for u in source.urls)
    spot = from_config({"type": "binance_ws", "name": "s", "symbols": ["BTC/USDT"],
                        "ws_url": "ws://127.0.0.1:1/", "rest_url": "http://127.0.0.1:1"}, "s")
    assert spot.urls == ["ws://127.0.0.1:1/stream?streams=btcusdt@aggTrade"]
    assert spot.rest.base_url == "http://127.0.0.1:1" and spot.exchange == "binance"

