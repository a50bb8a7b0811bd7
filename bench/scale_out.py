"""Scale-out: one worker against two workers in one consumer group, same backlog.

    .venv/bin/python bench/scale_out.py [--quick] [--repeats N]

``ticks`` has 6 partitions (the internal ``<app>-bar-ticks`` 3), so two workers of one app id
split the work. For each variant, on a fresh namespace: start the worker(s), wait until all
are ready (group joined, partitions assigned, no rebalance in progress), then send the same N
synthetic trades (16 Binance symbols, BTC busiest) at once and time, from the workers'
/metrics, the first input event to the N-th tick entering ``build_bars`` (summed over the
workers). The variants alternate; printed: events/s (medians), the ratio two/one, and how
the work split between the two workers (keys hash to partitions: a busy symbol stays on one).
On a 2-core machine shared with Kafka, Redis and the benchmark itself, expect little.
"""

from __future__ import annotations

import asyncio
import time

from _common import (
    SENT,
    STARTED,
    MachineLoad,
    Worker,
    bars_done_label,
    cpu_seconds,
    delete_namespace,
    halt_worker,
    launch_worker,
    median,
    metric_sum,
    new_namespace,
    parser,
    print_table,
    produce,
    run,
    scrape,
    synthetic_ticks,
    wait_ready,
)

from altseason.run import log_tail, wait_until_processed


async def one_run(workers_count: int,
                  count: int) -> tuple[float, list[float], list[float], float]:
    """(events/s, share of the ticks each worker's build_bars handled, CPU share of each
    worker, share of the machine's CPUs busy)."""
    ns = await new_namespace("scale")
    workers: list[Worker] = []
    try:
        env = ns.worker_env()
        settings = ns.settings_for(env)
        for i in range(workers_count):
            worker_env = {**env, "ALTSEASON_DATADIR": f"{env['ALTSEASON_DATADIR']}-{i}"}
            workers.append(launch_worker(worker_env, ns.workdir / f"worker-{i}.log"))
        await wait_ready(workers)
        await produce(settings, synthetic_ticks(count))
        bars_done = bars_done_label(settings.app_id)
        start = None
        cpu_start: list[float] = []
        deadline = time.monotonic() + 600
        while True:
            samples = [await scrape(w) for w in workers]
            now = time.monotonic()
            if start is None and sum(metric_sum(s, STARTED, settings.topic("ticks"))
                                     for s in samples) > 0:
                start, cpu_start = now, [cpu_seconds(w.pid) for w in workers]
                load = MachineLoad()
            done = [metric_sum(s, SENT, bars_done) for s in samples]
            if start is not None and sum(done) >= count:
                break
            if any(w.process.poll() is not None for w in workers) \
                    or time.monotonic() > deadline:
                raise RuntimeError(f"a worker exited or stalled:\n{log_tail(workers[0].log)}")
            await asyncio.sleep(0.25)
        elapsed = now - start
        cpu = [(cpu_seconds(w.pid) - c) / elapsed for w, c in zip(workers, cpu_start,
                                                                   strict=True)]
        machine = load.busy()
        await wait_until_processed(workers[0].settings(settings), workers[0].process,
                                   workers[0].log, 300)
        return count / elapsed, [d / sum(done) for d in done], cpu, machine
    finally:
        for worker in workers:
            halt_worker(worker)
        await delete_namespace(ns)


async def main() -> None:
    args_parser = parser(__doc__)
    args_parser.add_argument("--repeats", type=int, default=None)
    args = args_parser.parse_args()
    count = 3_000 if args.quick else 8_000
    repeats = args.repeats or (1 if args.quick else 2)
    print(f"{count} ticks per run; one and two workers alternately, {repeats} time(s)",
          flush=True)
    rates: dict[int, list[float]] = {1: [], 2: []}
    split: list[float] = []
    cpus: list[float] = []
    for i in range(repeats):
        for n in (1, 2):
            rate, shares, cpu, machine = await one_run(n, count)
            rates[n].append(rate)
            if n == 2:
                split, cpus = shares, cpu
            print(f"  run {i + 1}, {n} worker(s): {rate:,.0f} ev/s; bars stage split "
                  f"{' / '.join(f'{s:.0%}' for s in shares)}; CPU "
                  f"{' / '.join(f'{c:.0%}' for c in cpu)} of a core; machine CPUs "
                  f"{machine:.0%} busy", flush=True)
    one, two = median(rates[1]), median(rates[2])
    print()
    print_table(["workers", "events/s (median)", "ratio"],
                [("1", one, "1.00"), ("2, one consumer group", two, f"{two / one:.2f}")])
    print(f"two workers: bars stage split {' / '.join(f'{s:.0%}' for s in split)}, CPU "
          f"{' / '.join(f'{c:.0%}' for c in cpus)} of a core each (last run)")


if __name__ == "__main__":
    run(main)
