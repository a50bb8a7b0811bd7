"""The worker's rewind after a rebalance (``agents/transport.py``), on the real broker.

Faust drops records fetched for partitions it is not reading at that moment and rewinds to
the committed offsets to read them again; a partition with nothing committed must go back
too, or those records are lost (what stalled a worker restarted after an early ``kill -9``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from harness import Namespace

from agents.transport import rewind_to_committed

pytestmark = pytest.mark.integration

NEVER_COMMITTED, COMMITTED_AT_0, COMMITTED_AT_3 = 0, 1, 2
RECORDS = 5


@pytest.fixture
async def consumer(namespace: Namespace) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer of the namespace's group that has read three partitions of ``ticks`` to
    their end, with nothing, 0 and 3 committed."""
    settings = namespace.settings
    topic = settings.topic("ticks")
    partitions = [TopicPartition(topic, p) for p in
                  (NEVER_COMMITTED, COMMITTED_AT_0, COMMITTED_AT_3)]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for tp in partitions:
            for n in range(RECORDS):
                await producer.send_and_wait(topic, f"{n}".encode(), partition=tp.partition)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                group_id=settings.app_id, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.commit({partitions[COMMITTED_AT_0]: OffsetAndMetadata(0, ""),
                               partitions[COMMITTED_AT_3]: OffsetAndMetadata(3, "")})
        await consumer.seek_to_beginning(*partitions)
        while [tp for tp in partitions if await consumer.position(tp) < RECORDS]:
            await consumer.getmany(timeout_ms=500)
        yield consumer
    finally:
        await consumer.stop()


async def positions(consumer: AIOKafkaConsumer) -> list[int]:
    return [await consumer.position(tp) for tp in sorted(consumer.assignment())]


async def test_aiokafka_alone_leaves_partitions_without_a_commit_where_they_are(
        consumer: AIOKafkaConsumer) -> None:
    """Why the fix exists: if aiokafka changes this, ``agents/transport.py`` can go."""
    await consumer.seek_to_committed()
    assert await positions(consumer) == [RECORDS, RECORDS, 3]


async def test_rewind_goes_back_to_the_committed_offset_or_to_the_start(
        consumer: AIOKafkaConsumer) -> None:
    committed = await rewind_to_committed(consumer)
    assert sorted(committed.values(), key=lambda v: -1 if v is None else v) == [None, 0, 3]
    assert await positions(consumer) == [0, 0, 3]
    never_committed = sorted(consumer.assignment())[NEVER_COMMITTED]
    again: list[int] = []  # what was read before comes again
    while await consumer.position(never_committed) < RECORDS:
        batches = await consumer.getmany(never_committed, timeout_ms=500)
        again += [record.offset for record in batches.get(never_committed, [])]
    assert again == list(range(RECORDS))
