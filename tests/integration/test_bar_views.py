"""Open-bar views in Redis are written coalesced: the latest state per symbol, once per flush.

The expected bars are computed here with plain loops over the ticks sent, and compared with
the ``bar:*`` hashes and the ``bar`` channel a plain Redis client sees.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as redis
from harness import Namespace

from altseason.kafka_admin import ensure_topics
from altseason.run import stop_worker
from producers.live.config import SinkConfig
from producers.live.core import SourceStats
from producers.live.sink import KafkaSink
from schemas.records import CryptoTick

pytestmark = pytest.mark.integration

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "DOGE/USDT")
TICKS = 2000
START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
INTERVALS = {"1m": 60, "1h": 3600, "1d": 86400}
#: long enough that the periodic flush hardly runs: what Redis ends up with is the stop's flush
FLUSH_SECONDS = 30.0


def ticks() -> list[CryptoTick]:
    """Ticks of 4 symbols over 10 minutes, prices moving both ways."""
    return [CryptoTick(exchange="binance", symbol=SYMBOLS[i % len(SYMBOLS)],
                       event_time=(START + timedelta(milliseconds=300 * i)).isoformat()
                       .replace("+00:00", "Z"),
                       price=100.0 + (i * 7919 % 1000) / 10, amount=0.5 + i % 3,
                       side="buy", trade_id=str(i))
            for i in range(TICKS)]


def expected_open_bars(sent: list[CryptoTick]) -> dict[str, dict[str, float]]:
    """``bar:<exchange>:<symbol>:<interval>`` -> the last bucket's OHLCV, by plain loops."""
    buckets: dict[tuple[str, str, int], list[CryptoTick]] = defaultdict(list)
    for tick in sent:
        t_s = datetime.fromisoformat(tick.event_time.replace("Z", "+00:00")).timestamp()
        for name, seconds in INTERVALS.items():
            buckets[(f"{tick.exchange}:{tick.symbol}", name, int(t_s // seconds))].append(tick)
    last: dict[str, dict[str, float]] = {}
    for (key, name, _start), bucket in sorted(buckets.items()):
        prices = [t.price for t in bucket]
        last[f"{key}:{name}"] = {"open": prices[0], "high": max(prices), "low": min(prices),
                                 "close": prices[-1], "trades": len(bucket),
                                 "volume": sum(t.amount for t in bucket)}
    return last


async def test_bar_views_are_coalesced_and_a_graceful_stop_writes_the_last_state(
    namespace: Namespace, workers: list, redis_client: redis.Redis
) -> None:
    settings = namespace.settings
    await ensure_topics(settings)
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(settings.redis_key("bar"))
    worker = namespace.worker(ALTSEASON_BAR_VIEW_FLUSH_SECONDS=str(FLUSH_SECONDS),
                              ALTSEASON_REDIS_CHECK_SECONDS="600")  # no rebuild meanwhile
    workers.append(worker)
    started = asyncio.get_running_loop().time()

    sent = ticks()
    stats = SourceStats()
    sink = KafkaSink(settings, SinkConfig(linger_ms=5))
    await sink.start()
    emitter = sink.emitter(stats)
    for tick in sent:
        await emitter.emit("ticks", f"binance:{tick.symbol}", tick)
    assert await sink.flush(60)
    await sink.close(30)
    await namespace.processed(worker)
    assert stop_worker(worker) == 0
    elapsed = asyncio.get_running_loop().time() - started

    expected = expected_open_bars(sent)
    assert len(expected) == len(SYMBOLS) * len(INTERVALS)
    for name, bar in expected.items():
        view = await redis_client.hgetall(settings.redis_key("bar", name))
        assert {k: float(view[k]) for k in bar} == pytest.approx(bar, rel=1e-12), name
    published: list[dict[str, object]] = []
    while (message := await pubsub.get_message(timeout=1.0)) is not None:
        if message["type"] == "message":
            published.append(json.loads(message["data"]))
    await pubsub.aclose()
    # one publish per bar per flush, not per tick: a flush every FLUSH_SECONDS and the stop's
    flushes = int(elapsed // FLUSH_SECONDS) + 1
    assert 0 < len(published) <= len(expected) * flushes < TICKS
    last = {str(p["name"]): p for p in published}
    assert {name: float(str(last[name]["close"])) for name in expected} == {
        name: bar["close"] for name, bar in expected.items()}
