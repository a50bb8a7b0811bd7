"""The composite altseason score, 0-100, from six market components (pure, no I/O).

Each component's latest raw value is mapped linearly to 0..1 (clipped), and the score is 100
times their weighted mean. Components arrive from different agents at different rates, so a
component never seen, or whose latest value is more than ``max_age_ms`` away from the time of
the update being applied (before or after it: in a fast replay one agent may run ahead of
another in event time), is left out and the weights of the others are renormalised: a dead
feed is reported as missing instead of dragging the score towards 0. Every update says what
each component contributed, in score points, so a signal can show why the score moved.

| component | raw value | 0 at | 1 at |
|---|---|---|---|
| ``index_ath`` | Russell 2000 ``pct_from_ath`` (<= 0) | ``-ath_range`` | 0 (the ATH) |
| ``relative_strength`` | RUT minus SPX return over a window | ``-rs_range`` | ``+rs_range`` |
| ``correlation`` | rolling correlation RUT vs total crypto cap | 0 (or below) | ``corr_full`` |
| ``long_bias`` | share of altcoins with long/short ratio > 1 | 0 | 1 |
| ``accumulation`` | share of tracked tokens in net accumulation | 0 | 1 |
| ``breadth`` | share of altcoins more than 80 % below their ATH | 1 | 0 |
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streams.hysteresis import band, check_levels
from streams.netflow import DAY_MS
from streams.order import check_newer

COMPONENTS = (
    "index_ath", "relative_strength", "correlation", "long_bias", "accumulation", "breadth"
)

DEFAULT_WEIGHTS: dict[str, float] = {
    "index_ath": 0.25,
    "relative_strength": 0.20,
    "correlation": 0.15,
    "long_bias": 0.15,
    "accumulation": 0.15,
    "breadth": 0.10,
}

#: score bands, ascending: a band is entered at its level and left below level - hysteresis
BANDS: tuple[tuple[str, float], ...] = (
    ("cold", -math.inf), ("warming", 50.0), ("altseason", 75.0)
)


@dataclass(frozen=True)
class ScoreUpdate:
    """The score after one component update."""

    #: the time the score is as of: the event time of the component update applied
    t_ms: int
    #: 0..100: the exactly rounded sum of the contributions (capped at 100 against rounding)
    score: float
    band: str
    #: band before this update (None before the first score)
    previous_band: str | None
    #: the band differs from a previous one (False for the first score)
    changed: bool
    #: per component used, in COMPONENTS order: raw, component (0..1), weight,
    #: normalized_weight, contribution (score points), age_ms
    contributions: dict[str, dict[str, float]]
    #: weighted components left out: never seen or older than max_age_ms
    missing: list[str]


def _clip01(value: float) -> float:
    return min(1.0, max(0.0, value))


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return value


class AltseasonScore:
    """The weighted altseason score over the latest value of each component.

    ``weights`` override ``DEFAULT_WEIGHTS`` per component (0 disables one); they need not sum
    to 1. No score until ``min_components`` weighted components are fresh. ``levels`` are the
    score's bands, as for ``streams.hysteresis.band``.
    """

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        *,
        ath_range: float = 0.20,
        rs_range: float = 0.05,
        corr_full: float = 0.6,
        max_age_ms: int = 7 * DAY_MS,
        min_components: int = 2,
        hysteresis: float = 5.0,
        levels: Sequence[tuple[str, float]] = BANDS,
    ) -> None:
        merged = dict(DEFAULT_WEIGHTS)
        for name, weight in (weights or {}).items():
            if name not in COMPONENTS:
                raise ValueError(
                    f"unknown score component {name!r} in weights; known: {', '.join(COMPONENTS)}"
                )
            weight = float(weight)
            if not (math.isfinite(weight) and weight >= 0):
                raise ValueError(f"weight of {name!r} must be finite and >= 0, got {weight!r}")
            merged[name] = weight
        if not sum(merged.values()) > 0:
            raise ValueError("score weights are all 0: give at least one component a weight > 0")
        self._weights = merged
        self._ath_range = _positive("ath_range", ath_range)
        self._rs_range = _positive("rs_range", rs_range)
        self._corr_full = _positive("corr_full", corr_full)
        if isinstance(max_age_ms, bool) or not isinstance(max_age_ms, int) or max_age_ms < 0:
            raise ValueError(f"max_age_ms must be an int >= 0, got {max_age_ms!r}")
        self._max_age_ms = max_age_ms
        enabled = sum(1 for w in merged.values() if w > 0)
        if (
            isinstance(min_components, bool)
            or not isinstance(min_components, int)
            or not 1 <= min_components <= enabled
        ):
            raise ValueError(
                f"min_components must be an int in 1..{enabled} (the weighted components), "
                f"got {min_components!r}"
            )
        self._min_components = min_components
        hysteresis = float(hysteresis)
        if not (math.isfinite(hysteresis) and hysteresis >= 0):
            raise ValueError(f"hysteresis must be finite and >= 0, got {hysteresis!r}")
        self._hysteresis = hysteresis
        check_levels(levels)
        self._levels = tuple((str(name), float(level)) for name, level in levels)
        #: component -> (t_ms, raw) of its latest update
        self._values: dict[str, tuple[int, float]] = {}
        self._newest_t_ms: int | None = None
        self._band: str | None = None

    @property
    def weights(self) -> dict[str, float]:
        """Effective weight of each component (not normalised)."""
        return dict(self._weights)

    @property
    def band(self) -> str | None:
        """Band of the last score; None before the first one."""
        return self._band

    @property
    def newest_t_ms(self) -> int | None:
        return self._newest_t_ms

    def component_value(self, component: str, raw: float) -> float:
        """``raw`` mapped to 0..1 (clipped) for ``component``."""
        raw = float(raw)
        if component == "index_ath":
            return _clip01(1.0 + raw / self._ath_range)
        if component == "relative_strength":
            return _clip01((raw + self._rs_range) / (2.0 * self._rs_range))
        if component == "correlation":
            return _clip01(raw / self._corr_full)
        if component in ("long_bias", "accumulation"):
            return _clip01(raw)
        if component == "breadth":
            return _clip01(1.0 - raw)
        raise ValueError(f"unknown score component {component!r}; known: {', '.join(COMPONENTS)}")

    def update(self, component: str, t_ms: int, raw: float) -> ScoreUpdate | None:
        """Apply a component's new raw value; the score, or None while too few are fresh.

        The same component may be updated again at the same t_ms (the newer value wins).
        ValueError for an unknown component, a t_ms that is not an int or a non-finite raw
        value; EventOrderError for a t_ms older than the component's last one. The state is
        unchanged then.
        """
        if component not in COMPONENTS:
            raise ValueError(
                f"unknown score component {component!r}; known: {', '.join(COMPONENTS)}"
            )
        if isinstance(t_ms, bool):
            raise ValueError(f"t_ms of {component!r} must be an int of ms, got {t_ms!r}")
        try:
            t_ms = operator.index(t_ms)
        except TypeError:
            raise ValueError(f"t_ms of {component!r} must be an int of ms, got {t_ms!r}") from None
        raw = float(raw)
        if not math.isfinite(raw):
            raise ValueError(f"raw value of {component!r} at t_ms={t_ms} must be finite: {raw!r}")
        last = self._values.get(component)
        check_newer(component, t_ms, last[0] if last is not None else None, allow_equal=True)
        self._values[component] = (t_ms, raw)
        if self._newest_t_ms is None or t_ms > self._newest_t_ms:
            self._newest_t_ms = t_ms
        return self._score(t_ms)

    def _score(self, now: int) -> ScoreUpdate | None:
        """The score as of ``now``, the time of the update being applied.

        Components come from agents that run at their own pace (in a fast replay one may be
        far ahead of another in event time), so freshness is judged against the updated
        component's own time, in both directions: a value more than ``max_age_ms`` before or
        after it is left out.
        """
        fresh: list[str] = []
        missing: list[str] = []
        for name in COMPONENTS:
            if self._weights[name] <= 0:
                continue
            seen = self._values.get(name)
            if seen is not None and abs(now - seen[0]) <= self._max_age_ms:
                fresh.append(name)
            else:
                missing.append(name)
        if len(fresh) < self._min_components:
            return None
        total = math.fsum(self._weights[name] for name in fresh)
        contributions: dict[str, dict[str, float]] = {}
        for name in fresh:
            t_ms, raw = self._values[name]
            value = self.component_value(name, raw)
            share = self._weights[name] / total
            contributions[name] = {
                "raw": raw,
                "component": value,
                "weight": self._weights[name],
                "normalized_weight": share,
                "contribution": 100.0 * share * value,
                "age_ms": now - t_ms,
            }
        # the exactly rounded sum, so the contributions add up to the score; only rounding
        # can take it past 100
        score = min(100.0, math.fsum(c["contribution"] for c in contributions.values()))
        previous = self._band
        self._band = band(score, previous, self._levels, self._hysteresis)
        return ScoreUpdate(
            t_ms=now,
            score=score,
            band=self._band,
            previous_band=previous,
            changed=previous is not None and self._band != previous,
            contributions=contributions,
            missing=missing,
        )

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state, settings included; ``from_state`` continues identically."""
        return {
            "weights": dict(self._weights),
            "ath_range": self._ath_range,
            "rs_range": self._rs_range,
            "corr_full": self._corr_full,
            "max_age_ms": self._max_age_ms,
            "min_components": self._min_components,
            "hysteresis": self._hysteresis,
            # JSON has no -inf: the open-ended lowest level is stored as None
            "levels": [[name, level if math.isfinite(level) else None]
                       for name, level in self._levels],
            "values": {name: [t, raw] for name, (t, raw) in self._values.items()},
            "newest_t_ms": self._newest_t_ms,
            "band": self._band,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> AltseasonScore:
        sc = cls(
            {str(k): float(v) for k, v in state["weights"].items()},
            ath_range=float(state["ath_range"]),
            rs_range=float(state["rs_range"]),
            corr_full=float(state["corr_full"]),
            max_age_ms=int(state["max_age_ms"]),
            min_components=int(state["min_components"]),
            hysteresis=float(state["hysteresis"]),
            levels=[(str(n), -math.inf if v is None else float(v))
                    for n, v in state.get("levels", BANDS)],
        )
        for name, (t, raw) in state["values"].items():
            if name not in COMPONENTS:
                raise ValueError(f"score state has an unknown component {name!r}")
            sc._values[name] = (int(t), float(raw))
        newest = state["newest_t_ms"]
        sc._newest_t_ms = int(newest) if newest is not None else None
        previous = state["band"]
        if previous is not None and previous not in (name for name, _ in sc._levels):
            raise ValueError(f"score state has an unknown band {previous!r}")
        sc._band = previous
        return sc
