"""Source types of the live config: ``type:`` -> factory(config mapping, where).

``where`` names the mapping in error messages ("sources[2]"). Factories are imported lazily
so a config that uses no ccxt source never imports ccxt. Add a type with one line.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from producers.live.core import Source

SourceFactory = Callable[[Mapping[str, Any], str], Source]


def lazy(module: str, function: str = "from_config") -> SourceFactory:
    """A factory that imports ``module`` only when a source of its type is configured."""

    def factory(data: Mapping[str, Any], where: str) -> Source:
        made: Source = getattr(importlib.import_module(module), function)(data, where)
        return made

    return factory


SOURCE_TYPES: dict[str, SourceFactory] = {
    "binance_ws": lazy("producers.live.binance_ws"),
    "ccxt_ws": lazy("producers.live.ccxt_ws"),
    "long_short_ratio": lazy("producers.live.longshort"),
    "funding_rate": lazy("producers.live.derivatives", "funding_from_config"),
    "open_interest": lazy("producers.live.derivatives", "open_interest_from_config"),
    "coingecko": lazy("producers.live.coingecko"),
    "yahoo_chart": lazy("producers.live.index_quotes", "yahoo_from_config"),
    "finnhub": lazy("producers.live.index_quotes", "finnhub_from_config"),
    "cryptoquant": lazy("producers.live.netflows", "cryptoquant_from_config"),
    "netflow_csv": lazy("producers.live.netflows", "csv_from_config"),
}
