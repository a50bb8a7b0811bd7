"""Live websocket producers against local servers replaying real recorded sessions, into the
real Kafka broker: every recorded trade lands on ``ticks`` exactly once, normalised, in order,
through disconnects, gaps, replays, silence and a flood with a tiny queue."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import yaml
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from harness import Namespace, free_port, writing_statuses
from wsfixtures import (
    BINANCE_FUTURES,
    COINBASE,
    KRAKEN_FUTURES,
    BinanceServer,
    CoinbaseExchangeServer,
    KrakenFuturesServer,
    Plan,
    binance_agg_trades,
    binance_flood,
    load_recording,
    wait_until,
)

from altseason.kafka_admin import topic_partitions
from foundation.config import Settings
from producers.live.config import load_live_config
from producers.live.run import LiveProducer
from producers.live.web import PRODUCER_PATHS

pytestmark = pytest.mark.integration

FUTURES = load_recording(BINANCE_FUTURES)
FUTURES_TRADES = binance_agg_trades(FUTURES.frames)
FUTURES_SYMBOLS = {"SUSHIUSDT": "SUSHI/USDT:USDT", "AKROUSDT": "AKRO/USDT:USDT",
                   "KEEPUSDT": "KEEP/USDT:USDT", "CTKUSDT": "CTK/USDT:USDT"}
BOOK_TICKERS = [f for f in FUTURES.frames if '@bookTicker"' in f]


def binance_source(server: BinanceServer, **extra: Any) -> dict[str, Any]:
    return {"type": "binance_ws", "name": "binance-futures", "market": "usdm",
            "symbols": list(FUTURES_SYMBOLS.values()), "channels": ["aggTrade"],
            "ws_url": server.ws_url, "rest_url": server.http_url, "watchdog_seconds": 5,
            "backoff_base_seconds": 0.05, "backoff_cap_seconds": 0.2, **extra}


def iso_ms(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms // 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def expected_tick(data: dict[str, Any]) -> dict[str, Any]:
    """The normalisation, written independently of the producer: the test's oracle."""
    return {"exchange": "binanceusdm", "symbol": FUTURES_SYMBOLS[data["s"]],
            "event_time": iso_ms(data["T"]), "price": float(data["p"]),
            "amount": float(data["q"]), "side": "sell" if data["m"] else "buy",
            "trade_id": str(data["a"]), "schema_version": 1}


