"""``altseason produce live``: every configured source into Kafka until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

from altseason.kafka_admin import ensure_topics
from foundation.config import Settings, load_settings
from producers.live.config import LiveConfig, load_live_config
from producers.live.core import status_log
from producers.live.sink import KafkaSink

log = logging.getLogger(__name__)


class LiveProducer:
    """The sources of one live config, the Kafka sink they share, and the status line."""

    def __init__(self, settings: Settings, config: LiveConfig) -> None:
        self.settings = settings
        self.config = config
        self.sources = config.sources
        self.sink = KafkaSink(settings, config.sink)

    def status_line(self) -> str:
        parts = [f"queue {self.sink.pending}/{self.config.sink.queue_size}"]
        for source in self.sources:
            counters = " ".join(f"{k}={v}" for k, v in source.stats.as_dict().items())
            parts.append(f"{source.name}: {counters}")
        return " | ".join(parts)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (or a source fails on its config), then flush and stop."""
        await ensure_topics(self.settings)
        runner = None
        if self.settings.producer_web_port:
            from producers.live.web import start_producer_web

            runner = await start_producer_web(self, self.settings.producer_web_host,
                                              self.settings.producer_web_port)
        await self.sink.start()
        tasks = [asyncio.create_task(source.run(self.sink.emitter(source.stats)),
                                     name=source.name) for source in self.sources]
        status = asyncio.create_task(self._status_forever())
        stopped = asyncio.create_task(stop.wait())
        delivery = self.sink.task
        assert delivery is not None
        failure: BaseException | None = None
        try:
            done, _ = await asyncio.wait([*tasks, stopped, delivery],
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopped and not task.cancelled():
                    failure = task.exception()
                    if failure is None:
                        log.error("%s stopped on its own", task.get_name())
        finally:
            for task in [*tasks, status, stopped]:
                task.cancel()
            await asyncio.gather(*tasks, status, stopped, return_exceptions=True)
            await self.sink.close(self.config.sink.flush_timeout_seconds)
            status_log.info("stopped: %s", self.status_line())
            if runner is not None:
                await runner.cleanup()
        if failure is not None:
            raise failure

    async def _status_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.status_interval_seconds)
            status_log.info("%s", self.status_line())


async def produce_live(config_path: str | os.PathLike[str],
                       settings: Settings | None = None) -> None:
    """Load the live config, run every source into Kafka; SIGINT/SIGTERM flush and stop."""
    settings = settings or load_settings()
    config = load_live_config(config_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await LiveProducer(settings, config).run(stop)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)
