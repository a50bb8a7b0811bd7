"""The Kafka side of the live producers: a bounded queue, dedupe, and retried delivery.

Sources ``emit`` into a bounded ``asyncio.Queue``; one delivery task sends what is queued
with an idempotent producer (``acks=all``) and waits for the acknowledgements. A full queue
blocks the sources (backpressure, counted); a failed send is retried with backoff until Kafka
takes it: nothing is dropped. Records are sent in queue order and a failed send stops the
round, so a key's records keep their order (see ``_deliver``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from types import TracebackType

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from foundation.config import Settings
from foundation.connections import kafka_client_options
from producers.live.config import SinkConfig
from producers.live.core import Backoff, Emitter, RecentKeys, SourceStats
from schemas.decode import parse_utc, to_ms
from schemas.records import Event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueuedRecord:
    topic: str
    key: bytes
    value: bytes
    timestamp_ms: int
    stats: SourceStats


class SourceEmitter:
    """The sink as one source sees it: counts into that source's stats."""

    def __init__(self, sink: KafkaSink, stats: SourceStats) -> None:
        self._sink, self._stats = sink, stats

    async def emit(self, topic: str, key: str, record: Event,
                   dedupe_key: str | None = None) -> bool:
        return await self._sink.put(topic, key, record, dedupe_key, self._stats)


class KafkaSink:
    """Emitter into Kafka. ``async with KafkaSink(settings, config) as sink: ...``."""

    def __init__(self, settings: Settings, config: SinkConfig | None = None,
                 backoff: Backoff | None = None) -> None:
        self.settings = settings
        self.config = config or SinkConfig()
        self.stats = SourceStats()  # records emitted directly on the sink, not via emitter()
        self.queue: asyncio.Queue[QueuedRecord] = asyncio.Queue(maxsize=self.config.queue_size)
        #: failed send rounds retried; the most records ever queued at once
        self.send_retries = 0
        self.max_queued = 0
        self._recent = RecentKeys(self.config.dedupe_size)
        self._backoff = backoff or Backoff(0.2, 10.0)
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0

    def emitter(self, stats: SourceStats) -> Emitter:
        """An Emitter for one source, counting produced/duplicates/backpressure in ``stats``."""
        return SourceEmitter(self, stats)

    async def emit(self, topic: str, key: str, record: Event,
                   dedupe_key: str | None = None) -> bool:
        return await self.put(topic, key, record, dedupe_key, self.stats)

    async def put(self, topic: str, key: str, record: Event, dedupe_key: str | None,
                  stats: SourceStats) -> bool:
        """Queue one record (waiting while the queue is full); False if a recent duplicate."""
        if dedupe_key is not None and not self._recent.add(dedupe_key):
            stats.duplicates += 1
            return False
        item = QueuedRecord(
            topic=self.settings.topic(topic), key=key.encode(), value=record.dumps(),
            # the message timestamp is the event time, so time-based consumers see market time
            timestamp_ms=to_ms(parse_utc(record.event_time)),
            stats=stats,
        )
        if self.queue.full():
            stats.backpressure_waits += 1
        await self.queue.put(item)
        self.max_queued = max(self.max_queued, self.queue.qsize())
        return True

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The delivery task (it only ends by cancellation or a bug)."""
        return self._task

    @property
    def pending(self) -> int:
        """Records queued or being sent, not yet acknowledged."""
        return self.queue.qsize() + self._in_flight

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **kafka_client_options(self.settings),
            enable_idempotence=True,
            acks="all",
            linger_ms=self.config.linger_ms,
            compression_type=self.config.compression,
            max_batch_size=256 * 1024,
            request_timeout_ms=30_000,
        )

    async def start(self) -> None:
        """Connect (retrying until Kafka answers) and start the delivery task."""
        backoff = Backoff(0.2, 10.0)
        while True:
            producer = self._new_producer()
            try:
                await producer.start()
                break
            except KafkaError as exc:
                await producer.stop()
                delay = backoff.next_delay()
                log.warning("Kafka at %s not reachable (%s); retrying in %.1f s",
                            self.settings.kafka_bootstrap_servers, exc, delay)
                await asyncio.sleep(delay)
        self._producer = producer
        self._task = asyncio.create_task(self._deliver_forever(), name="kafka-sink")

    async def broker_reachable(self, timeout_s: float = 3.0) -> bool:
        """Whether the delivery task runs and a Kafka broker answers a metadata request."""
        if self._producer is None or self._task is None or self._task.done():
            return False
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout_s)
            return True
        except Exception:  # timeout or connection error: not ready
            return False

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every queued record is acknowledged; False on timeout."""
        try:
            await asyncio.wait_for(self.queue.join(), timeout_s)
            return True
        except TimeoutError:
            return False

    async def close(self, timeout_s: float | None = None) -> None:
        """Flush (up to ``timeout_s``), then stop; says how many records were not delivered."""
        flushed = await self.flush(timeout_s)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("Kafka sink delivery failed")
        if not flushed:
            log.error("Kafka sink closed with %d records not acknowledged (Kafka unreachable "
                      "for %s s)", self.pending, timeout_s)
        if self._producer is not None:
            try:
                await asyncio.wait_for(self._producer.stop(), timeout_s)
            except TimeoutError:
                log.error("Kafka producer did not stop within %s s", timeout_s)
            self._producer = None

    async def __aenter__(self) -> KafkaSink:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close(self.config.flush_timeout_seconds)

    async def _deliver_forever(self) -> None:
        """Send what is queued in rounds: take everything waiting, send it, await the acks."""
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.config.queue_size and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            self._in_flight = len(batch)
            try:
                await self._deliver(batch)
            finally:
                self._in_flight = 0
                for _ in batch:
                    self.queue.task_done()

    async def _deliver(self, batch: list[QueuedRecord]) -> None:
        """Deliver ``batch`` in order, retrying what fails until Kafka acknowledges it all.

        A send that fails stops the round, and the failed records are retried before anything
        newer is queued, so each key's order holds. One limit: if a batch of the producer
        expires (Kafka unreachable for request_timeout_ms) while a later batch of the same
        partition gets through, the retried record lands after it.
        """
        assert self._producer is not None
        pending = batch
        while pending:
            sent: list[tuple[QueuedRecord, asyncio.Future[object]]] = []
            failed: list[QueuedRecord] = []
            error: BaseException | None = None
            for i, item in enumerate(pending):
                try:
                    future = await self._producer.send(
                        item.topic, item.value, key=item.key, timestamp_ms=item.timestamp_ms)
                except KafkaError as exc:
                    error, failed = exc, list(pending[i:])
                    break
                sent.append((item, future))
            results = await asyncio.gather(*(f for _, f in sent), return_exceptions=True)
            retry: list[QueuedRecord] = []
            for (item, _), result in zip(sent, results, strict=True):
                if isinstance(result, BaseException):
                    if not isinstance(result, KafkaError):
                        raise result
                    error = result
                    retry.append(item)
                else:
                    item.stats.produced += 1
            pending = retry + failed
            if pending:
                self.send_retries += 1
                delay = self._backoff.next_delay()
                log.warning("Kafka send failed for %d records (%r); retrying in %.1f s",
                            len(pending), error, delay)
                await asyncio.sleep(delay)
            else:
                self._backoff.reset()
