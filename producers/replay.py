"""Replay recorded real market data (``data/replay/``) through Kafka in event-time order.

Each file becomes the events a live source would send: index closes become ``IndexQuote``
events stamped at the 16:00 New York close, CoinGecko snapshots become ``MarketCap`` events at
their snapshot time, CoinMarketCap's global metrics become the altcoin market cap ``TOTAL3``
(total minus BTC and ETH, from its dominance figures) at its ``last_updated`` time, daily
BTC-USD and ETH-USD closes become one ``CryptoTick`` per day (exchange ``replay``, trade id =
the date) stamped at the close of the UTC day (23:59:59.999), and the long/short ratio files
become ``LongShortRatio`` events at their period's timestamp.
"""

from __future__ import annotations

import asyncio
import csv
import heapq
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from foundation.config import Settings
from foundation.connections import kafka_client_options
from foundation.errors import ConfigError
from schemas.decode import iso_utc, parse_utc
from schemas.records import CryptoTick, Event, IndexQuote, LongShortRatio, MarketCap

NEW_YORK = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class ReplayEvent:
    t_ms: int
    topic: str
    key: str
    record: Event


def _index_close_time(day: date) -> datetime:
    return datetime.combine(day, dtime(16, 0), NEW_YORK).astimezone(UTC)


def _utc_day_close(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), dtime(0, 0), UTC) - timedelta(milliseconds=1)


def _in_range(day: date, since: date | None, until: date | None) -> bool:
    return (since is None or day >= since) and (until is None or day <= until)


def index_quotes(path: Path, symbol: str, source: str, since: date | None = None,
                 until: date | None = None) -> Iterator[ReplayEvent]:
    """Daily index closes (columns Date, Close) as IndexQuote events."""
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            day = date.fromisoformat(row["Date"])
            if not _in_range(day, since, until):
                continue
            moment = _index_close_time(day)
            quote = IndexQuote(symbol=symbol, event_time=iso_utc(moment),
                               price=float(row["Close"]), source=source)
            yield ReplayEvent(int(moment.timestamp() * 1000), "index-quotes", symbol, quote)


def total_market_caps(path: Path, source: str, since: date | None = None,
                      until: date | None = None) -> Iterator[ReplayEvent]:
    """CoinGecko total market cap export (snapped_at epoch ms, market_cap, total_volume)."""
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            t_ms = int(row["snapped_at"])
            moment = datetime.fromtimestamp(t_ms / 1000, UTC)
            if not _in_range(moment.date(), since, until):
                continue
            volume = float(row["total_volume"])
            cap = MarketCap(asset="TOTAL", event_time=iso_utc(moment),
                            market_cap=float(row["market_cap"]), source=source,
                            volume_24h=volume if volume > 0 else None)
            yield ReplayEvent(t_ms, "market-caps", "TOTAL", cap)


def daily_close_ticks(path: Path, symbol: str, since: date | None = None,
                      until: date | None = None) -> Iterator[ReplayEvent]:
    """Daily OHLCV of a crypto pair (UTC days) as one close tick per day."""
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            day = date.fromisoformat(row["Date"])
            if not _in_range(day, since, until):
                continue
            moment = _utc_day_close(day)
            tick = CryptoTick(exchange="replay", symbol=symbol, event_time=iso_utc(moment),
                              price=float(row["Close"]), amount=0.0, side="unknown",
                              trade_id=day.isoformat())
            yield ReplayEvent(int(moment.timestamp() * 1000), "ticks", f"replay:{symbol}", tick)


def altcoin_market_caps(path: Path, source: str, since: date | None = None,
                        until: date | None = None) -> Iterator[ReplayEvent]:
    """CoinMarketCap global metrics as ``TOTAL3``: total x (1 - BTC and ETH dominance)."""
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            moment = parse_utc(row["last_updated"])
            if not _in_range(moment.date(), since, until):
                continue
            dominance = (float(row["btc_dominance"]) + float(row["eth_dominance"])) / 100
            cap = MarketCap(asset="TOTAL3", event_time=iso_utc(moment),
                            market_cap=float(row["total_market_cap"]) * (1 - dominance),
                            source=source)
            yield ReplayEvent(int(moment.timestamp() * 1000), "market-caps", "TOTAL3", cap)


