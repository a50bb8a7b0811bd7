"""Bad input on the real broker: each bad event is dead-lettered with its reason, counted, and
the worker goes on processing the good events around it."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as redis
from aiokafka import AIOKafkaProducer
from harness import Namespace, read_topic

from schemas.records import CryptoTick, DeadLetter, IndexQuote

pytestmark = pytest.mark.integration


def quote(symbol: str, day: str, price: float) -> bytes:
    return IndexQuote(symbol=symbol, event_time=f"{day}T21:00:00.000Z", price=price,
                      source="test").dumps()


async def test_bad_events_go_to_the_dead_letter_topic_and_good_ones_are_kept(
    namespace: Namespace, workers: list, redis_client: redis.Redis
) -> None:
    settings = namespace.settings
    good = [("RUT", "2025-01-02", 2200.0), ("SPX", "2025-01-02", 5900.0),
            ("RUT", "2025-01-03", 2210.0), ("SPX", "2025-01-03", 5950.0)]
    later = [("RUT", "2025-01-06", 2230.0), ("SPX", "2025-01-06", 5960.0)]
    bad: list[tuple[str, bytes, str]] = [
        ("index-quotes", b"{not json", "malformed JSON"),
        ("index-quotes", b'{"symbol": "RUT", "event_time": "2025-01-03T21:00:00Z", '
                         b'"price": NaN, "source": "x"}', "not a finite number"),
        ("index-quotes", quote("RUT", "2025-01-03", 1.0).replace(b"1.0", b"-5.0"), "must be > 0"),
        ("index-quotes", quote("FOO", "2025-01-03", 10.0), "unknown index symbol 'FOO'"),
        ("index-quotes", json.dumps({"symbol": "RUT", "price": 1.0}).encode(), "missing field"),
        ("market-caps", b'{"asset": "TOTAL", "event_time": "2025-01-03T00:00:00Z", '
                        b'"market_cap": "lots", "source": "x"}', "field market_cap is str"),
        ("ticks", b"[1, 2, 3]", "expected a JSON object"),
        # valid, but keyed "RUT": the bars agent keeps a symbol's state in its key's partition
        ("ticks", CryptoTick(exchange="binance", symbol="ETH/USDT", price=3000.0, amount=1.0,
                             event_time="2025-01-03T12:00:00Z", side="buy",
                             trade_id="1").dumps(), "a tick's key must be exchange:symbol"),
    ]
    # a replayed duplicate and an out-of-order close of a series already applied: valid events,
    # rejected by each agent that owns a pair of RUT (RUT~TOTAL, RUT~BTC, RUT~TOTAL3, RUT/SPX)
    stale = [quote("RUT", "2025-01-03", 2210.0), quote("RUT", "2025-01-02", 2200.0)]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                enable_idempotence=True)
    await producer.start()
    try:
        for symbol, day, price in good:
            await producer.send_and_wait(settings.topic("index-quotes"),
                                         quote(symbol, day, price), key=symbol.encode())
        for topic, payload, _ in bad:
            await producer.send_and_wait(settings.topic(topic), payload, key=b"RUT")
        for payload in stale:
            await producer.send_and_wait(settings.topic("index-quotes"), payload, key=b"RUT")
        for symbol, day, price in later:
            await producer.send_and_wait(settings.topic("index-quotes"),
                                         quote(symbol, day, price), key=symbol.encode())
    finally:
        await producer.stop()

    workers.append(namespace.worker())
    await namespace.processed(workers[0])
    assert workers[0].poll() is None, "the worker must survive bad input"

    letters = [DeadLetter(**json.loads(raw))
               for raw in await read_topic(settings, settings.topic("deadletter"))]
    reasons = sorted(letter.reason for letter in letters)
    # a stale RUT close is rejected by each agent that owns a pair with RUT: the three RUT~
    # correlation pairs and the RUT/SPX regime
    rut_owners = sum(p.startswith("RUT~") for p in settings.signals.correlation_pairs) + 1
    assert rut_owners == 4
    assert len(letters) == len(bad) + rut_owners * len(stale), reasons
    for _, payload, fragment in bad:
        matching = [x for x in letters if fragment in x.reason]
        assert len(matching) == 1, f"no single dead letter says {fragment!r}: {reasons}"
        assert matching[0].payload == payload.decode(errors="replace")
    ordered = [x for x in letters if x.source in ("correlate", "track_regime")]
    assert sorted(x.source for x in ordered) == ["correlate"] * 6 + ["track_regime"] * 2
    assert all("older than" in x.reason or "duplicate" in x.reason for x in ordered), reasons
    malformed = next(x for x in letters if "malformed JSON" in x.reason)
    assert malformed.payload == "{not json"
    assert malformed.topic == settings.topic("index-quotes")
    assert malformed.source == "route_inputs"

    counts = await redis_client.hgetall(settings.redis_key("deadletter", "counts"))
    assert sum(int(n) for n in counts.values()) == len(letters)

    assert not await redis_client.exists(settings.redis_key("bar", "binance:ETH/USDT:1m"))
    # the good events around the bad ones were all applied
    index = await redis_client.hgetall(settings.redis_key("index", "RUT"))
    assert index["day"] == "2025-01-06"
    assert float(index["close"]) == 2230.0
    assert float(index["ath"]) == 2230.0
    regime = await redis_client.hgetall(settings.redis_key("regime", "RUT/SPX"))
    assert regime["day"] == "2025-01-06"
    assert int(regime["streak"]) == 1  # Jan 3: +0.45% vs +0.85%; Jan 6: +0.90% vs +0.17%
