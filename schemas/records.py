"""The versioned event records of every topic: the contract with producers and consumers.

Each record lists its fields with types; ``constraints`` adds what a type cannot say (enums,
bounds, formats). The same declarations generate the JSON Schema files in ``schemas/json/``
and drive the validator in ``schemas.decode``. Change a record only with a version bump.
"""

from __future__ import annotations

from typing import Any, ClassVar

import faust

SCHEMA_VERSION = 1

DATE_TIME = {"format": "date-time"}
POSITIVE = {"exclusiveMinimum": 0}
NON_NEGATIVE = {"minimum": 0}


class Event(faust.Record, abstract=True, include_metadata=False, serializer="json"):
    """Base of every topic's record: plain JSON, no Faust metadata, so any language reads it."""

    #: JSON Schema title and description, and per-field constraints
    description: ClassVar[str] = ""
    constraints: ClassVar[dict[str, dict[str, Any]]] = {}


class CryptoTick(Event):
    """One trade (or a daily close, for replays) on a crypto exchange. Key: "exchange:symbol"."""

    description = "A trade on a crypto exchange, normalised (ccxt unified symbols)."
    constraints = {
        "exchange": {"minLength": 1},
        "symbol": {"pattern": r"^[A-Z0-9]+/[A-Z0-9]+(:[A-Z0-9]+)?$"},
        "event_time": DATE_TIME,
        "price": POSITIVE,
        "amount": NON_NEGATIVE,
        "side": {"enum": ["buy", "sell", "unknown"]},
        "schema_version": {"const": SCHEMA_VERSION},
    }

    exchange: str
    symbol: str
    event_time: str
    price: float
    amount: float
    side: str
    trade_id: str
    schema_version: int = SCHEMA_VERSION


class CryptoTicker(Event):
    """Best bid/ask, mark price or ticker of a crypto market. Key: "exchange:symbol".

    ``kind`` says which fields are set: "book" (bid, ask), "mark" (mark_price, funding_rate),
    "ticker" (any of bid, ask, last).
    """

    description = "Best bid/ask, mark price and funding, or ticker of a crypto market."
    constraints = {
        "exchange": {"minLength": 1},
        "symbol": {"pattern": r"^[A-Z0-9]+/[A-Z0-9]+(:[A-Z0-9]+)?$"},
        "event_time": DATE_TIME,
        "kind": {"enum": ["book", "mark", "ticker"]},
        "bid": NON_NEGATIVE,
        "ask": NON_NEGATIVE,
        "last": POSITIVE,
        "mark_price": POSITIVE,
        "schema_version": {"const": SCHEMA_VERSION},
    }

    exchange: str
    symbol: str
    event_time: str
    kind: str
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    mark_price: float | None = None
    funding_rate: float | None = None
    schema_version: int = SCHEMA_VERSION


class IndexQuote(Event):
    """A level of an equity index or its ETF proxy (RUT, SPX, IWM, SPY). Key: symbol."""

    description = "An equity index level or ETF proxy price, with its source."
    constraints = {
        "symbol": {"pattern": r"^[A-Z0-9.^]+$"},
        "event_time": DATE_TIME,
        "price": POSITIVE,
        "source": {"minLength": 1},
        "schema_version": {"const": SCHEMA_VERSION},
    }

    symbol: str
    event_time: str
    price: float
    source: str
    schema_version: int = SCHEMA_VERSION


class MarketCap(Event):
    """Market capitalisation of the whole crypto market (asset "TOTAL") or of one coin.

    Key: asset.
    """

    description = "Crypto market capitalisation in USD: the total (asset TOTAL) or one coin."
    constraints = {
        "asset": {"pattern": r"^[A-Z0-9]+$"},
        "event_time": DATE_TIME,
        "market_cap": POSITIVE,
        "rank": {"minimum": 1},
        "volume_24h": NON_NEGATIVE,
        "source": {"minLength": 1},
        "schema_version": {"const": SCHEMA_VERSION},
    }

    asset: str
    event_time: str
    market_cap: float
    source: str
    rank: int | None = None
    volume_24h: float | None = None
    schema_version: int = SCHEMA_VERSION


class LongShortRatio(Event):
    """A long/short ratio of one variant on one exchange. Key: "exchange:symbol"."""

    description = "A long/short ratio snapshot (accounts, top traders or taker volume)."
    constraints = {
        "event_time": DATE_TIME,
        "period": {"enum": ["5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d"]},
        "variant": {"enum": ["global_account", "top_account", "top_position", "taker_volume"]},
        "long_share": {"minimum": 0, "maximum": 1},
        "short_share": {"minimum": 0, "maximum": 1},
        "ratio": NON_NEGATIVE,
        "schema_version": {"const": SCHEMA_VERSION},
    }

    exchange: str
    symbol: str
    event_time: str
    period: str
    variant: str
    long_share: float
    short_share: float
    ratio: float
    schema_version: int = SCHEMA_VERSION


class ExchangeNetflow(Event):
    """Tokens sent to (inflow) and withdrawn from (outflow) an exchange over a window.

    Key: "exchange:token". netflow = inflow - outflow: negative is accumulation.
    """

    description = "Exchange inflow, outflow and netflow of a token over a window."
    constraints = {
        "event_time": DATE_TIME,
        "window": {"enum": ["1h", "1d"]},
        "inflow": NON_NEGATIVE,
        "outflow": NON_NEGATIVE,
        "schema_version": {"const": SCHEMA_VERSION},
    }

    exchange: str
    token: str
    event_time: str
    window: str
    inflow: float
    outflow: float
    netflow: float
    schema_version: int = SCHEMA_VERSION


