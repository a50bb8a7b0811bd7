"""Rolling correlations per pair: table of pair state, Redis mirror, regime-change signals."""

from __future__ import annotations

from faust import StreamT

from agents.outputs import dead_letter, emit_signal, view
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
)

#: pair ("RUT~TOTAL") -> PairCorrelation.to_state()
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
        correlation_state[point.pair] = pair.to_state()
        for update in updates:
            await view.update("correlation", update.pair, snapshot(update))
            for signal in correlation_signals(update, params):
                await emit_signal(signal)
