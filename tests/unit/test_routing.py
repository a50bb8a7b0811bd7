"""route(): which pair-owning agents an input event reaches, with which role."""

from __future__ import annotations

import json
import re
from calendar import timegm
from typing import Any

import pytest

from foundation.config import SignalSettings
from foundation.errors import SchemaError
from schemas.records import CryptoTick, IndexQuote, MarketCap
from streams.routing import route, tick_for_bars

CONFIG = SignalSettings()
Routed = tuple[str, str, str, str, float]  # kind, pair, series, role, value
T = "2024-03-04T21:00:00.000Z"
T_MS = timegm((2024, 3, 4, 21, 0, 0)) * 1000


def quote(symbol: str, event_time: str = T, price: float = 2075.5) -> bytes:
    return IndexQuote(symbol=symbol, event_time=event_time, price=price, source="test").dumps()


def cap(asset: str) -> bytes:
    return MarketCap(asset=asset, event_time=T, market_cap=2.4e12, source="test").dumps()


def route_message(topic: str, raw: bytes | None,
                  config: SignalSettings) -> list[tuple[str, str, Any]]:
    """route() of a message keyed as producers key it: a tick by its "exchange:symbol"."""
    try:
        fields = json.loads(raw or b"")
        key = f"{fields['exchange']}:{fields['symbol']}".encode()
    except (ValueError, TypeError, KeyError, RecursionError):
        key = b"any"
    return route(topic, key, raw, config)


def tick(exchange: str, symbol: str) -> bytes:
    return CryptoTick(exchange=exchange, symbol=symbol, event_time=T, price=67000.5, amount=0.1,
                      side="buy", trade_id="1").dumps()


def routed(topic: str, raw: bytes, config: SignalSettings = CONFIG) -> list[Routed]:
    """(kind, pair, series, role, value) of every point routed to a pair agent; checks its
    time fields and key."""
    out = []
    for kind, key, point in route_message(topic, raw, config):
        if kind not in ("correlation", "regime"):
            continue
        assert (point.event_time, point.t_ms, key) == (T, T_MS, point.pair)
        out.append((kind, point.pair, point.series, point.role, point.value))
    return out


@pytest.mark.parametrize(("topic", "raw", "expected"), [
    ("index-quotes", quote("RUT"), [("correlation", "RUT~TOTAL", "RUT", "anchor", 2075.5),
                                    ("correlation", "RUT~BTC", "RUT", "anchor", 2075.5),
                                    ("correlation", "RUT~TOTAL3", "RUT", "anchor", 2075.5),
                                    ("regime", "RUT/SPX", "RUT", "anchor", 2075.5)]),
    ("index-quotes", quote("SPX"), [("correlation", "SPX~BTC", "SPX", "anchor", 2075.5),
                                    ("regime", "RUT/SPX", "SPX", "other", 2075.5)]),
    ("index-quotes", quote("IWM"), []),
    ("market-caps", cap("TOTAL"), [("correlation", "RUT~TOTAL", "TOTAL", "other", 2.4e12)]),
    ("market-caps", cap("BTC"), []),
    ("ticks", tick("replay", "BTC/USD"), [("correlation", "RUT~BTC", "BTC", "other", 67000.5),
                                          ("correlation", "SPX~BTC", "BTC", "other", 67000.5)]),
    ("ticks", tick("binance", "BTC/USD"), []),
    ("ticks", tick("replay", "ETH/USD"), []),
], ids=["RUT", "SPX", "IWM", "TOTAL", "BTC-mcap", "replay-BTC", "binance-BTC", "replay-ETH"])
def test_default_routes(topic: str, raw: bytes, expected: list[Routed]) -> None:
    assert routed(topic, raw) == expected


def test_routes_follow_the_configuration() -> None:
    config = SignalSettings(correlation_pairs=("SPX~ETH", "IWM~BTC"), reference_exchange="kraken",
                            regime_index="IWM", regime_benchmark="SPY")
    assert routed("ticks", tick("kraken", "ETH/USDT"), config) == [
        ("correlation", "SPX~ETH", "ETH", "other", 67000.5)]
    assert routed("ticks", tick("replay", "BTC/USD"), config) == []
    assert routed("index-quotes", quote("IWM"), config) == [
        ("correlation", "IWM~BTC", "IWM", "anchor", 2075.5),
        ("regime", "IWM/SPY", "IWM", "anchor", 2075.5)]
    assert routed("index-quotes", quote("RUT"), config) == []


