"""Read the ``signals`` topic with a plain Kafka consumer and print one line per signal."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from altseason.kafka_admin import topic_partitions
from foundation.config import Settings
from foundation.connections import kafka_client_options
from foundation.errors import SourceError
from schemas.records import Signal


def signal_line(signal: Signal) -> str:
    """One readable line: date, type, subject, message."""
    return f"{signal.event_time[:10]}  {signal.type:<22} {signal.subject:<16} {signal.message}"


def parse_signal(raw: bytes) -> Signal:
    return Signal(**json.loads(raw))


class SignalTail:
    """Follows the signals topic from a starting point, calling ``on_signal`` for each."""

    def __init__(self, settings: Settings, on_signal: Callable[[Signal], None],
                 from_beginning: bool = False) -> None:
        self.settings = settings
        self.on_signal = on_signal
        self.from_beginning = from_beginning
        self.topic = settings.topic("signals")
        self.consumer = AIOKafkaConsumer(
            **kafka_client_options(settings),
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        self.count = 0

    async def start(self) -> None:
        await self.consumer.start()
        partitions: list[TopicPartition] = []
        for _ in range(40):  # a topic created a moment ago takes a while to show in metadata
            partitions = await topic_partitions(self.settings, [self.topic])
            if partitions:
                break
            await asyncio.sleep(0.25)
        else:
            await self.consumer.stop()
            raise SourceError(f"topic {self.topic} does not exist (altseason topics create)")
        self.consumer.assign(partitions)
        if self.from_beginning:
            await self.consumer.seek_to_beginning(*partitions)
        else:
            await self.consumer.seek_to_end(*partitions)

    async def poll(self, timeout_ms: int = 500) -> int:
        """Deliver what arrived within ``timeout_ms``; returns how many signals."""
        batches = await self.consumer.getmany(timeout_ms=timeout_ms)
        delivered = 0
        for messages in batches.values():
            for message in messages:
                self.on_signal(parse_signal(message.value))
                delivered += 1
        self.count += delivered
        return delivered

    async def caught_up(self) -> bool:
        """True when every partition has been read to its current end."""
        partitions = list(self.consumer.assignment())
        ends = await self.consumer.end_offsets(partitions)
        for tp in partitions:
            if await self.consumer.position(tp) < ends[tp]:
                return False
        return True

    async def stop(self) -> None:
        await self.consumer.stop()
