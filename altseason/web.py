"""The worker's operational endpoints, as Faust pages on its web server (``web_port``).

- ``GET /health``: liveness. The event loop answers, so the worker is alive (Kubernetes
  restarts it when this stops answering).
- ``GET /ready``: readiness. 200 once the Kafka broker answers, Redis answers, the consumer
  group has assigned this worker its partitions and table recovery is done; else 503 with the
  failed checks. A worker beyond the partition count has nothing assigned and is still ready.
- ``GET /metrics``: Prometheus text format: Faust's stream metrics (prefix ``altseason_``)
  and ours (``foundation.metrics``), with lag and table sizes read at scrape time.

All three are read-only; Faust's own web pages (``/``, ``/router/``...) are read-only too.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from aiohttp.web import Response
from faust import web
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from foundation.metrics import CONSUMER_LAG, TABLE_KEYS

WORKER_PATHS = ("/health", "/ready", "/metrics")
CHECK_TIMEOUT_S = 3.0


async def readiness(app: faust.App, ping_redis: Any) -> dict[str, bool]:
    """Each readiness check by name; the worker is ready when all are true."""
    recovery = app.tables.recovery  # type: ignore[attr-defined]
    checks = {
        "partitions_assigned": app.rebalancing_count > 0 and not app.rebalancing,
        "recovery_done": recovery.completed.is_set() and not recovery.in_recovery,
        "kafka": False,
        "redis": False,
    }
    try:
        client = app.producer._producer.client  # type: ignore[attr-defined]
        await asyncio.wait_for(client.fetch_all_metadata(), CHECK_TIMEOUT_S)
        checks["kafka"] = True
    except Exception:  # not started yet, or the broker does not answer
        pass
    try:
        checks["redis"] = bool(await asyncio.wait_for(ping_redis(), CHECK_TIMEOUT_S))
    except Exception:
        pass
    return checks


async def refresh_gauges(app: faust.App) -> None:
    """Consumer lag per assigned stream partition and keys per table, as of now."""
    consumer = app.consumer
    CONSUMER_LAG.clear()
    for tp in consumer.assignment():
        if tp.topic.endswith("-changelog"):  # read only to recover tables: no lag to report
            continue
        try:
            position = await consumer.position(tp)
            highwater = consumer.highwater(tp)
        except Exception:  # partition revoked meanwhile
            continue
        if position is not None and highwater is not None:
            CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(highwater - position, 0))
    for name, table in app.tables.items():
        TABLE_KEYS.labels(name).set(len(table))


def register_worker_pages(app: faust.App, ping_redis: Any) -> None:
    """Add /health, /ready and /metrics to the worker, and Faust's Prometheus sensor."""
    app.monitor = PrometheusMonitor(metrics=FaustMetrics.create(REGISTRY, "altseason"))

    @app.page("/health")
    async def health(self: web.View, request: web.Request) -> web.Response:
        return self.json({"status": "ok"})

    @app.page("/ready")
    async def ready(self: web.View, request: web.Request) -> web.Response:
        checks = await readiness(app, ping_redis)
        ok = all(checks.values())
        return self.json({"ready": ok, "checks": checks}, status=200 if ok else 503)

    @app.page("/metrics")
    async def metrics(self: web.View, request: web.Request) -> web.Response:
        await refresh_gauges(app)
        body = generate_latest(REGISTRY)
        return Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})  # type: ignore[return-value]
