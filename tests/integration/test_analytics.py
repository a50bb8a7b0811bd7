"""The analytics agents on the real broker and Redis: long/short, drawdowns, bars, netflows,
the altseason score, and the Redis rebuild after a flush.

Expected values are computed here from the CSV files with pandas, independently of streams/.
"""

from __future__ import annotations

import asyncio
import csv
import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import redis.asyncio as redis
from aiokafka import AIOKafkaProducer
from harness import Namespace, read_topic

from producers.replay import load_replay, replay
from schemas.records import Bar, DeadLetter, ExchangeNetflow, Signal

pytestmark = pytest.mark.integration

SINCE, UNTIL = date(2024, 7, 1), date(2024, 9, 30)
SERIES = "binanceusdm:BTC/USDT:USDT:global_account"


def binance_ratios(replay_dir: Path) -> pd.Series:
    frame = pd.read_csv(replay_dir / "binance_btcusdt_global_long_short_30m.csv")
    frame["t"] = pd.to_datetime(frame["timestamp"]).dt.tz_localize("UTC")
    return frame.sort_values("t").set_index("t")["longShortRatio"].astype(float)


def expected_crowding(ratios: pd.Series, window: int, min_periods: int, z_min: float,
                      ratio_min: float, cooldown: timedelta) -> list[pd.Timestamp]:
    """Times a ratio enters "crowded" (z-score against the window before it), with cooldown."""
    before = ratios.shift(1).rolling(window, min_periods=min_periods)
    z = (ratios - before.mean()) / before.std(ddof=1)
    fired: list[pd.Timestamp] = []
    crowded = False
    for t, ratio in ratios.items():
        now = bool(z[t] >= z_min and ratio >= ratio_min)
        if now and not crowded and (not fired or t - fired[-1] >= cooldown):
            fired.append(t)
        crowded = now
    return fired


def daily_closes(path: Path) -> dict[date, float]:
    with path.open() as fh:
        return {date.fromisoformat(r["Date"]): float(r["Close"]) for r in csv.DictReader(fh)
                if SINCE <= date.fromisoformat(r["Date"]) <= UNTIL}


async def test_long_short_drawdowns_bars_score_and_redis_rebuild(
    namespace: Namespace, workers: list, redis_client: redis.Redis, replay_dir: Path
) -> None:
    settings = namespace.settings
    workers.append(namespace.worker(ALTSEASON_SIGNALS__ATH_MIN_HISTORY_DAYS="0",
                                    ALTSEASON_SIGNALS__LONGSHORT_CROWDING_Z="2.0",
                                    ALTSEASON_REDIS_CHECK_SECONDS="1",
                                    ALTSEASON_BAR_VIEW_FLUSH_SECONDS="0"))  # a write per tick
    events = load_replay(replay_dir, SINCE, UNTIL)
    assert await replay(settings, events, progress=False) == len(events)
    await namespace.processed(workers[0])

    signals = [Signal(**json.loads(raw))
               for raw in await read_topic(settings, settings.topic("signals"))]
    letters = await read_topic(settings, settings.topic("deadletter"))
    assert letters == [], [DeadLetter(**json.loads(x)).reason for x in letters]

    # long/short: the series view, its z-score and the ranking, against pandas
    ratios = binance_ratios(replay_dir)
    view = await redis_client.hgetall(settings.redis_key("longshort", SERIES))
    assert float(view["ratio"]) == ratios.iloc[-1]
    before = ratios.iloc[-337:-1]
    assert float(view["zscore"]) == pytest.approx(
        (ratios.iloc[-1] - before.mean()) / before.std(ddof=1), rel=1e-9)
    ranking = await redis_client.zrange(
        settings.redis_key("longshort-ranking", "global_account"), 0, -1, withscores=True)
    assert ranking == [("binanceusdm:BTC/USDT:USDT", ratios.iloc[-1])]
    crowding = sorted(pd.Timestamp(s.event_time) for s in signals if s.type == "long_crowding")
    expected = expected_crowding(ratios, 336, 48, 2.0, 1.5, timedelta(hours=24))
    assert crowding == expected and len(expected) >= 1
    first = next(s for s in signals if s.type == "long_crowding")
    assert first.subject == SERIES and "long squeezes" in first.message

    # drawdowns from the highs seen since SINCE; ETH is an altcoin, BTC is not
    eth = daily_closes(replay_dir / "eth_usd.csv")
    eth_view = await redis_client.hgetall(settings.redis_key("drawdown", "ETH"))
    assert float(eth_view["drawdown"]) == pytest.approx(
        eth[max(eth)] / max(eth.values()) - 1, rel=1e-12)
    breadth = await redis_client.hgetall(settings.redis_key("breadth", "altcoins"))
    assert (breadth["altcoins"], float(breadth["share_deep"])) == ("1", 0.0)

    # bars: one daily close tick a day, so every 1d bar but the open last one has closed
    bars = [Bar(**json.loads(raw)) for raw in await read_topic(settings, settings.topic("bars"))]
    eth_days = [b for b in bars if b.symbol == "ETH/USD" and b.interval == "1d"]
    assert len(eth_days) == len(eth) - 1
    for bar in eth_days:
        close = eth[date.fromisoformat(bar.start[:10])]
        assert (bar.open, bar.high, bar.low, bar.close, bar.trades) == (
            close, close, close, close, 1)
    open_bar = await redis_client.hgetall(settings.redis_key("bar", "replay:ETH/USD:1d"))
    assert float(open_bar["close"]) == eth[max(eth)]

    # the score: contributions add up; three months give no 90-day correlation yet, BTC's
    # long/short ratio is not an altcoin's, and there are no netflows
    score = await redis_client.hgetall(settings.redis_key("score", "altseason"))
    components = json.loads(score["components"])
    assert set(components) == {"index_ath", "relative_strength", "breadth"}
    assert json.loads(score["missing"]) == ["correlation", "long_bias", "accumulation"]
    assert float(score["score"]) == pytest.approx(
        sum(c["contribution"] for c in components.values()))

    # Redis is a derived view: flushed, it comes back from the tables
    keys = sorted([k async for k in redis_client.scan_iter(f"{settings.redis_prefix}*")])
    views = {k: await redis_client.hgetall(k) for k in keys
             if await redis_client.type(k) == "hash" and ":deadletter:" not in k}
    assert len(views) >= 10
    await redis_client.delete(*keys)
    deadline = asyncio.get_running_loop().time() + 30
    while not await redis_client.exists(settings.redis_key("meta", "layout")):
        assert asyncio.get_running_loop().time() < deadline, "Redis view was not rebuilt"
        await asyncio.sleep(0.5)
    for key, fields in views.items():
        assert await redis_client.hgetall(key) == fields, key
    assert await redis_client.zrange(
        settings.redis_key("longshort-ranking", "global_account"), 0, -1,
        withscores=True) == ranking