class Signal(Event):
    """A fired signal. Key: subject. ``id`` is a UUID5 of (type, subject, event_time)."""

    description = "A signal fired by altseason, with the evidence behind it."
    constraints = {
        "id": {"format": "uuid"},
        "type": {
            "enum": ["index_ath", "outperformance_streak", "risk_on_rotation",
                     "correlation_regime", "long_crowding", "netflow_accumulation",
                     "netflow_distribution", "altseason_score"],
        },
        "event_time": DATE_TIME,
        "emitted_at": DATE_TIME,
        "severity": {"enum": ["info", "notice", "warning"]},
        "schema_version": {"const": SCHEMA_VERSION},
    }

    id: str
    type: str
    subject: str
    event_time: str
    emitted_at: str
    severity: str
    value: float
    message: str
    evidence: dict
    schema_version: int = SCHEMA_VERSION


class Bar(Event):
    """A closed OHLCV bar of one symbol's trades. Key: "exchange:symbol"."""

    description = "An OHLCV bar of trades over [start, end), closed by event time."
    constraints = {
        "interval": {"enum": ["1m", "5m", "15m", "1h", "4h", "1d"]},
        "start": DATE_TIME,
        "end": DATE_TIME,
        "open": POSITIVE,
        "high": POSITIVE,
        "low": POSITIVE,
        "close": POSITIVE,
        "volume": NON_NEGATIVE,
        "trades": {"minimum": 1},
        "schema_version": {"const": SCHEMA_VERSION},
    }

    exchange: str
    symbol: str
    interval: str
    start: str
    end: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int
    schema_version: int = SCHEMA_VERSION


class DeadLetter(Event):
    """A rejected input event, with why and where it came from. Key: the source topic."""

    description = "An input event altseason rejected, with the reason."
    constraints = {
        "failed_at": DATE_TIME,
        "schema_version": {"const": SCHEMA_VERSION},
    }

    topic: str
    partition: int
    offset: int
    key: str | None
    payload: str
    reason: str
    source: str
    failed_at: str
    schema_version: int = SCHEMA_VERSION


class SeriesPoint(Event):
    """One observation of a named series, routed to the agent that owns its pair.

    Internal (Faust-managed topic), key: pair. ``role`` is "anchor" or "other".
    """

    description = "Internal: a series observation routed to a pair's partition."
    constraints = {"event_time": DATE_TIME,
                   "role": {"enum": ["anchor", "other", "intraday"]}}

    pair: str
    series: str
    role: str
    event_time: str
    t_ms: int
    value: float
    schema_version: int = SCHEMA_VERSION


class Observation(Event):
    """An input event routed to an agent that needs a market-wide view. Internal, key: view.

    ``kind`` names the record in ``event`` ("long_short", "market_cap", "price", "netflow").
    """

    description = "Internal: a validated input event routed to a cross-sectional agent."
    constraints = {"event_time": DATE_TIME}

    kind: str
    subject: str
    event_time: str
    t_ms: int
    event: dict
    schema_version: int = SCHEMA_VERSION


class ScoreComponent(Event):
    """One component of the altseason score, sent by the agent that computes it. Internal."""

    description = "Internal: a new raw value of one altseason score component."
    constraints = {"event_time": DATE_TIME}

    component: str
    event_time: str
    t_ms: int
    raw: float
    detail: dict
    schema_version: int = SCHEMA_VERSION


class FundingRate(Event):
    """The funding rate a perpetual swap's exchange quotes now. Key: "exchange:symbol".

    ``funding_rate`` is a fraction per funding interval (0.0001 = 0.01 % per 8 h), paid by
    longs to shorts when positive, settled at ``next_funding_time``.
    """

    description = "The current funding rate of a perpetual swap, per funding interval."
    constraints = {
        "exchange": {"minLength": 1},
        "symbol": {"pattern": r"^[A-Z0-9]+/[A-Z0-9]+(:[A-Z0-9]+)?$"},
        "event_time": DATE_TIME,
        "funding_rate": {"minimum": -1, "maximum": 1},
        "next_funding_time": DATE_TIME,
        "interval": {"pattern": r"^[0-9]+h$"},
        "mark_price": POSITIVE,
        "index_price": POSITIVE,
        "schema_version": {"const": SCHEMA_VERSION},
    }

    exchange: str
    symbol: str
    event_time: str
    funding_rate: float
    next_funding_time: str | None = None
    interval: str | None = None
    mark_price: float | None = None
    index_price: float | None = None
    schema_version: int = SCHEMA_VERSION


class OpenInterest(Event):
    """Open contracts of a derivatives market. Key: "exchange:symbol".

    ``open_interest`` is in base-currency units (contracts times contract size, as ccxt's
    ``openInterestAmount``); ``open_interest_value`` in the quote currency, when quoted.
    """

    description = "Open interest of a derivatives market, in base units and quote value."
    constraints = {
        "exchange": {"minLength": 1},
        "symbol": {"pattern": r"^[A-Z0-9]+/[A-Z0-9]+(:[A-Z0-9]+)?$"},
        "event_time": DATE_TIME,
        "open_interest": NON_NEGATIVE,
        "open_interest_value": NON_NEGATIVE,
        "schema_version": {"const": SCHEMA_VERSION},
    }

    exchange: str
    symbol: str
    event_time: str
    open_interest: float
    open_interest_value: float | None = None
    schema_version: int = SCHEMA_VERSION
