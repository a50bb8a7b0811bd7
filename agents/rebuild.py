"""Redis is a derived view: when it comes back empty (flushed, or a new server), rebuild it.

A timer checks the layout marker ``meta:layout``; when it is missing, every agent writes the
views of the table entries this worker owns that are missing (iterating copies: agents keep
writing the tables and views meanwhile, and a view written since is newer than the copy),
then the marker is set again. ``signals:recent`` and ``deadletter:counts`` are not rebuilt:
they refill as signals fire and events are rejected.
"""

from __future__ import annotations

import logging

from agents.bars import rebuild_bar_views
from agents.correlation import rebuild_correlation_views
from agents.drawdown import rebuild_drawdown_views
from agents.longshort import rebuild_longshort_views
from agents.netflow import rebuild_netflow_views
from agents.outputs import view
from agents.regime import rebuild_regime_views
from agents.score import rebuild_score_view
from altseason.metrics import REDIS_REBUILDS
from streams.app import app, settings

log = logging.getLogger(__name__)
REBUILDERS = (rebuild_regime_views, rebuild_correlation_views, rebuild_bar_views,
              rebuild_longshort_views, rebuild_netflow_views, rebuild_drawdown_views,
              rebuild_score_view)


@app.timer(interval=settings.redis_check_seconds)
async def rebuild_redis_if_flushed() -> None:
    recovery = app.tables.recovery  # type: ignore[attr-defined]
    if recovery.in_recovery or not recovery.completed.is_set():
        return  # tables not recovered yet: a rebuild now would be partial
    present = await view.layout_present()
    if present is not False:  # there, or Redis is down (retried at the next tick)
        return
    log.warning("Redis layout marker missing: rebuilding the Redis views from the tables")
    try:
        for rebuild in REBUILDERS:
            await rebuild()
    except Exception:  # a timer that raises stops the whole worker: log, retry next tick
        log.exception("Redis rebuild failed; retried at the next check")
        return
    await view.mark_layout()
    REDIS_REBUILDS.inc()
