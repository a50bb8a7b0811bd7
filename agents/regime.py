"""Index regime (RUT against SPX): all-time-high breakouts, year-to-date, outperformance streak."""

from __future__ import annotations

from faust import StreamT

from agents.outputs import dead_letter, emit_signal, send_component, view
from altseason.errors import EventOrderError
from streams.app import app, settings
from streams.index_regime import IndexRegime, RiskOnParams
from streams.topics import regime_points_topic

config = settings.signals
#: "RUT/SPX" -> IndexRegime.to_state()
regime_state = app.Table("regime-state", default=dict)
#: "index:RUT" / "regime:RUT/SPX" -> the latest snapshot, to rebuild Redis after a flush
regime_views = app.Table("regime-views", default=dict)
risk_on = RiskOnParams(config.risk_on_max_pct_from_ath, config.relative_strength_days,
                       config.risk_on_cooldown_days)


def load(pair: str) -> IndexRegime:
    return IndexRegime.from_state(
        config.regime_index, config.regime_benchmark, config.ath_breakout_min_gap_days,
        config.streak_min_days, config.ath_min_history_days, regime_state.get(pair), risk_on,
    )


@app.agent(regime_points_topic)
async def track_regime(stream: StreamT) -> None:
    async for event in stream.events():
        point = event.value
        regime = load(point.pair)
        if point.role == "intraday":
            session = regime.intraday(point.series, point.t_ms, point.value)
            regime_views[f"session:{point.series}"] = session
            await view.update("session", point.series, session)
            continue
        try:
            result = regime.add(point.role, point.t_ms, point.value)
        except EventOrderError as exc:
            await dead_letter(event.message, point.dumps(), str(exc), "track_regime")
            continue
        if result.index_snapshot:
            regime_views[f"index:{config.regime_index}"] = result.index_snapshot
            await view.update("index", config.regime_index, result.index_snapshot)
        if result.streak_snapshot:
            regime_views[f"regime:{point.pair}"] = result.streak_snapshot
            await view.update("regime", point.pair, result.streak_snapshot)
        for signal in result.signals:
            await emit_signal(signal)
        for component, raw in result.components:
            await send_component(component, point.t_ms, raw, {"pair": point.pair})
        regime_state[point.pair] = regime.to_state()  # after the signals (outputs.py)


async def rebuild_regime_views() -> None:
    for key, snapshot in list(regime_views.items()):
        name, _, subject = key.partition(":")
        await view.update(name, subject, snapshot, only_if_missing=True)
