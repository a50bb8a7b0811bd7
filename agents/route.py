"""Validate every input event and route it to the agents that use it.

Re-keying through internal topics puts everything one table entry needs in one partition:
both series of a pair (key = pair) and all the observations of a market-wide view (one key),
so each entry is updated by exactly one agent instance. Ticks are already keyed by symbol:
the bars agent reads, validates and routes them itself (``agents/bars.py``).
"""

from __future__ import annotations

from faust import StreamT

from agents.outputs import dead_letter
from altseason.errors import SchemaError
from streams.app import app, settings
from streams.routing import route
from streams.topics import (
    correlation_points_topic,
    drawdown_points_topic,
    inputs_topic,
    longshort_points_topic,
    netflow_points_topic,
    regime_points_topic,
)

AGENT_TOPICS = {
    "correlation": correlation_points_topic,
    "regime": regime_points_topic,
    "longshort": longshort_points_topic,
    "netflow": netflow_points_topic,
    "drawdown": drawdown_points_topic,
}


@app.agent(inputs_topic)
async def route_inputs(stream: StreamT) -> None:
    async for event in stream.events():
        topic = event.message.topic.removeprefix(settings.topic_prefix)
        try:
            routed = route(topic, event.message.key, event.value, settings.signals)
        except SchemaError as exc:
            await dead_letter(event.message, event.value, str(exc), "route_inputs")
            continue
        for agent, key, record in routed:
            await AGENT_TOPICS[agent].send(key=key.encode(), value=record)
