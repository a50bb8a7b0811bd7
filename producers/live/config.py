"""The YAML file of ``altseason produce live --config FILE``: the Kafka sink and the sources.

::

    kafka:                        # all optional
      queue_size: 10000           # records buffered between the sources and Kafka
      linger_ms: 20
      compression: null           # gzip, snappy, lz4 or zstd
      dedupe_size: 200000         # recent dedupe keys remembered
      flush_timeout_seconds: 30   # on shutdown
    status_interval_seconds: 30
    sources:
      - {type: binance_ws, name: binance-spot, market: spot, symbols: [BTC/USDT]}

Where Kafka is (``KAFKA_BOOTSTRAP_SERVERS``) and the topic prefix come from the usual settings
(``foundation.config.load_settings``), not from this file. Credentials are only ever named, as
environment variables (``api_key_env: FINNHUB_KEY``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from foundation.config import read_yaml_mapping
from foundation.errors import ConfigError
from producers.live.core import Source, SourceConfig

COMPRESSIONS = ("gzip", "snappy", "lz4", "zstd")


@dataclass(frozen=True)
class SinkConfig:
    """How records go to Kafka (``kafka:`` in the file)."""

    #: records buffered between the sources and the producer; a full queue blocks the sources
    queue_size: int = 10_000
    linger_ms: int = 20
    compression: str | None = None
    #: how many recent dedupe keys (e.g. "binance:BTC/USDT:123") are remembered
    dedupe_size: int = 200_000
    #: how long shutdown waits for queued records to be acknowledged
    flush_timeout_seconds: float = 30.0


@dataclass(frozen=True)
class LiveConfig:
    sink: SinkConfig = field(default_factory=SinkConfig)
    status_interval_seconds: float = 30.0
    sources: tuple[Source, ...] = ()


def parse_sink(data: Any) -> SinkConfig:
    cfg = SourceConfig(data if data is not None else {}, "kafka")
    sink = SinkConfig(
        queue_size=cfg.integer("queue_size", SinkConfig.queue_size, minimum=1),
        linger_ms=cfg.integer("linger_ms", SinkConfig.linger_ms, minimum=0, maximum=60_000),
        compression=cfg.optional_text("compression", COMPRESSIONS),
        dedupe_size=cfg.integer("dedupe_size", SinkConfig.dedupe_size, minimum=1),
        flush_timeout_seconds=cfg.number("flush_timeout_seconds",
                                         SinkConfig.flush_timeout_seconds, minimum=0),
    )
    cfg.finish()
    return sink


def parse_sources(items: Any) -> tuple[Source, ...]:
    """Build each ``sources[i]`` with its type's factory; names must be unique."""
    from producers.live.registry import SOURCE_TYPES

    if not isinstance(items, list) or not items:
        raise ConfigError("sources: must be a non-empty list of sources")
    sources: list[Source] = []
    for i, item in enumerate(items):
        where = f"sources[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where}: must be a mapping with at least type and name")
        kind = item.get("type")
        if kind not in SOURCE_TYPES:
            raise ConfigError(f"{where}.type: {kind!r} is not one of "
                              f"{', '.join(sorted(SOURCE_TYPES))}")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}.name: required, non-empty text")
        if any(s.name == name for s in sources):
            raise ConfigError(f"{where}.name: {name!r} is used by another source")
        sources.append(SOURCE_TYPES[kind](item, where))
    return tuple(sources)


def load_live_config(path: str | os.PathLike[str]) -> LiveConfig:
    """Read, validate and build everything; ConfigError names the bad field."""
    data = read_yaml_mapping(path, "live config")
    known = ("kafka", "status_interval_seconds", "sources")
    for key in data:
        if key not in known:
            raise ConfigError(f"{key}: unknown field (known: {', '.join(known)})")
    interval = data.get("status_interval_seconds", LiveConfig.status_interval_seconds)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        raise ConfigError(f"status_interval_seconds: {interval!r} must be a number > 0")
    return LiveConfig(sink=parse_sink(data.get("kafka")),
                      status_interval_seconds=float(interval),
                      sources=parse_sources(data.get("sources")))
