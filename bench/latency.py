"""Latency from a tick's event time to the worker's outputs, at steady paced input rates.

    .venv/bin/python bench/latency.py [--quick] [--rates 100,1000,5000] [--repeats N]

A paced producer (the live producers' ``KafkaSink``: bounded queue, idempotent producer,
``linger_ms`` 20) sends Binance trades at a steady rate; each tick's ``event_time`` is the wall
clock when it is created (millisecond precision) and its price is that same millisecond, so
every output carries the time of the tick that produced it. A separate listener process (so
its work does not delay the producer's clock) timestamps, on arrival:

- ``ticks``: the tick itself on the input topic (producer + broker: the floor of the rest);
- ``<app>-bar-state-changelog``: ``build_bars``' table write for that tick (its Kafka output
  per tick; ``bars`` only gets a message when a bar closes, once a minute per symbol, and
  signals almost never fire on ticks);
- Redis ``bar`` channel: the publish of ``bar:<exchange>:<symbol>:1d`` that includes the tick.
  The bar views are written coalesced (every ``bar_view_flush_seconds``, the latest state of
  each symbol that traded), so a tick counts as in Redis at the first publish of its symbol's
  view whose close (the latest tick's time) is at or after its own: the view is then current.

Each rate runs on a fresh namespace and worker (no backlog from the previous run); the first
2 s are warm-up. A tick whose output has not arrived 3 s after the last send counts as
infinitely late (``>run``), so a saturated worker shows as such instead of as a fast one.
Printed per rate and output: p50 / p99 (medians over repeats) and max, in ms, and the share
delivered. Goal: p99 < 50 ms at 5k ticks/s.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import math
import multiprocessing
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as redis
from _common import (
    SYMBOLS,
    MachineLoad,
    Namespace,
    Worker,
    delete_namespace,
    halt_worker,
    launch_worker,
    median,
    new_namespace,
    parser,
    percentile,
    print_table,
    run,
    wait_ready,
)
from aiokafka import AIOKafkaConsumer

from altseason.kafka_admin import topic_partitions
from altseason.run import log_tail
from foundation.config import load_settings
from producers.live.sink import KafkaSink
from schemas.decode import iso_utc
from schemas.records import CryptoTick

WARMUP_S = 2.0
GRACE_S = 3.0
PATHS = ("ticks", "bar-state-changelog", "redis bar 1d")
#: (symbol key "exchange:symbol", the tick time an output carries in ms, arrival in ms)
Arrival = tuple[str, float, float]


def output_topics(env: dict[str, str]) -> dict[str, str]:
    """Kafka topic -> path name, for the namespace in ``env``."""
    settings = load_settings(env=env)
    return {settings.topic("ticks"): "ticks",
            f"{settings.app_id}-bar-state-changelog": "bar-state-changelog"}


def sent_ms(path: str, value: bytes) -> float | None:
    """The producing tick's event time (ms) carried by an output: its price."""
    data = json.loads(value)
    if path == "ticks":
        return float(data["price"])
    bars = data.get("open", {}).get("60", [])  # the table value: BarBuilder.to_state()
    return float(max(bars, key=lambda b: b["start_ms"])["close"]) if bars else None


def listen(env: dict[str, str], ready: Any, stop: Any, results: Any) -> None:
    """Listener process: (event ms, arrival ms) per output until ``stop`` is set."""
    results.put(asyncio.run(_listen(env, ready, stop)))


