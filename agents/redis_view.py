"""The Redis serving layer: hashes with each view's latest state, and a channel per view.

Redis is a derived view of the tables: a failed write is logged and counted, never raised, so
a Redis outage cannot stop stream processing. The keys and channels are declared in
``schemas/redis_layout.py`` (README "Redis layout").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from foundation.config import Settings
from foundation.connections import redis_client
from foundation.metrics import REDIS_WRITE_ERRORS
from schemas.records import SCHEMA_VERSION, Signal
from schemas.redis_layout import (
    DEADLETTER_COUNTS_KEY,
    LAYOUT_MARKER_KEY,
    LAYOUT_VERSION,
    RECENT_SIGNALS,
    RECENT_SIGNALS_KEY,
    SIGNALS_CHANNEL,
    VIEW_BY_NAME,
    ViewUpdate,
    ranking,
)

log = logging.getLogger(__name__)

#: a view written only where its hash is missing, atomically (a rebuild must not overwrite
#: the newer state an agent wrote since the rebuild read its table). KEYS: the hash, then
#: the ranking sets; ARGV: ttl, channel, message, field count, fields and values, then a
#: (score, member) pair per ranking set. Returns 1 if written.
FILL_MISSING = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local nfields = tonumber(ARGV[4])
if nfields > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 5, 4 + 2 * nfields)) end
if tonumber(ARGV[1]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local i = 5 + 2 * nfields
for k = 2, #KEYS do
  redis.call('ZADD', KEYS[k], ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
"""


def hash_fields(snapshot: dict[str, Any]) -> dict[str, str]:
    """Redis hash fields: numbers and strings as text, None as an empty string."""
    return {k: "" if v is None else (json.dumps(v) if isinstance(v, dict | list) else str(v))
            for k, v in snapshot.items()}


class RedisView:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = redis_client(settings, decode_responses=True)
        self.fill_missing = self.client.register_script(FILL_MISSING)
        self.write_errors = 0

    def key(self, *parts: str) -> str:
        return self.settings.redis_key(*parts)

    async def update(self, view: str, name: str, snapshot: dict[str, Any],
                     ttl_s: int | None = None,
                     rankings: Iterable[tuple[str, str, float]] = (), *,
                     only_if_missing: bool = False) -> None:
        """Store a view's latest state under ``<view>:<name>`` and publish it on ``<view>``.

        ``ttl_s`` expires the hash (views of series that may stop); each of ``rankings`` =
        (name, member, score) also ranks the member in the sorted set ``<view>-ranking:<name>``.
        """
        await self.update_many([ViewUpdate(view, name, snapshot, ttl_s, tuple(rankings))],
                               only_if_missing=only_if_missing)

    async def update_many(self, updates: Iterable[ViewUpdate], *,
                          only_if_missing: bool = False) -> None:
        """Several view updates in one round trip: the round trip, not the commands, is what
        a write costs (``bench/RESULTS.md``: 28 % of a tick was three pipelines for three
        bar views).

        ``only_if_missing`` (rebuilds after a flush) leaves a view whose hash is there alone,
        with its rankings: an agent wrote it after the flush, from newer state.
        """
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for update in updates:
                    if update.view not in VIEW_BY_NAME:
                        raise ValueError(f"{update.view!r} is not a view of the layout "
                                         "(schemas/redis_layout.py)")
                    key = self.key(update.view, update.name)
                    message = json.dumps({"view": update.view, "name": update.name,
                                          **update.snapshot})
                    if only_if_missing:
                        await self._fill(pipe, key, update, message)
                        continue
                    pipe.delete(key)
                    pipe.hset(key, mapping=hash_fields(update.snapshot))  # type: ignore[arg-type]
                    if update.ttl_s:
                        pipe.expire(key, update.ttl_s)
                    for zset, member, score in update.rankings:
                        pipe.zadd(self.key(ranking(update.view), zset), {member: score})
                    pipe.publish(self.key(update.view), message)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed("update", exc)

    async def _fill(self, pipe: Pipeline, key: str, update: ViewUpdate, message: str) -> None:
        fields = hash_fields(update.snapshot)
        await self.fill_missing(
            keys=[key, *(self.key(ranking(update.view), zset)
                         for zset, _, _ in update.rankings)],
            args=[update.ttl_s or 0, self.key(update.view), message, len(fields),
                  *(x for field in fields.items() for x in field),
                  *(x for _, member, score in update.rankings for x in (score, member))],
            client=pipe)

    async def signal(self, signal: Signal) -> None:
        payload = signal.dumps().decode()
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.lpush(self.key(*RECENT_SIGNALS_KEY), payload)
                pipe.ltrim(self.key(*RECENT_SIGNALS_KEY), 0, RECENT_SIGNALS - 1)
                pipe.publish(self.key(SIGNALS_CHANNEL), payload)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed("signal", exc)

    async def layout_present(self) -> bool | None:
        """Whether the layout marker is there (False after a flush); None if Redis is down."""
        try:
            return bool(await self.client.exists(self.key(*LAYOUT_MARKER_KEY)))
        except (RedisError, OSError) as exc:
            self._failed("layout check", exc)
            return None

    async def mark_layout(self) -> None:
        try:
            await self.client.hset(self.key(*LAYOUT_MARKER_KEY), mapping={
                "version": str(LAYOUT_VERSION), "schema_version": str(SCHEMA_VERSION)})
        except (RedisError, OSError) as exc:
            self._failed("layout marker", exc)

    async def count_dead_letter(self, topic: str) -> None:
        try:
            await self.client.hincrby(self.key(*DEADLETTER_COUNTS_KEY), topic, 1)
        except (RedisError, OSError) as exc:
            self._failed("dead-letter count", exc)

    def _failed(self, what: str, exc: BaseException) -> None:
        self.write_errors += 1
        REDIS_WRITE_ERRORS.labels(what).inc()
        log.warning("Redis %s write failed (%d so far), processing goes on: %r",
                    what, self.write_errors, exc)
