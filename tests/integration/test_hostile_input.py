"""Hostile input on every input topic, interleaved with real events, through a real worker.

``test_bad_input`` checks a few bad index quotes; this sends, to each of the five input
topics, a deterministic batch of what a broken or hostile producer sends: malformed JSON (cut,
not UTF-8, nested 10,000 deep, empty, a null value), wrong types, NaN, infinities, negative,
zero, subnormal and huge prices, 900 KB messages and a 900 KB key, unknown and malformed
symbols, text that is not Unicode, times at year 1, 1999, 2100 and 9999 or as numbers, an
unsupported schema version; and valid events that are duplicates or out of order. Around them
goes a slice of the bundled real data (``data/replay``) and a synthetic netflow series (there
is no recorded one).

Then: the worker is alive and has processed everything; each bad event is on the dead-letter
topic exactly once per agent that rejects it, with its reason and source; the worker's
``/metrics`` and the Redis ``deadletter:counts`` count them; and the Redis views equal what
the good events alone give (``altseason.report``'s offline replay of the same events, and the
CSV for RUT's close and high).
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import random
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as redis
from aiokafka import AIOKafkaProducer
from harness import Namespace, read_topic
from prometheus_client.parser import text_string_to_metric_families

from altseason.report import replay_offline
from foundation.config import Settings
from producers.replay import ReplayEvent, load_replay
from schemas.decode import iso_utc
from schemas.records import DeadLetter, Event, ExchangeNetflow, IndexQuote

pytestmark = pytest.mark.integration

SINCE, UNTIL = date(2024, 7, 1), date(2024, 9, 12)
NEW_YORK = ZoneInfo("America/New_York")
#: what agents/driver.py keeps of a dead letter's payload
MAX_PAYLOAD_CHARS = 64 * 1024
KB_900 = 900_000
#: the agents that own a series: a stale event of it is rejected by each of them
RUT_OWNERS = {"correlate": 3, "track_regime": 1}  # RUT~TOTAL, RUT~BTC, RUT~TOTAL3; RUT/SPX


@dataclass
class Bad:
    """A message the decoder or router must reject (one dead letter, from the agent that
    validates its topic: build_bars for ticks, route_inputs for the others)."""

    topic: str
    key: bytes
    value: bytes | None
    reason: str  # a fragment of the expected reason
    where: tuple[int, int] | None = None  # (partition, offset) once sent


@dataclass
class Stale:
    """A valid event that is a duplicate or older than its series' last: one dead letter per
    agent that owns the series (``owners``: source -> count)."""

    event: ReplayEvent
    name: str  # the series, subject or base asset its dead letters carry
    owners: dict[str, int]
    reason: str = "older than|duplicate|late"
    letters: list[DeadLetter] = field(default_factory=list)


def close_time(day: date) -> str:
    return iso_utc(datetime.combine(day, time(16, 0), NEW_YORK))


def changed(event: ReplayEvent, **changes: Any) -> bytes:
    return json.dumps({**json.loads(event.record.dumps()), **changes}).encode()


def with_time(event: ReplayEvent, moment: datetime) -> ReplayEvent:
    record: Event = type(event.record)(**{**event.record.asdict(),
                                          "event_time": iso_utc(moment)})
    return ReplayEvent(int(moment.timestamp() * 1000), event.topic, event.key, record)


def netflow_events(since: date, until: date) -> list[ReplayEvent]:
    """binance:BTC daily flows (synthetic, deterministic), stamped at the day's last ms."""
    events, day, i = [], since, 0
    while day <= until:
        end = datetime.combine(day + timedelta(days=1), time(0), UTC) - timedelta(milliseconds=1)
        inflow, outflow = 1000 + 400 * math.sin(i / 3), 1000 + 400 * math.cos(i / 5)
        flow = ExchangeNetflow(exchange="binance", token="BTC", event_time=iso_utc(end),
                               window="1d", inflow=inflow, outflow=outflow,
                               netflow=inflow - outflow)
        events.append(ReplayEvent(int(end.timestamp() * 1000), "netflows", "binance:BTC", flow))
        day, i = day + timedelta(days=1), i + 1
    return events


