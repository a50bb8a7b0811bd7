"""Pipeline throughput against the limit: a real worker vs a bare consumer of the same ticks.

    .venv/bin/python bench/pipeline_throughput.py [--quick] [--repeats N] [--[no-]profile]

N synthetic Binance trades (16 symbols, the replay's encoding and producer) go into the
``ticks`` topic of a private namespace. Then, in turn, each reading it from the start:

- raw: one aiokafka consumer (same broker, all 6 partitions) reads the topic from the start and
  decodes each JSON value into a dict, nothing else: what Python and Kafka allow here;
- faust no-op: a Faust worker (``bench/_faust_noop.py``) whose one agent only decodes each
  event: the floor of any Faust worker here (same library, consumer and event loop);
- pipeline: a real ``altseason worker`` process (fresh consumer group) processes the topic from
  the start; from its /metrics, the time from its first input event to the N-th tick entering
  the last stage (``build_bars``), then its group lag is waited to 0.

Printed: events/s of each (medians), the ratio pipeline/raw (goal >= 50 %), the worker's CPU
use, and what one tick fans out to (messages sent per tick, per topic). Unless ``--quick`` (or
``--no-profile``), one more, untimed, run under py-spy writes ``bench/profiles/pipeline.svg``,
``pipeline.folded`` and ``pipeline-top.txt`` (where the worker's CPU goes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from _common import (
    BENCH_DIR,
    SENT,
    STARTED,
    MachineLoad,
    Namespace,
    Worker,
    bars_done_label,
    cpu_times,
    delete_namespace,
    halt_worker,
    launch_process,
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
)
from aiokafka import AIOKafkaConsumer

from altseason.kafka_admin import topic_partitions
from altseason.run import log_tail, wait_until_processed

PROFILES = BENCH_DIR / "profiles"


async def raw_rate(ns: Namespace, count: int) -> float:
    """Events/s of a bare consumer reading the ticks topic from the start, JSON to dict."""
    topic = ns.settings.topic("ticks")
    consumer = AIOKafkaConsumer(bootstrap_servers=ns.settings.kafka_bootstrap_servers,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await topic_partitions(ns.settings, [topic])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen = 0
        start = time.perf_counter()
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000)
            for messages in batches.values():
                for message in messages:
                    json.loads(message.value)
                seen += len(messages)
        return count / (time.perf_counter() - start)
    finally:
        await consumer.stop()


async def faust_noop_rate(ns: Namespace, count: int, timeout_s: float = 300) -> float:
    """Events/s of the no-op Faust worker over the backlog (fresh consumer group)."""
    run_id = f"noop-{len(ns.app_ids)}"
    ns.app_ids.append(f"altseason-bench-{ns.label}-{ns.tag}{run_id}")
    result = ns.workdir / f"{run_id}.json"
    env = {"NOOP_APP_ID": ns.app_ids[-1], "NOOP_TOPIC": ns.settings.topic("ticks"),
           "NOOP_COUNT": str(count), "NOOP_RESULT": str(result),
           "NOOP_DATADIR": str(ns.workdir / run_id)}
    worker = launch_process([sys.executable, str(BENCH_DIR / "_faust_noop.py"), "worker",
                             "--loglevel", "warn"], env, ns.workdir / f"{run_id}.log")
    try:
        deadline = time.monotonic() + timeout_s
        while not result.exists():
            if worker.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the no-op Faust worker failed; see {worker.log}")
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.1)  # the file is written in one call; let it land
        measured = json.loads(result.read_text())
        return measured["events"] / measured["seconds"]
    finally:
        halt_worker(worker)


async def pipeline_run(ns: Namespace, count: int, profile: bool = False
                       ) -> tuple[float, float, float, float, dict[str, float]]:
    """One fresh worker over the backlog: (events/s, CPU share of the worker, kernel share of
    that CPU, share of the machine's CPUs busy, metrics at the end)."""
    env = ns.worker_env()
    settings = ns.settings_for(env)
    log = ns.workdir / f"{settings.app_id}.log"
    worker = launch_worker(env, log)
    bars_done = bars_done_label(settings.app_id)
    spies: list[subprocess.Popen[bytes]] = []
    try:
        start = cpu_start = None
        deadline = time.monotonic() + 600
        while True:
            if worker.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker exited or stalled:\n{log_tail(log)}")
            try:
                samples = await scrape(worker)
            except Exception:  # web server not up yet
                samples = {}
            now = time.monotonic()
            if start is None and metric_sum(samples, STARTED, settings.topic("ticks")) > 0:
                start, cpu_start = now, cpu_times(worker.pid)
                load = MachineLoad()
                if profile:
                    spies = start_profilers(worker)
            if start is not None and metric_sum(samples, SENT, bars_done) >= count:
                break
            await asyncio.sleep(0.25)
        elapsed = now - start
        user, system = (b - a for a, b in zip(cpu_start, cpu_times(worker.pid), strict=True))
        cpu_share, kernel_share = (user + system) / elapsed, system / max(user + system, 1e-9)
        machine = load.busy()
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        await wait_until_processed(worker.settings(settings), worker.process, log,
                                   timeout_s=300)
        final = await scrape(worker)
        return count / elapsed, cpu_share, kernel_share, machine, final
    finally:
        for spy in spies:
            if spy.poll() is None:
                spy.send_signal(signal.SIGINT)
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
        halt_worker(worker)


def start_profilers(worker: Worker) -> list[subprocess.Popen[bytes]]:
    """py-spy on the worker (sampling pauses it, hence an untimed run): a flame graph and the
    folded stacks, active samples only (time waiting in the event loop is left out)."""
    py_spy = shutil.which("py-spy") or str(BENCH_DIR.parent / ".venv/bin/py-spy")
    PROFILES.mkdir(exist_ok=True)
    common = [py_spy, "record", "--pid", str(worker.pid), "--rate", "100"]
    return [subprocess.Popen([*common, "--format", fmt, "-o", str(PROFILES / f"pipeline.{ext}")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for fmt, ext in (("flamegraph", "svg"), ("raw", "folded"))]


#: (label, file fragment, function or "" for any frame of the file): inclusive shares shown
WATCHED = (
    ("the driver, every step", "agents/driver.py", "drive"),
    ("  bars step", "streams/views/bars.py", "apply"),
    ("  Redis mirror of the open bars", "agents/driver.py", "flush_views"),
    ("    redis-py pipeline execute", "redis/asyncio/client.py", "execute"),
    ("  bar state from/to the table's JSON dict", "streams/bars.py", "from_state"),
    ("", "streams/bars.py", "to_state"),
    ("  bar arithmetic", "streams/bars.py", "add"),
    ("  route step", "streams/views/route.py", "apply"),
    ("  validate + decode the input JSON", "schemas/decode.py", "decode_event"),
    ("Kafka sends (internal topic, changelog, bars)", "faust/topics.py", "publish_message"),
    ("Kafka fetch + per-message dispatch", "faust/transport/consumer.py", ""),
    ("Faust stream iteration per event", "faust/streams.py", "_c_aiter"),
    ("Prometheus sensor callbacks", "faust/sensors/", ""),
    ("logging.debug records (root logger at DEBUG)", "logging/__init__.py", "debug"),
    ("JSON (stdlib json) encode/decode", "json/", ""),
)

#: leaf-frame file -> where the CPU goes (self time), first match wins
CATEGORIES = (
    ("asyncio socket I/O (send/recv syscalls)", "asyncio/selector_events.py"),
    ("asyncio machinery (tasks, futures, timeouts)", "asyncio/"),
    ("redis client", "redis/"), ("aiokafka", "aiokafka/"), ("faust / mode", "faust/"),
    ("faust / mode", "mode/"), ("prometheus client", "prometheus_client/"),
    ("logging", "logging/"), ("json", "json/"),
    ("altseason code", "agents/"), ("altseason code", "streams/"),
    ("altseason code", "schemas/"),
)


def frame_matches(frame: str, file_part: str, function: str) -> bool:
    """``Class.func (path/file.py:line)`` against a file fragment and function name."""
    name, _, where = frame.partition(" (")
    return file_part in where and (not function or name == function
                                   or name.endswith("." + function))


def summarize_profile(path: Path) -> str:
    """Where the worker's CPU goes, from py-spy's folded stacks (``frame;frame;... count``).

    Samples whose innermost frame is ``EpollSelector.select`` are the event loop waiting for
    I/O (py-spy counts some of them as active); they are set apart, and the shares below are
    of the remaining samples: the worker's Python work."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            stacks[tuple(stack.split(";"))] += int(count)
    waiting = sum(n for s, n in stacks.items() if s[-1].startswith("EpollSelector.select "))
    work = {s: n for s, n in stacks.items() if not s[-1].startswith("EpollSelector.select ")}
    total = sum(work.values()) or 1
    lines = [f"{sum(stacks.values())} samples of the worker (100 Hz); {waiting} in the event "
             f"loop's epoll wait set apart; of the other {total}, inclusive share:"]
    for label, file_part, function in WATCHED:
        hits = sum(n for s, n in work.items()
                   if any(frame_matches(f, file_part, function) for f in s))
        name = f"{function or '*'} ({file_part})"
        lines.append(f"  {hits / total:6.1%}  {label or '':<46} {name}")
    selves: Counter[str] = Counter()
    for s, n in work.items():
        leaf = s[-1].partition(" (")[2]
        selves[next((c for c, part in CATEGORIES if leaf.startswith(part)), "other")] += n
    lines.append("self time by where the sampled frame is:")
    lines += [f"  {n / total:6.1%}  {category}" for category, n in selves.most_common()]
    return "\n".join(lines)


def fan_out(samples: dict[str, float], count: int, settings_prefix: str) -> list[tuple]:
    """Messages the worker sent per input tick, per topic (internal topics named generically)."""
    rows = []
    for key, value in samples.items():
        if key.split("{")[0] != SENT or value == 0:
            continue
        topic = key.split('topic="')[1].split('"')[0]
        rows.append((topic.replace(settings_prefix, "<app>-"), value, value / count))
    return sorted(rows)


async def main() -> None:
    args_parser = parser(__doc__)
    args_parser.add_argument("--repeats", type=int, default=None)
    args_parser.add_argument("--profile", action=argparse.BooleanOptionalAction,
                             help="one more, untimed, run under py-spy (default: unless "
                                  "--quick; needs py-spy)")
    args = args_parser.parse_args()
    count = 3_000 if args.quick else 8_000
    repeats = args.repeats or (2 if args.quick else 3)
    ns = await new_namespace("pipeline")
    try:
        await produce(ns.settings, synthetic_ticks(count))
        print(f"{count} ticks of 16 symbols in {ns.settings.topic('ticks')} (6 partitions); "
              f"raw consumer, Faust no-op and worker in turn, {repeats} times", flush=True)
        raws, noops, pipes, cpus, kernels = [], [], [], [], []
        final: dict[str, float] = {}
        for i in range(repeats):
            raws.append(await raw_rate(ns, count))
            noops.append(await faust_noop_rate(ns, count))
            rate, cpu, kernel, machine, final = await pipeline_run(ns, count)
            pipes.append(rate)
            cpus.append(cpu)
            kernels.append(kernel)
            print(f"  run {i + 1}: raw {raws[-1]:,.0f} ev/s, faust no-op {noops[-1]:,.0f} "
                  f"ev/s, pipeline {rate:,.0f} ev/s (worker CPU {cpu:.0%} of a core; machine "
                  f"CPUs {machine:.0%} busy)", flush=True)
        raw, noop, pipe = median(raws), median(noops), median(pipes)
        print()
        print_table(["", "events/s (median)", "share of raw"],
                    [("raw consumer (JSON to dict)", raw, "100%"),
                     ("Faust no-op worker (JSON to dict)", noop, f"{noop / raw:.1%}"),
                     ("pipeline (altseason worker)", pipe, f"{pipe / raw:.1%}")])
        print(f"ratio pipeline/raw = {pipe / raw:.3f} (goal >= 0.50: "
              f"{'met' if pipe / raw >= 0.5 else 'not met'}); worker CPU busy "
              f"{median(cpus):.0%} of wall time ({median(kernels):.0%} of it in the kernel), "
              f"{median(cpus) / pipe * 1e3:.2f} ms CPU per tick")
        app_prefix = ns.app_ids[-1] + "-"
        print("\nfan-out of one tick (worker's messages sent, last run):")
        print_table(["topic", "messages", "per tick"], fan_out(final, count, app_prefix))
        print("  + Redis: 1 pipelined round trip per flush (DEL, HSET, EXPIRE, PUBLISH of "
              "bar:<exchange>:<symbol>:<1m|1h|1d>)")
        if (not args.quick) if args.profile is None else args.profile:
            if not (shutil.which("py-spy") or (BENCH_DIR.parent / ".venv/bin/py-spy").exists()):
                print("\n(no profile: py-spy is not installed; `.venv/bin/pip install py-spy`)")
            else:
                rate, *_ = await pipeline_run(ns, count, profile=True)
                summary = summarize_profile(PROFILES / "pipeline.folded")
                (PROFILES / "pipeline-top.txt").write_text(summary + "\n")
                print(f"\nprofiled run ({rate:,.0f} ev/s under py-spy, not counted); "
                      f"{PROFILES}/pipeline.svg, pipeline.folded, pipeline-top.txt:\n{summary}")
    finally:
        await delete_namespace(ns)


if __name__ == "__main__":
    run(main)
