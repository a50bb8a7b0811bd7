"""Index regime (RUT against SPX): all-time-high breakouts, year-to-date, outperformance streak."""

from __future__ import annotations

from faust import StreamT

from agents.outputs import dead_letter, emit_signal, view
from altseason.errors import EventOrderError
from streams.app import app, settings
from streams.index_regime import IndexRegime
from streams.topics import regime_points_topic

config = settings.signals
#: "RUT/SPX" -> IndexRegime.to_state()
regime_state = app.Table("regime-state", default=dict)


@app.agent(regime_points_topic)
async def track_regime(stream: StreamT) -> None:
    async for event in stream.events():
        point = event.value
        regime = IndexRegime.from_state(
            config.regime_index, config.regime_benchmark, config.ath_breakout_min_gap_days,
            config.streak_min_days, config.ath_min_history_days, regime_state.get(point.pair),
        )
        try:
            result = regime.add(point.role, point.t_ms, point.value)
        except EventOrderError as exc:
            await dead_letter(event.message, point.dumps(), str(exc), "track_regime")
            continue
        regime_state[point.pair] = regime.to_state()
        if result.index_snapshot:
            await view.update("index", config.regime_index, result.index_snapshot)
        if result.streak_snapshot:
            await view.update("regime", point.pair, result.streak_snapshot)
        for signal in result.signals:
            await emit_signal(signal)