def hostile_batch(good: list[ReplayEvent]) -> list[Bad]:
    """Every kind of bad message, on each input topic, built from a real event of it."""
    # real events moved to a time no real event has (a Saturday): were one of them let
    # through, it would reach the math and change the views, not just be rejected as stale
    fresh = datetime(2024, 8, 3, 12, 0, 0, 500_000, tzinfo=UTC)
    sample = {e.topic: e for e in good}
    rut = next(e for e in good if e.key == "RUT")
    quote = ReplayEvent(rut.t_ms, rut.topic, rut.key, IndexQuote(
        symbol="RUT", event_time=close_time(fresh.date()), price=2200.5, source="hostile"))
    tick, cap, ratio, flow = (
        with_time(next(e for e in good if e.key == "replay:BTC/USD"), fresh),
        with_time(sample["market-caps"], fresh), with_time(sample["long-short-ratios"], fresh),
        with_time(sample["netflows"], fresh))
    bad = [
        # malformed, whatever the topic
        Bad("index-quotes", b"RUT", b"{not json", "malformed JSON"),
        Bad("index-quotes", b"RUT", b"[" * 10_000, "nested too deeply"),
        Bad("ticks", b"replay:BTC/USD", b"\xff\xfe\xfd", "malformed JSON"),
        Bad("market-caps", b"TOTAL", None, "empty message"),
        Bad("netflows", b"binance:BTC", b"", "malformed JSON"),
        Bad("long-short-ratios", b"x", b"[1, 2, 3]", "expected a JSON object"),
        Bad("ticks", b"\xff" * KB_900, b"{bad", "malformed JSON"),  # a 900 KB key, not UTF-8
        # NaN, infinities, negative, zero, subnormal and huge prices, wrong types
        Bad("index-quotes", b"RUT", changed(quote, price=math.nan), "field price is nan"),
        Bad("index-quotes", b"RUT", changed(quote, price=math.inf), "field price is inf"),
        Bad("index-quotes", b"RUT", changed(quote, price=-2200.5), "field price is -2200.5"),
        Bad("index-quotes", b"RUT", changed(quote, price=0), "field price is 0"),
        Bad("index-quotes", b"RUT", changed(quote, price=5e-324), "outside the magnitudes"),
        Bad("index-quotes", b"RUT", changed(quote, price=10**400), "beyond 64 bits"),
        Bad("index-quotes", b"RUT", changed(quote, price="2200.5"), "field price is str"),
        Bad("ticks", b"replay:BTC/USD", changed(tick, price=1e300), "outside the magnitudes"),
        Bad("ticks", b"replay:BTC/USD", changed(tick, amount=-math.inf), "field amount is -inf"),
        Bad("ticks", b"replay:BTC/USD", changed(tick, trade_id=42), "field trade_id is int"),
        Bad("ticks", b"replay:BTC/USD", changed(tick, side="long"), "field side is 'long'"),
        Bad("market-caps", b"TOTAL", changed(cap, market_cap="lots"), "field market_cap is str"),
        Bad("market-caps", b"SOL", changed(cap, asset="SOL", rank=0), "field rank is 0"),
        Bad("market-caps", b"SOL", changed(cap, asset="SOL", rank=2**70), "field rank"),
        Bad("long-short-ratios", ratio.key.encode(), changed(ratio, long_share=1.5),
            "field long_share is 1.5"),
        Bad("long-short-ratios", ratio.key.encode(), changed(ratio, ratio=-1),
            "field ratio is -1"),
        Bad("long-short-ratios", ratio.key.encode(), changed(ratio, variant="bogus"),
            "field variant is 'bogus'"),
        Bad("netflows", b"binance:BTC", changed(flow, inflow=-5.0), "field inflow is -5.0"),
        Bad("netflows", b"binance:BTC", changed(flow, window="1w"), "field window is '1w'"),
        Bad("netflows", b"binance:BTC", changed(flow, netflow=12345.0), "is not inflow - outflow"),
        # unknown and malformed symbols, text that is not Unicode, 900 KB messages
        Bad("index-quotes", b"NDX", changed(quote, symbol="NDX"), "unknown index symbol 'NDX'"),
        Bad("index-quotes", b"Z", changed(quote, symbol="Z" * KB_900), "field symbol is 900000"),
        Bad("index-quotes", b"RUT", changed(quote, price=math.nan, padding="p" * KB_900),
            "field price is nan"),
        Bad("ticks", b"x", changed(tick, symbol="btc-usd"), "field symbol is 'btc-usd'"),
        Bad("ticks", b"x", changed(tick, exchange="e" * 600_000), "field exchange is 600000"),
        Bad("ticks", b"x", changed(tick, exchange="\ud800"), "not valid Unicode"),
        Bad("market-caps", b"x", changed(cap, asset="total"), "field asset is 'total'"),
        # times: far past or future, not RFC 3339, numbers; a version this worker cannot read
        Bad("index-quotes", b"RUT", changed(quote, event_time="0001-01-01T00:00:00Z"),
            "implausibly far"),
        Bad("index-quotes", b"RUT", changed(quote, event_time="1999-12-31T21:00:00.000Z"),
            "implausibly far"),
        Bad("index-quotes", b"RUT", changed(quote, event_time=close_time(date(2100, 1, 4))),
            "implausibly far"),
        Bad("index-quotes", b"RUT", changed(quote, event_time="9999-12-31T23:59:59.999Z"),
            "implausibly far"),
        Bad("index-quotes", b"RUT", changed(quote, event_time=rut.t_ms),
            "field event_time is int"),
        Bad("index-quotes", b"RUT", changed(quote, event_time=str(rut.t_ms)),
            "not an RFC 3339"),
        Bad("ticks", b"replay:BTC/USD", changed(tick, event_time="-2024-07-01T23:59:59Z"),
            "not an RFC 3339"),
        Bad("market-caps", b"TOTAL", changed(cap, event_time=close_time(date(2100, 1, 4))),
            "implausibly far"),
        Bad("long-short-ratios", ratio.key.encode(),
            changed(ratio, event_time=iso_utc(datetime.now(UTC) + timedelta(days=2))),
            "implausibly far"),
        Bad("netflows", b"binance:BTC", changed(flow, event_time="2024-07-01T23:59:59.999"),
            "must be in UTC"),
        Bad("ticks", b"replay:BTC/USD", changed(tick, schema_version=2), "schema_version 2"),
    ]
    return bad


