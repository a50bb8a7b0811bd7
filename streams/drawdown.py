"""Each coin's drawdown from its all-time high, and how many altcoins are deep down (pure, no I/O).

A market where most altcoins sit 80 % or more below their record is washed out; ``share_below``
measures that over the altcoins' current drawdowns.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

from streams.order import check_newer


class Drawdown:
    """All-time high of one coin's price and the current price's drawdown from it."""

    def __init__(self) -> None:
        self.ath: float | None = None
        #: event time of the first price at the record
        self.ath_t_ms: int | None = None
        self.last_t_ms: int | None = None
        #: price / ath - 1 of the last price (0 at a record, -0.8 = 80 % below)
        self.drawdown: float | None = None

    def update(self, t_ms: int, price: float) -> float:
        """Apply a price; its drawdown ``price / ath - 1`` (0 at a new high).

        EventOrderError for a t_ms not after the last one, ValueError for a price that is not
        a positive finite number; the state is unchanged then.
        """
        check_newer("price", t_ms, self.last_t_ms)
        price = float(price)
        if not (math.isfinite(price) and price > 0):
            raise ValueError(f"price at t_ms={t_ms} must be positive and finite: {price!r}")
        self.last_t_ms = t_ms
        if self.ath is None or price > self.ath:
            self.ath, self.ath_t_ms = price, t_ms
        self.drawdown = price / self.ath - 1
        return self.drawdown

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state."""
        return {
            "ath": self.ath,
            "ath_t_ms": self.ath_t_ms,
            "last_t_ms": self.last_t_ms,
            "drawdown": self.drawdown,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Drawdown:
        dd = cls()
        dd.ath = float(state["ath"]) if state["ath"] is not None else None
        dd.ath_t_ms = int(state["ath_t_ms"]) if state["ath_t_ms"] is not None else None
        dd.last_t_ms = int(state["last_t_ms"]) if state["last_t_ms"] is not None else None
        dd.drawdown = float(state["drawdown"]) if state["drawdown"] is not None else None
        return dd


def share_below(
    drawdowns: Mapping[str, float],
    threshold: float = -0.8,
    exclude: Collection[str] = ("BTC", "ETH"),
) -> float | None:
    """Fraction of altcoins (symbols not in ``exclude``) with drawdown <= threshold.

    None when there is no altcoin; ValueError for a non-finite drawdown or threshold.
    """
    threshold = float(threshold)
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold!r}")
    n = below = 0
    for symbol, dd in drawdowns.items():
        if symbol in exclude:
            continue
        if not math.isfinite(dd):
            raise ValueError(f"drawdown of {symbol!r} must be finite, got {dd!r}")
        n += 1
        if dd <= threshold:
            below += 1
    return below / n if n else None
