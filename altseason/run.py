"""``altseason run``: the full pipeline on recorded data, printing signals as they fire.

Starts a real Faust worker process, replays the data through Kafka, follows the ``signals``
topic, waits until the worker has processed every event, prints a summary and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TextIO

import aiohttp

from altseason.dashboard import serve_dashboard
from altseason.kafka_admin import ensure_topics, group_lag
from altseason.signals_tail import SignalTail, signal_line
from foundation.config import Settings, mask_url
from foundation.connections import redis_client
from foundation.errors import SourceError
from producers.replay import load_replay, replay
from schemas.records import Signal
from schemas.redis_layout import DEADLETTER_COUNTS_KEY
from schemas.topics import INPUT_TOPICS, internal_topic
from streams.views.registry import INTERNAL_TOPICS


@dataclass
class RunResult:
    events: int = 0
    signals: list[Signal] = field(default_factory=list)
    dead_letters: int = 0


def start_worker(log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A real Faust worker in its own process (and process group), logging to a file."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "altseason", "worker"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **(env or {})},
        )


def stop_worker(worker: subprocess.Popen[bytes], timeout_s: float = 30) -> int:
    """SIGTERM (Faust commits and stops cleanly), then SIGKILL if it hangs."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    return worker.returncode


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def wait_until_processed(settings: Settings, worker: subprocess.Popen[bytes],
                               log_path: Path, timeout_s: float) -> None:
    """Until the worker's consumer group has committed every input and internal event, and
    its fan-in views hold nothing back (their last events are applied once the sources
    that ended have been silent for ``fan_in_max_wait_seconds``)."""
    topics = [settings.topic(name) for name in INPUT_TOPICS] + [
        internal_topic(settings.app_id, name) for name in INTERNAL_TOPICS]
    deadline = time.monotonic() + timeout_s
    done_in_a_row = 0
    while done_in_a_row < 2:
        if worker.poll() is not None:
            raise SourceError(f"the worker exited with {worker.returncode}:\n"
                              f"{log_tail(log_path)}")
        if time.monotonic() > deadline:
            raise SourceError(f"the worker did not process the replay within {timeout_s:.0f} s;"
                              f" its log ({log_path}) ends:\n{log_tail(log_path)}")
        try:
            lag = await group_lag(settings, settings.app_id, topics)
        except Exception:  # internal topics not created yet, group not joined yet
            lag = -1
        done = lag == 0 and await fan_in_held(settings) == 0
        done_in_a_row = done_in_a_row + 1 if done else 0
        await asyncio.sleep(1.0)


async def fan_in_held(settings: Settings) -> int:
    """The events the worker's fan-in views hold, from its ``/metrics`` (0 without a web
    server; -1 while it does not answer)."""
    if not settings.web_port:
        return 0
    url = f"http://{settings.web_host}:{settings.web_port}/metrics"
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            text = await response.text()
    except (aiohttp.ClientError, OSError):
        return -1
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("altseason_fan_in_held{")))


async def run_replay(settings: Settings, data_dir: Path, *, since: date | None = None,
                     until: date | None = None, speed: float = 0.0, follow: bool = False,
                     progress: bool = True, timeout_s: float = 600,
                     log_path: Path | None = None, out: TextIO = sys.stdout,
                     dashboard: bool = False) -> RunResult:
    """Replay ``data_dir`` through a fresh worker; print each signal; return what happened.

    ``dashboard``: also serve the dashboard (``dashboard_port``) while it runs.
    """
    result = RunResult()
    dash = asyncio.create_task(serve_dashboard(settings, replay_dir=data_dir)) \
        if dashboard else None
    log_path = log_path or Path(settings.datadir).parent / "worker.log"
    events = load_replay(data_dir, since, until)
    await ensure_topics(settings)

    def on_signal(sig: Signal) -> None:
        result.signals.append(sig)
        print(signal_line(sig), file=out, flush=True)

    tail = SignalTail(settings, on_signal)
    await tail.start()
    worker = start_worker(log_path)
    print(f"worker started (pid {worker.pid}, log {log_path}); replaying {len(events)} events "
          f"from {data_dir}", file=out, flush=True)
    try:
        send = asyncio.create_task(replay(settings, events, speed, progress))
        while not send.done():
            await tail.poll(200)
            if worker.poll() is not None:
                send.cancel()
                raise SourceError(f"the worker exited with {worker.returncode}:\n"
                                  f"{log_tail(log_path)}")
        result.events = await send
        waiter = asyncio.create_task(wait_until_processed(settings, worker, log_path, timeout_s))
        while not waiter.done():
            await tail.poll(200)
        await waiter
        while not await tail.caught_up():
            await tail.poll(200)
        await tail.poll(200)
        result.dead_letters = await dead_letter_total(settings)
        print_summary(result, settings, out)
        if follow:
            print("following new signals (Ctrl-C to stop)", file=out, flush=True)
            while worker.poll() is None:
                await tail.poll(1000)
    finally:
        await tail.stop()
        stop_worker(worker)
        if dash is not None:
            dash.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await dash  # OSError: the port was taken, the run went on without it
    return result


async def dead_letter_total(settings: Settings) -> int:
    client = redis_client(settings, decode_responses=True)
    try:
        counts = await client.hgetall(settings.redis_key(*DEADLETTER_COUNTS_KEY))
    finally:
        await client.aclose()
    return sum(int(v) for v in counts.values())


def print_summary(result: RunResult, settings: Settings, out: TextIO) -> None:
    by_type = Counter(s.type for s in result.signals)
    print(f"\nreplayed {result.events} events; {len(result.signals)} signals "
          f"({', '.join(f'{t}: {n}' for t, n in sorted(by_type.items())) or 'none'}); "
          f"{result.dead_letters} events dead-lettered", file=out)
    last = {}
    for sig in result.signals:
        last[sig.type] = sig
    for sig in last.values():
        print(f"  latest {sig.type}: {signal_line(sig)}", file=out)
    print(f"Redis view under {settings.redis_prefix}* at {mask_url(settings.redis_url)}", file=out,
          flush=True)
