"""Exchange netflows per token and exchange: rolling windows, accumulation vs distribution.

Redis: ``netflow:<exchange>:<token>`` hash per series and the sorted sets
``netflow-ranking:<N>d`` (members "exchange:token", score = netflow; lowest = strongest
accumulation).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from faust import StreamT

from agents.outputs import dead_letter, emit_signal, send_component, view
from altseason.errors import EventOrderError
from schemas.records import ExchangeNetflow, Observation
from streams.app import app, settings
from streams.hysteresis import Cooldown, band
from streams.netflow import DAY_MS, RollingNetflow, imbalance, netflow_signal
from streams.topics import netflow_points_topic

config = settings.signals
WINDOWS = {f"{days}d": days * DAY_MS for days in config.netflow_windows_days}
SIGNAL_WINDOW = f"{config.netflow_signal_window_days}d"
LEVELS = (("accumulation", -math.inf), ("neutral", -config.netflow_imbalance),
          ("distribution", config.netflow_imbalance))
#: "exchange:token" -> {"flows": RollingNetflow state, "band", "cooldown", "latest"}
netflow_state = app.Table("netflow-series", default=dict)


def apply_flow(state: dict[str, Any] | None, flow: ExchangeNetflow,
               t_ms: int) -> tuple[dict[str, Any], str | None]:
    """New series state and the band it newly signals (None: no signal)."""
    flows = RollingNetflow.from_state(state["flows"]) if state else RollingNetflow(WINDOWS)
    cooldown = Cooldown.from_state(state["cooldown"]) if state else Cooldown(
        int(config.netflow_cooldown_hours * 3_600_000))
    if flows.last_t_ms is not None and t_ms <= flows.last_t_ms:
        raise EventOrderError(f"netflow at t_ms={t_ms} is not newer than the last one "
                              f"(t_ms={flows.last_t_ms}): a duplicate or out of order")
    flows.update(t_ms, flow.inflow, flow.outflow)
    share = imbalance(flows.inflow(SIGNAL_WINDOW), flows.outflow(SIGNAL_WINDOW))
    previous = state.get("band") if state else None
    current = band(share, previous, LEVELS, config.netflow_hysteresis) \
        if share is not None else previous or "neutral"
    fire = None
    if current != (previous or "neutral") and current != "neutral" \
            and cooldown.ready(current, t_ms):
        cooldown.fired(current, t_ms)
        fire = current
    latest: dict[str, Any] = {"exchange": flow.exchange, "token": flow.token,
                              "event_time": flow.event_time, "t_ms": t_ms, "band": current,
                              "imbalance": share}
    for name in WINDOWS:
        latest[f"inflow_{name}"] = flows.inflow(name)
        latest[f"outflow_{name}"] = flows.outflow(name)
        latest[f"netflow_{name}"] = flows.netflow(name)
    return {"flows": flows.to_state(), "band": current, "cooldown": cooldown.to_state(),
            "latest": latest}, fire


def accumulation_share(states: Iterable[dict[str, Any]]) -> tuple[int, float]:
    """(as of, share): the share of the series seen within the signal window before the newest
    observation of any series that are in accumulation. "As of" is that newest time, so the
    component's clock never goes back when series arrive interleaved."""
    states = list(states)
    now = max(s["latest"]["t_ms"] for s in states)
    horizon = config.netflow_signal_window_days * DAY_MS
    bands = [s["band"] for s in states if now - s["latest"]["t_ms"] <= horizon]
    return now, sum(b == "accumulation" for b in bands) / len(bands)


async def show(key: str, latest: dict[str, Any], only_if_missing: bool = False) -> None:
    await view.update("netflow", key, latest,
                      rankings=[(name, key, latest[f"netflow_{name}"]) for name in WINDOWS],
                      only_if_missing=only_if_missing)


@app.agent(netflow_points_topic)
async def track_netflows(stream: StreamT) -> None:
    async for event in stream.events():
        observation: Observation = event.value
        flow = ExchangeNetflow.from_data(observation.event)
        key = observation.subject
        try:
            state, fire = apply_flow(netflow_state.get(key), flow, observation.t_ms)
        except (EventOrderError, ValueError) as exc:
            await dead_letter(event.message, observation.dumps(), str(exc), "track_netflows")
            continue
        latest = state["latest"]
        await show(key, latest)
        if fire:
            await emit_signal(netflow_signal(
                key, flow.event_time, fire, SIGNAL_WINDOW, latest[f"inflow_{SIGNAL_WINDOW}"],
                latest[f"outflow_{SIGNAL_WINDOW}"], latest["imbalance"],
                config.netflow_imbalance))
        as_of, share = accumulation_share({**dict(netflow_state.items()), key: state}.values())
        await send_component("accumulation", as_of, share, {"window": SIGNAL_WINDOW})
        netflow_state[key] = state  # last: after all it causes (outputs.py)


async def rebuild_netflow_views() -> None:
    for key, state in list(netflow_state.items()):
        await show(key, state["latest"], only_if_missing=True)
