"""The one driver of every view step: run the step, send what it causes, write its state last.

Order, for each event (README "Guarantees"): closed bars and signals are sent and acknowledged
by the broker; signals are published in Redis; events for other steps are sent; the Redis
views are written; and the step's table entries last. If the worker dies in between, the
state on the changelog is the one before the event, which is applied again after the restart
and sends the same outputs again (signals keep their ``id``). Written the other way round, a
redelivered event was rejected as already applied and its outputs were lost (a ``kill -9``
test lost 3 closed bars when the changelog batch left before the bars batch).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime
from typing import Any

from faust import StreamT
from faust.types import EventT, Message, RecordMetadata
from mode import Service

from agents.app import app, settings
from agents.redis_view import RedisView
from agents.topics import STEP_TOPICS, bars_topic, deadletter_topic, signals_topic
from foundation.errors import EventOrderError, SchemaError
from foundation.metrics import DEAD_LETTERS, FAN_IN_HELD, SIGNALS_EMITTED
from schemas.decode import iso_utc
from schemas.records import DeadLetter
from schemas.redis_layout import VIEW_BY_NAME, ViewUpdate
from streams.views.fanin import IDLE, active_sources, held, idle_event
from streams.views.registry import ROUTE_TARGETS, STEPS
from streams.views.route import RawInput
from streams.views.step import DELETE, MARKET_KEY, Outputs, ViewStep

log = logging.getLogger(__name__)

view = RedisView(settings)
MAX_PAYLOAD_CHARS = 64 * 1024
#: the longest input key a dead letter repeats: keys are names ("exchange:symbol"), and a
#: 900 KB key of bytes that are not UTF-8 became a 2.7 MB dead letter Kafka refused, which
#: crashed its agent and lost the event
MAX_KEY_BYTES = 1024

#: a test hook (tests/faults): just before the first send of this kind (``signal:<type>``, or
#: ``bar`` for a closed bar), deliver whatever was sent before it and exit at once, the worst
#: moment for a crash. Empty = never.
CRASH_BEFORE = os.environ.get("ALTSEASON_FAILPOINT_CRASH_BEFORE", "")
#: a test hook: every event waits this long first (a throttled worker gives the same results)
DELAY_S = float(os.environ.get("ALTSEASON_FAILPOINT_DELAY_MS", "0") or 0) / 1000

#: step name -> its table (the route step keeps none)
TABLES: dict[str, Any] = {
    step.name: app.Table(step.table, partitions=step.partitions)
    for step in STEPS if step.table}
#: views waiting for the next coalesced write, by (view, name): the latest wins
unflushed: dict[tuple[str, str], ViewUpdate] = {}
#: fan-in step -> source -> when this worker last had an event of it (monotonic seconds);
#: "" -> when it had its first event of any source
heard: dict[str, dict[str, float]] = {}
#: fan-in step -> the sources this worker has declared idle and not heard from since
declared_idle: dict[str, set[str]] = {}
#: (topic, partition) -> the offset of the newest event this worker has processed
processed: dict[tuple[str, int], int] = {}


async def failpoint(send: str) -> None:
    """If ``send`` is the failpoint's: flush the producer (table updates already made reach
    their changelog), then die without committing offsets, as a ``kill -9`` would."""
    if send == CRASH_BEFORE:
        log.warning("failpoint ALTSEASON_FAILPOINT_CRASH_BEFORE=%s: exiting at once", send)
        await app.producer.flush()
        os._exit(70)


def input_record(step: ViewStep, event: EventT) -> Any:
    if step.internal:
        return event.value
    message = event.message
    return RawInput(message.topic.removeprefix(settings.topic_prefix), message.key,
                    event.value, (message.partition, message.offset))


async def drive(step: ViewStep, event: EventT) -> None:
    """Apply one event of ``step``'s input: dead-letter it, or send what it causes and write
    the state."""
    if DELAY_S:
        await asyncio.sleep(DELAY_S)
    record = input_record(step, event)
    table = TABLES.get(step.name, {})
    if step.fan_in_source is not None and record.kind != IDLE:
        was_heard(step.name, step.fan_in_source(record))
    try:
        changes, out = step.apply(table, record, settings.signals)
    except (EventOrderError, SchemaError, ValueError) as exc:
        await dead_letter(event.message, payload(record), str(exc), step.name)
        processed[event.message.topic, event.message.partition] = event.message.offset
        return
    for rejected, reason in out.rejected:
        await dead_letter(event.message, payload(rejected), reason, step.name)
    await send(out)
    for key, value in changes.items():  # last: after all it causes
        if value is DELETE:
            if key in table:
                del table[key]
        else:
            table[key] = value
    processed[event.message.topic, event.message.partition] = event.message.offset


async def send(out: Outputs) -> None:
    sent: list[Awaitable[RecordMetadata]] = []
    for bar in out.bars:
        await failpoint("bar")
        sent.append(await bars_topic.send(key=f"{bar.exchange}:{bar.symbol}".encode(),
                                          value=bar))
    for signal in out.signals:
        await failpoint(f"signal:{signal.type}")
        sent.append(await signals_topic.send(key=signal.subject.encode(), value=signal))
    # acknowledged before the state write: the producer sends each partition's batch when
    # its own linger ends, so a changelog batch opened earlier could leave first
    await asyncio.gather(*sent)
    for signal in out.signals:
        SIGNALS_EMITTED.labels(signal.type).inc()
        await view.signal(signal)
    for route in out.routes:
        await STEP_TOPICS[ROUTE_TARGETS[route.step]].send(key=route.key.encode(),
                                                          value=route.record)
    await show(out.views)


async def show(updates: list[ViewUpdate], only_if_missing: bool = False) -> None:
    """Write views: the coalesced ones (``bar``) at the next flush, unless
    ``bar_view_flush_seconds`` is 0; the others now, in one round trip."""
    now = []
    for update in updates:
        if VIEW_BY_NAME[update.view].coalesced and settings.bar_view_flush_seconds \
                and not only_if_missing:
            unflushed[update.view, update.name] = update
        else:
            now.append(update)
    if now:
        await view.update_many(now, only_if_missing=only_if_missing)


async def flush_views() -> None:
    """Write the coalesced views that changed since the last flush."""
    if unflushed:
        pending = list(unflushed.values())
        unflushed.clear()
        await view.update_many(pending)


def payload(record: Any) -> bytes | str | None:
    return record.value if isinstance(record, RawInput) else record.dumps()


async def dead_letter(message: Message, payload: bytes | str | None, reason: str,
                      source: str) -> None:
    """Park a rejected event on the dead-letter topic with why, and keep going."""
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8", errors="replace")
    key = message.key[:MAX_KEY_BYTES].decode("utf-8", errors="replace") \
        if isinstance(message.key, bytes) else message.key
    topic = message.topic.removeprefix(settings.topic_prefix)
    letter = DeadLetter(
        topic=message.topic, partition=message.partition, offset=message.offset, key=key,
        payload=(payload or "")[:MAX_PAYLOAD_CHARS], reason=reason, source=source,
        failed_at=iso_utc(datetime.now(UTC)),
    )
    DEAD_LETTERS.labels(topic, source).inc()
    log.info("dead-lettered %s[%d]@%d: %s", message.topic, message.partition, message.offset,
             reason)
    await deadletter_topic.send(key=topic.encode(), value=letter)
    await view.count_dead_letter(topic)


def was_heard(step: str, source: str) -> None:
    now = time.monotonic()
    sources = heard.setdefault(step, {"": now})
    sources[source] = now
    declared_idle.setdefault(step, set()).discard(source)


def owned_partitions(step: ViewStep) -> list[Any]:
    """The partitions of ``step``'s input this worker processes (not standby copies)."""
    topic = STEP_TOPICS[step.name].get_topic_name()
    return [tp for tp in app.assignor.assigned_actives() if tp.topic == topic]


