"""Exchange netflows per exchange and token: rolling windows, the flow imbalance's band
(``netflow_accumulation`` / ``netflow_distribution``); the score's ``accumulation``.

State: "series|<exchange>:<token>" -> {"flows": ``RollingNetflow`` state, "band",
"cooldown", "latest"}.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from foundation.config import SignalSettings
from schemas.records import ExchangeNetflow, Observation
from schemas.redis_layout import ViewUpdate
from streams.hysteresis import Cooldown, band
from streams.netflow import DAY_MS, RollingNetflow, imbalance, netflow_signal
from streams.views.score import component
from streams.views.step import Changes, Outputs, Overlay, with_prefix


def windows(config: SignalSettings) -> dict[str, int]:
    return {f"{days}d": days * DAY_MS for days in config.netflow_windows_days}


def apply_flow(state: dict[str, Any] | None, flow: ExchangeNetflow, t_ms: int,
               config: SignalSettings) -> tuple[dict[str, Any], str | None]:
    """New series state and the band it newly signals (None: no signal)."""
    flows = RollingNetflow.from_state(state["flows"]) if state else RollingNetflow(
        windows(config))
    cooldown = Cooldown.from_state(state["cooldown"]) if state else Cooldown(
        int(config.netflow_cooldown_hours * 3_600_000))
    flows.update(t_ms, flow.inflow, flow.outflow)
    signal_window = f"{config.netflow_signal_window_days}d"
    share = imbalance(flows.inflow(signal_window), flows.outflow(signal_window))
    previous = state.get("band") if state else None
    levels = (("accumulation", -math.inf), ("neutral", -config.netflow_imbalance),
              ("distribution", config.netflow_imbalance))
    current = band(share, previous, levels, config.netflow_hysteresis) \
        if share is not None else previous or "neutral"
    fire = None
    if current != (previous or "neutral") and current != "neutral" \
            and cooldown.ready(current, t_ms):
        cooldown.fired(current, t_ms)
        fire = current
    latest: dict[str, Any] = {"exchange": flow.exchange, "token": flow.token,
                              "event_time": flow.event_time, "t_ms": t_ms, "band": current,
                              "imbalance": share}
    for name in windows(config):
        latest[f"inflow_{name}"] = flows.inflow(name)
        latest[f"outflow_{name}"] = flows.outflow(name)
        latest[f"netflow_{name}"] = flows.netflow(name)
    return {"flows": flows.to_state(), "band": current, "cooldown": cooldown.to_state(),
            "latest": latest}, fire


def accumulation_share(states: Iterable[dict[str, Any]],
                       config: SignalSettings) -> tuple[int, float]:
    """(as of, share): the share of the series seen within the signal window before the newest
    observation of any series that are in accumulation. "As of" is that newest time."""
    states = list(states)
    now = max(s["latest"]["t_ms"] for s in states)
    horizon = config.netflow_signal_window_days * DAY_MS
    bands = [s["band"] for s in states if now - s["latest"]["t_ms"] <= horizon]
    return now, sum(b == "accumulation" for b in bands) / len(bands)


def series_view(key: str, latest: dict[str, Any], config: SignalSettings) -> ViewUpdate:
    return ViewUpdate("netflow", key, latest, rankings=tuple(
        (name, key, latest[f"netflow_{name}"]) for name in windows(config)))


def apply(state: Mapping[str, Any], observation: Observation,
          config: SignalSettings) -> tuple[Changes, Outputs]:
    flow = ExchangeNetflow.from_data(observation.event)
    key = observation.subject
    series, fire = apply_flow(state.get(f"series|{key}"), flow, observation.t_ms, config)
    changes: Changes = {f"series|{key}": series}
    latest = series["latest"]
    out = Outputs(views=[series_view(key, latest, config)])
    if fire:
        window = f"{config.netflow_signal_window_days}d"
        out.signals.append(netflow_signal(
            key, flow.event_time, fire, window, latest[f"inflow_{window}"],
            latest[f"outflow_{window}"], latest["imbalance"], config.netflow_imbalance))
    as_of, share = accumulation_share(
        with_prefix(Overlay(state, changes), "series|").values(), config)
    out.routes.append(component("accumulation", as_of, share,
                                {"window": f"{config.netflow_signal_window_days}d"}))
    return changes, out


def views_of(state: Mapping[str, Any], key: str, config: SignalSettings) -> list[ViewUpdate]:
    return [series_view(key.removeprefix("series|"), state[key]["latest"], config)]
