"""Long/short ratios: each series' history and crowding (``long_crowding``), the altcoin
cross-section against market-cap rank, the coins' ranks; the score's ``long_bias``.

State: "series|<exchange>|<symbol>|<variant>" -> {"history": ``RatioHistory`` state,
"latest": snapshot, "crowded", "cooldown"}; "rank|<coin>" -> {"rank", "market_cap", "t_ms"};
"cross|<variant>" -> the cross-section's snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from statistics import fmean
from typing import Any

from foundation.config import SignalSettings
from schemas.records import LongShortRatio, MarketCap, Observation
from schemas.redis_layout import ViewUpdate
from streams.hysteresis import Cooldown
from streams.longshort import (
    CoinRatio,
    RatioHistory,
    coin_of,
    cross_section,
    crowding_signal,
    long_share_of,
)
from streams.views.score import component
from streams.views.step import Changes, Outputs, Overlay, with_prefix

HOUR_MS = 3_600_000
SERIES_TTL_S = 7 * 86_400


def apply_ratio(state: dict[str, Any] | None, ratio: LongShortRatio, t_ms: int,
                config: SignalSettings) -> tuple[dict[str, Any], float | None, bool]:
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


def cross_snapshot(variant: str, series: Iterable[dict[str, Any]],
                   ranks: Mapping[str, dict[str, Any]],
                   config: SignalSettings) -> dict[str, Any] | None:
    """Cross-section of the altcoin ratios of a variant (mean over exchanges), as of the
    newest ratio of the variant: ratios older than longshort_max_age_hours are left out."""
    by_coin: dict[str, list[float]] = {}
    latest_of_variant = [s["latest"] for s in series if s["latest"]["variant"] == variant]
    if not latest_of_variant:
        return None
    t_ms = max(latest["t_ms"] for latest in latest_of_variant)
    for latest in latest_of_variant:
        if latest["coin"] not in config.non_altcoins \
                and t_ms - latest["t_ms"] <= config.longshort_max_age_hours * HOUR_MS:
            by_coin.setdefault(latest["coin"], []).append(latest["ratio"])
    if not by_coin:
        return None
    ratios = {coin: fmean(values) for coin, values in by_coin.items()}
    ranked = [CoinRatio(coin, int(ranks[coin]["rank"]), ratio)
              for coin, ratio in sorted(ratios.items()) if coin in ranks]
    section = cross_section(ranked, exclude=())
    return {
        "variant": variant, "t_ms": t_ms, "coins": len(ratios),
        "share_long": long_share_of(list(ratios.values())),
        "ranked_coins": section.n if section else 0,
        "spearman_ratio_vs_rank": section.spearman if section else None,
        "slope_log_ratio_per_rank": section.slope if section else None,
    }


def series_view(state: dict[str, Any], rank: int | None) -> ViewUpdate:
    latest = state["latest"]
    member = f"{latest['exchange']}:{latest['symbol']}"
    return ViewUpdate("longshort", f"{member}:{latest['variant']}", {**latest, "rank": rank},
                      ttl_s=SERIES_TTL_S, rankings=((latest["variant"], member, latest["ratio"]),))


def apply(state: Mapping[str, Any], observation: Observation,
          config: SignalSettings) -> tuple[Changes, Outputs]:
    if observation.kind == "market_cap":
        cap = MarketCap.from_data(observation.event)
        return {f"rank|{cap.asset}": {"rank": cap.rank, "market_cap": cap.market_cap,
                                      "t_ms": observation.t_ms}}, Outputs()
    ratio = LongShortRatio.from_data(observation.event)
    key = f"series|{ratio.exchange}|{ratio.symbol}|{ratio.variant}"
    series, z, fire = apply_ratio(state.get(key), ratio, observation.t_ms, config)
    changes: Changes = {key: series}
    ranks = with_prefix(state, "rank|")
    rank = ranks.get(series["latest"]["coin"], {}).get("rank")  # the rank vs ratio scatter
    out = Outputs(views=[series_view(series, rank)])
    if fire:
        latest = series["latest"]
        out.signals.append(crowding_signal(
            key.removeprefix("series|"), ratio.event_time, ratio.ratio, z or 0.0,
            latest["history_mean"], config.longshort_window, config.longshort_crowding_z,
            config.longshort_crowding_min_ratio, config.longshort_cooldown_hours))
    if ratio.variant == config.longshort_variant:
        of_variant = [s for s in with_prefix(Overlay(state, changes), "series|").values()
                      if s["latest"]["variant"] == ratio.variant]
        snapshot = cross_snapshot(ratio.variant, of_variant, ranks, config)
        if snapshot is not None:
            changes[f"cross|{ratio.variant}"] = snapshot
            out.views.append(ViewUpdate("longshort-cross", ratio.variant, snapshot))
        # as of the variant's newest ratio; without a value while no altcoin has a recent one
        out.routes.append(component(
            "long_bias", max(s["latest"]["t_ms"] for s in of_variant),
            snapshot["share_long"] if snapshot else None,
            {"coins": snapshot["coins"], "variant": ratio.variant} if snapshot else {}))
    return changes, out


def views_of(state: Mapping[str, Any], key: str, config: SignalSettings) -> list[ViewUpdate]:
    kind, _, name = key.partition("|")
    if kind == "series":
        coin = state[key]["latest"]["coin"]
        return [series_view(state[key], state.get(f"rank|{coin}", {}).get("rank"))]
    if kind == "cross":
        return [ViewUpdate("longshort-cross", name, state[key])]
    return []