def stale_events(good: list[ReplayEvent]) -> tuple[list[Stale], list[Stale]]:
    """(duplicates sent right after their original, events older than their series' last)."""
    def nth(key: str, n: int) -> ReplayEvent:
        return [e for e in good if e.key == key][n]

    rut = nth("RUT", 10)
    old_rut = ReplayEvent(rut.t_ms, "index-quotes", "RUT", IndexQuote(
        symbol="RUT", event_time=close_time(date(2024, 3, 1)), price=2071.3, source="stale"))
    ls_key = "binanceusdm:BTC/USDT:USDT"
    immediate = [
        Stale(nth("RUT", 20), "RUT", RUT_OWNERS),
        Stale(nth("TOTAL", 20), "TOTAL", {"correlate": 1}),  # RUT~TOTAL
        Stale(nth(ls_key, 100), ls_key, {"track_long_short": 1}),
        Stale(nth("binance:BTC", 20), "binance:BTC", {"track_netflows": 1}),
    ]
    late = [
        Stale(old_rut, "RUT", RUT_OWNERS),
        Stale(nth("SPX", 5), "SPX", {"correlate": 1, "track_regime": 1}),  # SPX~BTC; RUT/SPX
        # BTC: RUT~BTC and SPX~BTC, its drawdown, and its bars (closed: the trade is late)
        Stale(nth("replay:BTC/USD", 3), "BTC",
              {"correlate": 2, "track_drawdowns": 1, "build_bars": 1}),
        Stale(nth("replay:ETH/USD", 3), "ETH", {"track_drawdowns": 1, "build_bars": 1}),
        Stale(nth(ls_key, 50), ls_key, {"track_long_short": 1}),
    ]
    return immediate, late


def letter_name(letter: DeadLetter) -> tuple[str, str]:
    """(series or subject, event time) of an agent's dead letter (its payload is the internal
    record it rejected: a SeriesPoint, an Observation or a tick)."""
    payload = json.loads(letter.payload)
    name = payload.get("series") or payload.get("subject") or payload["symbol"].split("/")[0]
    return name, payload["event_time"]


def stale_name(stale: Stale) -> tuple[str, str]:
    record: Any = stale.event.record
    return stale.name, record.event_time


