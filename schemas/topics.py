"""The public topics: name (before ``topic_prefix``), key, partitions, record. One place."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.records import (
    Bar,
    CryptoTick,
    CryptoTicker,
    DeadLetter,
    Event,
    ExchangeNetflow,
    FundingRate,
    IndexQuote,
    LongShortRatio,
    MarketCap,
    OpenInterest,
    Signal,
)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    partitions: int
    record: type[Event]
    description: str


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("ticks", "exchange:symbol", 6, CryptoTick, "crypto trades"),
    TopicSpec("tickers", "exchange:symbol", 6, CryptoTicker,
              "crypto best bid/ask, mark prices and funding, tickers"),
    TopicSpec("index-quotes", "symbol", 3, IndexQuote, "equity index levels"),
    TopicSpec("market-caps", "asset", 3, MarketCap, "total and per-coin market caps"),
    TopicSpec("long-short-ratios", "exchange:symbol", 3, LongShortRatio, "long/short ratios"),
    TopicSpec("netflows", "exchange:token", 3, ExchangeNetflow, "exchange netflows"),
    TopicSpec("funding-rates", "exchange:symbol", 3, FundingRate, "perpetual swap funding rates"),
    TopicSpec("open-interest", "exchange:symbol", 3, OpenInterest, "derivatives open interest"),
    TopicSpec("bars", "exchange:symbol", 6, Bar, "closed OHLCV bars (1m, 1h, 1d)"),
    TopicSpec("signals", "subject", 3, Signal, "fired signals"),
    TopicSpec("deadletter", "source topic", 1, DeadLetter, "rejected input events"),
)
#: the topics the worker consumes today
INPUT_TOPICS: tuple[str, ...] = (
    "ticks", "index-quotes", "market-caps", "long-short-ratios", "netflows",
)


def internal_topic(app_id: str, name: str) -> str:
    """A worker's internal topic (``streams.views.registry.INTERNAL_TOPICS``): Faust creates
    them, named after the app id."""
    return f"{app_id}-{name}"


def topic_spec(name: str) -> TopicSpec:
    return next(spec for spec in TOPICS if spec.name == name)
