"""Redis is a derived view: when it comes back empty (flushed, or a new server), rebuild it.

A timer checks the layout marker ``meta:layout``; when it is missing, every step's views are
written from its table where they are missing (iterating copies: the agents keep writing the
tables and views meanwhile, and a view written since is newer than the copy), then the marker
is set again. ``signals:recent`` and ``deadletter:counts`` are not rebuilt: they refill as
signals fire and events are rejected.

The in-memory table store also holds standby copies of other workers' partitions; for the
bars, whose entries record the ``ticks`` partitions they came from, only this worker's are
written (after every rebalance too: ``rewrite_bar_views``).
"""

from __future__ import annotations

import logging

from agents.app import app, settings
from agents.driver import TABLES, show, view
from foundation.metrics import REDIS_REBUILDS
from schemas.redis_layout import ViewUpdate
from streams.views.registry import STEP_BY_NAME, STEPS

log = logging.getLogger(__name__)
BARS = STEP_BY_NAME["build_bars"]


def owned_bar_views() -> list[ViewUpdate]:
    """The open bars of the symbols whose ``ticks`` partitions this worker owns."""
    ticks = settings.topic("ticks")
    owned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == ticks}
    table = dict(TABLES[BARS.name].items())
    return [update for key, state in table.items()
            if {int(p) for p in state.get("applied", {})} <= owned
            for update in BARS.views_of(table, key, settings.signals)]


@TABLES[BARS.name].on_recover
async def rewrite_bar_views() -> None:
    """After a rebalance, before the agents run: a trade whose state reached the changelog
    but whose view did not (a crash or a handover) is rejected as a duplicate when it comes
    again, so its view would stay stale until the symbol trades again."""
    await view.update_many(owned_bar_views())


async def rebuild_views() -> None:
    """Every step's views where they are missing."""
    for step in STEPS:
        if step is BARS:
            await show(owned_bar_views(), only_if_missing=True)
        elif step.table:
            table = dict(TABLES[step.name].items())
            await show([update for key in table
                        for update in step.views_of(table, key, settings.signals)],
                       only_if_missing=True)


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
        await rebuild_views()
    except Exception:  # a timer that raises stops the whole worker: log, retry next tick
        log.exception("Redis rebuild failed; retried at the next check")
        return
    await view.mark_layout()
    REDIS_REBUILDS.inc()
