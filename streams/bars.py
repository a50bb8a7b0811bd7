"""OHLCV bars of one symbol's trades, closed by event time (pure, no I/O).

Windows are tumbling ranges [start, end) aligned to the epoch (as Faust's TumblingWindow), but
bars close on *event* time, not wall-clock time: a bar closes once a trade of the same symbol
at or after ``end + allowed_lateness`` arrives. Until then a late trade still lands in its bar.
A trade whose bar has already closed is late: it is rejected (the agent dead-letters it with
the reason) rather than re-opening a bar that consumers have already seen. A trade that was
already applied is a duplicate, rejected too: delivery is at least once, so after a crash or a
rebalance the trades since the last commit come again, and a trade of a bar still open would
otherwise count twice. Only its position in the input (partition, offset) tells a repeat from
a new trade at the same time and price, so the builder keeps the newest position applied.

Faust's windowed tables expire windows by wall-clock time (``time.time()`` in faust-streaming
0.15), which would close every bar of a replay of past data at once; that is why the bars are
kept in a plain table here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from foundation.errors import EventOrderError

INTERVAL_NAMES = {60: "1m", 300: "5m", 900: "15m", 3600: "1h", 14400: "4h", 86400: "1d"}


def interval_name(seconds: int) -> str:
    return INTERVAL_NAMES.get(seconds, f"{seconds}s")


@dataclass
class OHLCV:
    """One bar: [start_ms, end_ms) of one interval."""

    interval_s: int
    start_ms: int
    end_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int

    def add(self, price: float, amount: float) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.volume += amount
        self.trades += 1


class BarBuilder:
    """Open bars of one symbol for each interval, the end of the last closed bar, and the
    input position of the newest trade applied."""

    def __init__(self, intervals: tuple[int, ...], allowed_lateness_ms: int) -> None:
        self.intervals = intervals
        self.allowed_lateness_ms = allowed_lateness_ms
        #: interval -> open bars by start (at most two: the current one and one still late-open)
        self.open: dict[int, dict[int, OHLCV]] = {i: {} for i in intervals}
        #: interval -> end of the newest bar already closed
        self.closed_until: dict[int, int] = {i: 0 for i in intervals}
        #: input partition -> offset of the newest trade applied from it
        self.applied: dict[int, int] = {}

    def add(self, t_ms: int, price: float, amount: float,
            position: tuple[int, int] | None = None) -> list[OHLCV]:
        """Apply one trade; the bars it closes (oldest first).

        ``position``: the trade's (partition, offset) in its input topic. EventOrderError
        (nothing changed) when a trade at or before that position was already applied (a
        repeat), or when the trade's bar of any interval has closed.
        """
        if not (math.isfinite(price) and price > 0 and math.isfinite(amount) and amount >= 0):
            raise ValueError(f"trade at t_ms={t_ms}: price {price!r} / amount {amount!r}")
        if position is not None and position[1] <= self.applied.get(position[0], -1):
            raise EventOrderError(
                f"trade at t_ms={t_ms} is a duplicate: offset {position[1]} of partition "
                f"{position[0]} is not after the newest applied, {self.applied[position[0]]}"
            )
        for interval in self.intervals:
            if t_ms < self.closed_until[interval]:
                raise EventOrderError(
                    f"trade at t_ms={t_ms} is late: its {interval_name(interval)} bar closed at "
                    f"t_ms={self.closed_until[interval]} (allowed lateness "
                    f"{self.allowed_lateness_ms} ms)"
                )
        closed: list[OHLCV] = []
        for interval in self.intervals:
            bars = self.open[interval]
            for start in sorted(bars):
                if bars[start].end_ms + self.allowed_lateness_ms <= t_ms:
                    done = bars.pop(start)
                    self.closed_until[interval] = done.end_ms
                    closed.append(done)
            start_ms = t_ms - t_ms % (interval * 1000)
            if start_ms in bars:
                bars[start_ms].add(price, amount)
            else:
                bars[start_ms] = OHLCV(interval, start_ms, start_ms + interval * 1000,
                                       price, price, price, price, amount, 1)
        if position is not None:
            self.applied[position[0]] = position[1]
        return sorted(closed, key=lambda b: (b.end_ms, b.interval_s))

    def current(self, interval: int) -> OHLCV | None:
        """The newest open bar of an interval."""
        bars = self.open[interval]
        return bars[max(bars)] if bars else None

    def to_state(self) -> dict[str, Any]:
        return {
            "open": {str(i): [asdict(b) for b in bars.values()] for i, bars in self.open.items()},
            "closed_until": {str(i): t for i, t in self.closed_until.items()},
            "applied": {str(p): offset for p, offset in self.applied.items()},
        }

    @classmethod
    def from_state(cls, intervals: tuple[int, ...], allowed_lateness_ms: int,
                   state: dict[str, Any] | None) -> BarBuilder:
        builder = cls(intervals, allowed_lateness_ms)
        for interval in intervals if state else ():
            assert state is not None
            bars = [OHLCV(**b) for b in state["open"].get(str(interval), [])]
            builder.open[interval] = {b.start_ms: b for b in bars}
            builder.closed_until[interval] = int(state["closed_until"].get(str(interval), 0))
        if state:  # states saved before positions were kept have none
            builder.applied = {int(p): int(o) for p, o in state.get("applied", {}).items()}
        return builder
