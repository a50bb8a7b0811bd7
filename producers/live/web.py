"""The live producer's operational endpoints on ``producer_web_port`` (0 = none).

``GET /health`` (alive), ``GET /ready`` (the Kafka sink delivers and a broker answers; 503
otherwise) and ``GET /metrics`` (Prometheus: every source's counters, labelled by source, and
the queue to Kafka). All read-only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from foundation.metrics import SourceStatsCollector

if TYPE_CHECKING:
    from producers.live.run import LiveProducer

PRODUCER_PATHS = ("/health", "/ready", "/metrics")


def producer_web_app(producer: LiveProducer) -> web.Application:
    registry = CollectorRegistry()
    registry.register(SourceStatsCollector(
        lambda: [(s.name, s.stats) for s in producer.sources] + [("sink", producer.sink.stats)],
        lambda: (producer.sink.pending, producer.config.sink.queue_size)))

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(request: web.Request) -> web.Response:
        ok = await producer.sink.broker_reachable()
        return web.json_response({"ready": ok, "checks": {"kafka": ok}},
                                 status=200 if ok else 503)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    return app


async def start_producer_web(producer: LiveProducer, host: str, port: int) -> web.AppRunner:
    """Serve the endpoints in the running loop; ``await runner.cleanup()`` stops them."""
    runner = web.AppRunner(producer_web_app(producer), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
