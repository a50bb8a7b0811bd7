"""The worker's steps without Kafka, Redis or Faust: input events in event-time order go
through the same ``streams.views`` steps, each route applied at once. The report runs on it,
and tests compare it with the worker's ``signals`` topic, id for id."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from foundation.config import SignalSettings
from foundation.errors import EventOrderError, SchemaError
from schemas.records import Signal
from streams.views.fanin import active_sources, idle_event
from streams.views.registry import ROUTE_TARGETS, STEP_BY_NAME, STEPS
from streams.views.route import RawInput
from streams.views.step import DELETE, Outputs, ViewStep

#: called with (step name, the record it applied, what it caused)
Observer = Callable[[str, Any, Outputs], None]


class OfflinePipeline:
    """Feed it input messages in event-time order, then ``finish()`` at the end of input."""

    def __init__(self, config: SignalSettings, observer: Observer | None = None) -> None:
        self.config = config
        self.observer = observer
        #: step name -> its table
        self.tables: dict[str, dict[str, Any]] = {step.name: {} for step in STEPS}
        self.signals: list[Signal] = []
        #: rejected events per step (as the worker would dead-letter them)
        self.dead_letters: Counter[str] = Counter()

    def feed(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        """One message of a public input topic (name without the prefix)."""
        step = STEP_BY_NAME["build_bars" if topic == "ticks" else "route_inputs"]
        self.run(step, RawInput(topic, key, value))

    def finish(self) -> None:
        """End of input: every fan-in's sources are idle, so what they hold is applied (as the
        worker does once they have been silent for ``fan_in_max_wait_seconds``)."""
        for step in STEPS:
            sources = active_sources(self.tables[step.name])
            if sources:
                self.run(step, idle_event(sources))

    def run(self, step: ViewStep, record: Any) -> None:
        table = self.tables[step.name]
        try:
            changes, outputs = step.apply(table, record, self.config)
        except (EventOrderError, SchemaError, ValueError):
            self.dead_letters[step.name] += 1
            return
        for key, value in changes.items():
            if value is DELETE:
                table.pop(key, None)
            else:
                table[key] = value
        if outputs.rejected:
            self.dead_letters[step.name] += len(outputs.rejected)
        self.signals += outputs.signals
        if self.observer:
            self.observer(step.name, record, outputs)
        for route in outputs.routes:
            self.run(STEP_BY_NAME[ROUTE_TARGETS[route.step]], route.record)