def random_flows(seed: int) -> list[ExchangeNetflow]:
    """60 days of daily flows for 2 tokens on 2 exchanges, drifting in and out of balance."""
    rng = random.Random(seed)
    flows = []
    start = datetime(2025, 3, 1, tzinfo=UTC)
    for exchange in ("binance", "coinbase"):
        for token in ("BTC", "ETH"):
            bias = rng.uniform(-1, 1)
            for day in range(60):
                bias = max(-1.0, min(1.0, bias + rng.gauss(0, 0.25)))
                scale = 10 ** rng.uniform(1, 4)
                inflow = scale * (1 + bias) * rng.uniform(0.5, 1.5)
                outflow = scale * (1 - bias) * rng.uniform(0.5, 1.5)
                flows.append(ExchangeNetflow(
                    exchange=exchange, token=token,
                    event_time=(start + timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    window="1d", inflow=inflow, outflow=outflow, netflow=inflow - outflow))
    return flows


async def test_netflows_rolling_sums_rankings_and_signals(
    namespace: Namespace, workers: list, redis_client: redis.Redis
) -> None:
    settings = namespace.settings
    flows = random_flows(11)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for flow in flows:
            await producer.send(settings.topic("netflows"), flow.dumps(),
                                key=f"{flow.exchange}:{flow.token}".encode())
        await producer.send(settings.topic("netflows"), flows[5].dumps(),  # a duplicate
                            key=f"{flows[5].exchange}:{flows[5].token}".encode())
        await producer.flush()
    finally:
        await producer.stop()
    workers.append(namespace.worker())
    await namespace.processed(workers[0])

    frame = pd.DataFrame([f.asdict() for f in flows])
    frame["t"] = pd.to_datetime(frame["event_time"])
    netflow_7d: dict[str, float] = {}
    for (exchange, token), group in frame.groupby(["exchange", "token"]):
        series = group.set_index("t")
        key = f"{exchange}:{token}"
        view = await redis_client.hgetall(settings.redis_key("netflow", key))
        for days in (1, 7, 30):
            rolled = series[["inflow", "outflow"]].rolling(f"{days}D").sum().iloc[-1]
            assert float(view[f"inflow_{days}d"]) == pytest.approx(rolled.inflow, rel=1e-9)
            assert float(view[f"netflow_{days}d"]) == pytest.approx(
                rolled.inflow - rolled.outflow, rel=1e-9, abs=1e-6)
        netflow_7d[key] = float(view["netflow_7d"])
        imbalance = float(view["imbalance"])
        assert view["band"] in ("accumulation", "neutral", "distribution")
        if imbalance <= -0.1 - 0.03:
            assert view["band"] == "accumulation"
        if imbalance >= 0.1:
            assert view["band"] == "distribution"
    ranking = await redis_client.zrange(settings.redis_key("netflow-ranking", "7d"), 0, -1)
    assert ranking == sorted(netflow_7d, key=netflow_7d.__getitem__)

    signals = [Signal(**json.loads(raw))
               for raw in await read_topic(settings, settings.topic("signals"))]
    assert signals, "60 days of drifting flows must cross the thresholds"
    for signal in signals:
        assert signal.type in ("netflow_accumulation", "netflow_distribution")
        imbalance = signal.evidence["imbalance"]
        assert imbalance <= -0.1 if signal.type == "netflow_accumulation" else imbalance >= 0.1
    by_series: dict[str, list[Signal]] = {}
    for signal in sorted(signals, key=lambda s: s.event_time):
        by_series.setdefault(signal.subject, []).append(signal)
    for series_signals in by_series.values():
        same = [(a, b) for a, b in zip(series_signals, series_signals[1:], strict=False)
                if a.type == b.type]
        for a, b in same:  # the same band again only after the 72 h cooldown
            gap = datetime.fromisoformat(b.event_time) - datetime.fromisoformat(a.event_time)
            assert gap >= timedelta(hours=72)
    letters = [DeadLetter(**json.loads(raw))
               for raw in await read_topic(settings, settings.topic("deadletter"))]
    assert [x.source for x in letters] == ["track_netflows"]
    assert "not newer than the last one" in letters[0].reason
