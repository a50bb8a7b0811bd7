"""Memory: resident memory of a worker holding 1,000 symbols x 3 windows.

    .venv/bin/python bench/memory.py [--quick] [--repeats N]

"Symbols x windows" here is what a tick stream makes a worker hold per symbol: the open OHLCV
bar of each of the 3 bar intervals (1m, 1h, 1d: ``signals.bar_intervals``), in the
``bar-state`` table (memory store), for 1,000 Binance symbols (``C0001/USDT`` ...; ticks from
an exchange other than ``signals.reference_exchange`` feed only the bars, so nothing else
grows). A fresh worker is read at rest (baseline), then after the ticks of the first 250,
500 and 1,000 symbols have been processed (group lag 0): ``VmRSS`` from /proc (no psutil).

Printed: RSS at each step (median of the runs), bytes per added symbol between steps (the
slope; allocator arenas make single steps coarse), and, for scale, the size of one symbol's
table value measured with tracemalloc and of its Redis view (``MEMORY USAGE`` of the three
``bar:*`` hashes, in the Redis server, not the worker).
"""

from __future__ import annotations

import asyncio
import tracemalloc
from datetime import UTC, datetime, timedelta

import redis.asyncio as redis
from _common import (
    Namespace,
    delete_namespace,
    halt_worker,
    launch_worker,
    median,
    new_namespace,
    parser,
    print_table,
    produce,
    rss_bytes,
    run,
    wait_ready,
)

from altseason.run import wait_until_processed
from producers.replay import ReplayEvent
from schemas.decode import iso_utc
from schemas.records import CryptoTick
from streams.bars import BarBuilder

STEPS = (250, 500, 1000)
TICKS_PER_SYMBOL = 3
INTERVALS = (60, 3600, 86400)


def symbol_ticks(first: int, last: int) -> list[ReplayEvent]:
    """A few trades for each symbol ``C<first>``..``C<last - 1>``, within the last minute."""
    now = datetime.now(UTC) - timedelta(seconds=30)
    events = []
    for i in range(first, last):
        symbol = f"C{i:04d}/USDT"
        for k in range(TICKS_PER_SYMBOL):
            moment = now + timedelta(milliseconds=10 * k)
            tick = CryptoTick(exchange="binance", symbol=symbol, event_time=iso_utc(moment),
                              price=1.0 + i + k / 100, amount=0.5, side="buy",
                              trade_id=f"{i}-{k}")
            events.append(ReplayEvent(int(moment.timestamp() * 1000), "ticks",
                                      f"binance:{symbol}", tick))
    return events


async def settled_rss(pid: int, samples: int = 5) -> float:
    """Median of a few VmRSS readings over ~2 s (the worker keeps a little background work)."""
    readings = []
    for _ in range(samples):
        readings.append(rss_bytes(pid))
        await asyncio.sleep(0.4)
    return median(readings)


async def one_run(ns: Namespace) -> list[float]:
    """A fresh worker: RSS at rest, then after 250, 500, 1000 symbols."""
    env = ns.worker_env()
    settings = ns.settings_for(env)
    log = ns.workdir / f"{settings.app_id}.log"
    worker = launch_worker(env, log)
    try:
        await wait_ready([worker])
        await asyncio.sleep(3)  # let start-up work (rebuild check, first commits) pass
        readings = [await settled_rss(worker.pid)]
        done = 0
        for step in STEPS:
            await produce(settings, symbol_ticks(done, step))
            done = step
            await wait_until_processed(worker.settings(settings), worker.process, log,
                                       timeout_s=300)
            readings.append(await settled_rss(worker.pid))
        return readings
    finally:
        halt_worker(worker)


def table_value_bytes(symbols: int = 1000) -> float:
    """Python heap per symbol of the bar table's value (BarBuilder.to_state()), traced."""
    events = symbol_ticks(0, symbols)
    tracemalloc.start()
    table = {}
    for event in events:
        tick = event.record
        assert isinstance(tick, CryptoTick)
        builder = BarBuilder.from_state(INTERVALS, 10_000, table.get(event.key))
        builder.add(event.t_ms, tick.price, tick.amount)
        table[event.key] = builder.to_state()
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return size / symbols


async def redis_view_bytes(ns: Namespace) -> float:
    """Redis server memory of one symbol's view: its three bar hashes."""
    client = redis.from_url(ns.settings.redis_url)
    try:
        prefix = ns.redis_prefixes[-1]
        keys = [f"{prefix}bar:binance:C0000/USDT:{name}" for name in ("1m", "1h", "1d")]
        return float(sum([await client.memory_usage(k) or 0 for k in keys]))
    finally:
        await client.aclose()


async def main() -> None:
    args_parser = parser(__doc__)
    args_parser.add_argument("--repeats", type=int, default=None)
    args = args_parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 2)
    runs, view_bytes = [], 0.0
    for i in range(repeats):
        # a namespace per run: a new consumer group would re-read the previous run's ticks
        ns = await new_namespace("memory")
        try:
            runs.append(await one_run(ns))
            view_bytes = await redis_view_bytes(ns)
        finally:
            await delete_namespace(ns)
        print(f"  run {i + 1}: " + ", ".join(f"{r / 2**20:.1f}" for r in runs[-1]) + " MiB",
              flush=True)
    rss = [median(r[k] for r in runs) for k in range(len(STEPS) + 1)]
    rows = [("baseline (worker at rest)", rss[0] / 2**20, "", "")]
    previous, prev_count = rss[0], 0
    for count, value in zip(STEPS, rss[1:], strict=True):
        rows.append((f"{count:,} symbols x 3 windows", value / 2**20, f"{value - rss[0]:+,.0f}",
                     f"{(value - previous) / (count - prev_count):,.0f}"))
        previous, prev_count = value, count
    print()
    print_table(["state", "RSS MiB", "bytes over baseline", "bytes/symbol in step"], rows)
    slope = (rss[-1] - rss[1]) / (STEPS[-1] - STEPS[0])
    print(f"per added symbol (3 windows): {slope:,.0f} bytes (slope 250 -> 1,000), "
          f"{(rss[-1] - rss[0]) / STEPS[-1]:,.0f} bytes (baseline -> 1,000); for scale: the "
          f"table value alone {table_value_bytes():,.0f} bytes (tracemalloc), its Redis view "
          f"{view_bytes:,.0f} bytes (in the Redis server)")


if __name__ == "__main__":
    run(main)
