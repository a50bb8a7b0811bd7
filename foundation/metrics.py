"""Prometheus metrics of altseason's own work (Faust's sensor adds the stream metrics).

Names are stable contracts for dashboards and alerts (README "Deploy": metrics). Counters
live in the default registry of the process that increments them: the worker's agents, or
the live producer (its per-source counters are collected from ``SourceStats`` at scrape time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from prometheus_client import Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class SourceCounters(Protocol):
    """A live source's counters (``producers.live.core.SourceStats``)."""

    def as_dict(self) -> dict[str, int]: ...

SIGNALS_EMITTED = Counter("altseason_signals_emitted", "Signals sent to the signals topic",
                          ["type"])
DEAD_LETTERS = Counter("altseason_dead_letters", "Events parked on the dead-letter topic",
                       ["topic", "source"])
REDIS_WRITE_ERRORS = Counter("altseason_redis_write_errors",
                             "Failed writes of the Redis view (processing went on)",
                             ["operation"])
REDIS_REBUILDS = Counter("altseason_redis_rebuilds", "Rebuilds of the Redis view from tables")
TABLE_KEYS = Gauge("altseason_table_keys", "Keys held by this worker per table", ["table"])
FAN_IN_HELD = Gauge("altseason_fan_in_held",
                    "Events a fan-in view holds until every source has passed their time",
                    ["view"])
CONSUMER_LAG = Gauge("altseason_consumer_lag",
                     "Messages not yet processed (high watermark - position)",
                     ["topic", "partition"])


class SourceStatsCollector(Collector):
    """The live producer's per-source counters and its queue, read when scraped."""

    def __init__(self, sources: Callable[[], Iterable[tuple[str, SourceCounters]]],
                 queue: Callable[[], tuple[int, int]]) -> None:
        self.sources = sources
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        families: dict[str, CounterMetricFamily] = {}
        for name, stats in self.sources():
            for field, value in stats.as_dict().items():
                family = families.get(field)
                if family is None:
                    family = families[field] = CounterMetricFamily(
                        f"altseason_producer_{field}", f"Live producer: {field} per source",
                        labels=["source"])
                family.add_metric([name], value)
        yield from families.values()
        pending, capacity = self.queue()
        yield GaugeMetricFamily("altseason_producer_queue_pending",
                                "Records waiting for Kafka in the producer's queue",
                                value=pending)
        yield GaugeMetricFamily("altseason_producer_queue_capacity",
                                "Capacity of the producer's queue (full = backpressure)",
                                value=capacity)
