"""The replay producer on the real broker: every row arrives once, valid, in event-time order."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from harness import Namespace, read_topic

from producers.replay import load_replay, replay
from schemas.decode import decode_event, parse_utc
from schemas.records import CryptoTick, IndexQuote, MarketCap

pytestmark = pytest.mark.integration

SINCE, UNTIL = date(2025, 1, 1), date(2025, 3, 31)


def rows_between(path: Path, since: date, until: date) -> int:
    with path.open() as fh:
        return sum(since <= date.fromisoformat(r["Date"]) <= until for r in csv.DictReader(fh))


async def test_replay_sends_every_row_once_in_order(namespace: Namespace,
                                                    replay_dir: Path) -> None:
    settings = namespace.settings
    events = load_replay(replay_dir, SINCE, UNTIL)
    assert [e.t_ms for e in events] == sorted(e.t_ms for e in events)
    assert await replay(settings, events, progress=False) == len(events)

    quotes = [decode_event(IndexQuote, raw)
              for raw in await read_topic(settings, settings.topic("index-quotes"))]
    ticks = [decode_event(CryptoTick, raw)
             for raw in await read_topic(settings, settings.topic("ticks"))]
    caps = [decode_event(MarketCap, raw)
            for raw in await read_topic(settings, settings.topic("market-caps"))]
    rut = [q for q in quotes if q.symbol == "RUT"]
    assert len(rut) == rows_between(replay_dir / "russell2000_rut.csv", SINCE, UNTIL)
    assert len([q for q in quotes if q.symbol == "SPX"]) == rows_between(
        replay_dir / "sp500_gspc.csv", SINCE, UNTIL)
    assert len([t for t in ticks if t.symbol == "ETH/USD"]) == rows_between(
        replay_dir / "eth_usd.csv", SINCE, UNTIL)
    ticks = [t for t in ticks if t.symbol == "BTC/USD"]
    assert len(ticks) == rows_between(replay_dir / "btc_usd.csv", SINCE, UNTIL) == 90
    assert len(caps) == 90 and all(c.asset == "TOTAL" for c in caps)
    # one key per series, so each series is on one partition, in event-time order
    times = [parse_utc(q.event_time) for q in rut]
    assert times == sorted(times) and len(set(times)) == len(times)
    # RUT closes are stamped at 16:00 New York time, BTC closes at the end of the UTC day
    assert rut[0].event_time == "2025-01-02T21:00:00.000Z" and rut[0].price == pytest.approx(
        2231.669921875)  # the 2025-01-02 close in russell2000_rut.csv
    assert ticks[0].event_time == "2025-01-01T23:59:59.999Z" and ticks[0].trade_id == "2025-01-01"


def test_run_command_prints_signals_and_a_summary(namespace: Namespace,
                                                  replay_dir: Path) -> None:
    """``altseason run`` as users call it (what ``make run`` does), on a short slice."""
    result = subprocess.run(
        [sys.executable, "-m", "altseason", "run", "--replay", str(replay_dir),
         "--from", "2025-10-01", "--until-done", "--no-progress", "--timeout", "180"],
        env={**os.environ, **namespace.env,
             "ALTSEASON_DATADIR": str(namespace.workdir / "worker-data")},
        capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    port = namespace.settings.dashboard_port
    assert f"dashboard: http://127.0.0.1:{port}/ (Redis {namespace.settings.redis_prefix}* views)" \
        in lines
    streaks = [line for line in lines if "outperformance_streak" in line]
    assert any("RUT has beaten SPX for 14 trading days in a row (2026-01-22)" in line
               for line in streaks), result.stdout
    summary = next(line for line in lines if line.startswith("replayed "))
    printed = [line for line in lines if line[:4].isdigit()]

    # `signals tail --from-beginning` prints the same signals again, read from the topic
    tail = subprocess.Popen(
        [sys.executable, "-m", "altseason", "signals", "tail", "--from-beginning"],
        env={**os.environ, **namespace.env}, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert tail.stdout is not None
        tailed = [tail.stdout.readline().rstrip("\n") for _ in printed]
    finally:
        tail.terminate()
        tail.wait(10)
    assert sorted(tailed) == sorted(printed)
    assert f"; {len(printed)} signals (" in summary
