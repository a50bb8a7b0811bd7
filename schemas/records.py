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
            "enum": ["index_ath", "outperformance_streak", "correlation_regime"],
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
    constraints = {"event_time": DATE_TIME, "role": {"enum": ["anchor", "other"]}}

    pair: str
    series: str
    role: str
    event_time: str
    t_ms: int
    value: float
    schema_version: int = SCHEMA_VERSION
