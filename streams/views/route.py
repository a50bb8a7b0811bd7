"""Route: validate every input event (but ticks) and send it, re-keyed, to the steps that use
it (``streams.routing``). Both series of a pair meet in one partition (key = pair), the
market-wide views get one key each, so every table entry has exactly one owner."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from foundation.config import SignalSettings
from streams.routing import route
from streams.views.step import Changes, Outputs, Route


class RawInput(NamedTuple):
    """A message of a public input topic, as read: topic name (without the prefix), key,
    value, and its (partition, offset)."""

    topic: str
    key: bytes | None
    value: bytes | None
    position: tuple[int, int] | None = None


def apply(state: Mapping[str, Any], event: RawInput,
          config: SignalSettings) -> tuple[Changes, Outputs]:
    """SchemaError (dead-lettered) for an invalid event."""
    routes = route(event.topic, event.key, event.value, config)
    return {}, Outputs(routes=[Route(step, key, record) for step, key, record in routes])


def views_of(state: Mapping[str, Any], key: str, config: SignalSettings) -> list[Any]:
    return []
