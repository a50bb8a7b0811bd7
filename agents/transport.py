"""Faust's aiokafka transport with the rewind after a rebalance fixed: it rewinds every
partition, including those that have none committed yet, and delivers nothing while it runs
(``Consumer.perform_seek``).

Faust drops records that arrive for a partition it is not reading at that moment (a fetch
requested before a rebalance started, answered during the table recovery) and relies on
``seek_to_committed`` afterwards to read them again. aiokafka's ``seek_to_committed`` leaves a
partition whose committed offset is missing or 0 where it is, so those records were lost. A
worker restarted after a ``kill -9`` that came before its first commit then never processed
the events the dead worker had not committed, and its group never caught up (issue 5; the
race is faust-streaming/faust#596).
"""

from __future__ import annotations

from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP


async def rewind_to_committed(consumer: AIOKafkaConsumer) -> Mapping[TP, int | None]:
    """Seek every assigned partition to its committed offset; one with none committed to 0,
    the start (``consumer_auto_offset_reset="earliest"``, set in ``agents/app.py``: offsets
    below the log start are reset to it)."""
    committed = await consumer.seek_to_committed()
    for tp, offset in committed.items():
        if not offset:  # None or 0: aiokafka's seek_to_committed left the position as it was
            consumer.seek(tp, 0)
    return committed


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[TP, int]:
        return await self.call_thread(rewind_to_committed, self._ensure_consumer())


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def perform_seek(self) -> None:
        """Rewind with the partitions paused. Faust resumes the stream partitions just before
        this seek, so records of a batch fetched before it were still delivered while it ran
        and after: they moved the read offsets past the rewind (the rewound records were then
        dropped as already read) while the queues holding some of them were cleared when the
        flow resumed, and that event was lost. Paused, those records are dropped instead, and
        the rewind reads them again."""
        partitions = set(self._get_active_partitions())
        self.pause_partitions(partitions)
        try:
            await super().perform_seek()
        finally:
            self.resume_partitions(partitions)


class Transport(faust_aiokafka.Transport):
    """Faust's ``kafka://`` transport, with :class:`Consumer`."""

    Consumer = Consumer