def long_short_ratios(path: Path, exchange: str, symbol: str, period: str,
                      since: date | None = None,
                      until: date | None = None) -> Iterator[ReplayEvent]:
    """Global account long/short ratios: Binance's export (longAccount, shortAccount,
    longShortRatio, timestamp in UTC) or OKX's (ts epoch ms, ratio)."""
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if "ts" in row:
                moment = datetime.fromtimestamp(int(row["ts"]) / 1000, UTC)
                ratio = float(row["ratio"])
                long_share = ratio / (1 + ratio)
                short_share = 1 - long_share
            else:
                moment = datetime.fromisoformat(row["timestamp"]).replace(tzinfo=UTC)
                ratio = float(row["longShortRatio"])
                long_share, short_share = float(row["longAccount"]), float(row["shortAccount"])
            if not _in_range(moment.date(), since, until):
                continue
            event = LongShortRatio(exchange=exchange, symbol=symbol, event_time=iso_utc(moment),
                                   period=period, variant="global_account",
                                   long_share=long_share, short_share=short_share, ratio=ratio)
            yield ReplayEvent(int(moment.timestamp() * 1000), "long-short-ratios",
                              f"{exchange}:{symbol}", event)


#: bundled files and how each becomes events (every file must be there)
Reader = Callable[[Path, date | None, date | None], Iterator[ReplayEvent]]
REPLAY_FILES: dict[str, Reader] = {
    "russell2000_rut.csv": lambda p, s, u: index_quotes(p, "RUT", "replay:yahoo ^RUT", s, u),
    "sp500_gspc.csv": lambda p, s, u: index_quotes(p, "SPX", "replay:yahoo ^GSPC", s, u),
    "crypto_total_mcap_coingecko.csv": lambda p, s, u: total_market_caps(
        p, "replay:coingecko", s, u),
    "crypto_global_metrics_coinmarketcap.csv": lambda p, s, u: altcoin_market_caps(
        p, "replay:coinmarketcap total-btc-eth", s, u),
    "btc_usd.csv": lambda p, s, u: daily_close_ticks(p, "BTC/USD", s, u),
    "eth_usd.csv": lambda p, s, u: daily_close_ticks(p, "ETH/USD", s, u),
    "binance_btcusdt_global_long_short_30m.csv": lambda p, s, u: long_short_ratios(
        p, "binanceusdm", "BTC/USDT:USDT", "30m", s, u),
    "okx_sol_usdt_swap_long_short_1h.csv": lambda p, s, u: long_short_ratios(
        p, "okx", "SOL/USDT:USDT", "1h", s, u),
}


def load_replay(data_dir: Path, since: date | None = None,
                until: date | None = None) -> list[ReplayEvent]:
    """Every bundled series merged in event-time order (ties: by topic, then key)."""
    missing = [name for name in REPLAY_FILES if not (data_dir / name).is_file()]
    if missing:
        raise ConfigError(f"replay directory {data_dir} lacks {', '.join(missing)}")
    streams = [sorted(reader(data_dir / name, since, until), key=lambda e: e.t_ms)
               for name, reader in REPLAY_FILES.items()]
    return list(heapq.merge(*streams, key=lambda e: (e.t_ms, e.topic, e.key)))


def kafka_producer(settings: Settings) -> AIOKafkaProducer:
    """An idempotent, batching producer: acks from all in-sync replicas, retried, in order."""
    return AIOKafkaProducer(
        **kafka_client_options(settings),
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
    )


async def replay(settings: Settings, events: list[ReplayEvent], speed: float = 0.0,
                 progress: bool = True) -> int:
    """Send the events to their topics; ``speed`` = event-time seconds per wall second (0: max).

    Returns the number of events sent; every send is acknowledged before it returns.
    """
    if speed < 0:
        raise ConfigError(f"replay speed {speed} must be >= 0")
    producer = kafka_producer(settings)
    await producer.start()
    bar = tqdm(total=len(events), unit="ev", desc="replay", file=sys.stderr,
               disable=not progress, mininterval=0.5)
    pending: list[asyncio.Future] = []
    try:
        start_wall = time.monotonic()
        start_event = events[0].t_ms if events else 0
        for event in events:
            if speed > 0:
                due = start_wall + (event.t_ms - start_event) / 1000 / speed
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            pending.append(await producer.send(
                settings.topic(event.topic), event.record.dumps(), key=event.key.encode(),
            ))
            if len(pending) >= 1000:
                await asyncio.gather(*pending)
                bar.update(len(pending))
                pending.clear()
        await asyncio.gather(*pending)
        bar.update(len(pending))
    finally:
        bar.close()
        await producer.stop()
    return len(events)
