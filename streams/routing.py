"""Which pair-owning agents need an input event (pure): validate, name its series, fan out.

Series names: an index quote is its symbol (``RUT``); the total market cap is ``TOTAL`` (a
coin's is ``<COIN>.MCAP``); a tick from the reference exchange is its base asset (``BTC``).
"""

from __future__ import annotations

from altseason.config import SignalSettings
from altseason.errors import SchemaError
from schemas.decode import decode_event, parse_utc, to_ms
from schemas.records import CryptoTick, IndexQuote, MarketCap, SeriesPoint


def series_observation(topic: str, raw: bytes | None,
                       config: SignalSettings) -> tuple[str, str, float] | None:
    """(series, event_time, value) of a raw input event, None if no series uses it.

    Raises SchemaError (with the reason) for an invalid event or an unknown index symbol.
    """
    if topic == "index-quotes":
        quote = decode_event(IndexQuote, raw)
        if quote.symbol not in config.index_symbols:
            raise SchemaError(f"unknown index symbol {quote.symbol!r} "
                              f"(known: {', '.join(config.index_symbols)})")
        return quote.symbol, quote.event_time, quote.price
    if topic == "market-caps":
        cap = decode_event(MarketCap, raw)
        series = "TOTAL" if cap.asset == "TOTAL" else f"{cap.asset}.MCAP"
        return series, cap.event_time, cap.market_cap
    if topic == "ticks":
        tick = decode_event(CryptoTick, raw)
        base = tick.symbol.split("/")[0]
        # a token may share an index's ticker (SPX6900 trades as SPX/USDT): never mix them
        if tick.exchange != config.reference_exchange or base in config.index_symbols:
            return None
        return base, tick.event_time, tick.price
    raise SchemaError(f"no route for topic {topic!r}")


def route(topic: str, raw: bytes | None,
          config: SignalSettings) -> list[tuple[str, SeriesPoint]]:
    """("correlation" | "regime", point) for every pair that uses this event's series."""
    observation = series_observation(topic, raw, config)
    if observation is None:
        return []
    series, event_time, value = observation
    t_ms = to_ms(parse_utc(event_time))
    routed = []

    def point(pair: str, role: str) -> SeriesPoint:
        return SeriesPoint(pair=pair, series=series, role=role, event_time=event_time,
                           t_ms=t_ms, value=value)

    for pair in config.correlation_pairs:
        anchor, other = pair.split("~")
        if series in (anchor, other):
            routed.append(("correlation", point(pair, "anchor" if series == anchor else "other")))
    if series in (config.regime_index, config.regime_benchmark):
        pair = f"{config.regime_index}/{config.regime_benchmark}"
        routed.append(("regime", point(pair, "anchor" if series == config.regime_index
                                       else "other")))
    return routed
