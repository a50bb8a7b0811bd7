"""A rebuild fills only the views that are missing, on a real redis-server.

A rebuild after a flush reads the tables while the agents keep writing; a view an agent wrote
meanwhile is newer than the rebuild's copy and must stay (a restarted worker once left
``regime:RUT/SPX`` a trading day behind this way).
"""

from __future__ import annotations

import json

import pytest
import redis.asyncio as redis
from harness import Namespace

from agents.redis_view import RedisView, ViewUpdate, hash_fields

pytestmark = pytest.mark.integration

FRESH = ViewUpdate("regime", "RUT/SPX", {"day": "2026-02-23", "streak": 5},
                   rankings=(("all", "RUT/SPX", 2.0),))
STALE = ViewUpdate("regime", "RUT/SPX", {"day": "2026-02-20", "streak": 2},
                   rankings=(("all", "RUT/SPX", 1.0),))
MISSING = ViewUpdate("netflow", "binance:ETH",
                     {"band": "accumulation", "imbalance": None, "detail": {"7d": -3.5}},
                     ttl_s=600,
                     rankings=(("7d", "binance:ETH", -3.5), ("30d", "binance:ETH", -10.0)))


async def published(pubsub: redis.client.PubSub) -> list[dict[str, object]]:
    """The messages published so far (the channels are subscribed before the writes)."""
    messages = []
    for _ in range(10):  # get_message also returns None for a subscription's confirmation
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if message is not None:
            messages.append(json.loads(message["data"]))
    return messages


async def test_a_fill_writes_missing_views_and_leaves_present_ones_alone(
        namespace: Namespace, redis_client: redis.Redis) -> None:
    view = RedisView(namespace.settings)
    key = namespace.settings.redis_key
    await view.update_many([FRESH])
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(key("regime"), key("netflow"))

    await view.update_many([STALE, MISSING], only_if_missing=True)

    assert await redis_client.hgetall(key("regime", "RUT/SPX")) == {"day": "2026-02-23",
                                                                     "streak": "5"}
    assert await redis_client.zscore(key("regime-ranking", "all"), "RUT/SPX") == 2.0
    netflow = key("netflow", "binance:ETH")
    assert await redis_client.hgetall(netflow) == hash_fields(MISSING.snapshot)
    assert 0 < await redis_client.ttl(netflow) <= 600
    assert await redis_client.zscore(key("netflow-ranking", "7d"), "binance:ETH") == -3.5
    assert await redis_client.zscore(key("netflow-ranking", "30d"), "binance:ETH") == -10.0
    assert await published(pubsub) == [{"view": "netflow", "name": "binance:ETH",
                                         **MISSING.snapshot}]  # not the stale regime
    assert view.write_errors == 0
    await pubsub.aclose()
    await view.client.aclose()


async def test_a_fill_works_after_redis_lost_its_scripts(
        namespace: Namespace, redis_client: redis.Redis) -> None:
    """A restarted (or replaced) redis-server has no cached scripts: the fill loads it again."""
    view = RedisView(namespace.settings)
    await view.update_many([MISSING], only_if_missing=True)
    await redis_client.delete(namespace.settings.redis_key("netflow", "binance:ETH"))
    await redis_client.script_flush()

    await view.update_many([MISSING], only_if_missing=True)

    assert await redis_client.hgetall(namespace.settings.redis_key(
        "netflow", "binance:ETH")) == hash_fields(MISSING.snapshot)
    assert view.write_errors == 0
    await view.client.aclose()
