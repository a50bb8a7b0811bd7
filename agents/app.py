"""The Faust application, configured from ``foundation.config`` when this module is imported.

The worker process (``altseason worker``) imports this module and the agents; settings come
from the environment / ``ALTSEASON_CONFIG``, so one code path serves the local stack, the
tests (each with its own topic prefix and app id) and production.
"""

from __future__ import annotations

import faust

from agents.transport import Transport
from foundation.config import Settings, load_settings
from foundation.connections import kafka_credentials
from foundation.logs import logging_config

settings: Settings = load_settings()

app = faust.App(
    settings.app_id,
    broker=f"kafka://{settings.kafka_bootstrap_servers}",
    broker_credentials=kafka_credentials(settings),  # TLS and SASL (README "Security")
    store=settings.store,
    datadir=settings.datadir,
    topic_partitions=settings.topic_partitions,
    topic_replication_factor=settings.topic_replication_factor,
    web_host=settings.web_host,
    web_port=settings.web_port or 6066,
    web_enabled=settings.web_port != 0,  # 0 = no web server
    web_in_thread=False,
    autodiscover=False,
    logging_config=logging_config(settings.log_level, settings.log_format),
    origin="agents.app",
    # Tables are changelog-backed; a changed app id starts from empty tables.
    table_cleanup_interval=60.0,
    # Consumers see each input event once per (re)assignment; our agents are idempotent
    # for repeats (they dead-letter events older than what a series already applied).
    consumer_auto_offset_reset="earliest",
    # Faust's default of 0 sends each internal-topic and changelog message nearly on its
    # own; 5 ms lets them batch for at most 5 ms more per hop (bench/RESULTS.md, fix 3).
    producer_linger=0.005,
    broker_session_timeout=settings.kafka_session_timeout_seconds,
)
# Faust's own kafka:// transport, with a rewind after rebalances that loses no records
app.transport = Transport(app.conf.broker_consumer, app)
