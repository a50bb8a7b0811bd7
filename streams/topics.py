"""The Faust topic objects, declared once next to the app from ``schemas.topics``.

Input topics are read as raw bytes so each event is validated by ``schemas.decode`` and a bad
one goes to the dead-letter topic with its reason instead of stopping the agent.
"""

from __future__ import annotations

from schemas.records import (
    Bar,
    DeadLetter,
    Observation,
    ScoreComponent,
    SeriesPoint,
    Signal,
)
from schemas.topics import INPUT_TOPICS, internal_topic, topic_spec
from streams.app import app, settings

#: every input but ``ticks``, which only the bars agent reads (``ticks_topic``): one Faust
#: event per tick
inputs_topic = app.topic(
    *(settings.topic(name) for name in INPUT_TOPICS if name != "ticks"),
    key_serializer="raw",
    value_serializer="raw",
)
#: the bars agent's: it validates ticks (``streams.routing.tick_for_bars``) and routes them
ticks_topic = app.topic(settings.topic("ticks"), key_serializer="raw", value_serializer="raw")
signals_topic = app.topic(
    settings.topic("signals"),
    value_type=Signal,
    key_serializer="raw",
    partitions=topic_spec("signals").partitions,
)
deadletter_topic = app.topic(
    settings.topic("deadletter"),
    value_type=DeadLetter,
    key_serializer="raw",
    partitions=topic_spec("deadletter").partitions,
)
#: internal (Faust-created, prefixed with the app id): observations keyed by the pair
correlation_points_topic = app.topic(
    internal_topic(settings.app_id, "correlation-points"),
    internal=True, value_type=SeriesPoint, key_serializer="raw",
)
regime_points_topic = app.topic(
    internal_topic(settings.app_id, "regime-points"),
    internal=True, value_type=SeriesPoint, key_serializer="raw",
)
#: observations keyed by one constant: these agents rank across the whole market
longshort_points_topic = app.topic(
    internal_topic(settings.app_id, "longshort-points"),
    internal=True, value_type=Observation, key_serializer="raw",
)
netflow_points_topic = app.topic(
    internal_topic(settings.app_id, "netflow-points"),
    internal=True, value_type=Observation, key_serializer="raw",
)
drawdown_points_topic = app.topic(
    internal_topic(settings.app_id, "drawdown-points"),
    internal=True, value_type=Observation, key_serializer="raw",
)
score_components_topic = app.topic(
    internal_topic(settings.app_id, "score-components"),
    internal=True, value_type=ScoreComponent, key_serializer="raw",
)
bars_topic = app.topic(
    settings.topic("bars"),
    value_type=Bar,
    key_serializer="raw",
    partitions=topic_spec("bars").partitions,
)