async def _listen(env: dict[str, str], ready: Any, stop: Any) -> dict[str, list[Arrival]]:
    settings = load_settings(env=env)
    topics = output_topics(env)
    arrivals: dict[str, list[Arrival]] = {path: [] for path in PATHS}
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                enable_auto_commit=False, fetch_max_wait_ms=20)
    client = redis.from_url(settings.redis_url)
    pubsub = client.pubsub()
    await consumer.start()
    try:
        partitions = await topic_partitions(settings, list(topics))
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the positions now, before anything is sent
            await consumer.position(tp)
        await pubsub.subscribe(settings.redis_key("bar"))
        ready.set()

        async def from_kafka() -> None:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=100)
                now = time.time() * 1000
                for tp, messages in batches.items():
                    path = topics[tp.topic]
                    for message in messages:
                        sent = sent_ms(path, message.value)
                        if sent is not None:  # changelog keys are JSON strings
                            key = (message.key or b"").decode().strip('"')
                            arrivals[path].append((key, sent, now))

        async def from_redis() -> None:
            while not stop.is_set():
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                if message is None:
                    continue
                now = time.time() * 1000
                data = json.loads(message["data"])
                if data["name"].endswith(":1d"):
                    arrivals["redis bar 1d"].append(
                        (data["name"].removesuffix(":1d"), float(data["close"]), now))

        await asyncio.gather(from_kafka(), from_redis())
    finally:
        await consumer.stop()
        await pubsub.aclose()
        await client.aclose()
    return arrivals


def symbol_cycle() -> Iterator[str]:
    """Symbols in proportion to their share of trades (BTC most often)."""
    slots = [s for s, weight, _ in SYMBOLS for _ in range(max(1, round(weight * 100)))]
    while True:
        yield from slots


async def paced_send(ns: Namespace, rate: float, seconds: float) -> list[tuple[int, str]]:
    """Send ``rate`` ticks/s for ``seconds`` through a KafkaSink; each tick's event time is
    the wall clock when it is made. Returns (event time ms, "exchange:symbol") of each."""
    sent: list[tuple[int, str]] = []
    symbols = symbol_cycle()
    async with KafkaSink(ns.settings) as sink:
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            for _ in range(int(elapsed * rate) - len(sent)):
                t_ms = int(time.time() * 1000)
                symbol = next(symbols)
                tick = CryptoTick(
                    exchange="binance", symbol=symbol,
                    event_time=iso_utc(datetime.fromtimestamp(t_ms / 1000, UTC)),
                    price=float(t_ms), amount=0.01, side="buy", trade_id=str(len(sent)))
                await sink.emit("ticks", f"binance:{symbol}", tick)
                sent.append((t_ms, f"binance:{symbol}"))
            await asyncio.sleep(0.001)
    return sent


async def warm_up(ns: Namespace, env: dict[str, str], worker: Worker,
                  timeout_s: float = 60) -> None:
    """Until a tick makes it to the Redis bar view: every stage of a new worker is then
    running (Faust joins, recovers and starts fetching each internal topic on its own time)."""
    settings = load_settings(env=env)
    client = redis.from_url(settings.redis_url)
    deadline = time.monotonic() + timeout_s
    try:
        while not await client.exists(settings.redis_key("bar", "binance:BTC/USDT:1m")):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no tick reached Redis within {timeout_s:.0f} s of the "
                                   f"worker being ready:\n{log_tail(worker.log)}")
            await paced_send(ns, 20, 0.5)
    finally:
        await client.aclose()


async def one_run(rate: float,
                  seconds: float) -> tuple[dict[str, list[float]], float, float]:
    """A fresh namespace and worker at one rate: latencies (ms, inf = not delivered) per
    output, the rate actually sent, and the share of the machine's CPUs busy meanwhile."""
    ns = await new_namespace("latency")
    context = multiprocessing.get_context("spawn")
    ready, stop, results = context.Event(), context.Event(), context.Queue()
    listener = worker = None
    try:
        env = ns.worker_env()
        worker = launch_worker(env, ns.workdir / "worker.log")
        await wait_ready([worker])
        listener = context.Process(target=listen, args=(env, ready, stop, results), daemon=True)
        listener.start()
        deadline = time.monotonic() + 60
        while not ready.is_set():
            if time.monotonic() > deadline or not listener.is_alive():
                raise RuntimeError("the listener did not start")
            await asyncio.sleep(0.1)
        await warm_up(ns, env, worker)
        load = MachineLoad()
        sent = await paced_send(ns, rate, seconds)
        machine = load.busy()
        await asyncio.sleep(GRACE_S)
        stop.set()
        arrivals = await asyncio.to_thread(results.get, True, 60)
    finally:
        if worker is not None:
            halt_worker(worker)
        if listener is not None:
            stop.set()
            listener.join(10)
            if listener.is_alive():
                listener.terminate()
        await delete_namespace(ns)
    measured = [(t, key) for t, key in sent if t >= sent[0][0] + WARMUP_S * 1000]
    latencies = {path: tick_latencies(measured, arrivals[path]) for path in PATHS}
    return latencies, len(sent) / seconds, machine


