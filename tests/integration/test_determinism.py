"""Event time rules: the worker's signals on real data are the same, id for id and value for
value, whatever its pace, and equal to the offline pipeline's (the report's), which runs the
same steps in event-time order."""

from __future__ import annotations

import json
import warnings
from datetime import date
from pathlib import Path

import pytest
from aiokafka.errors import KafkaError
from harness import Namespace, delete_topics, private_env, read_topic

from altseason.kafka_admin import ensure_topics
from altseason.run import stop_worker
from foundation.config import load_settings
from producers.replay import load_replay, replay
from schemas.records import Signal
from streams.pipeline import OfflinePipeline

pytestmark = pytest.mark.integration

#: the last year and a half: index closes, BTC and ETH, TOTAL to 2025-08, OKX SOL long/short
#: ratios; every signal type the bundled data has (2,231 events)
SINCE = date(2025, 6, 1)
SETTINGS = {"ALTSEASON_SIGNALS__ATH_MIN_HISTORY_DAYS": "0",
            "ALTSEASON_SIGNALS__LONGSHORT_MIN_PERIODS": "24"}


def comparable(signal: Signal) -> tuple[str, str, str, float, str, str]:
    """What must not depend on the pace (``emitted_at`` is the wall clock)."""
    return (signal.type, signal.subject, signal.event_time, signal.value, signal.message,
            json.dumps(signal.evidence, sort_keys=True))


async def worker_signals(namespace: Namespace, events: list, **extra_env: str) -> dict:
    # the input is all there before the worker starts: a worker that catches up with a
    # producer still writing may take a pause for the end of a source (README "Fan-in")
    assert await replay(namespace.settings, events, progress=False) == len(events)
    worker = namespace.worker(**SETTINGS, **extra_env)
    try:
        await namespace.processed(worker, timeout_s=400)
    finally:
        stop_worker(worker)
    signals = [Signal(**json.loads(raw)) for raw in
               await read_topic(namespace.settings, namespace.settings.topic("signals"))]
    by_id = {s.id: comparable(s) for s in signals}
    assert len(by_id) == len(signals), "a signal was emitted twice"
    return by_id


async def test_signals_do_not_depend_on_pace_and_equal_the_offline_pipeline(
        namespace: Namespace, stack_env: dict[str, str], tmp_path: Path,
        replay_dir: Path) -> None:
    events = load_replay(replay_dir, since=SINCE)
    fast = await worker_signals(namespace, events)

    throttled_dir = tmp_path / "throttled"
    throttled_dir.mkdir()
    env = private_env(stack_env, throttled_dir)
    throttled_ns = Namespace(env, load_settings(env=env), throttled_dir)
    await ensure_topics(throttled_ns.settings)
    try:
        # every event of every agent waits 3 ms: the agents' relative pace changes
        slow = await worker_signals(throttled_ns, events, ALTSEASON_FAILPOINT_DELAY_MS="3")
    finally:
        try:
            await delete_topics(throttled_ns.settings)
        except KafkaError as exc:
            warnings.warn(f"could not delete the test's topics: {exc!r}", stacklevel=1)

    offline = OfflinePipeline(load_settings(env={**namespace.env, **SETTINGS}).signals)
    for event in events:
        offline.feed(event.topic, event.key.encode(), event.record.dumps())
    offline.finish()
    expected = {s.id: comparable(s) for s in offline.signals}

    types = {kind for kind, *_ in expected.values()}
    assert {"index_ath", "outperformance_streak", "correlation_regime", "long_crowding",
            "altseason_score"} <= types, types
    assert fast == expected
    assert slow == expected
