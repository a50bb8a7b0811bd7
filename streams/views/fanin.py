"""Fan-in in event time: a view fed by several sources (coins, exchanges, score components)
applies their events in event-time order, whatever the pace at which each source arrives.

Each source's events must come in time order (its own key and partition upstream). An event
is held until every active source has passed its time, then applied in (time, source) order;
so two replays of the same data apply the same sequence, fast or slow. A source that has
said nothing for ``fan_in_max_wait_seconds`` (the worker's clock, ``agents/driver.py``) is
declared idle by an ``idle`` event and holds nothing back until it speaks again; an event of
it older than what was applied meanwhile is applied when it comes (live, a late event).

State, in the view's own table: "fanin" -> {source: {"progress": newest time, "head",
"tail": its queue's bounds, "idle"}}, and one key per held event, "fanin|<source>|<n>", so
holding or releasing one event writes one small entry whatever the backlog.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from foundation.config import SignalSettings
from foundation.errors import EventOrderError, SchemaError
from schemas.records import Observation
from schemas.redis_layout import ViewUpdate
from streams.order import check_newer
from streams.views.step import DELETE, Changes, Outputs, Overlay, ViewStep

META_KEY = "fanin"
#: an observation that only says how far its source has got (no value to apply)
PROGRESS = "progress"
#: the clock's observation: these sources are idle (``event["sources"]``)
IDLE = "idle"


def idle_event(sources: list[str]) -> Observation:
    return Observation(kind=IDLE, subject="", event_time="1970-01-01T00:00:00.000Z", t_ms=0,
                       event={"sources": sorted(sources)})


def held(state: Mapping[str, Any]) -> dict[str, int]:
    """Per source, how many of its events are held (for the clock and the metrics)."""
    meta = state.get(META_KEY) or {}
    return {source: s["tail"] - s["head"] for source, s in meta.items()}


def active_sources(state: Mapping[str, Any]) -> list[str]:
    return [source for source, s in (state.get(META_KEY) or {}).items() if not s["idle"]]


def fan_in(step: ViewStep, source_of: Callable[[Observation], str], *, strict: bool = True,
           expected: Callable[[SignalSettings], Iterable[str]] | None = None) -> ViewStep:
    """``step`` fed in event-time order. ``strict``: a source never sends two events of one
    time (so an event at the watermark is final); else one at the watermark waits for the
    next. ``expected``: sources that hold everything back from the start, until they speak or
    are idle (without it, a source counts from its first event, and one that first speaks
    after the others have passed its time is late)."""

    def apply(state: Mapping[str, Any], observation: Observation,
              config: SignalSettings) -> tuple[Changes, Outputs]:
        meta = {source: dict(s) for source, s in (state.get(META_KEY) or {}).items()}
        if not meta and expected is not None:
            meta = {source: {"progress": None, "head": 0, "tail": 0, "idle": False}
                    for source in expected(config)}
        changes: Changes = {}
        if observation.kind == IDLE:
            for source in observation.event["sources"]:
                if source in meta:
                    meta[source]["idle"] = True
        else:
            source = source_of(observation)
            t_ms = observation.t_ms
            seen = meta.get(source)
            if seen is None:
                seen = meta[source] = {"progress": t_ms, "head": 0, "tail": 0, "idle": False}
            else:
                check_newer(source, t_ms, seen["progress"], allow_equal=not strict)
            seen.update(progress=t_ms, idle=False)
            if observation.kind != PROGRESS:
                changes[f"{META_KEY}|{source}|{seen['tail']}"] = observation.asdict()
                seen["tail"] += 1
        out = release(step, Overlay(state, changes), meta, changes, config, strict)
        changes[META_KEY] = meta
        return changes, out

    def views_of(state: Mapping[str, Any], key: str,
                 config: SignalSettings) -> list[ViewUpdate]:
        return [] if key.startswith(META_KEY) else step.views_of(state, key, config)

    return dataclasses.replace(step, apply=apply, views_of=views_of, fan_in_source=source_of)


def release(step: ViewStep, view: Overlay, meta: dict[str, dict[str, Any]], changes: Changes,
            config: SignalSettings, strict: bool) -> Outputs:
    """Apply the held events that no active source can precede any more, oldest first."""
    out = Outputs()
    progress = [-math.inf if s["progress"] is None else s["progress"]
                for s in meta.values() if not s["idle"]]
    watermark = min(progress, default=math.inf)
    heads: dict[str, dict[str, Any]] = {}
    while True:
        for source, s in meta.items():
            if source not in heads and s["head"] < s["tail"]:
                heads[source] = view[f"{META_KEY}|{source}|{s['head']}"]
        ready = [(entry["t_ms"], source) for source, entry in heads.items()
                 if entry["t_ms"] < watermark or (strict and entry["t_ms"] == watermark)]
        if not ready:
            return out
        _, source = min(ready)
        entry = heads.pop(source)
        changes[f"{META_KEY}|{source}|{meta[source]['head']}"] = DELETE
        meta[source]["head"] += 1
        observation = Observation(**entry)
        try:
            applied, caused = step.apply(view, observation, config)
        except (EventOrderError, SchemaError, ValueError) as exc:
            out.rejected.append((observation, str(exc)))
            continue
        changes.update(applied)
        out.add(caused)
