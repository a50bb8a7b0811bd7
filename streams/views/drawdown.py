"""Drawdowns: each coin's drawdown from its all-time high, and the share of altcoins deep
below theirs (``breadth``, the score's component of that name).

State: "coin|<COIN>" -> ``Drawdown.to_state()`` plus "price"; "breadth|altcoins" -> the
breadth snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from foundation.config import SignalSettings
from schemas.records import CryptoTick, Observation
from schemas.redis_layout import ViewUpdate
from streams.correlation import ms_to_iso
from streams.drawdown import Drawdown, share_below
from streams.views.score import component
from streams.views.step import Changes, Outputs, Overlay, with_prefix


def coin_view(coin: str, state: dict[str, Any]) -> ViewUpdate:
    return ViewUpdate("drawdown", coin, {
        "coin": coin, "price": state["price"], "ath": state["ath"],
        "ath_time": ms_to_iso(state["ath_t_ms"]), "drawdown": state["drawdown"],
        "event_time": ms_to_iso(state["last_t_ms"])}, rankings=(("all", coin, state["drawdown"]),))


def apply(state: Mapping[str, Any], observation: Observation,
          config: SignalSettings) -> tuple[Changes, Outputs]:
    tick = CryptoTick.from_data(observation.event)
    coin = observation.subject
    stored = state.get(f"coin|{coin}")
    drawdown = Drawdown.from_state(stored) if stored else Drawdown()
    drawdown.update(observation.t_ms, tick.price)
    coin_state = {**drawdown.to_state(), "price": tick.price}
    changes: Changes = {f"coin|{coin}": coin_state}
    out = Outputs(views=[coin_view(coin, coin_state)])
    coins = with_prefix(Overlay(state, changes), "coin|")
    drawdowns = {c: s["drawdown"] for c, s in coins.items()}
    share = share_below(drawdowns, -config.drawdown_deep, exclude=config.non_altcoins)
    as_of = max(s["last_t_ms"] for s in coins.values())
    if share is not None:
        breadth = {"share_deep": share, "deep": config.drawdown_deep,
                   "altcoins": sum(c not in config.non_altcoins for c in drawdowns),
                   "event_time": tick.event_time}
        changes["breadth|altcoins"] = breadth
        out.views.append(ViewUpdate("breadth", "altcoins", breadth))
    out.routes.append(component(
        "breadth", as_of, share,
        {"altcoins": breadth["altcoins"], "deep": config.drawdown_deep} if share is not None
        else {}))
    return changes, out


def views_of(state: Mapping[str, Any], key: str, config: SignalSettings) -> list[ViewUpdate]:
    kind, _, name = key.partition("|")
    if kind == "coin":
        return [coin_view(name, state[key])]
    return [ViewUpdate("breadth", name, state[key])]
