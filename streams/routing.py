"""Which agents need an input event (pure): validate, name its series, fan out.

Series names: an index quote is its symbol (``RUT``); an aggregate market cap is its asset
(``TOTAL``, ``TOTAL3``; a coin's is ``<COIN>.MCAP``); a tick from the reference exchange is
its base asset (``BTC``). The bars agent reads ``ticks`` itself (its key, "exchange:symbol",
is the one the bars need: no re-keying hop; ``tick_for_bars``). Long/short ratios and coin
ranks go to the long/short agent, netflows to the netflow agent and reference prices to the
drawdown agent (each of those keyed by one constant, as they rank across coins).
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from foundation.config import SignalSettings
from foundation.errors import SchemaError
from schemas.decode import decode_event, parse_utc, shown, to_ms
from schemas.records import (
    CryptoTick,
    Event,
    ExchangeNetflow,
    IndexQuote,
    LongShortRatio,
    MarketCap,
    Observation,
    SeriesPoint,
)

#: the key of the agents that see the whole market at once
MARKET_KEY = "market"
#: the longest text field of an input event: its names become message keys and Redis keys,
#: and a re-keyed event (key and value) must stay far below Kafka's message size limit (a
#: 600 KB exchange name made a 1.2 MB message that crashed route_inputs)
MAX_TEXT_CHARS = 256
NEW_YORK = ZoneInfo("America/New_York")


def is_session_close(t_ms: int) -> bool:
    """An index quote stamped exactly 16:00:00.000 New York time is the session's close (as the
    replay and the daily sources stamp them); any other quote is intraday."""
    moment = datetime.fromtimestamp(t_ms / 1000, UTC).astimezone(NEW_YORK)
    return moment.time() == time(16, 0)


#: the record of each input topic
INPUT_RECORDS: dict[str, type[Event]] = {
    "index-quotes": IndexQuote, "market-caps": MarketCap, "ticks": CryptoTick,
    "long-short-ratios": LongShortRatio, "netflows": ExchangeNetflow,
}


def decode_input(topic: str, raw: bytes | None) -> Event:
    """The validated record of a raw input event; SchemaError (with the reason) if invalid."""
    if topic not in INPUT_RECORDS:
        raise SchemaError(f"no route for topic {shown(topic)}")
    record = decode_event(INPUT_RECORDS[topic], raw)
    for name, value in record.asdict().items():
        if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
            raise SchemaError(f"field {name} is {len(value)} characters long; an input event "
                              f"allows at most {MAX_TEXT_CHARS}")
    return record


def series_observation(record: Event,
                       config: SignalSettings) -> tuple[str, str, float] | None:
    """(series, event_time, value) of an input record, None if no series uses it.

    Raises SchemaError for an unknown index symbol.
    """
    if isinstance(record, IndexQuote):
        quote = record
        if quote.symbol not in config.index_symbols:
            raise SchemaError(f"unknown index symbol {shown(quote.symbol)} "
                              f"(known: {', '.join(config.index_symbols)})")
        return quote.symbol, quote.event_time, quote.price
    if isinstance(record, MarketCap):
        cap = record
        series = cap.asset if cap.asset in config.aggregate_assets else f"{cap.asset}.MCAP"
        return series, cap.event_time, cap.market_cap
    if isinstance(record, CryptoTick):
        tick = record
        base = tick.symbol.split("/")[0]
        # a token may share an index's ticker (SPX6900 trades as SPX/USDT): never mix them
        if tick.exchange != config.reference_exchange or base in config.index_symbols:
            return None
        return base, tick.event_time, tick.price
    return None


def observation(kind: str, subject: str, record: Event, event_time: str) -> Observation:
    return Observation(kind=kind, subject=subject, event_time=event_time,
                       t_ms=to_ms(parse_utc(event_time)), event=record.asdict())


def tick_for_bars(key: bytes | None, raw: bytes | None) -> CryptoTick:
    """The validated tick of a ``ticks`` message, whose key must be its "exchange:symbol": the
    bars agent reads ``ticks`` directly and keeps each symbol's state in the partition the
    key hashes to, so a tick keyed otherwise would start a second, wrong state."""
    tick = decode_input("ticks", raw)
    assert isinstance(tick, CryptoTick)
    expected = f"{tick.exchange}:{tick.symbol}"
    if key != expected.encode():
        raise SchemaError(f"a tick's key must be exchange:symbol {expected!r}, got "
                          f"{shown(key.decode('utf-8', 'replace') if key else key)}")
    return tick


def market_routes(record: Event, config: SignalSettings) -> list[tuple[str, str, Event]]:
    """(agent, key, record) for the market-wide agents."""
    if isinstance(record, CryptoTick):
        tick = record
        base = tick.symbol.split("/")[0]
        if tick.exchange == config.reference_exchange and base not in config.index_symbols:
            return [("drawdown", MARKET_KEY, observation("price", base, tick, tick.event_time))]
        return []
    if isinstance(record, LongShortRatio):
        ratio = record
        return [("longshort", MARKET_KEY, observation(
            "long_short", f"{ratio.exchange}:{ratio.symbol}", ratio, ratio.event_time))]
    if isinstance(record, ExchangeNetflow):
        flow = record
        if abs(flow.netflow - (flow.inflow - flow.outflow)) > 1e-6 * max(
                1.0, flow.inflow + flow.outflow):
            raise SchemaError(f"netflow {flow.netflow} is not inflow - outflow "
                              f"({flow.inflow} - {flow.outflow})")
        return [("netflow", MARKET_KEY, observation(
            "netflow", f"{flow.exchange}:{flow.token}", flow, flow.event_time))]
    if isinstance(record, MarketCap):
        cap = record
        if cap.asset not in config.aggregate_assets and cap.rank is not None:
            return [("longshort", MARKET_KEY,
                     observation("market_cap", cap.asset, cap, cap.event_time))]
    return []


def route(topic: str, key: bytes | None, raw: bytes | None,
          config: SignalSettings) -> list[tuple[str, str, Event]]:
    """(agent, key, record) for every agent that uses this event: the pair agents
    ("correlation", "regime"; key = pair) and the others (see ``market_routes``). ``key`` is
    the message's; only a tick's is checked (``tick_for_bars``), the other agents re-key."""
    # once: every route reads the same record
    record = tick_for_bars(key, raw) if topic == "ticks" else decode_input(topic, raw)
    return record_routes(record, config)


def record_routes(record: Event, config: SignalSettings) -> list[tuple[str, str, Event]]:
    """``route`` of a record already validated."""
    routed = market_routes(record, config)
    observed = series_observation(record, config)
    if observed is None:
        return routed
    series, event_time, value = observed
    t_ms = to_ms(parse_utc(event_time))
    if isinstance(record, IndexQuote) and not is_session_close(t_ms):
        if series in (config.regime_index, config.regime_benchmark):
            pair = f"{config.regime_index}/{config.regime_benchmark}"
            routed.append(("regime", pair, SeriesPoint(
                pair=pair, series=series, role="intraday", event_time=event_time, t_ms=t_ms,
                value=value)))
        return routed

    def point(pair: str, role: str) -> SeriesPoint:
        return SeriesPoint(pair=pair, series=series, role=role, event_time=event_time,
                           t_ms=t_ms, value=value)

    for pair in config.correlation_pairs:
        anchor, other = pair.split("~")
        if series in (anchor, other):
            routed.append(("correlation", pair,
                           point(pair, "anchor" if series == anchor else "other")))
    if series in (config.regime_index, config.regime_benchmark):
        pair = f"{config.regime_index}/{config.regime_benchmark}"
        routed.append(("regime", pair, point(pair, "anchor" if series == config.regime_index
                                             else "other")))
    return routed
