"""Read the Redis views (README "Redis layout") into plain JSON for the page.

Hash fields are text (numbers as decimal, missing values empty, nested values JSON); the
channels publish the same snapshots as JSON. ``parse_field`` turns the text back into the
values the channel carries, so the page handles both sources the same way.
"""

from __future__ import annotations

import json
import math
from typing import Any, cast

import redis.asyncio as redis

from foundation.config import Settings
from schemas.redis_layout import RECENT_SIGNALS_KEY, SIGNALS_CHANNEL, VIEWS
from schemas.redis_layout import ranking as ranking_of

#: hash views the page shows, as "<view>:<name>" keys under the prefix (``bar``, one write
#: per trade, is left out)
HASH_VIEWS = tuple(view.view for view in VIEWS if view.shown)
#: sorted sets: "<ranking>:<name>", members with their scores
RANKINGS = tuple(ranking_of(view.view) for view in VIEWS if view.shown and view.ranked)
#: channels the server follows and forwards
CHANNELS = (*HASH_VIEWS, SIGNALS_CHANNEL)
RECENT_SIGNALS = 50


def finite(value: Any) -> Any:
    """The value with NaN and infinities (not JSON) replaced by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def parse_field(text: str) -> Any:
    """A hash field's value: "" -> None, "True"/"False" -> bool, numbers, JSON, else text."""
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    if text[0] in "[{":
        try:
            return finite(json.loads(text))
        except ValueError:
            return text
    if text in ("nan", "inf", "-inf"):  # str() of a non-finite float
        return None
    if text[0] not in "+-.0123456789":  # a name such as a coin "INF" stays text
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else None


def parse_payload(text: str) -> Any:
    """A channel message: JSON (NaN removed), or the raw text when it is not JSON."""
    try:
        return finite(json.loads(text))
    except ValueError:
        return text


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


async def read_state(client: redis.Redis, settings: Settings) -> dict[str, Any]:
    """Every view hash, ranking and the newest signals under the settings' prefix.

    ``views[<view>][<name>]`` holds a hash's fields (``<view>:<name>`` without the prefix),
    ``rankings[<ranking>][<name>]`` a sorted set as [member, score] pairs, lowest first, and
    ``signals`` the newest signals first. Raises RedisError or OSError when Redis is down.
    """
    prefix = settings.redis_prefix
    views: dict[str, dict[str, Any]] = {view: {} for view in HASH_VIEWS}
    rankings: dict[str, dict[str, list[list[Any]]]] = {name: {} for name in RANKINGS}
    for view in HASH_VIEWS:
        async for key in client.scan_iter(match=f"{_glob_escape(prefix + view)}:*", count=500):
            fields = await client.hgetall(key)
            if fields:  # expired or deleted since the scan
                name = key[len(prefix) + len(view) + 1:]
                views[view][name] = {_text(k): parse_field(_text(v)) for k, v in fields.items()}
    for ranking in RANKINGS:
        async for key in client.scan_iter(match=f"{_glob_escape(prefix + ranking)}:*",
                                          count=500):
            members = cast(list[tuple[str, float]],
                           await client.zrange(key, 0, -1, withscores=True))
            name = key[len(prefix) + len(ranking) + 1:]
            rankings[ranking][name] = [[member, finite(score)] for member, score in members]
    recent = await client.lrange(settings.redis_key(*RECENT_SIGNALS_KEY), 0, RECENT_SIGNALS - 1)
    return {
        "prefix": prefix,
        "views": views,
        "rankings": rankings,
        "signals": [parse_payload(_text(raw)) for raw in recent],
        "config": page_config(settings),
    }


def page_config(settings: Settings) -> dict[str, Any]:
    """The settings the page needs to label and select what it shows."""
    signals = settings.signals
    return {
        "regime_index": signals.regime_index,
        "regime_benchmark": signals.regime_benchmark,
        "correlation_pairs": list(signals.correlation_pairs),
        "correlation_windows": list(signals.correlation_windows),
        "longshort_variant": signals.longshort_variant,
        "netflow_windows_days": list(signals.netflow_windows_days),
        "netflow_signal_window_days": signals.netflow_signal_window_days,
        "score_warming": signals.score_warming,
        "score_altseason": signals.score_altseason,
    }
