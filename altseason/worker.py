"""Start a real Faust worker with every agent registered."""

from __future__ import annotations

import asyncio
import sys

from altseason.kafka_admin import ensure_topics


def run_worker() -> None:
    """Create the topics if needed, then hand over to Faust's worker (blocks until stopped)."""
    import agents.rebuild  # noqa: F401  (the Redis rebuild and the bars' recovery hook)
    from agents.app import app, settings
    from agents.driver import view  # one agent per step of streams.views.registry.STEPS
    from altseason.web import register_worker_pages

    register_worker_pages(app, view.client.ping)
    asyncio.run(ensure_topics(settings))
    sys.argv = [sys.argv[0], "--quiet", "worker", "--loglevel", settings.log_level]
    app.main()