def tick_latencies(sent: list[tuple[int, str]], arrivals: list[Arrival]) -> list[float]:
    """Per tick sent, ms until the first output of its symbol carrying its time or a later
    one (inf if none came). Per symbol, outputs arrive in the order of the times they carry."""
    by_symbol: dict[str, tuple[list[float], list[float]]] = {}
    for key, carried, now in arrivals:
        times, nows = by_symbol.setdefault(key, ([], []))
        times.append(carried)
        nows.append(now)
    latencies = []
    for t, key in sent:
        times, nows = by_symbol.get(key, ([], []))
        i = bisect.bisect_left(times, t)
        latencies.append(nows[i] - t if i < len(times) else math.inf)
    return latencies


def ms(value: float) -> str:
    return ">run" if math.isinf(value) else f"{value:.1f}"


async def main() -> None:
    args_parser = parser(__doc__)
    args_parser.add_argument("--rates", default="100,1000,5000",
                             help="ticks/s, comma-separated (100: well below the worker's "
                                  "capacity, for reference)")
    args_parser.add_argument("--repeats", type=int, default=None)
    args = args_parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    seconds = 6.0 if args.quick else 8.0
    repeats = args.repeats or (1 if args.quick else 2)
    print(f"{seconds:.0f} s per run ({WARMUP_S:.0f} s warm-up), rates {args.rates} ticks/s "
          f"interleaved, {repeats} run(s) each; a fresh worker per run", flush=True)
    runs: dict[float, list[dict[str, list[float]]]] = {rate: [] for rate in rates}
    achieved: dict[float, list[float]] = {rate: [] for rate in rates}
    for i in range(repeats):
        for rate in rates:
            latencies, sent_rate, machine = await one_run(rate, seconds)
            runs[rate].append(latencies)
            achieved[rate].append(sent_rate)
            redis = latencies["redis bar 1d"]
            print(f"  run {i + 1} at {rate:,.0f}/s: sent {sent_rate:,.0f}/s; Redis bar p50 "
                  f"{ms(percentile(redis, 50))} ms, p99 {ms(percentile(redis, 99))} ms; machine "
                  f"CPUs {machine:.0%} busy", flush=True)
    print()
    rows = []
    for rate in rates:
        for path in PATHS:
            samples = [r[path] for r in runs[rate]]
            delivered = sum(sum(not math.isinf(v) for v in s) for s in samples)
            total = sum(len(s) for s in samples)
            rows.append((f"{rate:,.0f}/s (sent {median(achieved[rate]):,.0f}/s)", path,
                         total, f"{delivered / max(total, 1):.0%}",
                         ms(median(percentile(s, 50) for s in samples)),
                         ms(median(percentile(s, 99) for s in samples)),
                         ms(max(max(s, default=math.nan) for s in samples))))
    print_table(["rate", "output", "ticks", "delivered", "p50 ms", "p99 ms", "max ms"], rows)
    top = max(rates)
    worst = median(percentile(r["redis bar 1d"], 99) for r in runs[top])
    print(f"goal p99 < 50 ms at {top:,.0f}/s (Redis bar view): "
          f"{'met' if worst < 50 else 'not met'} (p99 {ms(worst)} ms; '>run' = not delivered "
          f"within the run + {GRACE_S:.0f} s)")


if __name__ == "__main__":
    run(main)
