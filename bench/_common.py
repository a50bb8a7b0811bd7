"""What the benchmarks share: a private namespace on the local stack, workers that are always
stopped, synthetic ticks, the worker's /metrics, percentiles and tables.

Every benchmark runs in its own namespace (topic prefix, app id, Redis prefix, data dir, web
port), like the integration tests, so it never reads or disturbs anyone else's data on the
shared broker; the namespace's topics and Redis keys are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from altseason import stack  # noqa: E402
from altseason.kafka_admin import delete_topics_starting_with, ensure_topics  # noqa: E402
from altseason.run import log_tail, start_worker, stop_worker  # noqa: E402
from foundation.config import Settings, load_settings  # noqa: E402
from producers.replay import ReplayEvent, replay  # noqa: E402
from schemas.decode import iso_utc  # noqa: E402
from schemas.records import CryptoTick  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
#: every worker any benchmark started, so ``run`` can stop them whatever happens
_WORKERS: list[subprocess.Popen[bytes]] = []


# --- the stack and a private namespace ------------------------------------------------------

def stack_env() -> dict[str, str]:
    """Kafka and Redis of the local stack: from the environment (``make bench`` sets it), else
    from a running ``altseason stack``; never starts anything itself."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("REDIS_URL"):
        return {"KAFKA_BOOTSTRAP_SERVERS": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
                "REDIS_URL": os.environ["REDIS_URL"]}
    info = stack.status()
    if info is None:
        sys.exit("no Kafka/Redis: run `make bench`, or `altseason stack up` first, or set "
                 "KAFKA_BOOTSTRAP_SERVERS and REDIS_URL")
    return {"KAFKA_BOOTSTRAP_SERVERS": info.kafka_bootstrap_servers,
            "REDIS_URL": info.redis_url}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Namespace:
    """One benchmark's topics (``topic_prefix``), plus one consumer group (app id), Redis
    prefix, data dir and web port per ``worker_env``: repeated runs over the same backlog
    each start from empty state."""

    label: str
    tag: str
    base_env: dict[str, str]
    workdir: Path
    settings: Settings
    app_ids: list[str] = field(default_factory=list)
    redis_prefixes: list[str] = field(default_factory=list)

    def worker_env(self, **extra: str) -> dict[str, str]:
        """A fresh consumer group and Redis prefix on this namespace's topics."""
        run_id = f"{self.tag}{len(self.app_ids)}"
        env = {
            **self.base_env,
            "ALTSEASON_APP_ID": f"altseason-bench-{self.label}-{run_id}",
            "ALTSEASON_REDIS_PREFIX": f"bench-{run_id}:",
            "ALTSEASON_DATADIR": str(self.workdir / f"worker-{run_id}"),
            **extra,
        }
        self.app_ids.append(env["ALTSEASON_APP_ID"])
        self.redis_prefixes.append(env["ALTSEASON_REDIS_PREFIX"])
        return env

    def settings_for(self, env: dict[str, str]) -> Settings:
        return load_settings(env=env)


async def new_namespace(label: str) -> Namespace:
    """A private namespace on the local stack, its public topics created."""
    tag = uuid.uuid4().hex[:6]
    env = {
        **stack_env(),
        "ALTSEASON_TOPIC_PREFIX": f"bench-{label}-{tag}.",
        "ALTSEASON_PRODUCER_WEB_PORT": "0",
        "ALTSEASON_LOG_LEVEL": "warn",
        "ALTSEASON_LOG_FORMAT": "json",
    }
    workdir = Path(tempfile.mkdtemp(prefix=f"altseason-bench-{label}-"))
    settings = load_settings(env=env)
    await ensure_topics(settings)
    return Namespace(label, tag, env, workdir, settings)


