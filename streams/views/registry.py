"""Every view, once: the worker runs one agent per step, the offline pipeline and the Redis
rebuild go through the same list. A new view is one module with ``apply`` and ``views_of``
and one line here (``docs/architecture.md``)."""

from __future__ import annotations

from schemas.records import Observation, SeriesPoint
from schemas.topics import INPUT_TOPICS, topic_spec
from streams.views import bars, correlation, drawdown, longshort, netflow, regime, route, score
from streams.views.fanin import fan_in
from streams.views.step import ViewStep


def by_subject(observation: Observation) -> str:
    return observation.subject


def by_series(observation: Observation) -> str:
    """A long/short series (all variants of a symbol share its subject) or a coin's rank."""
    variant = observation.event.get("variant", "")
    return f"{observation.kind}|{observation.subject}|{variant}"


STEPS: tuple[ViewStep, ...] = (
    ViewStep("route_inputs", tuple(t for t in INPUT_TOPICS if t != "ticks"), False, None,
             "", route.apply, route.views_of),
    ViewStep("build_bars", ("ticks",), False, None, "bar-state", bars.apply, bars.views_of,
             partitions=topic_spec("ticks").partitions),
    ViewStep("correlate", ("correlation-points",), True, SeriesPoint, "correlation-state",
             correlation.apply, correlation.views_of),
    ViewStep("track_regime", ("regime-points",), True, SeriesPoint, "regime",
             regime.apply, regime.views_of),
    fan_in(ViewStep("track_long_short", ("longshort-points",), True, Observation, "longshort",
                    longshort.apply, longshort.views_of), by_series),
    fan_in(ViewStep("track_netflows", ("netflow-points",), True, Observation, "netflow",
                    netflow.apply, netflow.views_of), by_subject),
    fan_in(ViewStep("track_drawdowns", ("drawdown-points",), True, Observation, "drawdown",
                    drawdown.apply, drawdown.views_of), by_subject),
    fan_in(ViewStep("track_score", ("score-components",), True, Observation, "score",
                    score.apply, score.views_of), by_subject, strict=False,
           expected=score.weighted_components),
)
STEP_BY_NAME = {step.name: step for step in STEPS}
#: where a route to a step goes: the step names ``streams.routing`` uses
ROUTE_TARGETS = {"correlation": "correlate", "regime": "track_regime",
                 "longshort": "track_long_short", "netflow": "track_netflows",
                 "drawdown": "track_drawdowns", "score": "track_score"}
#: the worker's internal topics (``<app_id>-<name>``), created by Faust and by ``topics create``
INTERNAL_TOPICS = tuple(dict.fromkeys(
    topic for step in STEPS if step.internal for topic in step.topics))
