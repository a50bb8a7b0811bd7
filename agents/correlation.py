"""Rolling correlations per pair: table of pair state, Redis mirror, regime-change signals."""

from __future__ import annotations

from faust import StreamT

from agents.outputs import dead_letter, emit_signal, send_component, view
from altseason.errors import EventOrderError
from streams.app import app, settings
from streams.correlation import (
    CorrelationParams,
    CorrelationUpdate,
    PairCorrelation,
    correlation_signals,
)
from streams.topics import correlation_points_topic

HOUR_MS = 3_600_000
params = CorrelationParams(
    windows=settings.signals.correlation_windows,
    lookahead_ms=int(settings.signals.alignment_lookahead_hours * HOUR_MS),
    max_staleness_ms=int(settings.signals.alignment_max_staleness_hours * HOUR_MS),
    low=settings.signals.correlation_low,
    high=settings.signals.correlation_high,
    hysteresis=settings.signals.correlation_hysteresis,
    cooldown_ms=int(settings.signals.correlation_cooldown_days * 24 * HOUR_MS),
    levels=settings.signals.correlation_levels,
)
SCORE_PAIR, SCORE_WINDOW = settings.signals.score_correlation_target

#: pair ("RUT~TOTAL") -> PairCorrelation.to_state() and "view", the latest snapshot
correlation_state = app.Table("correlation-state", default=dict)


def snapshot(update: CorrelationUpdate) -> dict[str, object]:
    fields: dict[str, object] = {
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


@app.agent(correlation_points_topic)
async def correlate(stream: StreamT) -> None:
    async for event in stream.events():
        point = event.value
        pair = PairCorrelation.from_state(point.pair, params, correlation_state.get(point.pair))
        try:
            updates = pair.add(point.role, point.t_ms, point.value)
        except EventOrderError as exc:
            await dead_letter(event.message, point.dumps(), str(exc), "correlate")
            continue
        shown = snapshot(updates[-1]) if updates else correlation_state.get(
            point.pair, {}).get("view")
        for update in updates:
            await view.update("correlation", update.pair, snapshot(update))
            for signal in correlation_signals(update, params):
                await emit_signal(signal)
            r = update.correlations.get(SCORE_WINDOW)
            if update.pair == SCORE_PAIR and r is not None:
                await send_component("correlation", update.t_ms, r,
                                     {"pair": SCORE_PAIR, "window_days": SCORE_WINDOW})
        correlation_state[point.pair] = {**pair.to_state(), "view": shown}  # after the signals


async def rebuild_correlation_views() -> None:
    for pair, state in list(correlation_state.items()):
        if state.get("view"):
            await view.update("correlation", pair, state["view"], only_if_missing=True)
