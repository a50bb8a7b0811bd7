"""The fan-in applies its sources' events in event-time order, whatever order they come in;
and so the offline pipeline gives the same signals however its input topics interleave."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from foundation.config import Settings, SignalSettings
from foundation.errors import EventOrderError
from producers.replay import load_replay
from schemas.records import Observation
from streams.pipeline import OfflinePipeline
from streams.views.fanin import active_sources, fan_in, held, idle_event
from streams.views.step import DELETE, Changes, Outputs, ViewStep

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Settings().signals


def record_order(state: Mapping[str, Any], event: Observation,
                 config: SignalSettings) -> tuple[Changes, Outputs]:
    """A step that only appends what it is given to a list, to see the order applied."""
    return {"applied": [*state.get("applied", []), [event.subject, event.t_ms]]}, Outputs()


def step(**kwargs: Any) -> ViewStep:
    return fan_in(ViewStep("log", ("log-points",), True, Observation, "log", record_order,
                           lambda state, key, config: []),
                  lambda event: event.subject, **kwargs)


def observation(source: str, t_ms: int) -> Observation:
    return Observation(kind="value", subject=source, event_time="2024-01-01T00:00:00.000Z",
                       t_ms=t_ms, event={})


def run(view: ViewStep, events: list[Observation]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for event in events:
        changes, _ = view.apply(table, event, CONFIG)
        for key, value in changes.items():
            if value is DELETE:
                table.pop(key, None)  # held and released by the same event
            else:
                table[key] = value
    return table


def test_events_are_applied_in_time_order_once_every_source_has_passed_them() -> None:
    view = step(expected=lambda config: ["a", "b"])
    table = run(view, [observation("a", 10), observation("a", 30), observation("b", 20)])
    # b has reached 20: a's 10 and b's 20 are final, a's 30 waits for b
    assert table["applied"] == [["a", 10], ["b", 20]]
    assert held(table) == {"a": 1, "b": 0}
    table = run(view, [observation("b", 20), observation("a", 10), observation("a", 30)])
    assert table["applied"] == [["a", 10], ["b", 20]]


def test_a_source_counts_from_its_first_event_unless_expected() -> None:
    table = run(step(), [observation("a", 10), observation("a", 30), observation("b", 20)])
    assert table["applied"] == [["a", 10], ["a", 30], ["b", 20]]  # b came late


def test_an_idle_source_holds_nothing_back_until_it_speaks_again() -> None:
    events = [observation("a", 10), observation("b", 5), observation("a", 30),
              observation("a", 40), idle_event(["b"])]
    table = run(step(expected=lambda config: ["a", "b"]), events)
    assert table["applied"] == [["b", 5], ["a", 10], ["a", 30], ["a", 40]]
    assert active_sources(table) == ["a"]


def test_expected_sources_hold_back_from_the_start() -> None:
    view = step(expected=lambda config: ["a", "b"])
    table = run(view, [observation("a", 10), observation("a", 20)])
    assert "applied" not in table and held(table) == {"a": 2, "b": 0}
    table = run(view, [observation("a", 10), observation("a", 20), idle_event(["b"])])
    assert table["applied"] == [["a", 10], ["a", 20]]


def test_a_source_event_not_newer_than_its_last_is_rejected() -> None:
    view = step()
    table = run(view, [observation("a", 10)])
    with pytest.raises(EventOrderError, match="not newer than"):
        view.apply(table, observation("a", 10), CONFIG)
    lenient = step(strict=False)  # the score: a component may say the same time again
    table = run(lenient, [observation("a", 10), observation("a", 10), observation("b", 11),
                          observation("a", 12)])
    assert table["applied"] == [["a", 10], ["a", 10]]


def test_the_pipeline_gives_the_same_signals_however_its_topics_interleave() -> None:
    events = load_replay(ROOT / "data" / "replay", since=date(2024, 6, 1))
    config = Settings(signals=SignalSettings(ath_min_history_days=0)).signals

    def signals(ordered: list) -> dict[str, tuple]:
        pipeline = OfflinePipeline(config)
        for event in ordered:
            pipeline.feed(event.topic, event.key.encode(), event.record.dumps())
        pipeline.finish()
        return {s.id: (s.value, s.message) for s in pipeline.signals}

    in_time = signals(events)
    # one topic after another (each in its own order), as a worker may read a backlog
    by_topic = signals(sorted(events, key=lambda e: e.topic))
    assert in_time == by_topic
    assert len(in_time) > 50
