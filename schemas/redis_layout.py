"""The Redis layout: every view, key, channel and ranking the worker writes (README "Redis
layout"). One place, like ``schemas/topics.py`` for the topics: the worker's writer, its
rebuild and the dashboard all read it from here.

A hash view ``<view>`` is written as the hash ``<view>:<name>`` and published, as JSON, on the
channel ``<view>``; a view with rankings also keeps the sorted sets
``<view>-ranking:<set>``. Keys and channels are prefixed with ``redis_prefix``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

#: version of this layout; bumped with breaking changes (kept in the ``meta:layout`` hash)
LAYOUT_VERSION = 1


@dataclass(frozen=True)
class HashView:
    view: str
    #: what one hash holds (README)
    fields: str
    #: keeps sorted sets ``<view>-ranking:<set>``
    ranked: bool = False
    #: changes on every trade: written coalesced, the latest per key every
    #: ``bar_view_flush_seconds`` (README "Redis layout")
    coalesced: bool = False
    #: read and followed by the dashboard
    shown: bool = True


VIEWS: tuple[HashView, ...] = (
    HashView("index", "symbol day close ath ath_day pct_from_ath ytd_change"),
    HashView("session", "symbol session_day event_time price change_from_close pct_from_ath "
                        "above_ath"),
    HashView("regime", "subject day streak longest_since index_return benchmark_return "
                       "relative_return relative_strength_Nd risk_on"),
    HashView("correlation", "pair event_time anchor other corr_Wd beta_Wd regime_Wd "
                            "corr_levels_Wd"),
    HashView("bar", "the open bar: Bar fields", coalesced=True, shown=False),
    HashView("longshort", "exchange symbol coin variant period event_time t_ms ratio "
                          "long_share short_share zscore history_mean history_n crowded rank",
             ranked=True),
    HashView("longshort-cross", "variant t_ms coins share_long ranked_coins "
                                "spearman_ratio_vs_rank slope_log_ratio_per_rank"),
    HashView("netflow", "exchange token event_time t_ms band imbalance inflow_Nd outflow_Nd "
                        "netflow_Nd", ranked=True),
    HashView("drawdown", "coin price ath ath_time drawdown event_time", ranked=True),
    HashView("breadth", "share_deep deep altcoins event_time"),
    HashView("score", "score band event_time components missing"),
)
VIEW_BY_NAME = {view.view: view for view in VIEWS}

#: the newest signals (a list, newest first, capped) and their channel
RECENT_SIGNALS_KEY = ("signals", "recent")
SIGNALS_CHANNEL = "signals"
RECENT_SIGNALS = 1000
#: rejected events per source topic (a hash)
DEADLETTER_COUNTS_KEY = ("deadletter", "counts")
#: the layout marker: its absence means Redis was flushed or replaced (then rebuilt)
LAYOUT_MARKER_KEY = ("meta", "layout")


def ranking(view: str) -> str:
    """The sorted-set family of a ranked view: ``<view>-ranking``."""
    return f"{view}-ranking"


class ViewUpdate(NamedTuple):
    """One view's new state: the hash ``<view>:<name>``, its TTL, and (set, member, score)
    for each ranking set it belongs to."""

    view: str
    name: str
    snapshot: dict[str, Any]
    ttl_s: int | None = None
    rankings: tuple[tuple[str, str, float], ...] = ()
