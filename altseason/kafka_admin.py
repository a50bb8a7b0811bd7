"""Kafka administration the project does itself: create its topics, measure a group's lag."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from foundation.config import Settings
from foundation.connections import kafka_client_options
from foundation.errors import SourceError
from schemas.topics import TOPICS, internal_topic
from streams.views.registry import INTERNAL_TOPICS


async def ensure_topics(settings: Settings) -> list[str]:
    """Create every public topic, and the worker's internal ones, that does not exist yet;
    return the names created.

    The internal topics (``<app_id>-bar-ticks``...) are created here, before a worker starts,
    because Faust creates them while its consumer group forms, and under load the group's
    first assignment can come first and leave one out for good ("Ignoring missing topic").
    """
    wanted = [(settings.topic(spec.name), spec.partitions) for spec in TOPICS]
    wanted += [(internal_topic(settings.app_id, name), settings.topic_partitions)
               for name in INTERNAL_TOPICS]
    try:
        async with admin_client(settings) as admin:
            existing = set(await admin.list_topics())
            missing = [NewTopic(name, partitions, settings.topic_replication_factor)
                       for name, partitions in wanted if name not in existing]
            response = await admin.create_topics(missing) if missing else None
            for name, code, message in _topic_errors(response):
                if code not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS (a concurrent creator)
                    raise SourceError(f"could not create topic {name}: error {code} {message}")
            await _until_led(admin, [topic.name for topic in missing])
        return [topic.name for topic in missing]
    except KafkaError as exc:
        raise SourceError(
            f"Kafka at {settings.kafka_bootstrap_servers} is not reachable ({exc!r}); "
            "start it with `altseason stack up` or set KAFKA_BOOTSTRAP_SERVERS"
        ) from None


async def _until_led(admin: AIOKafkaAdminClient, topics: list[str],
                     timeout_s: float = 15.0) -> None:
    """Until every partition of ``topics`` has a leader. The broker answers a creation before
    its metadata holds them (a reader then finds no partitions, a producer gets
    NotLeaderForPartition retries), the longer while it is busy deleting other topics."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while topics and asyncio.get_running_loop().time() < deadline:
        described = await admin.describe_topics(topics)
        if all(t["error_code"] == 0 and all(p["leader"] >= 0 for p in t["partitions"])
               for t in described):
            return
        await asyncio.sleep(0.2)


def _topic_errors(response: object) -> list[tuple[str, int, str | None]]:
    errors = getattr(response, "topic_errors", [])
    return [(e[0], e[1], e[2] if len(e) > 2 else None) for e in errors]


@asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(**kafka_client_options(settings))
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def delete_topics_starting_with(settings: Settings, prefixes: tuple[str, ...]) -> list[str]:
    """Delete the topics whose names start with one of ``prefixes`` (a test's or a
    benchmark's own: public topics, internal topics, changelogs), so that a long run does not
    pile partitions up on the broker; returns the names it asked the broker to delete."""
    async with admin_client(settings) as admin:
        topics = [t for t in await admin.list_topics() if t.startswith(prefixes)]
        if topics:
            await admin.delete_topics(topics)
    return topics


async def _partitions(admin: AIOKafkaAdminClient, topics: list[str]) -> list[TopicPartition]:
    metadata = await admin.describe_topics(topics)
    return sorted(
        TopicPartition(t["topic"], p["partition"])
        for t in metadata if t["error_code"] == 0 for p in t["partitions"]
    )


async def topic_partitions(settings: Settings, topics: list[str]) -> list[TopicPartition]:
    """Every partition of the given topics (none for a topic that does not exist)."""
    async with admin_client(settings) as admin:
        return await _partitions(admin, topics)


async def group_lag(settings: Settings, group: str, topics: list[str]) -> int:
    """Records in ``topics`` that consumer group ``group`` has not committed yet.

    A topic written in transactions ends with a commit marker that takes an offset but is no
    record, so ``end - committed`` stays 1 when everything is done: where the offsets differ,
    a read_committed consumer counts the records really left.
    """
    async with admin_client(settings) as admin:
        partitions = await _partitions(admin, topics)
        committed = await admin.list_consumer_group_offsets(group)
    consumer = AIOKafkaConsumer(**kafka_client_options(settings),
                                isolation_level="read_committed", enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        behind = {}
        for tp, end in ends.items():
            meta = committed.get(tp)
            start = meta.offset if meta is not None and meta.offset >= 0 else 0
            if end > start:
                behind[tp] = (start, end)
        return await _records_left(consumer, behind)
    finally:
        await consumer.stop()


async def _records_left(consumer: AIOKafkaConsumer,
                        behind: dict[TopicPartition, tuple[int, int]]) -> int:
    """Records between each partition's (start, end); markers and aborted records skipped."""
    if not behind:
        return 0
    consumer.assign(list(behind))
    for tp, (start, _) in behind.items():
        consumer.seek(tp, start)
    left: dict[TopicPartition, int] = {}
    for _ in range(10):  # a few fetches: enough to see a record or reach the end
        batches = await consumer.getmany(timeout_ms=200)
        for tp, records in batches.items():
            left[tp] = left.get(tp, 0) + len(records)
        unknown = [tp for tp in behind
                   if tp not in left and await consumer.position(tp) < behind[tp][1]]
        if not unknown:
            break
    else:
        for tp in unknown:  # not fetched in time: count it as not done
            left[tp] = left.get(tp, 0) + 1
    return sum(left.values())
