"""The REST-polled and keyed live sources against local stand-ins of their APIs, into the real
Kafka broker through the KafkaSink, read back from the topic.

Each stand-in answers in the documented shape of the real endpoint and serves only what exists
at the test's virtual time, so a source backfills, then follows boundary after boundary, in a
few seconds. Failures (429 with Retry-After, 500) are injected in the middle of following.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiokafka import AIOKafkaConsumer
from harness import Namespace
from http_servers import (
    BinanceFutures,
    Bybit,
    CoinGecko,
    CryptoQuant,
    Failure,
    FinnhubWs,
    Okx,
    VirtualClock,
    YahooChart,
    binance_global_rows,
    coingecko_coin,
    coingecko_global,
    okx_ratio_rows,
    utc_ms,
)

from altseason.kafka_admin import topic_partitions
from foundation.config import Settings
from foundation.errors import ConfigError, SourceError
from producers.live.coingecko import CoinGeckoSource
from producers.live.core import Source, SourceStats
from producers.live.derivatives import FundingRateSource, OpenInterestSource
from producers.live.http import RestClient
from producers.live.index_quotes import FinnhubSource, YahooChartSource
from producers.live.longshort import LongShortSource
from producers.live.netflows import CryptoQuantSource, NetflowCsvSource
from producers.live.sink import KafkaSink
from schemas.decode import decode_event, parse_utc, to_ms
from schemas.records import (
    Event,
    ExchangeNetflow,
    FundingRate,
    IndexQuote,
    LongShortRatio,
    MarketCap,
    OpenInterest,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

E = TypeVar("E", bound=Event)
MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000


async def run_source(source: Source, sink: KafkaSink, done: Callable[[], bool],
                     timeout_s: float = 25.0) -> None:
    """Run ``source`` into ``sink`` until ``done()``, then stop it and wait for Kafka's acks."""
    task = asyncio.create_task(source.run(sink.emitter(source.stats)))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    try:
        while not done():
            if task.done():
                task.result()
                raise AssertionError(f"{source.name} stopped on its own")
            if loop.time() > deadline:
                raise AssertionError(f"{source.name} not done in {timeout_s} s: {source.stats}")
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert await sink.flush(15), "Kafka did not acknowledge everything"