async def send_all(settings: Settings, good: list[ReplayEvent], bad: list[Bad],
                   immediate: list[Stale], late: list[Stale]) -> None:
    """The good events in order, a duplicate right after each original, the bad ones spread
    among them (deterministically), the out-of-order ones in the last third."""
    rng = random.Random(20240701)
    originals = {id(s.event): s for s in immediate}
    slots = sorted(rng.randrange(len(good)) for _ in bad)
    late_at = 2 * len(good) // 3 + 50
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                enable_idempotence=True, acks="all", linger_ms=5)
    await producer.start()
    try:
        pending: list[tuple[Bad | None, asyncio.Future[Any]]] = []

        async def send(topic: str, key: bytes, value: bytes | None, item: Bad | None) -> None:
            pending.append((item, await producer.send(settings.topic(topic), value, key=key)))

        queue = list(zip(slots, bad, strict=True))
        for i, event in enumerate(good):
            while queue and queue[0][0] <= i:
                item = queue.pop(0)[1]
                await send(item.topic, item.key, item.value, item)
            await send(event.topic, event.key.encode(), event.record.dumps(), None)
            if id(event) in originals:
                await send(event.topic, event.key.encode(), event.record.dumps(), None)
            if i == late_at:
                for stale in late:
                    await send(stale.event.topic, stale.event.key.encode(),
                               stale.event.record.dumps(), None)
        for _, item in queue:
            await send(item.topic, item.key, item.value, item)
        for item, future in pending:
            metadata = await future
            if item is not None:
                item.where = (metadata.partition, metadata.offset)
    finally:
        await producer.stop()


