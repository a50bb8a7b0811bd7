"""Bars: OHLCV bars per symbol and interval from ``ticks`` (closed ones to the ``bars`` topic,
open ones to Redis ``bar:*``), and a reference-exchange coin's price to the series steps.

State: "exchange:symbol" -> ``BarBuilder.to_state()``, in the partition its ticks' key hashes
to. A trade delivered again is told apart by its (partition, offset) in ``ticks``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from foundation.config import SignalSettings
from foundation.errors import EventOrderError
from schemas.decode import parse_utc, to_ms
from schemas.records import Bar
from schemas.redis_layout import ViewUpdate
from streams.bars import OHLCV, BarBuilder, interval_name
from streams.correlation import ms_to_iso
from streams.routing import record_routes, tick_for_bars
from streams.views.route import RawInput
from streams.views.step import Changes, Outputs, Route


def bar_record(exchange: str, symbol: str, bar: OHLCV) -> Bar:
    return Bar(exchange=exchange, symbol=symbol, interval=interval_name(bar.interval_s),
               start=ms_to_iso(bar.start_ms), end=ms_to_iso(bar.end_ms), open=bar.open,
               high=bar.high, low=bar.low, close=bar.close, volume=bar.volume,
               trades=bar.trades)


def key_parts(key: str) -> tuple[str, str]:
    """"exchange:symbol" -> (exchange, symbol); symbols may hold a colon (BTC/USDT:USDT)."""
    exchange, _, symbol = key.partition(":")
    return exchange, symbol


def builder_of(state: Any, config: SignalSettings) -> BarBuilder:
    return BarBuilder.from_state(config.bar_intervals,
                                 int(config.bar_allowed_lateness_seconds * 1000), state)


def open_bar_views(key: str, builder: BarBuilder, config: SignalSettings) -> list[ViewUpdate]:
    """The open bars, one per interval: each hash expires after two intervals (at least an
    hour), so a symbol that stops trading drops out."""
    exchange, symbol = key_parts(key)
    return [ViewUpdate("bar", f"{key}:{interval_name(bar.interval_s)}",
                       bar_record(exchange, symbol, bar).asdict(),
                       ttl_s=max(2 * bar.interval_s, 3600))
            for interval in config.bar_intervals
            if (bar := builder.current(interval)) is not None]


def apply(state: Mapping[str, Any], event: RawInput,
          config: SignalSettings) -> tuple[Changes, Outputs]:
    """SchemaError for an invalid tick. A late or repeated one is rejected by the bars only:
    its price still reaches the series steps, which judge it themselves."""
    tick = tick_for_bars(event.key, event.value)
    # a reference-exchange coin is a series of its own (correlation, drawdown)
    routes = [Route(step, routed_key, record)
              for step, routed_key, record in record_routes(tick, config)]
    key = f"{tick.exchange}:{tick.symbol}"
    builder = builder_of(state.get(key), config)
    try:
        closed = builder.add(to_ms(parse_utc(tick.event_time)), tick.price, tick.amount,
                             event.position)
    except EventOrderError as exc:
        return {}, Outputs(routes=routes, rejected=[(tick, str(exc))])
    return {key: builder.to_state()}, Outputs(
        bars=[bar_record(tick.exchange, tick.symbol, bar) for bar in closed],
        views=open_bar_views(key, builder, config), routes=routes)


def views_of(state: Mapping[str, Any], key: str, config: SignalSettings) -> list[ViewUpdate]:
    value = state[key]
    return open_bar_views(key, builder_of(value, config), config)
