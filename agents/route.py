"""Validate every input event and route its observation to the agents that own its pairs.

Re-keying by pair (through internal topics) puts both series of a pair in one partition, so
each pair's table entry is updated by exactly one agent instance.
"""

from __future__ import annotations

from faust import StreamT

from agents.outputs import dead_letter
from altseason.errors import SchemaError
from streams.app import app, settings
from streams.routing import route
from streams.topics import correlation_points_topic, inputs_topic, regime_points_topic

POINT_TOPICS = {"correlation": correlation_points_topic, "regime": regime_points_topic}


@app.agent(inputs_topic)
async def route_inputs(stream: StreamT) -> None:
    async for event in stream.events():
        topic = event.message.topic.removeprefix(settings.topic_prefix)
        try:
            routed = route(topic, event.value, settings.signals)
        except SchemaError as exc:
            await dead_letter(event.message, event.value, str(exc), "route_inputs")
            continue
        for kind, point in routed:
            await POINT_TOPICS[kind].send(key=point.pair.encode(), value=point)