async def caught_up() -> bool:
    """Whether this worker has processed every event of its partitions (changelogs aside):
    only then does a silent source mean its events are not coming, and not that they are
    still on their way through a slower agent (a replay's correlations lag its drawdowns)."""
    consumer = app.consumer
    for tp in consumer.assignment():
        if tp.topic.endswith("-changelog"):
            continue
        highwater = consumer.highwater(tp)
        if highwater is None:
            continue
        done = processed[tp.topic, tp.partition] + 1 if (tp.topic, tp.partition) in processed \
            else await consumer.position(tp)
        if done is None or done < highwater:
            return False
    return True


def silent_sources(step: ViewStep, state: Mapping[str, Any], now: float) -> list[str]:
    """The sources of a fan-in step that hold events back and have said nothing for
    ``fan_in_max_wait_seconds`` (never-heard ones: since this worker's first event of the
    step, or since it first found held events: after a restart nothing may come)."""
    if not any(held(state).values()):
        return []
    sources = heard.setdefault(step.name, {"": now})
    wait = settings.fan_in_max_wait_seconds
    return [source for source in active_sources(state)
            if now - sources.get(source, sources[""]) > wait
            and source not in declared_idle.get(step.name, set())]


@app.timer(interval=1.0)
async def declare_idle_sources() -> None:
    """The fan-ins' clock: sources silent for ``fan_in_max_wait_seconds`` are declared idle
    by an event on the step's own input, so the release happens in order with its events."""
    for step in STEPS:
        if step.fan_in_source is None:
            continue
        state = TABLES[step.name]
        owned = owned_partitions(step)  # a standby copy of the table decides nothing
        FAN_IN_HELD.labels(step.name).set(sum(held(state).values()) if owned else 0)
        silent = silent_sources(step, state, time.monotonic()) if owned else []
        if silent and await caught_up():
            declared_idle.setdefault(step.name, set()).update(silent)
            log.info("%s: no event from %s for %s s: declared idle", step.name,
                     ", ".join(silent), settings.fan_in_max_wait_seconds)
            await STEP_TOPICS[step.name].send(key=MARKET_KEY.encode(), value=idle_event(silent))


def step_agent(step: ViewStep) -> Any:
    """The Faust agent of one step: a short loop over its input."""

    async def run_step(stream: StreamT) -> None:
        async for event in stream.events():
            await drive(step, event)

    run_step.__name__ = run_step.__qualname__ = step.name
    return app.agent(STEP_TOPICS[step.name], name=step.name)(run_step)


#: every step's agent, in the order of ``streams.views.registry.STEPS``
AGENTS = [step_agent(step) for step in STEPS]


@app.on_partitions_revoked.connect
async def flush_before_handover(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Write what is pending before partitions move, so that no write of this worker lands
    after their new owner's (which rewrites them from the table once it has recovered)."""
    await flush_views()


@app.service
class ViewFlusher(Service):
    """Writes the coalesced views (the bars', which change on every trade) every
    ``bar_view_flush_seconds``: one round trip and one hash write per view per flush however
    fast ticks come, where a write per tick was the largest cost of a tick
    (``bench/RESULTS.md``)."""

    @Service.task
    async def _flush_every_interval(self) -> None:
        while not self.should_stop and settings.bar_view_flush_seconds:
            await self.sleep(settings.bar_view_flush_seconds)  # returns early on a stop
            await flush_views()

    async def on_stop(self) -> None:
        await flush_views()  # a graceful stop writes what is left, if the task was cancelled
