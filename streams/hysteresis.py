"""Ordered bands with hysteresis, and per-key cooldowns on event time (pure, no I/O).

A score or correlation hovering at a threshold would flip its band, and fire a signal, on every
update. ``band`` keeps the current band until the value is clearly past its level, and
``Cooldown`` holds back a repeat of the same signal for a while. Both work on event time only,
so a replay gives the same bands and the same signals as the live run did.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def check_levels(levels: Sequence[tuple[str, float]]) -> None:
    """ValueError unless ``levels`` is a non-empty list of (unique name, level) with strictly
    ascending levels (the first may be ``-inf``)."""
    if not levels:
        raise ValueError("levels must name at least one band")
    names = [name for name, _ in levels]
    if len(set(names)) != len(names):
        raise ValueError(f"band names must be unique, got {names}")
    values = [float(level) for _, level in levels]
    if any(math.isnan(v) for v in values):
        raise ValueError(f"band levels must be numbers, got {values}")
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise ValueError(f"band levels must be strictly ascending, got {values}")


def band(
    value: float, previous: str | None, levels: Sequence[tuple[str, float]], hysteresis: float
) -> str:
    """The band of ``value`` among ascending ``levels``, e.g.
    ``(("cold", -inf), ("warming", 50.0), ("altseason", 75.0))``.

    Without a previous band, a value is in the highest band whose level it reaches (a value
    below the first level is in the first band). A higher band is entered only at its level;
    the ``previous`` band is kept while the value stays at or above its level minus
    ``hysteresis``; below that the value's own band applies, however many bands down.
    ValueError for a NaN value, a negative or non-finite hysteresis, an unknown previous band
    or invalid levels.
    """
    check_levels(levels)
    value = float(value)
    hysteresis = float(hysteresis)
    if math.isnan(value):
        raise ValueError("cannot classify a NaN value into a band")
    if not (math.isfinite(hysteresis) and hysteresis >= 0):
        raise ValueError(f"hysteresis must be finite and >= 0, got {hysteresis!r}")
    names = [name for name, _ in levels]
    reached = 0
    for i, (_, level) in enumerate(levels):
        if value >= level:
            reached = i
    if previous is not None:
        if previous not in names:
            raise ValueError(f"previous band {previous!r} is not one of {names}")
        kept = names.index(previous)
        if reached < kept and value >= levels[kept][1] - hysteresis:
            return previous
    return names[reached]


class Cooldown:
    """Per-key time of the last firing, so the same signal repeats at most every
    ``cooldown_ms`` of event time (never wall-clock time: replays stay deterministic)."""

    def __init__(self, cooldown_ms: int) -> None:
        if isinstance(cooldown_ms, bool) or not isinstance(cooldown_ms, int) or cooldown_ms < 0:
            raise ValueError(f"cooldown_ms must be an int >= 0, got {cooldown_ms!r}")
        self._cooldown_ms = cooldown_ms
        self._last: dict[str, int] = {}

    @property
    def cooldown_ms(self) -> int:
        return self._cooldown_ms

    def last_fired(self, key: str) -> int | None:
        """Event time of the last firing of ``key``, None if it never fired."""
        return self._last.get(key)

    def ready(self, key: str, t_ms: int) -> bool:
        """True when ``key`` never fired or fired at least ``cooldown_ms`` before ``t_ms``.

        An event older than the last firing is never ready.
        """
        last = self._last.get(key)
        return last is None or t_ms - last >= self._cooldown_ms

    def fired(self, key: str, t_ms: int) -> None:
        """Record a firing of ``key`` at ``t_ms``; an older time never moves the last one back."""
        last = self._last.get(key)
        self._last[key] = t_ms if last is None else max(last, t_ms)

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state."""
        return {"cooldown_ms": self._cooldown_ms, "last_fired": dict(self._last)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Cooldown:
        cd = cls(int(state["cooldown_ms"]))
        cd._last = {str(key): int(t) for key, t in state["last_fired"].items()}
        return cd