async def delete_namespace(ns: Namespace) -> None:
    """Delete the namespace's topics (public, internal, changelogs) and Redis keys."""
    prefixes = (ns.settings.topic_prefix, *(f"{app_id}-" for app_id in ns.app_ids))
    try:
        for _ in range(3):  # a deletion can fail while a just-stopped member leaves its group
            if not (topics := await delete_topics_starting_with(ns.settings, prefixes)):
                break
            await asyncio.sleep(1)
        else:
            print(f"(could not delete the benchmark's topics: {', '.join(topics)})",
                  file=sys.stderr)
    except Exception as exc:  # best effort: a leftover topic is harmless
        print(f"(could not delete the benchmark's topics: {exc!r})", file=sys.stderr)
    client = redis.from_url(ns.settings.redis_url)
    try:
        for prefix in ns.redis_prefixes:
            keys = [k async for k in client.scan_iter(f"{prefix}*", count=1000)]
            for i in range(0, len(keys), 1000):
                await client.delete(*keys[i:i + 1000])
    finally:
        await client.aclose()
    shutil.rmtree(ns.workdir, ignore_errors=True)


# --- workers --------------------------------------------------------------------------------

@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def settings(self, settings: Settings) -> Settings:
        """The namespace's settings with this worker's web port: where ``wait_until_processed``
        reads what its fan-in views still hold."""
        return dataclasses.replace(settings, web_port=self.port)


def launch_worker(env: dict[str, str], log: Path) -> Worker:
    """A real ``altseason worker`` process on a free web port (stopped by ``run`` at the
    latest)."""
    port = free_port()
    process = start_worker(log, {**env, "ALTSEASON_WEB_PORT": str(port)})
    _WORKERS.append(process)
    return Worker(process, port, log)


def launch_process(args: list[str], env: dict[str, str], log: Path) -> Worker:
    """Any other long-running process of a benchmark (stopped like a worker, by ``run`` at
    the latest); its own session, so a Ctrl-C reaches only the benchmark, which stops it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True, env={**os.environ, **env})
    _WORKERS.append(process)
    return Worker(process, 0, log)


def halt_worker(worker: Worker) -> None:
    stop_worker(worker.process)


def stop_all_workers() -> None:
    for process in _WORKERS:
        stop_worker(process)


async def http_get(port: int, path: str, timeout_s: float = 5) -> tuple[int, str]:
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session, \
            session.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.text()


async def wait_ready(workers: Sequence[Worker], timeout_s: float = 120) -> None:
    """Until every worker answers /ready 200 in the same round (partitions assigned, tables
    recovered, no rebalance going on)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        statuses = []
        for worker in workers:
            if worker.process.poll() is not None:
                raise RuntimeError(f"worker {worker.pid} exited:\n{log_tail(worker.log)}")
            try:
                statuses.append((await http_get(worker.port, "/ready", 3))[0])
            except (aiohttp.ClientError, TimeoutError):
                statuses.append(0)
        if all(s == 200 for s in statuses):
            return
        await asyncio.sleep(0.3)
    raise TimeoutError(f"workers not ready within {timeout_s:.0f} s:\n{log_tail(workers[0].log)}")


#: Faust's count of events a stream has started processing (taken from its buffer), per stream
STARTED = "altseason_total_events_per_stream_total"
#: messages a worker sent, by topic: ``<app>-bar-state-changelog`` gets one per tick when
#: ``build_bars`` is done with it
SENT = "altseason_topic_messages_sent_total"


def bars_done_label(app_id: str) -> str:
    """The label of the bar-state changelog in SENT: one message per tick ``build_bars`` did."""
    return f"{app_id}-bar-state-changelog"


METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


async def scrape(worker: Worker) -> dict[str, float]:
    """``name{labels}`` -> value, from the worker's Prometheus /metrics."""
    _, text = await http_get(worker.port, "/metrics")
    samples = {}
    for line in text.splitlines():
        match = METRIC_LINE.match(line)
        if match:
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def metric_sum(samples: dict[str, float], name: str, label_part: str = "") -> float:
    """Sum of one metric's samples whose labels contain ``label_part``."""
    return sum(v for k, v in samples.items()
               if k.split("{")[0] == name and label_part in k)


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (VmRSS from /proc; no psutil needed)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    return sum(cpu_times(pid))


class MachineLoad:
    """Share of all CPUs busy since creation (from /proc/stat): whether the shared machine
    had spare cores during a measurement."""

    def __init__(self) -> None:
        self.start = self._read()

    @staticmethod
    def _read() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values) - idle, sum(values)

    def busy(self) -> float:
        busy, total = self._read()
        return (busy - self.start[0]) / max(total - self.start[1], 1)


