"""The public topics: name (before ``topic_prefix``), key, partitions, record. One place."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.records import (
    CryptoTick,
    DeadLetter,
    Event,
    ExchangeNetflow,
    IndexQuote,
    LongShortRatio,
    MarketCap,
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
    TopicSpec("index-quotes", "symbol", 3, IndexQuote, "equity index levels"),
    TopicSpec("market-caps", "asset", 3, MarketCap, "total and per-coin market caps"),
    TopicSpec("long-short-ratios", "exchange:symbol", 3, LongShortRatio, "long/short ratios"),
    TopicSpec("netflows", "exchange:token", 3, ExchangeNetflow, "exchange netflows"),
    TopicSpec("signals", "subject", 3, Signal, "fired signals"),
    TopicSpec("deadletter", "source topic", 1, DeadLetter, "rejected input events"),
)
#: the topics the worker consumes today
INPUT_TOPICS: tuple[str, ...] = ("ticks", "index-quotes", "market-caps")


#: the worker's repartition topics, created by Faust and named after the app id
INTERNAL_TOPICS: tuple[str, ...] = ("correlation-points", "regime-points")


def internal_topic(app_id: str, name: str) -> str:
    return f"{app_id}-{name}"


def topic_spec(name: str) -> TopicSpec:
    return next(spec for spec in TOPICS if spec.name == name)
