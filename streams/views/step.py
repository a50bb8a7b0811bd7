"""What a view is: a pure step over its state and one event.

``apply(state, event, config) -> (changes, outputs)``: ``state`` is the view's table, read
only (key -> JSON-able value); ``changes`` are the keys the event sets (``None`` deletes one);
``outputs`` everything else it causes. The worker's one driver (``agents/driver.py``) sends the
outputs, waits for the broker where the guarantee needs it, writes the Redis views and writes
the changes last; the offline pipeline (``streams/pipeline.py``) applies the same steps in
event-time order. A step raises ``EventOrderError``, ``SchemaError`` or ``ValueError`` for an
event it rejects (the driver dead-letters it), and then changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from foundation.config import SignalSettings
from schemas.records import Bar, Signal
from schemas.redis_layout import ViewUpdate
from streams.routing import MARKET_KEY

__all__ = ["DELETE", "MARKET_KEY", "Changes", "Outputs", "Overlay", "Route", "ViewStep"]

#: a change that deletes its key
DELETE = None


class Route(NamedTuple):
    """An event for another step: its name, the key to partition by, the record."""

    step: str
    key: str
    record: Any


@dataclass
class Outputs:
    """What one event causes besides its state changes."""

    #: to the ``signals`` topic and Redis; acknowledged by the broker before the state write
    signals: list[Signal] = field(default_factory=list)
    #: closed bars to the ``bars`` topic; acknowledged before the state write
    bars: list[Bar] = field(default_factory=list)
    #: Redis views
    views: list[ViewUpdate] = field(default_factory=list)
    #: events for other steps (through their internal topics)
    routes: list[Route] = field(default_factory=list)
    #: events rejected while the step goes on (a late tick, which still reaches the series
    #: steps; an event a fan-in released): (record, reason), dead-lettered
    rejected: list[tuple[Any, str]] = field(default_factory=list)

    def add(self, other: Outputs) -> None:
        self.signals += other.signals
        self.bars += other.bars
        self.views += other.views
        self.routes += other.routes
        self.rejected += other.rejected


Changes = dict[str, Any]
Apply = Callable[[Mapping[str, Any], Any, SignalSettings], tuple[Changes, Outputs]]


@dataclass(frozen=True)
class ViewStep:
    """A view, as the worker, the offline pipeline and the rebuild need it."""

    #: the agent's name, also the ``source`` of its dead letters
    name: str
    #: its input topics: public ones (``ticks``), or one internal one (``<app_id>-<name>``)
    topics: tuple[str, ...]
    internal: bool
    #: the record type of an internal topic's messages (None: raw bytes)
    record: type | None
    #: the table holding its state
    table: str
    apply: Apply
    #: the Redis views of one table entry (state, key), to rebuild them after a flush
    views_of: Callable[[Mapping[str, Any], str, SignalSettings], list[ViewUpdate]]
    #: its input topic's partitions (None: ``topic_partitions``)
    partitions: int | None = None
    #: a fan-in's source of an event (``streams.views.fanin``); None: not a fan-in
    fan_in_source: Callable[[Any], str] | None = None


class Overlay(Mapping[str, Any]):
    """A table as seen after some changes not yet written: reads see them (``None`` = gone)."""

    def __init__(self, base: Mapping[str, Any], changes: Changes) -> None:
        self.base = base
        self.changes = changes

    def __getitem__(self, key: str) -> Any:
        if key in self.changes:
            value = self.changes[key]
            if value is DELETE:
                raise KeyError(key)
            return value
        return self.base[key]

    def __iter__(self) -> Iterator[str]:
        for key in self.base:
            if key not in self.changes:
                yield key
        for key, value in self.changes.items():
            if value is not DELETE:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, key: object) -> bool:
        if key in self.changes:
            return self.changes[key] is not DELETE
        return key in self.base


def with_prefix(state: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The entries whose key starts with ``prefix``, keyed by the rest of the key."""
    return {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
