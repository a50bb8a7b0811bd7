"""The live producers' Kafka sink through a broker outage: stopped for seconds, restarted.

The test runs its own Kafka (a private stack folder), so stopping it disturbs no other test.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest
from harness import read_topic

from altseason import stack
from altseason.kafka_admin import ensure_topics
from foundation.config import load_settings
from producers.live.config import SinkConfig
from producers.live.core import SourceStats
from producers.live.sink import KafkaSink
from schemas.records import CryptoTick

pytestmark = pytest.mark.integration

TRADES = 3000


def trade(i: int) -> CryptoTick:
    return CryptoTick(exchange="binance", symbol="BTC/USDT",
                      event_time=f"2026-11-23T10:{i // 60000:02d}:{i // 1000 % 60:02d}."
                                 f"{i % 1000:03d}Z",
                      price=90_000.0 + i / 100, amount=0.01, side="buy", trade_id=str(i))


async def test_nothing_is_lost_or_duplicated_when_the_broker_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)  # a private stack, not the shared one
    stack_dir = tmp_path / "stack"
    info = stack.up(stack_dir)
    try:
        settings = load_settings(env={"KAFKA_BOOTSTRAP_SERVERS": info.kafka_bootstrap_servers,
                                      "ALTSEASON_TOPIC_PREFIX": "restart."})
        await ensure_topics(settings)
        stats = SourceStats()
        sink = KafkaSink(settings, SinkConfig(queue_size=100, linger_ms=5))
        await sink.start()
        emitter = sink.emitter(stats)

        async def source() -> None:
            for i in range(TRADES):
                await emitter.emit("ticks", "binance:BTC/USDT", trade(i),
                                   dedupe_key=f"binance:BTC/USDT:{i}")
                await asyncio.sleep(0.002)

        producing = asyncio.create_task(source())
        while stats.produced < TRADES // 4:  # noqa: ASYNC110 (a counter the sink updates)
            await asyncio.sleep(0.05)
        await asyncio.to_thread(stack.down, stack_dir)  # the broker goes away mid-stream
        await asyncio.sleep(4)
        stalled_at = stats.produced
        assert not producing.done(), "the source must wait (backpressure), not fail"
        assert stalled_at < TRADES
        restarted = await asyncio.to_thread(stack.up, stack_dir)
        assert restarted.kafka_bootstrap_servers == info.kafka_bootstrap_servers
        await asyncio.wait_for(producing, 120)
        assert await sink.flush(120)
        await sink.close(30)

        # aiokafka's own retries carried the sends over the outage (the sink retries what
        # they give up on); all acknowledged after the restart
        assert (stats.produced, stats.dropped) == (TRADES, 0) and stalled_at < TRADES
        assert stats.backpressure_waits > 0
        ids = [json.loads(raw)["trade_id"]
               for raw in await read_topic(settings, settings.topic("ticks"), timeout_s=60)]
        duplicated = [k for k, n in Counter(ids).items() if n > 1]
        assert duplicated == [] and len(ids) == TRADES
        assert ids == [str(i) for i in range(TRADES)], "one key: order kept"
    finally:
        stack.down(stack_dir)