async def read_keyed(settings: Settings, topic: str, record: type[E]) -> list[tuple[str, E]]:
    """(key, decoded value) of every message of ``topic``, in partition order per key."""
    name = settings.topic(topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await topic_partitions(settings, [name])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out: list[tuple[str, E]] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                out.extend((m.key.decode(), decode_event(record, m.value)) for m in messages)
        return out
    finally:
        await consumer.stop()


def t_ms(event: Event) -> int:
    return to_ms(parse_utc(event.event_time))


# -- long/short ratios -----------------------------------------------------------------------

async def test_binance_global_ratio_backfills_30_days_then_follows_each_boundary_once(
        namespace: Namespace) -> None:
    """The real BTCUSDT 30m rows (12 Aug .. 12 Sep 2024): 30 days of backfill in pages of 100
    periods, then one poll per boundary for 33 hours, through a 429 and a 500."""
    rows = binance_global_rows()
    start = utc_ms("2024-09-11 00:00:20")
    end = rows[-1]["timestamp"]
    clock = VirtualClock(start)
    server = await BinanceFutures(clock, publish_lag_ms=3000).start()
    path = "/futures/data/globalLongShortAccountRatio"
    server.series[("globalLongShortAccountRatio", "BTCUSDT", "30m")] = rows
    server.fail_at(utc_ms("2024-09-11 12:00:00"), path, Failure(429, {"Retry-After": "7"}),
                   Failure(500, body='{"code":-1000,"msg":"An unknown error occured"}'))
    source = LongShortSource("binance-ls", "binance", ["BTC/USDT:USDT"], ["global_account"],
                             "30m", page_limit=100, publish_delay_s=10, api_url=server.url,
                             clock=clock)
    try:
        async with KafkaSink(namespace.settings) as sink:
            await run_source(source, sink, lambda: clock.now_ms() > end + 31 * MINUTE)
    finally:
        await server.stop()

    got = await read_keyed(namespace.settings, "long-short-ratios", LongShortRatio)
    assert {key for key, _ in got} == {"binance:BTC/USDT:USDT"}
    times = [t_ms(r) for _, r in got]
    assert times == [row["timestamp"] for row in rows]  # every row, once, in order
    for (_, record), row in zip(got, rows, strict=True):
        assert (record.exchange, record.symbol, record.period, record.variant) == (
            "binance", "BTC/USDT:USDT", "30m", "global_account")
        assert record.long_share == float(row["longAccount"])
        assert record.short_share == float(row["shortAccount"])
        assert record.ratio == float(row["longShortRatio"])
    backfilled = sum(1 for row in rows if row["timestamp"] <= start - 3000)
    assert source.stats.backfilled == backfilled
    assert source.stats.produced == len(rows) and source.stats.duplicates == 0
    assert source.stats.rate_limited == 1 and 7.0 in clock.sleeps
    assert server.pending_failures == 0
    # following asks each time only for rows after the last one it has, once per boundary
    # (plus the two failed attempts and the final boundary, where nothing new comes)
    follow = [(q, t) for q, t in server.requests_to(path) if start < t <= end + 31 * MINUTE]
    row_times = {row["timestamp"] for row in rows}
    assert all(int(q["startTime"]) - 1 in row_times for q, _ in follow)
    boundaries = (end - start) // (30 * MINUTE) + 1  # 00:30 on the 11th .. 09:00 on the 12th
    # one poll per boundary, two failed attempts, and the boundary after the last row: a poll
    # and its three retries
    assert len(follow) == boundaries + 2 + 4


async def test_okx_ratio_through_ccxt_windows_then_follow(namespace: Namespace) -> None:
    """The real OKX SOL-USDT-SWAP 1H ratios (625 rows): ccxt's since/until windows of 100
    periods over OKX's exclusive begin/end, then eleven boundaries; shares from the ratio."""
    rows = okx_ratio_rows()
    start = rows[-12][0] + 30_000
    clock = VirtualClock(start)
    server = await Okx(clock).start()
    server.ratios[("SOL-USDT-SWAP", "1H")] = rows
    source = LongShortSource("okx-ls", "okx", ["SOL/USDT:USDT"], ["global_account"], "1h",
                             backfill_days=30, publish_delay_s=10, api_url=server.url,
                             clock=clock)
    try:
        async with KafkaSink(namespace.settings) as sink:
            await run_source(source, sink, lambda: clock.now_ms() > rows[-1][0] + 61 * MINUTE)
    finally:
        await server.stop()

    got = await read_keyed(namespace.settings, "long-short-ratios", LongShortRatio)
    assert {key for key, _ in got} == {"okx:SOL/USDT:USDT"}
    assert [(t_ms(r), r.ratio) for _, r in got] == [(t, float(ratio)) for t, ratio in rows]
    for _, record in got:
        assert record.long_share == pytest.approx(record.ratio / (1 + record.ratio), rel=1e-12)
        assert record.long_share + record.short_share == pytest.approx(1, rel=1e-12)
    assert source.stats.backfilled == len(rows) - 11


async def test_bybit_latest_page_then_only_new_rows(namespace: Namespace) -> None:
    """Bybit's ratio through ccxt (no since): the latest page on start, then at each 15m
    boundary a page just big enough for the new rows; each row once."""
    times = [utc_ms("2024-10-17 00:00:00") + i * 15 * MINUTE for i in range(120)]
    rows = [(t, f"{0.5 + 0.1 * math.sin(i / 7):.4f}", "") for i, t in enumerate(times)]
    rows = [(t, buy, f"{1 - float(buy):.4f}") for t, buy, _ in rows]
    start = times[99] + 20_000
    clock = VirtualClock(start)
    server = await Bybit(clock).start()
    server.ratios[("BTCUSDT", "15min")] = rows
    source = LongShortSource("bybit-ls", "bybit", ["BTC/USDT:USDT"], ["global_account"], "15m",
                             page_limit=50, publish_delay_s=10, api_url=server.url,
                             clock=clock)
    try:
        async with KafkaSink(namespace.settings) as sink:
            await run_source(source, sink, lambda: clock.now_ms() > times[-1] + 16 * MINUTE)
    finally:
        await server.stop()

    got = await read_keyed(namespace.settings, "long-short-ratios", LongShortRatio)
    expected = rows[50:]  # the latest page of 50 on start, then the 20 that came after
    assert [t_ms(r) for _, r in got] == [t for t, _, _ in expected]
    for (_, record), (_, buy, sell) in zip(got, expected, strict=True):
        assert (record.long_share, record.short_share) == (float(buy), float(sell))
        assert record.ratio == pytest.approx(float(buy) / float(sell), rel=1e-12)
        assert record.period == "15m"
    limits = [int(q["limit"]) for q, t in server.requests_to("/v5/market/account-ratio")]
    assert limits[0] == 50 and max(limits[1:]) <= 3


def doc_like_rows(times: list[int], seed: int, taker: bool = False,
                  symbol: str = "BTCUSDT") -> list[dict[str, Any]]:
    """Rows in the documented shape of topLongShort*Ratio or takerlongshortRatio."""
    out = []
    for i, t in enumerate(times):
        x = 0.5 + 0.2 * math.sin(seed + i / 5)
        if taker:
            buy, sell = round(400 * x, 4), round(400 * (1 - x), 4)
            out.append({"buySellRatio": f"{buy / sell:.4f}", "buyVol": f"{buy:.4f}",
                        "sellVol": f"{sell:.4f}", "timestamp": str(t)})
        else:
            long_share = round(x, 4)
            out.append({"symbol": symbol, "longShortRatio": f"{long_share / (1 - long_share):.4f}",
                        "longAccount": f"{long_share:.4f}",
                        "shortAccount": f"{1 - long_share:.4f}", "timestamp": str(t)})
    return out


async def test_binance_top_trader_and_taker_variants_of_two_symbols(namespace: Namespace) -> None:
    """top_account, top_position and taker_volume through ccxt's implicit fapiData methods,
    one day of 1h backfill then six boundaries, with Binance's weight header near the limit."""
    start = utc_ms("2024-09-12 00:00:30")
    times = [utc_ms("2024-09-10 00:00:00") + i * HOUR for i in range(55)]  # .. 12 Sep 06:00
    clock = VirtualClock(start)
    server = await BinanceFutures(clock).start()
    variants = {"top_account": "topLongShortAccountRatio",
                "top_position": "topLongShortPositionRatio",
                "taker_volume": "takerlongshortRatio"}
    for seed, (market_id, endpoint) in enumerate(
            (m, e) for m in ("BTCUSDT", "ETHUSDT") for e in variants.values()):
        server.series[(endpoint, market_id, "1h")] = doc_like_rows(
            times, seed, taker=endpoint == "takerlongshortRatio", symbol=market_id)
    server.weights = [1, 2000]  # the second answer says 2000 of 2400 used this minute
    source = LongShortSource("binance-top", "binance", ["BTC/USDT:USDT", "ETH/USDT:USDT"],
                             list(variants), "1h", backfill_days=1, publish_delay_s=5,
                             api_url=server.url, clock=clock)
    try:
        async with KafkaSink(namespace.settings) as sink:
            await run_source(source, sink, lambda: clock.now_ms() > times[-1] + 62 * MINUTE)
    finally:
        await server.stop()

    got = await read_keyed(namespace.settings, "long-short-ratios", LongShortRatio)
    expected_times = [t for t in times if t >= utc_ms("2024-09-11 01:00:00")]
    assert len(expected_times) == 30
    for symbol, market_id in (("BTC/USDT:USDT", "BTCUSDT"), ("ETH/USDT:USDT", "ETHUSDT")):
        for variant, endpoint in variants.items():
            series = [r for key, r in got if key == f"binance:{symbol}"
                      and r.symbol == symbol and r.variant == variant]
            assert [t_ms(r) for r in series] == expected_times, (symbol, variant)
            source_rows = {int(row["timestamp"]): row
                           for row in server.series[(endpoint, market_id, "1h")]}
            for record in series:
                row = source_rows[t_ms(record)]
                if variant == "taker_volume":
                    buy, sell = float(row["buyVol"]), float(row["sellVol"])
                    assert record.long_share == pytest.approx(buy / (buy + sell), rel=1e-12)
                    assert record.ratio == float(row["buySellRatio"])
                else:
                    assert record.long_share == float(row["longAccount"])
                    assert record.ratio == float(row["longShortRatio"])
    assert len(got) == 2 * 3 * 30
    # after the answer reporting weight 2000, the next request waited for the next minute
    data = [(p, t) for p, _, t in server.requests if p.startswith("/futures/data/")]
    heavy_t = data[1][1]
    assert data[2][1] >= (heavy_t // MINUTE + 1) * MINUTE + 1000


async def test_funding_rate_and_open_interest_follow_the_exchange_time(
        namespace: Namespace) -> None:
    """premiumIndex changes its time every 2 minutes, openInterest every request: polled each
    minute for 10 minutes, each distinct exchange time is emitted once, through a 500."""
    start = utc_ms("2024-09-12 08:00:05")
    clock = VirtualClock(start)
    server = await BinanceFutures(clock).start()

    def premium(now: int) -> dict[str, Any]:
        stamp = now // (2 * MINUTE) * (2 * MINUTE)
        return {"symbol": "BTCUSDT", "markPrice": f"{58000 + stamp % 997:.8f}",
                "indexPrice": "57990.12000000", "estimatedSettlePrice": "57991.00000000",
                "lastFundingRate": f"{0.0001 + (stamp // MINUTE % 7) * 1e-5:.8f}",
                "interestRate": "0.00010000", "nextFundingTime": utc_ms("2024-09-12 16:00:00"),
                "time": stamp}

    server.premium["BTCUSDT"] = premium
    server.open_interest["BTCUSDT"] = lambda now: {"openInterest": f"{80000 + now % 1000:.3f}",
                                                   "symbol": "BTCUSDT", "time": now}
    server.fail_at(start + 4 * MINUTE, "/fapi/v1/premiumIndex", Failure(500))
    funding = FundingRateSource("funding", "binance", ["BTC/USDT:USDT"], "1m",
                                api_url=server.url, clock=clock)
    interest = OpenInterestSource("oi", "binance", ["BTC/USDT:USDT"], "1m",
                                  api_url=server.url, clock=clock)
    try:
        async with KafkaSink(namespace.settings) as sink:
            await run_source(funding, sink, lambda: clock.now_ms() > start + 10 * MINUTE)
            clock.t_ms = start
            await run_source(interest, sink, lambda: clock.now_ms() > start + 10 * MINUTE)
    finally:
        await server.stop()

    rates = await read_keyed(namespace.settings, "funding-rates", FundingRate)
    stamps = [t_ms(r) for _, r in rates]
    assert stamps == sorted(set(stamps)) and len(stamps) >= 5
    assert all(s % (2 * MINUTE) == 0 for s in stamps)
    for key, record in rates:
        expected = premium(t_ms(record))
        assert key == "binance:BTC/USDT:USDT"
        assert record.funding_rate == float(expected["lastFundingRate"])
        assert record.mark_price == float(expected["markPrice"])
        assert record.next_funding_time == "2024-09-12T16:00:00.000Z"
    assert server.pending_failures == 0
    oi = await read_keyed(namespace.settings, "open-interest", OpenInterest)
    assert len(oi) >= 10 and [t_ms(r) for _, r in oi] == sorted({t_ms(r) for _, r in oi})
    for _, record in oi:
        assert record.open_interest == float(f"{80000 + t_ms(record) % 1000:.3f}")


# -- CoinGecko -------------------------------------------------------------------------------

async def test_coingecko_demo_key_total_and_top_coins(namespace: Namespace,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo key goes in its header; 300 coins take two pages of 250; coins with an odd
    symbol, no market cap or a symbol already taken are skipped; only updates are re-sent."""
    start = utc_ms("2024-04-07 16:50:00")
    clock = VirtualClock(start)
    server = await CoinGecko(clock, key_header="x-cg-demo-api-key", key="cg-demo-key").start()
    coins = [coingecko_coin(f"coin{i}", f"c{i}", i, 1e12 / i, 1e9 / i,
                            "2024-04-07T16:49:31.736Z") for i in range(1, 301)]
    coins[10]["symbol"] = "usd₮0"
    coins[20]["market_cap"] = None
    coins[30]["symbol"] = "c1"  # a lower-ranked coin with the symbol of rank 1
    # ten minutes on, CoinGecko has a new total and a fresh market cap for coin 2
    later = start + 10 * MINUTE
    server.global_at = lambda now: (coingecko_global(2.72e12, 6.9e10, start // 1000 - 60)
                                    if now < later
                                    else coingecko_global(2.8e12, 7.0e10, later // 1000))
    fresh = {**coins[1], "market_cap": 4.9e11, "last_updated": "2024-04-07T17:00:00.000Z"}
    server.coins_at = lambda now: coins if now < later else [coins[0], fresh, *coins[2:]]
    server.fail_at(start, "/api/v3/global", Failure(429, {"Retry-After": "30"}))
    source = CoinGeckoSource("coingecko", plan="demo", api_key="cg-demo-key", coins=300,
                             interval_s=300, api_url=server.url + "/api/v3", clock=clock)
    try:
        async with KafkaSink(namespace.settings) as sink:
            await run_source(source, sink, lambda: clock.now_ms() > start + 20 * MINUTE)
    finally:
        await server.stop()

    got = await read_keyed(namespace.settings, "market-caps", MarketCap)
    assert all(key == record.asset for key, record in got)
    totals = [r for _, r in got if r.asset == "TOTAL"]
    assert [(r.market_cap, r.volume_24h) for r in totals] == [(2.72e12, 6.9e10), (2.8e12, 7e10)]
    per_coin = Counter(r.asset for _, r in got if r.asset != "TOTAL")
    assert len(per_coin) == 297 and per_coin["C2"] == 2
    assert set(per_coin.values()) == {1, 2} and sum(per_coin.values()) == 298
    assert {"C11", "C21", "C31"}.isdisjoint(per_coin)
    c1 = next(r for _, r in got if r.asset == "C1")
    assert (c1.rank, c1.market_cap, c1.source) == (1, 1e12, "coingecko")
    assert source.stats.rate_limited == 1 and 30.0 in clock.sleeps
    assert source.stats.malformed >= 3
    pages = [q for q, _ in server.requests_to("/api/v3/coins/markets")]
    assert {(q["page"], q["per_page"]) for q in pages} == {("1", "250"), ("2", "250")}


async def test_coingecko_refused_key_is_a_config_error(namespace: Namespace) -> None:
    clock = VirtualClock(utc_ms("2024-04-07 16:50:00"))
    server = await CoinGecko(clock, key_header="x-cg-pro-api-key", key="right").start()
    source = CoinGeckoSource("cg", plan="pro", api_key="wrong", coins=10,
                             api_url=server.url + "/api/v3", clock=clock)
    try:
        async with KafkaSink(namespace.settings) as sink:
            with pytest.raises(ConfigError, match="answered 401"):
                await run_source(source, sink, lambda: False, timeout_s=10)
    finally:
        await server.stop()


# -- index quotes ----------------------------------------------------------------------------

async def test_yahoo_daily_closes_of_rut_and_spx(namespace: Namespace) -> None:
    """Sessions of 15-19 Sep 2025 (^RUT, ^GSPC daily bars stamped 09:30 New York): the past
    sessions on start, then each close 15 minutes after 16:00, once, through a 500."""
    days = ["2025-09-15", "2025-09-16", "2025-09-17", "2025-09-18", "2025-09-19"]
    rut = [2400.1, 2410.2, 2411.2, 2467.7, 2448.8]
    spx = [6615.3, 6606.8, 6600.4, 6631.9, 6664.4]
    start = utc_ms("2025-09-17 16:00:00")  # 12:00 New York on the 17th
    clock = VirtualClock(start)
    server = await YahooChart(clock).start()
    server.bars["^RUT"] = {"1d": [(utc_ms(f"{d} 13:30:00") // 1000, c)
                                  for d, c in zip(days, rut, strict=True)]}
    server.bars["^GSPC"] = {"1d": [(utc_ms(f"{d} 13:30:00") // 1000, c)
                                   for d, c in zip(days, spx, strict=True)]}
    server.fail_at(utc_ms("2025-09-18 12:00:00"), "/v8/finance/chart/^RUT", Failure(500))
    source = YahooChartSource("yahoo", ["^RUT", "^GSPC"], interval="1d", chart_range="5d",
                              poll_s=300, api_url=server.url, clock=clock)
    try:
        async with KafkaSink(namespace.settings) as sink:
            await run_source(source, sink,
                             lambda: clock.now_ms() > utc_ms("2025-09-19 21:00:00"))
    finally:
        await server.stop()

    got = await read_keyed(namespace.settings, "index-quotes", IndexQuote)
    for symbol, yahoo, closes in (("RUT", "^RUT", rut), ("SPX", "^GSPC", spx)):
        series = [r for key, r in got if key == symbol]
        assert [r.event_time for r in series] == [f"{d}T20:00:00.000Z" for d in days]
        assert [r.price for r in series] == closes
        assert {r.source for r in series} == {f"yahoo:{yahoo}"}
    assert server.pending_failures == 0
    # one request per symbol on start and 5 s after each 5-minute boundary, and the retry
    # after the 500 (counted up to the end: the source may run a little past it)
    end = utc_ms("2025-09-19 21:00:00")
    polls = [start, *range(start + 5 * MINUTE + 5000, end, 5 * MINUTE)]
    assert len([t for _, _, t in server.requests if t < end]) == 2 * len(polls) + 1


async def test_finnhub_trades_of_etf_proxies_with_reconnect(namespace: Namespace) -> None:
    """Trades of IWM and SPY: throttled to one quote per symbol per second of trade time, pings
    and a malformed frame skipped; the server drops the connection, the source resubscribes."""
    server = await FinnhubWs(token="fh-key").start()
    source = FinnhubSource("finnhub", ["IWM", "SPY"], "fh-key", min_interval_ms=1000,
                           stale_s=10, url=server.url)
    t0 = utc_ms("2025-09-18 14:00:00")
    frames: list[dict[str, Any] | None] = [
        {"type": "ping"},
        {"type": "trade", "data": [
            {"s": "IWM", "p": 246.61, "t": t0, "v": 100, "c": ["1", "12"]},
            {"s": "IWM", "p": 246.62, "t": t0 + 400, "v": 5},        # within 1 s: throttled
            {"s": "SPY", "p": 662.10, "t": t0 + 10, "v": 300},
            {"s": "IWM", "p": 246.70, "t": t0 + 1000, "v": 7}]},
        {"type": "trade", "data": [{"s": "SPY", "p": "oops", "t": t0 + 20}]},
        None,  # the server closes the connection
        {"type": "trade", "data": [{"s": "SPY", "p": 662.5, "t": t0 + 5000, "v": 1},
                                   {"s": "QQQ", "p": 590.0, "t": t0 + 5000, "v": 1}]},
    ]
    for frame in frames:
        server.outbox.put_nowait(frame)
    try:
        async with KafkaSink(namespace.settings) as sink:
            await run_source(source, sink, lambda: source.stats.produced >= 4
                             and server.outbox.empty())
    finally:
        await server.stop()

    got = await read_keyed(namespace.settings, "index-quotes", IndexQuote)
    assert sorted((key, r.price, t_ms(r) - t0, r.source) for key, r in got) == [
        ("IWM", 246.61, 0, "finnhub:proxy"), ("IWM", 246.70, 1000, "finnhub:proxy"),
        ("SPY", 662.10, 10, "finnhub:proxy"), ("SPY", 662.5, 5000, "finnhub:proxy")]
    assert server.connections == 2 and source.stats.reconnects >= 1
    assert server.subscriptions == ["IWM", "SPY", "IWM", "SPY"]
    assert source.stats.malformed == 1 and source.throttled == 1


async def test_finnhub_refused_key_is_a_config_error(namespace: Namespace) -> None:
    server = await FinnhubWs(token="right").start()
    source = FinnhubSource("finnhub", ["IWM"], "wrong", url=server.url, key_env="FH_KEY")
    try:
        async with KafkaSink(namespace.settings) as sink:
            with pytest.raises(ConfigError, match="FH_KEY"):
                await run_source(source, sink, lambda: False, timeout_s=10)
    finally:
        await server.stop()


# -- netflows --------------------------------------------------------------------------------

async def test_cryptoquant_daily_flows_backfill_and_follow(namespace: Namespace) -> None:
    """Two exchanges, 40 days of daily flows: the last 10 finished days on start, then each day
    10 minutes after midnight, inflow and outflow joined, through a 429."""
    first_day = utc_ms("2024-08-01 00:00:00")
    flows = {exchange: [(first_day + i * DAY, 1000.0 + 37 * i + k, 900.0 + 53 * (i % 5) + k)
                        for i in range(40)] for k, exchange in enumerate(["binance", "coinbase"])}
    start = utc_ms("2024-09-01 03:00:00")
    clock = VirtualClock(start)
    server = await CryptoQuant(clock, token="cq-key").start()
    for exchange, rows in flows.items():
        server.flows[("btc", exchange, "day")] = rows
    server.fail_at(utc_ms("2024-09-04 00:00:00"), "/v1/btc/exchange-flows/outflow",
                   Failure(429, {"Retry-After": "120"}))
    source = CryptoQuantSource("cq", "btc", ["binance", "coinbase"], "cq-key", window="day",
                               backfill_windows=10, publish_delay_s=600,
                               api_url=server.url + "/v1", clock=clock)
    try:
        async with KafkaSink(namespace.settings) as sink:
            await run_source(source, sink, lambda: clock.now_ms() > first_day + 40 * DAY + HOUR)
    finally:
        await server.stop()

    got = await read_keyed(namespace.settings, "netflows", ExchangeNetflow)
    for exchange, rows in flows.items():
        series = [r for key, r in got if key == f"{exchange}:BTC"]
        expected = [row for row in rows if row[0] >= utc_ms("2024-08-22 00:00:00")]
        assert len(series) == len(expected) == 19
        for record, (day, inflow, outflow) in zip(series, expected, strict=True):
            assert t_ms(record) == day + DAY - 1 and record.window == "1d"
            assert (record.inflow, record.outflow) == (inflow, outflow)
            assert record.netflow == inflow - outflow
    assert source.stats.backfilled == 20 and source.stats.rate_limited == 1
    assert 120.0 in clock.sleeps


async def test_netflow_csv_import_then_appended_rows(namespace: Namespace,
                                                     tmp_path: Path) -> None:
    path = tmp_path / "flows.csv"
    path.write_text("time,exchange,token,window,inflow,outflow\n"
                    "2024-03-02,binance,btc,1d,10.5,12\n"
                    "2024-03-01,binance,btc,1d,8,3\n"
                    "2024-03-01T13:00:00Z,okx,ETH,1h,1.25,0.5\n"
                    "2024-03-03,binance,btc,1w,1,1\n"
                    "2024-03-03,binance,btc,1d,-1,1\n")
    clock = VirtualClock(utc_ms("2024-03-04 00:00:00"))
    source = NetflowCsvSource("csv", path, poll_s=60, clock=clock)
    appended = [False]

    def append_once() -> bool:
        if source.stats.produced >= 3 and not appended[0]:
            appended[0] = True
            with path.open("a") as fh:
                fh.write("2024-03-03,binance,btc,1d,7,9\n2024-03-01,binance,btc,1d,99,99\n")
            os.utime(path, (1, 1))  # the change is seen even within the same second
        return source.stats.produced >= 4

    async with KafkaSink(namespace.settings) as sink:
        await run_source(source, sink, append_once)

    got = await read_keyed(namespace.settings, "netflows", ExchangeNetflow)
    assert sorted((key, r.event_time, r.inflow, r.outflow, r.netflow) for key, r in got) == [
        ("binance:BTC", "2024-03-01T23:59:59.999Z", 8.0, 3.0, 5.0),
        ("binance:BTC", "2024-03-02T23:59:59.999Z", 10.5, 12.0, -1.5),
        ("binance:BTC", "2024-03-03T23:59:59.999Z", 7.0, 9.0, -2.0),
        ("okx:ETH", "2024-03-01T13:59:59.999Z", 1.25, 0.5, 0.75)]
    assert source.stats.malformed == 2
    assert json.loads(got[0][1].dumps())["schema_version"] == 1


# -- the HTTP client -------------------------------------------------------------------------

async def test_rest_client_retries_network_errors_until_the_api_answers() -> None:
    """Connection refused three times (the API is down), then it comes up: one answer, the
    waits between attempts growing but capped, no request lost."""
    clock = VirtualClock(utc_ms("2024-09-01 00:00:00"))
    server = CoinGecko(clock)
    server.global_at = lambda now: coingecko_global(2.5e12, 6e10, now // 1000)

    class Reviving(VirtualClock):
        async def sleep(self, seconds: float) -> None:
            await clock.sleep(seconds)
            if len(clock.sleeps) == 3:
                await server.start()

    stats = SourceStats()
    try:
        async with RestClient("t", server.url + "/api/v3", stats, clock=Reviving(0),
                              backoff_base_s=1.0, backoff_cap_s=4.0) as http:
            data = await http.get_json("/global")
    finally:
        await server.stop()
    assert data["data"]["total_market_cap"]["usd"] == 2.5e12
    assert len(clock.sleeps) == 3 and all(0 <= s <= 4.0 for s in clock.sleeps)
    assert stats.messages == 1 and len(server.requests) == 1


async def test_rest_client_waits_for_the_next_minute_near_binance_weight_limit() -> None:
    clock = VirtualClock(utc_ms("2024-09-12 10:00:42"))
    server = await BinanceFutures(clock).start()
    server.series[("takerlongshortRatio", "BTCUSDT", "5m")] = doc_like_rows(
        [utc_ms("2024-09-12 09:55:00")], 0, taker=True)
    server.weights = [1920, 100]
    params = {"symbol": "BTCUSDT", "period": "5m"}
    try:
        async with RestClient("t", server.url, SourceStats(), clock=clock,
                              weight_limit=2400) as http:
            for _ in range(3):
                assert len(await http.get_json("/futures/data/takerlongshortRatio", params)) == 1
    finally:
        await server.stop()
    times = [t for _, t in server.requests_to("/futures/data/takerlongshortRatio")]
    # 1920 of 2400 used: the next request waits for 10:01:01; then at once again
    assert times == [utc_ms("2024-09-12 10:00:42"), utc_ms("2024-09-12 10:01:01"),
                     utc_ms("2024-09-12 10:01:01")]


async def test_rest_client_gives_up_after_max_attempts_but_not_for_rate_limits() -> None:
    """binance_ws's catch-up can do without an answer: after ``max_attempts`` failures in a
    row it gets SourceError; 429s in between are waited out and do not count."""
    clock = VirtualClock(utc_ms("2024-09-01 00:00:00"))
    server = await CoinGecko(clock).start()
    server.fail("/api/v3/global", Failure(500), Failure(429, {"Retry-After": "5"}),
                Failure(502), Failure(503))
    stats = SourceStats()
    try:
        async with RestClient("t", server.url + "/api/v3", stats, clock=clock,
                              max_attempts=3) as http:
            with pytest.raises(SourceError, match="t: GET /global answered 503; gave up after "
                                                  "3 attempts"):
                await http.get_json("/global")
    finally:
        await server.stop()
    assert len(server.requests) == 4 and stats.rate_limited == 1 and 5.0 in clock.sleeps
