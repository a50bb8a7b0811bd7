"""As-of alignment of two series on different clocks (pure, no I/O).

The *anchor* series (the sparser calendar, e.g. RUT daily closes) is paired with the *other*
series' (e.g. BTC) latest value at or before each anchor time. The two series come from
different topics, so how their events interleave is arbitrary; each series on its own arrives
in event-time order. An anchor point at ``t`` is therefore final only once the other series has
reached a time ``>= t``: every other observation ``<= t`` is known then. Until that it waits in
``pending``. The output is thus a function of the two sequences alone, whatever the
interleaving (as long as fewer than ``max_pending`` anchors wait at once).
"""

from __future__ import annotations

import bisect
import math
import operator
from collections import deque
from typing import Any, NamedTuple

from streams.order import check_newer


class AlignedPoint(NamedTuple):
    """An anchor observation with the other series' value as of its time."""

    t_ms: int
    anchor: float
    other: float
    #: time of the other series' observation used (<= t_ms)
    other_t_ms: int


class AsOfAligner:
    """Pair anchor observations with the other series' last value at or before them.

    An anchor whose as-of value is more than ``max_staleness_ms`` older than it (or missing) is
    skipped and counted in ``skipped``. At most ``max_pending`` anchors wait for the other
    series; beyond that the oldest is dropped and counted in ``dropped``. The other series'
    history is trimmed to what a future anchor can still use; before the first anchor nothing
    can be trimmed, so it is capped at ``max_history`` (oldest dropped, counted in
    ``history_dropped``).
    """

    def __init__(
        self, max_staleness_ms: int, max_pending: int = 10_000, max_history: int = 100_000
    ) -> None:
        if max_staleness_ms < 0:
            raise ValueError(f"max_staleness_ms must be >= 0, got {max_staleness_ms}")
        if max_pending < 1 or max_history < 1:
            raise ValueError(
                f"max_pending and max_history must be >= 1, got {max_pending}, {max_history}"
            )
        self.max_staleness_ms = int(max_staleness_ms)
        self.max_pending = int(max_pending)
        self.max_history = int(max_history)
        self.last_anchor_t: int | None = None
        self.last_other_t: int | None = None
        #: the other series' observations (t_ms, value), in time order
        self._other_t: deque[int] = deque()
        self._other_v: deque[float] = deque()
        #: anchors waiting for the other series to reach their time, in time order
        self._pending: deque[tuple[int, float]] = deque()
        self.skipped = 0
        self.dropped = 0
        self.history_dropped = 0

    @property
    def pending(self) -> list[tuple[int, float]]:
        """Anchor observations (t_ms, value) not final yet."""
        return list(self._pending)

    @property
    def history_size(self) -> int:
        return len(self._other_t)

    def add_anchor(self, t_ms: int, value: float) -> list[AlignedPoint]:
        """Apply an anchor observation; the aligned point if it is final already, else []."""
        t_ms, value = _check("anchor", t_ms, value, self.last_anchor_t)
        self.last_anchor_t = t_ms
        out: list[AlignedPoint] = []
        if self.last_other_t is not None and self.last_other_t >= t_ms:
            self._resolve(t_ms, value, out)
        else:
            self._pending.append((t_ms, value))
            if len(self._pending) > self.max_pending:
                self._pending.popleft()
                self.dropped += 1
        self._trim()
        return out

    def add_other(self, t_ms: int, value: float) -> list[AlignedPoint]:
        """Apply an observation of the other series; the anchor points it makes final."""
        t_ms, value = _check("other", t_ms, value, self.last_other_t)
        self.last_other_t = t_ms
        self._other_t.append(t_ms)
        self._other_v.append(value)
        out: list[AlignedPoint] = []
        while self._pending and self._pending[0][0] <= t_ms:
            anchor_t, anchor_value = self._pending.popleft()
            self._resolve(anchor_t, anchor_value, out)
        self._trim()
        return out

    def _resolve(self, t_ms: int, value: float, out: list[AlignedPoint]) -> None:
        i = bisect.bisect_right(self._other_t, t_ms) - 1
        if i < 0 or t_ms - self._other_t[i] > self.max_staleness_ms:
            self.skipped += 1
            return
        out.append(AlignedPoint(t_ms, value, self._other_v[i], self._other_t[i]))

    def _trim(self) -> None:
        """Drop other observations no future anchor can use (older than the newest one at or
        before the oldest anchor still to come)."""
        if self._pending:
            horizon: int | None = self._pending[0][0]
        else:
            horizon = self.last_anchor_t
        if horizon is not None:
            while len(self._other_t) >= 2 and self._other_t[1] <= horizon:
                self._other_t.popleft()
                self._other_v.popleft()
        while len(self._other_t) > self.max_history:
            self._other_t.popleft()
            self._other_v.popleft()
            self.history_dropped += 1

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state."""
        return {
            "max_staleness_ms": self.max_staleness_ms,
            "max_pending": self.max_pending,
            "max_history": self.max_history,
            "last_anchor_t": self.last_anchor_t,
            "last_other_t": self.last_other_t,
            # columns, not pairs: a view writes this on every event, and a long pending list
            # (an anchor whose other series has not started) was most of a replay's time
            "other_t": list(self._other_t),
            "other_v": list(self._other_v),
            "pending_t": [t for t, _ in self._pending],
            "pending_v": [v for _, v in self._pending],
            "skipped": self.skipped,
            "dropped": self.dropped,
            "history_dropped": self.history_dropped,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> AsOfAligner:
        al = cls(
            int(state["max_staleness_ms"]),
            int(state["max_pending"]),
            int(state.get("max_history", 100_000)),
        )
        last_anchor = state["last_anchor_t"]
        last_other = state["last_other_t"]
        al.last_anchor_t = None if last_anchor is None else int(last_anchor)
        al.last_other_t = None if last_other is None else int(last_other)
        if "other_t" in state:
            al._other_t = deque(state["other_t"])
            al._other_v = deque(state["other_v"])
            al._pending = deque(zip(state["pending_t"], state["pending_v"], strict=True))
        else:  # written before the columns
            al._other_t = deque(int(t) for t, _ in state["other"])
            al._other_v = deque(float(v) for _, v in state["other"])
            al._pending = deque((int(t), float(v)) for t, v in state["pending"])
        al.skipped = int(state["skipped"])
        al.dropped = int(state["dropped"])
        al.history_dropped = int(state.get("history_dropped", 0))
        return al


def _check(role: str, t_ms: int, value: float, last_t: int | None) -> tuple[int, float]:
    """Validate one event before any state changes."""
    if isinstance(t_ms, bool):
        raise ValueError(f"{role} event time must be an int of milliseconds, got {t_ms!r}")
    try:
        t_ms = operator.index(t_ms)
    except TypeError:
        raise ValueError(
            f"{role} event time must be an int of milliseconds, got {t_ms!r}"
        ) from None
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{role} event at t_ms={t_ms} has a non-finite value {value!r}")
    check_newer(f"{role} event", t_ms, last_t)
    return t_ms, value
