"""Correlation: rolling correlations of each pair's aligned daily log returns, their regime
bands and ``correlation_regime`` signals; the score's ``correlation`` component.

State: pair ("RUT~TOTAL") -> ``PairCorrelation.to_state()`` plus "view", the latest snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from foundation.config import SignalSettings
from schemas.records import SeriesPoint
from schemas.redis_layout import ViewUpdate
from streams.correlation import (
    CorrelationParams,
    CorrelationUpdate,
    PairCorrelation,
    correlation_signals,
)
from streams.views.score import component
from streams.views.step import Changes, Outputs

HOUR_MS = 3_600_000


@cache
def correlation_params(config: SignalSettings) -> CorrelationParams:
    return CorrelationParams(
        windows=config.correlation_windows,
        lookahead_ms=int(config.alignment_lookahead_hours * HOUR_MS),
        max_staleness_ms=int(config.alignment_max_staleness_hours * HOUR_MS),
        low=config.correlation_low,
        high=config.correlation_high,
        hysteresis=config.correlation_hysteresis,
        cooldown_ms=int(config.correlation_cooldown_days * 24 * HOUR_MS),
        levels=config.correlation_levels,
    )


def snapshot(update: CorrelationUpdate) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "pair": update.pair, "event_time": update.event_time,
        "anchor": update.anchor, "other": update.other,
    }
    for window in update.correlations:
        fields[f"corr_{window}d"] = update.correlations[window]
        fields[f"beta_{window}d"] = update.betas[window]
        fields[f"regime_{window}d"] = update.regimes[window]
        if window in update.level_correlations:
            fields[f"corr_levels_{window}d"] = update.level_correlations[window]
    return fields


def apply(state: Mapping[str, Any], point: SeriesPoint,
          config: SignalSettings) -> tuple[Changes, Outputs]:
    params = correlation_params(config)
    stored = state.get(point.pair)
    pair = PairCorrelation.from_state(point.pair, params, stored)
    updates = pair.add(point.role, point.t_ms, point.value)
    out = Outputs()
    score_pair, score_window = config.score_correlation_target
    for update in updates:
        out.views.append(ViewUpdate("correlation", update.pair, snapshot(update)))
        out.signals += correlation_signals(update, params)
        if update.pair == score_pair:
            out.routes.append(component("correlation", update.t_ms,
                                        update.correlations.get(score_window),
                                        {"pair": score_pair, "window_days": score_window}))
    shown = snapshot(updates[-1]) if updates else (stored or {}).get("view")
    return {point.pair: {**pair.to_state(), "view": shown}}, out


def views_of(state: Mapping[str, Any], key: str, config: SignalSettings) -> list[ViewUpdate]:
    value = state[key]
    return [ViewUpdate("correlation", key, value["view"])] if value.get("view") else []
