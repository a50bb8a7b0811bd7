"""What ops teams rely on, on a real worker: /health, /ready, /metrics, JSON logs, SIGTERM.

The SIGTERM test stops the worker in the middle of a replay of the real data and starts it
again: the stop is clean (exit 0) and nothing is lost (the signals, deduplicated on their id,
equal those computed independently from the CSV files). Delivery is at least once: the few
events handled between the last commit and the stop may come again; agents reject them as
repeats of what they applied (README "Guarantees").
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
from datetime import date
from pathlib import Path

import aiohttp
import pytest
from harness import Namespace, read_topic, wait_ready, writing_statuses
from test_pipeline import closes, expected_breakouts, expected_streaks

from altseason.kafka_admin import group_lag
from altseason.web import WORKER_PATHS
from producers.replay import load_replay, replay
from schemas.records import Signal
from schemas.topics import INPUT_TOPICS

pytestmark = pytest.mark.integration

METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def parse_metrics(text: str) -> dict[str, float]:
    """``name{labels}`` -> value, for every sample of a Prometheus text exposition."""
    samples = {}
    for line in text.splitlines():
        match = METRIC_LINE.match(line)
        if match:
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include ``labels``."""
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(v for k, v in samples.items()
               if k.split("{")[0] == name and all(w in k for w in wanted))


async def get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, \
            session.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.text()


async def test_endpoints_and_metrics_move_during_a_replay(
        namespace: Namespace, workers: list, replay_dir: Path) -> None:
    settings = namespace.settings
    port = settings.web_port
    worker = namespace.worker()
    workers.append(worker)
    ready = await wait_ready(port, worker)
    assert ready == {"ready": True, "checks": {"partitions_assigned": True,
                                               "recovery_done": True, "kafka": True,
                                               "redis": True}}
    status, body = await get(port, "/health")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    before = parse_metrics((await get(port, "/metrics"))[1])

    events = load_replay(replay_dir, since=date(2025, 6, 1))
    await replay(settings, events, progress=False)
    from aiokafka import AIOKafkaProducer  # one malformed event: a dead letter, counted
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    await producer.send_and_wait(settings.topic("ticks"), b"{not json", key=b"x")
    await producer.stop()
    await namespace.processed(worker)

    status, text = await get(port, "/metrics")
    assert status == 200
    after = parse_metrics(text)
    # Faust's stream metrics, per input topic
    for topic in ("ticks", "index-quotes", "market-caps", "long-short-ratios"):
        name = "altseason_messages_received_per_topic_total"
        assert total(after, name, topic=settings.topic(topic)) > total(before, name,
                                                                       topic=settings.topic(topic))
    assert total(after, "altseason_events_runtime_ms_count") > 0
    # ours
    assert total(after, "altseason_signals_emitted_total") > 0
    signals = [Signal(**json.loads(raw))
               for raw in await read_topic(settings, settings.topic("signals"))]
    for kind in {s.type for s in signals}:
        assert total(after, "altseason_signals_emitted_total", type=kind) == \
            sum(s.type == kind for s in signals)
    assert total(after, "altseason_dead_letters_total", topic="ticks") == 1
    assert total(after, "altseason_table_keys", table="regime") >= 1
    assert total(after, "altseason_consumer_lag") == 0
    assert total(after, "altseason_redis_write_errors_total") == 0
    assert set(WORKER_PATHS) == {"/health", "/ready", "/metrics"}
    # read-only: no writing method is served, ours or Faust's own pages (tables, router...)
    faust_pages = ["/", "/router/", "/router/x/", "/table/", "/table/regime/",
                   "/graph/", "/stats/"]
    statuses = await writing_statuses(port, [*WORKER_PATHS, *faust_pages])
    assert set(statuses.values()) <= {404, 405}, statuses

    # the log is JSON, one object per line (stdout is not a terminal here)
    lines = [line for line in (namespace.workdir / "worker.log").read_text().splitlines()
             if line.startswith("{")]
    entries = [json.loads(line) for line in lines]
    assert entries and {"time", "level", "logger", "message"} <= set(entries[0])
    assert any(e["message"].startswith("dead-lettered") for e in entries)


async def test_sigterm_mid_replay_loses_and_repeats_nothing(
        namespace: Namespace, workers: list, replay_dir: Path) -> None:
    settings = namespace.settings
    since = date(2024, 6, 1)
    first = namespace.worker(ALTSEASON_SIGNALS__ATH_MIN_HISTORY_DAYS="0")
    workers.append(first)
    await wait_ready(settings.web_port, first)
    events = load_replay(replay_dir, since=since)
    await replay(settings, events, progress=False)

    # stop it once it is well into the replay
    deadline = asyncio.get_running_loop().time() + 120
    while True:
        samples = parse_metrics((await get(settings.web_port, "/metrics"))[1])
        if total(samples, "altseason_messages_received_per_topic_total") >= 1500:
            break
        assert asyncio.get_running_loop().time() < deadline, "the worker did not progress"
        await asyncio.sleep(0.2)
    first.send_signal(signal.SIGTERM)
    assert first.wait(60) == 0, "SIGTERM did not stop the worker cleanly"
    inputs = [settings.topic(name) for name in INPUT_TOPICS]
    assert await group_lag(settings, settings.app_id, inputs) > 0, \
        "the worker had finished before SIGTERM: the test proves nothing"

    second = namespace.worker(ALTSEASON_SIGNALS__ATH_MIN_HISTORY_DAYS="0")
    workers.append(second)
    await namespace.processed(second)

    emitted = [Signal(**json.loads(raw))
               for raw in await read_topic(settings, settings.topic("signals"))]
    signals = list({s.id: s for s in emitted}.values())  # consumers dedupe on the id
    dead = [json.loads(raw) for raw in await read_topic(settings, settings.topic("deadletter"))]
    assert all(any(words in letter["reason"] for words in ("duplicate", "older than", "is late"))
               for letter in dead), dead[:3]
    rut = closes(replay_dir / "russell2000_rut.csv", since)
    spx = closes(replay_dir / "sp500_gspc.csv", since)
    athes = sorted((date.fromisoformat(s.event_time[:10]), s.value)
                   for s in signals if s.type == "index_ath")
    assert athes == expected_breakouts(rut, gap_days=30)
    streaks = sorted((date.fromisoformat(s.event_time[:10]), int(s.value))
                     for s in signals if s.type == "outperformance_streak")
    assert streaks == expected_streaks(rut, spx, min_days=5)
