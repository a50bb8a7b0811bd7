"""What agents send out: signals (Kafka topic + Redis) and dead letters (Kafka topic)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable
from datetime import UTC, datetime

from faust.types import Message, RecordMetadata

from agents.redis_view import RedisView
from altseason.metrics import DEAD_LETTERS, SIGNALS_EMITTED
from schemas.decode import iso_utc
from schemas.records import DeadLetter, ScoreComponent, Signal
from streams.app import app, settings
from streams.correlation import ms_to_iso
from streams.routing import MARKET_KEY
from streams.topics import deadletter_topic, score_components_topic, signals_topic

log = logging.getLogger(__name__)

view = RedisView(settings)
MAX_PAYLOAD_CHARS = 64 * 1024
#: the longest input key a dead letter repeats: keys are names ("exchange:symbol"), and a
#: 900 KB key of bytes that are not UTF-8 became a 2.7 MB dead letter Kafka refused, which
#: crashed this agent and lost the event
MAX_KEY_BYTES = 1024


#: a test hook (tests/faults): just before the first send of this kind (``signal:<type>``, or
#: ``bar`` for a closed bar), deliver whatever was sent before it and exit at once, the worst
#: moment for a crash. Empty = never.
CRASH_BEFORE = os.environ.get("ALTSEASON_FAILPOINT_CRASH_BEFORE", "")


async def failpoint(send: str) -> None:
    """If ``send`` is the failpoint's: flush the producer (table updates already made reach
    their changelog), then die without committing offsets, as a ``kill -9`` would."""
    if send == CRASH_BEFORE:
        log.warning("failpoint ALTSEASON_FAILPOINT_CRASH_BEFORE=%s: exiting at once", send)
        await app.producer.flush()
        os._exit(70)


async def emit_signal(signal: Signal) -> None:
    """Send a signal to the ``signals`` topic (key = subject) and publish it in Redis.

    Agents write the table entry that records an event *last*, after this and all else the
    event causes (closed bars, score components, views): if the worker dies in between, the
    state on the changelog is the one before the event, which is applied again after the
    restart and sends the signal again (same ``id``). Written the other way round, the
    redelivered event was rejected as already applied and the signal was lost.
    """
    await failpoint(f"signal:{signal.type}")
    await delivered(await signals_topic.send(key=signal.subject.encode(), value=signal))
    SIGNALS_EMITTED.labels(signal.type).inc()
    await view.signal(signal)


async def delivered(*sent: Awaitable[RecordMetadata]) -> None:
    """Wait until the broker has acknowledged these sends. An agent's table write must not
    reach its changelog before the outputs of the same event: the producer sends each
    partition's batch when its own linger ends, so a changelog batch opened earlier can leave
    first, and a crash in between (a ``kill -9`` test found 3 closed bars lost) left the
    event applied, rejected as a duplicate after the restart, and its outputs gone."""
    await asyncio.gather(*sent)


async def send_component(component: str, t_ms: int, raw: float,
                         detail: dict[str, object] | None = None) -> None:
    """Hand a new value of an altseason score component to the score agent."""
    await score_components_topic.send(key=MARKET_KEY.encode(), value=ScoreComponent(
        component=component, event_time=ms_to_iso(t_ms), t_ms=t_ms, raw=raw,
        detail=detail or {}))


async def dead_letter(message: Message, payload: bytes | str | None, reason: str,
                      source: str) -> None:
    """Park a rejected event on the dead-letter topic with why, and keep going."""
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8", errors="replace")
    key = message.key[:MAX_KEY_BYTES].decode("utf-8", errors="replace") \
        if isinstance(message.key, bytes) else message.key
    topic = message.topic.removeprefix(settings.topic_prefix)
    letter = DeadLetter(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=key,
        payload=(payload or "")[:MAX_PAYLOAD_CHARS],
        reason=reason,
        source=source,
        failed_at=iso_utc(datetime.now(UTC)),
    )
    DEAD_LETTERS.labels(topic, source).inc()
    log.info("dead-lettered %s[%d]@%d: %s", message.topic, message.partition, message.offset,
             reason)
    await deadletter_topic.send(key=topic.encode(), value=letter)
    await view.count_dead_letter(topic)
