"""Index regime (RUT against SPX): all-time-high breakouts, year to date, the outperformance
streak, risk-on rotation, and the session so far from intraday quotes; the score's
``index_ath`` and ``relative_strength`` components.

State: pair ("RUT/SPX") -> {"regime": ``IndexRegime.to_state()``, "views": {view key
("index:RUT", "regime:RUT/SPX", "session:SPX") -> its latest snapshot}}.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from foundation.config import SignalSettings
from schemas.records import SeriesPoint
from schemas.redis_layout import ViewUpdate
from streams.index_regime import IndexRegime, RiskOnParams
from streams.views.score import component
from streams.views.step import Changes, Outputs


def regime_of(state: dict[str, Any] | None, config: SignalSettings) -> IndexRegime:
    return IndexRegime.from_state(
        config.regime_index, config.regime_benchmark, config.ath_breakout_min_gap_days,
        config.streak_min_days, config.ath_min_history_days, state,
        RiskOnParams(config.risk_on_max_pct_from_ath, config.relative_strength_days,
                     config.risk_on_cooldown_days))


def apply(state: Mapping[str, Any], point: SeriesPoint,
          config: SignalSettings) -> tuple[Changes, Outputs]:
    stored = state.get(point.pair) or {"regime": None, "views": {}}
    regime = regime_of(stored["regime"], config)
    views = dict(stored["views"])
    out = Outputs()
    if point.role == "intraday":
        views[f"session:{point.series}"] = regime.intraday(point.series, point.t_ms, point.value)
    else:
        result = regime.add(point.role, point.t_ms, point.value)
        if result.index_snapshot:
            views[f"index:{config.regime_index}"] = result.index_snapshot
        if result.streak_snapshot:
            views[f"regime:{point.pair}"] = result.streak_snapshot
        out.signals += result.signals
        for name, raw in result.components:
            out.routes.append(component(name, point.t_ms, raw, {"pair": point.pair}))
        # every close says how far each component has got, with a value or without
        sent = {name for name, _ in result.components}
        if point.role == "anchor" and "index_ath" not in sent:
            out.routes.append(component("index_ath", point.t_ms, None, {"pair": point.pair}))
        if result.streak_snapshot and "relative_strength" not in sent:
            out.routes.append(component("relative_strength", point.t_ms, None,
                                        {"pair": point.pair}))
    changed = [key for key, snapshot in views.items() if stored["views"].get(key) is not snapshot]
    out.views += [view_update(key, views[key]) for key in changed]
    return {point.pair: {"regime": regime.to_state(), "views": views}}, out


def views_of(state: Mapping[str, Any], key: str, config: SignalSettings) -> list[ViewUpdate]:
    value = state[key]
    return [view_update(name, snapshot) for name, snapshot in value["views"].items()]


def view_update(key: str, snapshot: dict[str, Any]) -> ViewUpdate:
    """"index:RUT" and its snapshot -> the view update."""
    view, _, name = key.partition(":")
    return ViewUpdate(view, name, snapshot)
