"""Kafka administration the project does itself: create its topics, measure a group's lag."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from altseason.config import Settings
from altseason.errors import SourceError
from schemas.topics import TOPICS


async def ensure_topics(settings: Settings) -> list[str]:
    """Create every public topic that does not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(settings.topic(spec.name), spec.partitions,
                     settings.topic_replication_factor)
            for spec in TOPICS
            if settings.topic(spec.name) not in existing
        ]
        if missing:
            response = await admin.create_topics(missing)
            for name, code, message in _topic_errors(response):
                if code not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS (a concurrent creator)
                    raise SourceError(f"could not create topic {name}: error {code} {message}")
        return [topic.name for topic in missing]
    except KafkaError as exc:
        raise SourceError(
            f"Kafka at {settings.kafka_bootstrap_servers} is not reachable ({exc!r}); "
            "start it with `altseason stack up` or set KAFKA_BOOTSTRAP_SERVERS"
        ) from None
    finally:
        await admin.close()


def _topic_errors(response: object) -> list[tuple[str, int, str | None]]:
    errors = getattr(response, "topic_errors", [])
    return [(e[0], e[1], e[2] if len(e) > 2 else None) for e in errors]


async def topic_partitions(settings: Settings, topics: list[str]) -> list[TopicPartition]:
    """Every partition of the given topics (empty for a topic that does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        metadata = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return sorted(
        TopicPartition(t["topic"], p["partition"])
        for t in metadata if t["error_code"] == 0 for p in t["partitions"]
    )


async def group_lag(settings: Settings, group: str, topics: list[str]) -> int:
    """Messages in ``topics`` that consumer group ``group`` has not committed yet."""
    partitions = await topic_partitions(settings, topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    lag = 0
    for tp, end in ends.items():
        meta = committed.get(tp)
        lag += end - (meta.offset if meta is not None and meta.offset >= 0 else 0)
    return lag
