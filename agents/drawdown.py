"""Each coin's drawdown from its all-time high, and the share of altcoins deep below theirs.

Redis: ``drawdown:<COIN>`` hash, the sorted set ``drawdown-ranking:all`` (score = drawdown,
lowest = deepest) and ``breadth:altcoins`` (share of altcoins more than
``drawdown_deep`` below their high).
"""

from __future__ import annotations

from typing import Any

from faust import StreamT

from agents.outputs import dead_letter, send_component, view
from altseason.errors import EventOrderError
from schemas.records import CryptoTick, Observation
from streams.app import app, settings
from streams.correlation import ms_to_iso
from streams.drawdown import Drawdown, share_below
from streams.topics import drawdown_points_topic

config = settings.signals
#: coin -> Drawdown.to_state() plus "price"
drawdown_state = app.Table("drawdown-coins", default=dict)
breadth_state = app.Table("drawdown-breadth", default=dict)


def coin_snapshot(coin: str, state: dict[str, Any]) -> dict[str, Any]:
    return {"coin": coin, "price": state["price"], "ath": state["ath"],
            "ath_time": ms_to_iso(state["ath_t_ms"]), "drawdown": state["drawdown"],
            "event_time": ms_to_iso(state["last_t_ms"])}


async def show_coin(coin: str, state: dict[str, Any], only_if_missing: bool = False) -> None:
    await view.update("drawdown", coin, coin_snapshot(coin, state),
                      rankings=[("all", coin, state["drawdown"])], only_if_missing=only_if_missing)


@app.agent(drawdown_points_topic)
async def track_drawdowns(stream: StreamT) -> None:
    async for event in stream.events():
        observation: Observation = event.value
        tick = CryptoTick.from_data(observation.event)
        coin = observation.subject
        stored = drawdown_state.get(coin)
        drawdown = Drawdown.from_state(stored) if stored else Drawdown()
        try:
            drawdown.update(observation.t_ms, tick.price)
        except (EventOrderError, ValueError) as exc:
            await dead_letter(event.message, observation.dumps(), str(exc), "track_drawdowns")
            continue
        state = {**drawdown.to_state(), "price": tick.price}
        await show_coin(coin, state)
        await show_breadth({**dict(drawdown_state.items()), coin: state}, tick.event_time)
        drawdown_state[coin] = state  # last: after all it causes (outputs.py)


async def show_breadth(states: dict[str, dict[str, Any]], event_time: str) -> None:
    """The share of altcoins in a deep drawdown: its view and its score component (nothing
    while there is no altcoin)."""
    drawdowns = {c: s["drawdown"] for c, s in states.items()}
    share = share_below(drawdowns, -config.drawdown_deep, exclude=config.non_altcoins)
    if share is None:
        return
    breadth = {"share_deep": share, "deep": config.drawdown_deep,
               "altcoins": sum(c not in config.non_altcoins for c in drawdowns),
               "event_time": event_time}
    breadth_state["altcoins"] = breadth
    await view.update("breadth", "altcoins", breadth)
    as_of = max(s["last_t_ms"] for s in states.values())
    await send_component("breadth", as_of, share,
                         {"altcoins": breadth["altcoins"], "deep": config.drawdown_deep})


async def rebuild_drawdown_views() -> None:
    for coin, state in list(drawdown_state.items()):
        await show_coin(coin, state, only_if_missing=True)
    for name, breadth in list(breadth_state.items()):
        await view.update("breadth", name, breadth, only_if_missing=True)
