"""Producer: the live producers' KafkaSink against one message at a time with send_and_wait.

    .venv/bin/python bench/producer.py [--quick] [--repeats N]

Both send the same synthetic Binance trades (``CryptoTick``, key ``exchange:symbol``, message
timestamp = event time) to the ``ticks`` topic of a private namespace, with the same delivery
guarantee: an idempotent producer with ``acks=all``, every message acknowledged.

- sink: ``KafkaSink`` as the live producers use it (bounded queue, dedupe key per trade, one
  delivery task sending what is queued in rounds, ``linger_ms`` 20); timed from the first
  ``emit`` to ``flush`` returning (all acknowledged);
- one at a time: ``await producer.send_and_wait(...)`` per message (``linger_ms`` 0, else each
  message would wait for the linger), what a naive source would do.

The two alternate, several times; printed: messages/s of each (medians) and the ratio.
"""

from __future__ import annotations

import time

from _common import (
    delete_namespace,
    median,
    new_namespace,
    parser,
    print_table,
    run,
    synthetic_ticks,
)
from aiokafka import AIOKafkaProducer

from foundation.config import Settings
from producers.live.sink import KafkaSink
from producers.replay import ReplayEvent
from schemas.decode import parse_utc, to_ms
from schemas.records import CryptoTick


async def sink_rate(settings: Settings, events: list[ReplayEvent]) -> float:
    """Messages/s through KafkaSink, until every one is acknowledged."""
    async with KafkaSink(settings) as sink:
        start = time.perf_counter()
        for event in events:
            tick = event.record
            assert isinstance(tick, CryptoTick)
            await sink.emit("ticks", event.key, tick,
                            dedupe_key=f"{tick.exchange}:{tick.symbol}:{tick.trade_id}")
        await sink.flush()
        elapsed = time.perf_counter() - start
        assert sink.stats.produced == len(events), "the sink did not deliver everything"
    return len(events) / elapsed


async def one_at_a_time_rate(settings: Settings, events: list[ReplayEvent]) -> float:
    """Messages/s with send_and_wait per message (same idempotence and acks)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                enable_idempotence=True, acks="all", linger_ms=0)
    await producer.start()
    try:
        topic = settings.topic("ticks")
        start = time.perf_counter()
        for event in events:
            await producer.send_and_wait(
                topic, event.record.dumps(), key=event.key.encode(),
                timestamp_ms=to_ms(parse_utc(event.record.event_time)))
        return len(events) / (time.perf_counter() - start)
    finally:
        await producer.stop()


async def main() -> None:
    args_parser = parser(__doc__)
    args_parser.add_argument("--repeats", type=int, default=None)
    args = args_parser.parse_args()
    batched_count, single_count = (5_000, 500) if args.quick else (30_000, 2_000)
    repeats = args.repeats or (2 if args.quick else 3)
    ns = await new_namespace("producer")
    try:
        print(f"sink: {batched_count} messages per run, one at a time: {single_count}; "
              f"alternately, {repeats} times", flush=True)
        sinks, singles = [], []
        for i in range(repeats):
            # fresh trade ids per run, so the sink's dedupe never drops one
            sinks.append(await sink_rate(ns.settings, synthetic_ticks(batched_count, seed=i)))
            singles.append(await one_at_a_time_rate(ns.settings,
                                                    synthetic_ticks(single_count, seed=i)))
            print(f"  run {i + 1}: sink {sinks[-1]:,.0f}/s, one at a time {singles[-1]:,.0f}/s",
                  flush=True)
        sink, single = median(sinks), median(singles)
        print()
        print_table(["producer", "messages/s (median)", "ratio"],
                    [("KafkaSink (batched, idempotent, acks=all)", sink, f"{sink / single:.0f}x"),
                     ("send_and_wait per message", single, "1x")])
    finally:
        await delete_namespace(ns)


if __name__ == "__main__":
    run(main)