async def read_messages(settings: Settings, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every message of a topic, each partition in offset order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await topic_partitions(settings, [settings.topic(topic)])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        messages: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(15):
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    messages.extend(batch)
        return messages
    finally:
        await consumer.stop()


class Running:
    def __init__(self, producer: LiveProducer, task: asyncio.Task[None]) -> None:
        self.producer, self.task = producer, task
        self.source = producer.sources[0]

    async def until(self, condition: Callable[[], bool], what: str,
                    timeout_s: float = 25.0) -> None:
        def done() -> bool:
            if self.task.done():
                self.task.result()  # raises what stopped the producer
                raise AssertionError("the producer stopped on its own")
            return condition()

        await wait_until(done, f"{what} ({self.producer.status_line()})", timeout_s)


@asynccontextmanager
async def running(namespace: Namespace, sources: list[dict[str, Any]],
                  kafka: dict[str, Any] | None = None) -> AsyncIterator[Running]:
    """The live producer of a YAML config written like a user would, until the block ends."""
    path = namespace.workdir / "live.yaml"
    path.write_text(yaml.safe_dump({"kafka": kafka or {"linger_ms": 5},
                                    "status_interval_seconds": 1, "sources": sources}))
    producer = LiveProducer(namespace.settings, load_live_config(path))
    stop = asyncio.Event()
    task = asyncio.create_task(producer.run(stop))
    try:
        yield Running(producer, task)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def assert_ticks_exactly_once(settings: Settings, trades: list[dict[str, Any]],
                                    normalise: Callable[[dict[str, Any]], dict[str, Any]]
                                    = expected_tick, ordered: bool = True) -> None:
    """``ticks`` holds exactly these trades, once each, normalised, keyed "exchange:symbol",
    stamped with the trade time and (``ordered``: ids that grow) each key in trade order."""
    messages = await read_messages(settings, "ticks")
    got = [json.loads(m.value) for m in messages]
    want = [normalise(t) for t in trades]
    ids = [(t["symbol"], t["trade_id"]) for t in got]
    assert len(ids) == len(set(ids)), "a trade was produced twice"
    by_id = {(t["symbol"], t["trade_id"]): t for t in got}
    assert sorted(by_id) == sorted((t["symbol"], t["trade_id"]) for t in want)
    for tick in want:
        assert by_id[(tick["symbol"], tick["trade_id"])] == tick
    for message, tick in zip(messages, got, strict=True):
        assert message.key == f"{tick['exchange']}:{tick['symbol']}".encode()
        assert message.timestamp == int(datetime.fromisoformat(tick["event_time"])
                                        .timestamp() * 1000)
    per_key: dict[bytes, list[tuple[str, int]]] = {}
    for message, tick in zip(messages, got, strict=True):
        trade_id = int(tick["trade_id"]) if ordered else 0
        per_key.setdefault(message.key, []).append((tick["event_time"], trade_id))
    for key, times_ids in per_key.items():
        assert times_ids == sorted(times_ids), f"{key!r} out of order"


async def test_every_recorded_trade_and_book_ticker_once_over_split_connections(
        namespace: Namespace) -> None:
    garbage = ['{"stream": "sushiusdt@aggTrade", "data": {"e": "aggTrade", "a": "x"}}',
               "not json at all"]
    frames = FUTURES.frames[:50] + garbage + FUTURES.frames[50:]
    async with BinanceServer(frames) as server, running(namespace, [binance_source(
            server, channels=["aggTrade", "bookTicker"], streams_per_connection=3)]) as live:
        await live.until(lambda: live.source.stats.produced
                         == len(FUTURES_TRADES) + len(BOOK_TICKERS), "every trade and ticker")
        stats = live.source.stats
    # 4 symbols x 2 channels = 8 streams, at most 3 per connection: 3 connections
    assert sorted(len(s) for s in server.subscriptions) == [2, 3, 3]
    assert stats.malformed == 1 + 3  # the bad trade; text naming no stream goes to all 3
    assert (stats.reconnects, stats.gaps, stats.duplicates, stats.dropped) == (0, 0, 0, 0)
    await assert_ticks_exactly_once(namespace.settings, FUTURES_TRADES)
    tickers = [json.loads(m.value) for m in await read_messages(namespace.settings, "tickers")]
    assert len(tickers) == len(BOOK_TICKERS)
    first = json.loads(BOOK_TICKERS[0])["data"]
    assert tickers.count({"exchange": "binanceusdm", "symbol": "SUSHI/USDT:USDT",
                          "event_time": "2021-07-22T22:25:41.012Z", "kind": "book",
                          "bid": float(first["b"]), "ask": float(first["a"]), "last": None,
                          "mark_price": None, "funding_rate": None,
                          "schema_version": 1}) == 1


async def test_dropped_connection_gap_is_backfilled_over_rest_despite_rate_limit(
        namespace: Namespace) -> None:
    # the first connection dies (TCP abort) after 30 trades; 25 trades happen while the client
    # is away; the REST backfill is refused once with 429 + Retry-After
    plans = [Plan(frames=30, then="drop", missed=25)]
    async with BinanceServer(FUTURES.frames, plans, rate_limit_first=1) as server, \
            running(namespace, [binance_source(server)]) as live:
        await live.until(lambda: live.source.stats.produced == len(FUTURES_TRADES),
                         "every trade")
        stats = live.source.stats
    assert server.connections == 2 and stats.reconnects == 1
    assert stats.gaps >= 1 and stats.backfilled == 25 and stats.rate_limited == 1
    assert stats.duplicates == 0
    assert any("/fapi/v1/aggTrades?" in path for path in server.rest_requests)
    await assert_ticks_exactly_once(namespace.settings, FUTURES_TRADES)


async def test_replayed_frames_after_a_reconnect_are_deduplicated(
        namespace: Namespace) -> None:
    plans = [Plan(frames=60, then="close"), Plan(rewind=40)]
    async with BinanceServer(FUTURES.frames, plans) as server, \
            running(namespace, [binance_source(server)]) as live:
        await live.until(lambda: live.source.stats.produced == len(FUTURES_TRADES),
                         "every trade")
        await asyncio.sleep(0.3)  # anything extra would be acknowledged by now
        stats = live.source.stats
    assert server.connections == 2 and stats.reconnects == 1
    assert stats.duplicates == 40 and stats.gaps == 0 and stats.backfilled == 0
    await assert_ticks_exactly_once(namespace.settings, FUTURES_TRADES)


async def test_a_silent_connection_is_closed_by_the_watchdog_and_reconnected(
        namespace: Namespace) -> None:
    plans = [Plan(frames=45, then="silent")]
    async with BinanceServer(FUTURES.frames, plans) as server, \
            running(namespace, [binance_source(server, watchdog_seconds=1)]) as live:
        await live.until(lambda: live.source.stats.produced == len(FUTURES_TRADES),
                         "every trade")
        stats = live.source.stats
    assert server.connections >= 2 and stats.reconnects >= 1 and stats.gaps == 0
    await assert_ticks_exactly_once(namespace.settings, FUTURES_TRADES)


async def test_a_flood_into_a_tiny_queue_blocks_the_source_and_loses_nothing(
        namespace: Namespace) -> None:
    first = FUTURES_TRADES[0]
    flood = binance_flood(first, 4000)
    trades = [first] + [json.loads(f)["data"] for f in flood]
    frames = [json.dumps({"stream": f"{first['s'].lower()}@aggTrade", "data": first}), *flood]
    async with BinanceServer(frames) as server, running(
            namespace, [binance_source(server)], kafka={"queue_size": 5, "linger_ms": 0}) as live:
        await live.until(lambda: live.source.stats.produced == len(trades), "the flood")
        stats = live.source.stats
        max_queued = live.producer.sink.max_queued
    assert stats.backpressure_waits > 0 and max_queued <= 5 and stats.dropped == 0
    await assert_ticks_exactly_once(namespace.settings, trades)


# -- ccxt.pro ---------------------------------------------------------------------------------

COINBASE_REC = load_recording(COINBASE)
COINBASE_PRODUCTS = ["SKL-USD", "SKL-BTC", "BAND-GBP", "NMR-EUR", "BAND-BTC", "YFI-BTC",
                     "DASH-BTC", "NU-GBP", "CRV-EUR", "SKL-GBP"]
KRAKEN_REC = load_recording(KRAKEN_FUTURES)
KRAKEN_SYMBOLS = {"PI_XRPUSD": "XRP/USD:XRP", "PI_LTCUSD": "LTC/USD:LTC",
                  "PI_ETHUSD": "ETH/USD:ETH"}


def ccxt_source(server: Any, exchange: str, symbols: list[str], **extra: Any) -> dict[str, Any]:
    return {"type": "ccxt_ws", "name": exchange, "exchange": exchange, "symbols": symbols,
            "ws_url": server.ws_url, "rest_url": server.http_url, "watchdog_seconds": 5,
            "backoff_base_seconds": 0.05, "backoff_cap_seconds": 0.2, **extra}


def coinbase_tick(match: dict[str, Any]) -> dict[str, Any]:
    """A Coinbase Exchange match: ``side`` is the maker's, the taker did the opposite."""
    moment = datetime.fromisoformat(match["time"])
    return {"exchange": "coinbaseexchange", "symbol": match["product_id"].replace("-", "/"),
            "event_time": iso_ms(int(moment.timestamp() * 1000)),
            "price": float(match["price"]), "amount": float(match["size"]),
            "side": {"buy": "sell", "sell": "buy"}[match["side"]],
            "trade_id": str(match["trade_id"]), "schema_version": 1}


def kraken_tick(trade: dict[str, Any]) -> dict[str, Any]:
    return {"exchange": "krakenfutures", "symbol": KRAKEN_SYMBOLS[trade["product_id"]],
            "event_time": iso_ms(trade["time"]), "price": float(trade["price"]),
            "amount": float(trade["qty"]), "side": trade["side"], "trade_id": trade["uid"],
            "schema_version": 1}


async def test_ccxt_coinbase_exchange_matches_once_through_a_closed_connection(
        namespace: Namespace) -> None:
    matches = [json.loads(f) for f in COINBASE_REC.frames if '"type":"match"' in f]
    assert len(matches) == 97
    plans = [Plan(frames=40, then="close"), Plan(rewind=25)]
    symbols = [p.replace("-", "/") for p in COINBASE_PRODUCTS]
    async with CoinbaseExchangeServer(COINBASE_REC.frames, plans) as server, \
            running(namespace, [ccxt_source(server, "coinbaseexchange", symbols)]) as live:
        await live.until(lambda: live.source.stats.produced == len(matches), "every match")
        await live.until(lambda: live.source.stats.duplicates >= 15, "the replay")
        stats = live.source.stats
    assert server.connections == 2 and stats.reconnects == 1 and stats.malformed == 0
    assert server.subscriptions[0] == {f"matches:{p}" for p in COINBASE_PRODUCTS}
    await assert_ticks_exactly_once(namespace.settings, matches, coinbase_tick)


async def test_ccxt_kraken_futures_snapshots_and_trades_once_after_watchdog_reconnect(
        namespace: Namespace) -> None:
    trades: list[dict[str, Any]] = []
    for frame in map(json.loads, KRAKEN_REC.frames):
        if frame.get("product_id", "").upper() not in KRAKEN_SYMBOLS or "event" in frame:
            continue
        if frame.get("feed") == "trade_snapshot":
            trades.extend(frame["trades"])
        elif frame.get("feed") == "trade":
            trades.append(frame)
    assert len(trades) == 302
    # two snapshots, then silence; the new connection gets them again (as Kraken does)
    plans = [Plan(frames=2, then="silent"), Plan(rewind=2)]
    async with KrakenFuturesServer(KRAKEN_REC.frames, plans) as server, running(
            namespace, [ccxt_source(server, "krakenfutures", list(KRAKEN_SYMBOLS.values()),
                                    watchdog_seconds=1)]) as live:
        await live.until(lambda: live.source.stats.produced == len(trades), "every trade")
        await live.until(lambda: live.source.stats.duplicates == 200, "the snapshots again")
        stats = live.source.stats
    assert server.connections == 2 and stats.reconnects == 1
    await assert_ticks_exactly_once(namespace.settings, trades, kraken_tick, ordered=False)


async def test_the_cli_produces_until_sigterm_then_flushes_and_exits_cleanly(
        namespace: Namespace) -> None:
    config = namespace.workdir / "cli-live.yaml"
    async with BinanceServer(FUTURES.frames) as server:
        config.write_text(yaml.safe_dump({"status_interval_seconds": 0.5,
                                          "sources": [binance_source(server)]}))
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "altseason", "produce", "live", "--config", str(config),
            env={**os.environ, **namespace.env, "ALTSEASON_PRODUCER_WEB_PORT": str(port)},
            stdout=asyncio.subprocess.PIPE)
        try:
            async def produced() -> int:
                return len(await read_messages(namespace.settings, "ticks"))

            deadline = asyncio.get_running_loop().time() + 25
            while await produced() < len(FUTURES_TRADES):
                assert process.returncode is None, "the producer exited"
                assert asyncio.get_running_loop().time() < deadline, "nothing produced"
                await asyncio.sleep(0.3)
            # its endpoints: ready, and the counters say what was produced
            async with aiohttp.ClientSession() as http:
                base = f"http://127.0.0.1:{port}"
                async with http.get(f"{base}/ready") as response:
                    assert response.status == 200, await response.text()
                async with http.get(f"{base}/metrics") as response:
                    metrics = await response.text()
            assert ('altseason_producer_produced_total{source="binance-futures"} '
                    f"{float(len(FUTURES_TRADES))}") in metrics
            assert 'altseason_producer_dropped_total{source="binance-futures"} 0.0' in metrics
            statuses = await writing_statuses(port, [*PRODUCER_PATHS, "/"])
            assert set(statuses.values()) <= {404, 405}, statuses  # read-only
            process.send_signal(signal.SIGTERM)
            stdout, _ = await asyncio.wait_for(process.communicate(), 20)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    log = [json.loads(line) for line in stdout.decode().splitlines()]  # JSON: not a terminal
    assert process.returncode == 0, log
    messages = [entry["message"] for entry in log]
    assert any("binance-futures: messages=" in m for m in messages)
    assert any(m.startswith("stopped: queue 0/10000") for m in messages)
    await assert_ticks_exactly_once(namespace.settings, FUTURES_TRADES)


