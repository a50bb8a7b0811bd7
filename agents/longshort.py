"""Long/short ratios: per-series history and crowding, the altcoin cross-section, coin ranks.

Redis: ``longshort:<exchange>:<symbol>:<variant>`` hash per series, the sorted set
``longshort-ranking:<variant>`` (members "exchange:symbol", score = ratio) and
``longshort-cross:<variant>``, the cross-section of the altcoins against market-cap rank.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from statistics import fmean
from typing import Any

from faust import StreamT

from agents.outputs import dead_letter, emit_signal, send_component, view
from altseason.errors import EventOrderError
from schemas.records import LongShortRatio, MarketCap, Observation
from streams.app import app, settings
from streams.hysteresis import Cooldown
from streams.longshort import (
    CoinRatio,
    RatioHistory,
    coin_of,
    cross_section,
    crowding_signal,
    long_share_of,
)
from streams.topics import longshort_points_topic

config = settings.signals
HOUR_MS = 3_600_000
SERIES_TTL_S = 7 * 86_400
#: "exchange|symbol|variant" -> {"history": RatioHistory state, "latest": snapshot,
#: "crowded": bool, "cooldown": Cooldown state}
series_state = app.Table("longshort-series", default=dict)
#: coin -> {"rank", "market_cap", "t_ms"} from the market-caps topic
coin_ranks = app.Table("coin-ranks", default=dict)
#: variant -> cross-section snapshot
cross_state = app.Table("longshort-cross", default=dict)


def apply_ratio(state: dict[str, Any] | None, ratio: LongShortRatio,
                t_ms: int) -> tuple[dict[str, Any], float | None, bool]:
    """New series state, the ratio's z-score and whether it newly signals crowding."""
    history = RatioHistory.from_state(state["history"]) if state else RatioHistory(
        config.longshort_window, config.longshort_min_periods)
    cooldown = Cooldown.from_state(state["cooldown"]) if state else Cooldown(
        int(config.longshort_cooldown_hours * HOUR_MS))
    mean_before = history.mean
    z = history.update(t_ms, ratio.ratio)
    was_crowded = bool(state.get("crowded")) if state else False
    crowded = z is not None and math.isfinite(z) and z >= config.longshort_crowding_z \
        and ratio.ratio >= config.longshort_crowding_min_ratio
    fire = crowded and not was_crowded and cooldown.ready("long_crowding", t_ms)
    if fire:
        cooldown.fired("long_crowding", t_ms)
    latest = {
        "exchange": ratio.exchange, "symbol": ratio.symbol, "coin": coin_of(ratio.symbol),
        "variant": ratio.variant, "period": ratio.period, "event_time": ratio.event_time,
        "t_ms": t_ms, "ratio": ratio.ratio, "long_share": ratio.long_share,
        "short_share": ratio.short_share, "zscore": z, "history_mean": mean_before,
        "history_n": history.n, "crowded": crowded,
    }
    new_state = {"history": history.to_state(), "latest": latest, "crowded": crowded,
                 "cooldown": cooldown.to_state()}
    return new_state, z, fire


def cross_snapshot(variant: str, states: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """Cross-section of the altcoin ratios of a variant (mean over exchanges) in the series
    ``states``, as of the newest ratio of the variant: older ones than
    longshort_max_age_hours are left out."""
    by_coin: dict[str, list[float]] = {}
    latest_of_variant = [s["latest"] for s in states if s["latest"]["variant"] == variant]
    t_ms = max(latest["t_ms"] for latest in latest_of_variant)
    for latest in latest_of_variant:
        if latest["coin"] not in config.non_altcoins \
                and t_ms - latest["t_ms"] <= config.longshort_max_age_hours * HOUR_MS:
            by_coin.setdefault(latest["coin"], []).append(latest["ratio"])
    if not by_coin:
        return None
    ratios = {coin: fmean(values) for coin, values in by_coin.items()}
    ranked = [CoinRatio(coin, int(coin_ranks[coin]["rank"]), ratio)
              for coin, ratio in sorted(ratios.items()) if coin in coin_ranks]
    section = cross_section(ranked, exclude=())
    return {
        "variant": variant, "t_ms": t_ms, "coins": len(ratios),
        "share_long": long_share_of(list(ratios.values())),
        "ranked_coins": section.n if section else 0,
        "spearman_ratio_vs_rank": section.spearman if section else None,
        "slope_log_ratio_per_rank": section.slope if section else None,
    }


async def show_series(state: dict[str, Any], only_if_missing: bool = False) -> None:
    latest = state["latest"]
    member = f"{latest['exchange']}:{latest['symbol']}"
    rank = coin_ranks.get(latest["coin"], {}).get("rank")  # for the rank vs ratio scatter
    await view.update("longshort", f"{member}:{latest['variant']}", {**latest, "rank": rank},
                      ttl_s=SERIES_TTL_S, rankings=[(latest["variant"], member, latest["ratio"])],
                      only_if_missing=only_if_missing)


@app.agent(longshort_points_topic)
async def track_long_short(stream: StreamT) -> None:
    async for event in stream.events():
        observation: Observation = event.value
        if observation.kind == "market_cap":
            cap = MarketCap.from_data(observation.event)
            coin_ranks[cap.asset] = {"rank": cap.rank, "market_cap": cap.market_cap,
                                     "t_ms": observation.t_ms}
            continue
        ratio = LongShortRatio.from_data(observation.event)
        key = f"{ratio.exchange}|{ratio.symbol}|{ratio.variant}"
        try:
            state, z, fire = apply_ratio(series_state.get(key), ratio, observation.t_ms)
        except (EventOrderError, ValueError) as exc:
            await dead_letter(event.message, observation.dumps(), str(exc), "track_long_short")
            continue
        await show_series(state)
        if fire:
            latest = state["latest"]
            await emit_signal(crowding_signal(
                key, ratio.event_time, ratio.ratio, z or 0.0, latest["history_mean"],
                config.longshort_window, config.longshort_crowding_z,
                config.longshort_crowding_min_ratio, config.longshort_cooldown_hours))
        if ratio.variant == config.longshort_variant:
            await show_cross(ratio.variant, {**dict(series_state.items()), key: state})
        series_state[key] = state  # last: after all it causes (outputs.py)


async def show_cross(variant: str, states: dict[str, dict[str, Any]]) -> None:
    """The cross-section's view and its score component (nothing while no altcoin has a
    recent ratio)."""
    snapshot = cross_snapshot(variant, states.values())
    if snapshot is None:
        return
    cross_state[variant] = snapshot
    await view.update("longshort-cross", variant, snapshot)
    if snapshot["share_long"] is not None:
        await send_component("long_bias", snapshot["t_ms"], snapshot["share_long"],
                             {"coins": snapshot["coins"], "variant": variant})


async def rebuild_longshort_views() -> None:
    for state in list(series_state.values()):
        await show_series(state, only_if_missing=True)
    for variant, snapshot in list(cross_state.items()):
        await view.update("longshort-cross", variant, snapshot, only_if_missing=True)
