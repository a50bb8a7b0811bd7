"""History for the index vs crypto market cap chart, from the bundled replay files.

Redis holds only each view's latest state, and the worker publishes one point per close, so
the past of the chart cannot come from Redis. The simplest honest source is the recorded data
the replay sends (``data/replay/``, read with the replay's own readers, so the points are the
very events the pipeline sees): the index closes and the CoinGecko total market cap
(``TOTAL``), at their event times. It is recorded data, not live: the response says so, and
it is cut at the day the Redis views have reached (``index:<INDEX>``), so during a replay the
chart never shows what the pipeline has not processed yet. The page appends newer points from
the ``index`` and ``correlation`` channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

from producers.replay import NEW_YORK, REPLAY_FILES
from schemas.records import IndexQuote, MarketCap

#: the directory the CLI replays by default (relative to the working directory)
DEFAULT_REPLAY_DIR = Path("data/replay")
CRYPTO_SERIES = "TOTAL"
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Series:
    """(event time in ms, value) points of one series, oldest first."""

    name: str
    points: list[tuple[int, float]]

    def window(self, since_ms: int, until_ms: int) -> list[tuple[int, float]]:
        return [p for p in self.points if since_ms <= p[0] <= until_ms]


def read_series(data_dir: Path, index: str) -> dict[str, Series]:
    """The index closes and the ``TOTAL`` market cap of the replay files found in data_dir.

    Each bundled file holds one series, so a file is left at its first event of another one.
    """
    points: dict[str, list[tuple[int, float]]] = {index: [], CRYPTO_SERIES: []}
    for name, reader in REPLAY_FILES.items():
        path = data_dir / name
        if not path.is_file():
            continue
        for event in reader(path, None, None):
            record = event.record
            if isinstance(record, IndexQuote) and record.symbol == index:
                points[index].append((event.t_ms, record.price))
            elif isinstance(record, MarketCap) and record.asset == CRYPTO_SERIES:
                points[CRYPTO_SERIES].append((event.t_ms, record.market_cap))
            else:
                break
    return {name: Series(name, sorted(values)) for name, values in points.items()}


def index_close_ms(day: date, lookahead_hours: float = 0.0) -> int:
    """Event time of the index close of a day (16:00 New York), plus a lookahead."""
    close = datetime.combine(day, dtime(16, 0), NEW_YORK).astimezone(UTC)
    return int((close + timedelta(hours=lookahead_hours)).timestamp() * 1000)


def history_window(series: dict[str, Series], years: float,
                   until_ms: int | None) -> tuple[int, int]:
    """(since, until) in ms: ``years`` back from until_ms, or from the newest point."""
    if until_ms is None:
        until_ms = max((s.points[-1][0] for s in series.values() if s.points), default=0)
    return until_ms - int(years * 365.25 * DAY_MS), until_ms
