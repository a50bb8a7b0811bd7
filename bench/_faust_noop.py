"""A Faust worker that only drains the ticks topic (JSON to dict, nothing else).

Used by ``pipeline_throughput.py`` as the floor of any Faust worker on this machine: the same
library, consumer and event loop as altseason's worker, without its agents. Configured from
the environment (``NOOP_*``, ``KAFKA_BOOTSTRAP_SERVERS``); when it has seen ``NOOP_COUNT``
events it writes the seconds from its first to its last event to ``NOOP_RESULT``.

    python bench/_faust_noop.py worker
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import faust
from faust import StreamT

COUNT = int(os.environ.get("NOOP_COUNT", "0"))
app = faust.App(
    os.environ.get("NOOP_APP_ID", "altseason-bench-noop"),
    broker=f"kafka://{os.environ.get('KAFKA_BOOTSTRAP_SERVERS', '127.0.0.1:9092')}",
    datadir=os.environ.get("NOOP_DATADIR", "noop-data"),
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
    topic_replication_factor=1,
)
ticks = app.topic(os.environ.get("NOOP_TOPIC", "ticks"), key_serializer="raw",
                  value_serializer="raw")


def record(events: int, seconds: float) -> None:
    Path(os.environ["NOOP_RESULT"]).write_text(json.dumps({"events": events, "seconds": seconds}))


@app.agent(ticks)
async def drain(stream: StreamT) -> None:
    seen, start = 0, 0.0
    async for event in stream.events():
        json.loads(event.value)
        seen += 1
        if seen == 1:
            start = time.perf_counter()
        if seen == COUNT:
            record(COUNT - 1, time.perf_counter() - start)


if __name__ == "__main__":
    app.main()