# --- synthetic ticks ------------------------------------------------------------------------

#: Binance spot pairs with a rough share of trades and a starting price (prices random-walk)
SYMBOLS: tuple[tuple[str, float, float], ...] = (
    ("BTC/USDT", 0.30, 97_000.0), ("ETH/USDT", 0.20, 3_400.0), ("SOL/USDT", 0.12, 190.0),
    ("XRP/USDT", 0.08, 2.3), ("DOGE/USDT", 0.07, 0.32), ("BNB/USDT", 0.05, 690.0),
    ("ADA/USDT", 0.04, 0.95), ("LINK/USDT", 0.03, 22.0), ("AVAX/USDT", 0.03, 38.0),
    ("SUI/USDT", 0.03, 4.1), ("LTC/USDT", 0.02, 105.0), ("TRX/USDT", 0.02, 0.25),
    ("DOT/USDT", 0.02, 6.9), ("PEPE/USDT", 0.01, 0.000019), ("ARB/USDT", 0.01, 0.75),
    ("OP/USDT", 0.01, 1.9),
)


def synthetic_ticks(count: int, *, exchange: str = "binance", ticks_per_s: float = 200.0,
                    seed: int = 7, end: datetime | None = None) -> list[ReplayEvent]:
    """``count`` trades of 16 Binance pairs (BTC busiest), ending about now: Poisson arrivals at
    ``ticks_per_s`` of event time, random-walk prices, log-normal amounts, per-symbol trade ids
    and strictly increasing event times per symbol, so 1m bars close as in a live market."""
    rng = random.Random(seed)
    names = [s for s, _, _ in SYMBOLS]
    weights = [w for _, w, _ in SYMBOLS]
    prices = {s: p for s, _, p in SYMBOLS}
    trade_ids = dict.fromkeys(names, 1_000_000)
    last_ms = dict.fromkeys(names, 0)
    end_ms = int((end or datetime.now(UTC)).timestamp() * 1000)
    t = end_ms / 1000 - count / ticks_per_s
    events = []
    for symbol in rng.choices(names, weights, k=count):
        t += rng.expovariate(ticks_per_s)
        t_ms = max(int(t * 1000), last_ms[symbol] + 1)
        last_ms[symbol] = t_ms
        prices[symbol] *= math.exp(rng.gauss(0, 0.0004))
        trade_ids[symbol] += 1
        tick = CryptoTick(
            exchange=exchange, symbol=symbol,
            event_time=iso_utc(datetime.fromtimestamp(t_ms / 1000, UTC)),
            price=float(f"{prices[symbol]:.6g}"), amount=round(rng.lognormvariate(-2, 1.5), 6),
            side=rng.choice(("buy", "sell")), trade_id=str(trade_ids[symbol]),
        )
        events.append(ReplayEvent(t_ms, "ticks", f"{exchange}:{symbol}", tick))
    return events


async def produce(settings: Settings, events: list[ReplayEvent]) -> None:
    """Send events with the replay's producer and encoding (idempotent, acks=all)."""
    await replay(settings, events, speed=0.0, progress=False)


# --- statistics and output ------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank: always one of the values, so values that
    never arrived (``math.inf``) show as such instead of being interpolated."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(math.ceil(q / 100 * len(ordered)) - 1, 0)]


def median(values: Iterable[float]) -> float:
    return statistics.median(values)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Right-aligned columns; floats of 100 or more without decimals, smaller ones with 2."""
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
        return str(value)
    text = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) for i, h in enumerate(headers)]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
    for row in text:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)), flush=True)


def parser(doc: str | None) -> argparse.ArgumentParser:
    """The benchmarks' common flags: ``--quick`` (a shorter run, same measurements)."""
    result = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    result.add_argument("--quick", action="store_true", help="fewer events and repeats")
    return result


def machine() -> str:
    """Cores, CPU model and Python: printed first, since absolute numbers depend on them."""
    cpu = next((line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    return f"{os.cpu_count()} cores ({cpu}), Python {sys.version.split()[0]}"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a benchmark; on Ctrl-C, SIGTERM or an error, every worker it started is stopped."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started in background
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"machine: {machine()}", flush=True)
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    finally:
        stop_all_workers()
