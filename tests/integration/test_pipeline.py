"""The whole pipeline on real data: replay -> Kafka -> Faust worker -> signals topic and Redis.

Expected values are computed here independently from the CSV files (plain loops and numpy),
then compared with what a plain Kafka consumer and a plain Redis client see.
"""

from __future__ import annotations

import asyncio
import csv
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as redis
from harness import Namespace, read_topic

from producers.replay import load_replay, replay
from schemas.decode import decode_event
from schemas.records import Signal

pytestmark = pytest.mark.integration

SINCE = date(2024, 6, 1)
SIGNAL_NAMESPACE = uuid.UUID("6f1c2f0e-8a9b-5d47-9b1e-2a7c3e5d4f60")


def closes(path: Path, since: date) -> dict[date, float]:
    with path.open() as fh:
        return {date.fromisoformat(r["Date"]): float(r["Close"]) for r in csv.DictReader(fh)
                if date.fromisoformat(r["Date"]) >= since}


def expected_breakouts(rut: dict[date, float], gap_days: int) -> list[tuple[date, float]]:
    found, ath, ath_day = [], None, None
    for day, close in sorted(rut.items()):
        if ath is not None and close > ath and (day - ath_day).days >= gap_days:
            found.append((day, close))
        if ath is None or close > ath:
            ath, ath_day = close, day
    return found


def expected_streaks(rut: dict[date, float], spx: dict[date, float],
                     min_days: int) -> list[tuple[date, int]]:
    days = sorted(set(rut) & set(spx))
    found, streak = [], 0
    for prev, day in zip(days, days[1:], strict=False):
        beat = rut[day] / rut[prev] - 1 > spx[day] / spx[prev] - 1
        streak = streak + 1 if beat else 0
        if beat and streak >= min_days:
            found.append((day, streak))
    return found


def expected_correlation(rut: dict[date, float], other_on: dict[date, float],
                         window: int) -> float:
    """Pearson of daily log returns of RUT closes and the other series' value for that date."""
    days = [d for d in sorted(rut) if d in other_on]
    a = np.log(np.array([rut[d] for d in days]))
    b = np.log(np.array([other_on[d] for d in days]))
    ra, rb = np.diff(a)[-window:], np.diff(b)[-window:]
    return float(np.corrcoef(ra, rb)[0, 1])


async def test_replay_of_real_data_fires_expected_signals_and_fills_redis(
    namespace: Namespace, workers: list, redis_client: redis.Redis, replay_dir: Path
) -> None:
    settings = namespace.settings
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(settings.redis_key("signals"))
    workers.append(namespace.worker(ALTSEASON_SIGNALS__ATH_MIN_HISTORY_DAYS="0"))

    events = load_replay(replay_dir, since=SINCE)
    assert await replay(settings, events, progress=False) == len(events)
    await namespace.processed(workers[0])

    signals = [Signal(**json.loads(raw)) for raw in
               await read_topic(settings, settings.topic("signals"))]
    by_type: dict[str, list[Signal]] = {}
    for sig in signals:
        by_type.setdefault(sig.type, []).append(sig)
        # the id is a pure function of type, subject and event time
        assert sig.id == str(uuid.uuid5(SIGNAL_NAMESPACE,
                                        f"{sig.type}|{sig.subject}|{sig.event_time}"))
        assert sig.message and sig.evidence
    assert len({s.id for s in signals}) == len(signals), "a signal was emitted twice"

    rut = closes(replay_dir / "russell2000_rut.csv", SINCE)
    spx = closes(replay_dir / "sp500_gspc.csv", SINCE)
    athes = sorted((date.fromisoformat(s.event_time[:10]), s.value)
                   for s in by_type["index_ath"])
    assert athes == expected_breakouts(rut, gap_days=30)
    assert (date(2025, 9, 18), pytest.approx(2467.699951171875)) in athes

    streaks = sorted((date.fromisoformat(s.event_time[:10]), int(s.value))
                     for s in by_type["outperformance_streak"])
    assert streaks == expected_streaks(rut, spx, min_days=5)
    assert max(n for _, n in streaks) == 14  # January 2026

    # Redis: the index view, the streak view, the correlation views
    index = await redis_client.hgetall(settings.redis_key("index", "RUT"))
    last_day = max(rut)
    assert index["day"] == last_day.isoformat()
    assert float(index["close"]) == pytest.approx(rut[last_day])
    assert float(index["ath"]) == pytest.approx(max(rut.values()))
    regime = await redis_client.hgetall(settings.redis_key("regime", "RUT/SPX"))
    assert regime["day"] == last_day.isoformat()

    btc = {d: v for d, v in closes(replay_dir / "btc_usd.csv", SINCE - timedelta(days=7)).items()}
    btc_view = await redis_client.hgetall(settings.redis_key("correlation", "RUT~BTC"))
    for window in (30, 90):
        assert float(btc_view[f"corr_{window}d"]) == pytest.approx(
            expected_correlation(rut, btc, window), abs=1e-9)

    # CoinGecko's snapshot at 00:00 UTC of day D+1 is the market cap at the end of day D
    with (replay_dir / "crypto_total_mcap_coingecko.csv").open() as fh:
        total = {(datetime.fromtimestamp(int(r["snapped_at"]) / 1000, UTC).date()
                  - timedelta(days=1)): float(r["market_cap"]) for r in csv.DictReader(fh)}
    total_view = await redis_client.hgetall(settings.redis_key("correlation", "RUT~TOTAL"))
    # the export ends with the 2025-08-05 00:00 snapshot: RUT's 2025-08-04 close waits for a
    # later crypto value (its as-of point is 5 h after the close), so 2025-08-01 is the last
    assert total_view["event_time"].startswith("2025-08-01")
    rut_until = {d: v for d, v in rut.items() if d <= date(2025, 8, 1)}
    assert float(total_view["corr_90d"]) == pytest.approx(
        expected_correlation(rut_until, total, 90), abs=1e-9)

    # every signal on the topic was also published on the Redis channel, in the recent list
    published = []
    deadline = asyncio.get_running_loop().time() + 10
    while len(published) < len(signals) and asyncio.get_running_loop().time() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
        if message:
            published.append(json.loads(message["data"])["id"])
    await pubsub.aclose()
    assert sorted(published) == sorted(s.id for s in signals)
    recent = await redis_client.lrange(settings.redis_key("signals", "recent"), 0, -1)
    assert len(recent) == len(signals)
    assert all(decode_event(Signal, raw) for raw in recent)
