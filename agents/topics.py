"""The Faust topic objects, declared once next to the app: each view step's input (from
``streams.views.registry``) and the outputs.

Public inputs are read as raw bytes, so each event is validated by ``schemas.decode`` and a
bad one goes to the dead-letter topic with its reason instead of stopping the agent.
"""

from __future__ import annotations

from faust.types import TopicT

from agents.app import app, settings
from schemas.records import Bar, DeadLetter, Signal
from schemas.topics import internal_topic, topic_spec
from streams.views.registry import STEPS
from streams.views.step import ViewStep


def input_topic(step: ViewStep) -> TopicT:
    if step.internal:
        return app.topic(internal_topic(settings.app_id, step.topics[0]), internal=True,
                         value_type=step.record, key_serializer="raw")
    return app.topic(*(settings.topic(name) for name in step.topics),
                     key_serializer="raw", value_serializer="raw")


#: step name -> the topic it reads
STEP_TOPICS: dict[str, TopicT] = {step.name: input_topic(step) for step in STEPS}
signals_topic = app.topic(settings.topic("signals"), value_type=Signal, key_serializer="raw",
                          partitions=topic_spec("signals").partitions)
deadletter_topic = app.topic(settings.topic("deadletter"), value_type=DeadLetter,
                             key_serializer="raw",
                             partitions=topic_spec("deadletter").partitions)
bars_topic = app.topic(settings.topic("bars"), value_type=Bar, key_serializer="raw",
                       partitions=topic_spec("bars").partitions)