async def test_binance_spot_recording_trades_and_book_tickers_once(namespace: Namespace) -> None:
    """The recorded spot session (quiet: 2 trades, 84 book tickers), spot symbols and topics."""
    from wsfixtures import BINANCE_SPOT

    spot = load_recording(BINANCE_SPOT)
    trades = binance_agg_trades(spot.frames)
    books = [f for f in spot.frames if '@bookTicker"' in f]
    symbols = {"LRCBTC": "LRC/BTC", "NKNUSDT": "NKN/USDT"}
    source = {"type": "binance_ws", "name": "binance-spot", "market": "spot",
              "symbols": list(symbols.values()), "channels": ["aggTrade", "bookTicker"],
              "watchdog_seconds": 5, "backoff_base_seconds": 0.05, "backoff_cap_seconds": 0.2}
    async with BinanceServer(spot.frames) as server, running(namespace, [{
            **source, "ws_url": server.ws_url, "rest_url": server.http_url}]) as live:
        wanted = len(trades) + sum(json.loads(f)["data"]["s"] in symbols for f in books)
        await live.until(lambda: live.source.stats.produced == wanted, "every trade and ticker")
        assert live.source.stats.duplicates == live.source.stats.dropped == 0

    def spot_tick(data: dict[str, Any]) -> dict[str, Any]:
        return {**expected_tick({**data, "s": "SUSHIUSDT"}), "exchange": "binance",
                "symbol": symbols[data["s"]]}

    await assert_ticks_exactly_once(namespace.settings, trades, spot_tick)
    tickers = [json.loads(m.value) for m in await read_messages(namespace.settings, "tickers")]
    assert {t["symbol"] for t in tickers} == set(symbols.values())
    assert all(t["exchange"] == "binance" and t["kind"] == "book" for t in tickers)