@pytest.mark.parametrize(("topic", "raw", "message"), [
    ("index-quotes", quote("NDX"), "unknown index symbol 'NDX' (known: RUT, SPX, IWM, SPY)"),
    ("index-quotes", b"{", "malformed JSON"),
    ("ticks", None, "empty message (no value)"),
    ("netflows", b"{}", "missing field exchange"),
    ("signals", b"{}", "no route for topic 'signals'"),
])
def test_rejected_events_raise_schema_error(topic: str, raw: bytes | None, message: str) -> None:
    with pytest.raises(SchemaError) as info:
        route_message(topic, raw, CONFIG)
    assert message in str(info.value)


@pytest.mark.parametrize(("event_time", "t_ms"), [
    ("2024-03-04T21:00:00.000Z", T_MS),
    ("2024-03-04T21:00:00+00:00", T_MS),
    ("2024-12-31T23:59:59.999Z", timegm((2024, 12, 31, 23, 59, 59)) * 1000 + 999),
    ("2000-01-01T00:00:00.001Z", 946684800001),
])
def test_t_ms_is_the_epoch_milliseconds_of_the_event_time(event_time: str, t_ms: int) -> None:
    [(_, _, point)] = [r for r in route_message("index-quotes", quote("SPX", event_time), CONFIG)
                       if r[0] == "regime"]
    assert (point.event_time, point.t_ms) == (event_time, t_ms)


@pytest.mark.parametrize(("key", "shown"), [
    (b"binance:BTC/USDT", "'binance:BTC/USDT'"), (b"BTC/USDT", "'BTC/USDT'"), (None, "None")])
def test_a_tick_keyed_other_than_its_exchange_and_symbol_is_rejected(
        key: bytes | None, shown: str) -> None:
    """The bars agent keeps a symbol's state in the partition its key hashes to."""
    with pytest.raises(SchemaError, match=re.escape(
            f"a tick's key must be exchange:symbol 'binance:ETH/USDT', got {shown}")):
        route("ticks", key, tick("binance", "ETH/USDT"), CONFIG)
    assert tick_for_bars(b"binance:ETH/USDT", tick("binance", "ETH/USDT")).symbol == "ETH/USDT"


def test_crypto_tick_never_feeds_an_index_series() -> None:
    config = SignalSettings(reference_exchange="bybit")
    assert routed("ticks", tick("bybit", "SPX/USDT"), config) == []


def test_market_wide_agents_get_ticks_ratios_flows_and_ranks() -> None:
    from schemas.records import ExchangeNetflow, LongShortRatio

    kinds = [(kind, key) for kind, key, _ in
             route_message("ticks", tick("replay", "ETH/USD"), CONFIG)]
    assert kinds == [("drawdown", "market")]  # the bars agent reads ticks itself
    assert route_message("ticks", tick("binance", "ETH/USDT"), CONFIG) == []
    ratio = LongShortRatio(exchange="okx", symbol="SOL/USDT:USDT", event_time=T, period="1h",
                           variant="global_account", long_share=0.75, short_share=0.25,
                           ratio=3.0).dumps()
    [(kind, key, obs)] = route_message("long-short-ratios", ratio, CONFIG)
    assert (kind, key, obs.kind, obs.subject, obs.t_ms) == (
        "longshort", "market", "long_short", "okx:SOL/USDT:USDT", T_MS)
    assert obs.event["ratio"] == 3.0
    ranked = MarketCap(asset="SOL", event_time=T, market_cap=8e10, source="t", rank=5).dumps()
    assert [(k, o.kind) for k, _, o in route_message("market-caps", ranked, CONFIG)] == [
        ("longshort", "market_cap")]
    flow = ExchangeNetflow(exchange="binance", token="BTC", event_time=T, window="1d",
                           inflow=10.0, outflow=25.0, netflow=-15.0).dumps()
    assert [(k, o.subject) for k, _, o in route_message("netflows", flow, CONFIG)] == [
        ("netflow", "binance:BTC")]
    bad = ExchangeNetflow(exchange="binance", token="BTC", event_time=T, window="1d",
                          inflow=10.0, outflow=25.0, netflow=15.0).dumps()
    with pytest.raises(SchemaError, match="is not inflow - outflow"):
        route_message("netflows", bad, CONFIG)


def test_intraday_index_quotes_reach_only_the_regime_agent() -> None:
    [(kind, key, point)] = route_message("index-quotes", quote("RUT", "2024-03-04T18:30:00.000Z"),
                                         CONFIG)
    assert (kind, key, point.role, point.series) == ("regime", "RUT/SPX", "intraday", "RUT")
    assert route_message("index-quotes", quote("IWM", "2024-03-04T18:30:00.000Z"), CONFIG) == []