async def dead_letters(settings: Settings, expected: int, timeout_s: float = 30) -> list[
        DeadLetter]:
    """The dead-letter topic, read again until it holds ``expected`` letters (the worker's
    last transactions may still be committing) or ``timeout_s`` passed."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        letters = [DeadLetter(**json.loads(raw))
                   for raw in await read_topic(settings, settings.topic("deadletter"))]
        if len(letters) >= expected or asyncio.get_running_loop().time() > deadline:
            return letters
        await asyncio.sleep(1.0)


def scrape_dead_letter_metric(port: int) -> Counter[tuple[str, str]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    counts: Counter[tuple[str, str]] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "altseason_dead_letters_total":
                counts[(sample.labels["topic"], sample.labels["source"])] += int(sample.value)
    return counts


def csv_closes(path: Path) -> dict[date, float]:
    with path.open() as fh:
        return {d: float(r["Close"]) for r in csv.DictReader(fh)
                if SINCE <= (d := date.fromisoformat(r["Date"])) <= UNTIL}


def same(view: dict[str, str], expected: dict[str, Any], fields: list[str]) -> None:
    """Redis hash fields (text) equal the expected values (numbers to 1e-9)."""
    for name in fields:
        want = expected[name]
        if isinstance(want, float):
            assert float(view[name]) == pytest.approx(want, rel=1e-9, abs=1e-12), name
        else:
            assert view[name] == ("" if want is None else str(want)), name


async def test_hostile_input_is_dead_lettered_counted_and_changes_no_view(
    namespace: Namespace, workers: list, redis_client: redis.Redis, replay_dir: Path
) -> None:
    settings = namespace.settings
    good = sorted(load_replay(replay_dir, SINCE, UNTIL) + netflow_events(SINCE, UNTIL),
                  key=lambda e: (e.t_ms, e.topic, e.key))
    assert {e.topic for e in good} == {"index-quotes", "market-caps", "ticks",
                                       "long-short-ratios", "netflows"}
    bad = hostile_batch(good)
    assert {b.topic for b in bad} == {e.topic for e in good}
    immediate, late = stale_events(good)
    stale = immediate + late

    workers.append(namespace.worker())
    await send_all(settings, good, bad, immediate, late)
    await namespace.processed(workers[0], timeout_s=120)
    assert workers[0].poll() is None, "the worker must survive hostile input"

    expected_total = len(bad) + sum(sum(s.owners.values()) for s in stale)
    letters = await dead_letters(settings, expected_total)
    reasons = [(x.source, x.reason[:80]) for x in letters]

    # every rejected event: one dead letter per rejecting agent, with a reason and a source
    assert all(x.reason and x.source for x in letters)
    assert all(len(x.reason) < 1000 for x in letters), "a reason must not quote a huge value"
    bad_places = {(settings.topic(item.topic), *item.where) for item in bad if item.where}
    by_place = Counter((x.topic, x.partition, x.offset) for x in letters
                       if (x.topic, x.partition, x.offset) in bad_places)
    assert sum(by_place.values()) == len(bad), reasons
    for item in bad:
        assert item.where is not None
        place = (settings.topic(item.topic), *item.where)
        assert by_place[place] == 1, (item.topic, item.reason, reasons)
        letter = next(x for x in letters if (x.topic, x.partition, x.offset) == place)
        assert item.reason in letter.reason, (item.reason, letter.reason)
        raw = "" if item.value is None else item.value.decode("utf-8", errors="replace")
        assert letter.payload == raw[:MAX_PAYLOAD_CHARS]
        assert letter.key is not None and len(letter.key) <= 1024
    agent_letters = [x for x in letters if (x.topic, x.partition, x.offset) not in bad_places]
    for item in stale:
        item.letters = [x for x in agent_letters if letter_name(x) == stale_name(item)]
        assert Counter(x.source for x in item.letters) == Counter(item.owners), (
            stale_name(item), [(x.source, x.reason) for x in item.letters])
        assert all(any(word in x.reason for word in item.reason.split("|"))
                   for x in item.letters), [x.reason for x in item.letters]
    assert len(letters) == expected_total, reasons

    # counted: the worker's metric per (topic, source), and Redis per source topic
    counted = Counter((x.topic.removeprefix(settings.topic_prefix), x.source) for x in letters)
    assert await asyncio.to_thread(scrape_dead_letter_metric, settings.web_port) == counted
    per_topic = Counter(x.topic.removeprefix(settings.topic_prefix) for x in letters)
    stored = await redis_client.hgetall(settings.redis_key("deadletter", "counts"))
    assert {k: int(v) for k, v in stored.items()} == dict(per_topic)

    # the views are those of the good events alone
    offline = replay_offline(good, settings, progress=False)
    assert offline.events == len(good) and not offline.dead_letters
    rut = csv_closes(replay_dir / "russell2000_rut.csv")
    index = await redis_client.hgetall(settings.redis_key("index", "RUT"))
    assert index["day"] == max(rut).isoformat()
    assert float(index["close"]) == rut[max(rut)] and float(index["ath"]) == max(rut.values())
    same(index, offline.index[-1],
         ["symbol", "day", "close", "ath", "ath_day", "pct_from_ath", "ytd_change"])
    regime = await redis_client.hgetall(settings.redis_key("regime", "RUT/SPX"))
    same(regime, offline.streaks[-1], ["day", "streak", "longest_since", "relative_return"])
    for pair in ("RUT~TOTAL", "RUT~BTC", "SPX~BTC"):
        view = await redis_client.hgetall(settings.redis_key("correlation", pair))
        latest = offline.latest_correlation[pair]
        assert view["event_time"] == latest["event_time"], pair
        same(view, latest, [f"corr_{w}d" for w in settings.signals.correlation_windows])
    for coin in ("BTC", "ETH"):
        view = await redis_client.hgetall(settings.redis_key("drawdown", coin))
        same(view, offline.drawdowns[coin], ["ath", "drawdown"])
    series = offline.longshort["binanceusdm:BTC/USDT:USDT:global_account"]
    view = await redis_client.hgetall(
        settings.redis_key("longshort", "binanceusdm:BTC/USDT:USDT:global_account"))
    t_ms, ratio, z = series.rows[-1]
    same(view, {"t_ms": t_ms, "ratio": ratio, "zscore": z,
                "history_n": series.latest["history_n"]},
         ["t_ms", "ratio", "zscore", "history_n"])
    view = await redis_client.hgetall(settings.redis_key("netflow", "binance:BTC"))
    t_ms, sums, imbalance = offline.netflows["binance:BTC"][-1]
    same(view, {"t_ms": t_ms, "imbalance": imbalance,
                **{f"netflow_{name}": value for name, value in sums.items()}},
         ["t_ms", "imbalance", *(f"netflow_{name}" for name in sums)])
    assert not await redis_client.exists(settings.redis_key("index", "NDX"))
