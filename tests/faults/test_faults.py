"""Faults on real processes: kill -9, a second worker leaving, Kafka and Redis going away.

The same slice of the real data is replayed once undisturbed (the reference, on the shared
stack) and once per test with a fault, and each test compares what users see: the
``signals`` topic read with ``isolation_level=read_committed`` (the same signal ids) and the
Redis view (every hash and sorted set equal). Left out of the comparison, and why:

- ``score:altseason`` and ``altseason_score`` signals: the score fans in components from
  agents that each run at their own pace, so which components are fresh at a given update
  depends on timing, with or without a fault (README "Guarantees").
- ``signals:recent`` and ``deadletter:counts``: Redis side effects are not transactional; a
  signal published just before a crash is published again when its batch is redone.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as redis
from harness import Namespace, delete_topics, free_port, private_env, read_topic, wait_ready

from altseason import stack
from altseason.kafka_admin import ensure_topics
from altseason.run import stop_worker
from altseason.stack import StackInfo
from foundation.config import Settings, load_settings
from producers.replay import ReplayEvent, load_replay, replay
from schemas.records import Signal

pytestmark = pytest.mark.integration

SINCE = date(2025, 10, 1)
NOT_COMPARED = ("signals:recent", "deadletter:counts", "meta:layout", "score:altseason")
SIGNAL_ENV = {"ALTSEASON_SIGNALS__ATH_MIN_HISTORY_DAYS": "0",
              # a restarted worker rejoins once the group has given up on the dead one
              "ALTSEASON_KAFKA_SESSION_TIMEOUT_SECONDS": "10"}


#: the namespaces this module made, whose topics it deletes at its end
MADE: list[Namespace] = []


def make_namespace(servers: dict[str, str], workdir: Path) -> Namespace:
    """A private namespace (topics, group, Redis keys) on the given Kafka and Redis."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**private_env(servers, workdir), **SIGNAL_ENV, "ALTSEASON_REDIS_CHECK_SECONDS": "1"}
    MADE.append(Namespace(env, load_settings(env=env), workdir))
    return MADE[-1]


@pytest.fixture(scope="module", autouse=True)
async def delete_topics_afterwards(stack_env: dict[str, str]) -> AsyncIterator[None]:
    """Delete the topics of the namespaces made on the shared broker (a private broker is
    gone with its test; a dev broker died after some runs of this module kept theirs)."""
    yield
    for namespace in MADE:
        if namespace.settings.kafka_bootstrap_servers == stack_env["KAFKA_BOOTSTRAP_SERVERS"]:
            await delete_topics(namespace.settings)
    MADE.clear()


def second_worker_env(namespace: Namespace) -> dict[str, str]:
    """Another worker of the same group: its own web port and table folder."""
    return {"ALTSEASON_WEB_PORT": str(free_port()),
            "ALTSEASON_DATADIR": str(namespace.workdir / "data-2")}


async def redis_view(settings: Settings) -> dict[str, Any]:
    """Every hash and sorted set under the namespace's prefix, by key without the prefix."""
    client = redis.from_url(settings.redis_url, decode_responses=True)
    view: dict[str, Any] = {}
    try:
        async for key in client.scan_iter(f"{settings.redis_prefix}*"):
            name = key.removeprefix(settings.redis_prefix)
            if name in NOT_COMPARED:
                continue
            kind = await client.type(key)
            if kind == "hash":
                view[name] = await client.hgetall(key)
            elif kind == "zset":
                view[name] = await client.zrange(key, 0, -1, withscores=True)
    finally:
        await client.aclose()
    return view


async def committed_signals(settings: Settings) -> Counter[str]:
    """Signal ids on the topic (read_committed), with how often each is there."""
    raws = await read_topic(settings, settings.topic("signals"), timeout_s=30)
    signals = [Signal(**json.loads(raw)) for raw in raws]
    return Counter(s.id for s in signals if s.type != "altseason_score")


async def committed_bars(settings: Settings) -> set[str]:
    """The closed bars on the ``bars`` topic, each once (a bar closed just before a crash
    can be there twice)."""
    return set(await read_topic(settings, settings.topic("bars"), timeout_s=30))


async def metric(port: int, name: str) -> float:
    """Sum of one metric's samples on a worker's /metrics (0 when it does not answer)."""
    try:
        async with aiohttp.ClientSession() as session, \
                session.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
    except aiohttp.ClientError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))


async def until_received(namespace: Namespace, port: int, count: int,
                         timeout_s: float = 120) -> None:
    """Until the worker on ``port`` has taken ``count`` messages from its topics since its
    last rebalance (Faust's Prometheus monitor clears the per-topic counts at each one)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while await metric(port, "altseason_messages_received_per_topic_total") < count:
        assert asyncio.get_running_loop().time() < deadline, "the worker did not progress"
        await asyncio.sleep(0.2)


def kill_hard(worker: subprocess.Popen[bytes]) -> None:
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(10)


Reference = tuple[dict[str, Any], Counter[str], set[str]]


@pytest.fixture(scope="module")
async def reference(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory,
                    events: list[ReplayEvent]) -> Reference:
    """The same replay, undisturbed: what every faulty run must end up equal to."""
    namespace = make_namespace(stack_env, tmp_path_factory.mktemp("reference"))
    await ensure_topics(namespace.settings)
    worker = namespace.worker()
    try:
        await replay(namespace.settings, events, progress=False)
        await namespace.processed(worker)
        await asyncio.sleep(1.5)  # the last Redis writes of the final batch
        return (await redis_view(namespace.settings), await committed_signals(namespace.settings),
                await committed_bars(namespace.settings))
    finally:
        stop_worker(worker)


async def assert_same_outcome(namespace: Namespace, reference: Reference) -> None:
    """Same signals, closed bars and Redis view as the undisturbed run. Delivery is at least
    once: events since the last commit come again, agents dead-letter them as older than or
    duplicates of what they applied, and a signal or a bar may be on its topic twice (same id
    or same bar: consumers dedupe)."""
    view, signals, bars = reference
    got = await committed_signals(namespace.settings)
    assert set(got) == set(signals)
    got_bars = await committed_bars(namespace.settings)
    assert got_bars == bars, f"{len(bars - got_bars)} closed bars missing, " \
                             f"{len(got_bars - bars)} unexpected"
    deadline = asyncio.get_running_loop().time() + 20
    while (current := await redis_view(namespace.settings)) != view:
        if asyncio.get_running_loop().time() > deadline:  # a rebuild may still be running
            differing = sorted(k for k in set(current) | set(view)
                               if current.get(k) != view.get(k))
            raise AssertionError(f"Redis differs from the undisturbed run in {differing}")
        await asyncio.sleep(0.5)
    dead = [json.loads(raw) for raw in
            await read_topic(namespace.settings, namespace.settings.topic("deadletter"))]
    repeats = [letter for letter in dead if any(  # what agents say of an event they applied
        words in letter["reason"] for words in ("duplicate", "older than", "is late"))]
    assert repeats == dead, [(d["topic"], d["reason"]) for d in dead if d not in repeats][:3]


@pytest.fixture(scope="module")
def events(replay_dir: Path) -> list[ReplayEvent]:
    return load_replay(replay_dir, since=SINCE)


@pytest.mark.parametrize("kill_after", [100, 0.5], ids=["as-it-starts-reading", "halfway"])
async def test_kill_9_mid_replay_then_restart_equals_an_undisturbed_run(
        stack_env: dict[str, str], tmp_path: Path, events: list[ReplayEvent],
        workers: list, reference: Reference, kill_after: float) -> None:
    """Killed after it took 100 messages (usually before its first commit: partitions with
    nothing committed, which a restart lost until ``agents/transport.py``), or halfway
    (where about 1 run in 10 skipped one event, until ``Consumer.perform_seek`` there)."""
    namespace = make_namespace(stack_env, tmp_path / "faulty")
    await ensure_topics(namespace.settings)
    first = namespace.worker()
    workers.append(first)
    sending = asyncio.create_task(replay(namespace.settings, events, progress=False))
    taken = int(kill_after if kill_after >= 1 else len(events) * kill_after)
    await until_received(namespace, namespace.settings.web_port, taken)
    kill_hard(first)
    await sending
    second = namespace.worker()
    workers.append(second)
    await namespace.processed(second)
    await assert_same_outcome(namespace, reference)


async def test_two_workers_split_partitions_and_one_takes_over_when_the_other_stops(
        stack_env: dict[str, str], tmp_path: Path, events: list[ReplayEvent],
        workers: list, reference: Reference) -> None:
    namespace = make_namespace(stack_env, tmp_path / "faulty")
    await ensure_topics(namespace.settings)
    survivor = namespace.worker()
    workers.append(survivor)
    other_env = second_worker_env(namespace)
    doomed = namespace.worker(**other_env)
    workers.append(doomed)
    # both in the group before the replay starts, so that no rebalance resets the counts below
    other_port = int(other_env["ALTSEASON_WEB_PORT"])
    await wait_ready(other_port, doomed)
    await wait_ready(namespace.settings.web_port, survivor)
    sending = asyncio.create_task(replay(namespace.settings, events, progress=False))
    # both take part: each has taken messages from its share of the partitions
    await until_received(namespace, namespace.settings.web_port, 100)
    await until_received(namespace, other_port, 100)
    stop_worker(doomed)  # it leaves the group; the survivor takes its partitions over
    await sending
    await namespace.processed(survivor, timeout_s=300)
    await assert_same_outcome(namespace, reference)


@pytest.mark.parametrize("send", ["signal:correlation_regime", "bar"])
async def test_a_crash_just_before_a_signal_or_bar_is_sent_loses_nothing(
        stack_env: dict[str, str], tmp_path: Path, events: list[ReplayEvent],
        workers: list, reference: Reference, send: str) -> None:
    """The worst moment: the event that fires a signal (or closes a bar) is processed,
    everything sent before it is on the broker, it is not, and the worker dies (the failpoint
    in ``agents/driver.py``). Agents write the table entry recording an event last, so the
    restarted worker applies the event again and sends it."""
    namespace = make_namespace(stack_env, tmp_path / "faulty")
    await ensure_topics(namespace.settings)
    crashing = namespace.worker(ALTSEASON_FAILPOINT_CRASH_BEFORE=send)
    workers.append(crashing)
    await replay(namespace.settings, events, progress=False)
    assert await asyncio.to_thread(crashing.wait, 300) == 70, "the failpoint did not fire"
    restarted = namespace.worker()
    workers.append(restarted)
    await namespace.processed(restarted, timeout_s=300)
    await assert_same_outcome(namespace, reference)


def private_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, StackInfo]:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)  # a private stack, not the shared one
    stack_dir = tmp_path / "stack"
    return stack_dir, stack.up(stack_dir)


async def test_kafka_broker_stopped_and_restarted_mid_run_loses_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, events: list[ReplayEvent],
        workers: list, reference: Reference) -> None:
    stack_dir, info = private_stack(tmp_path, monkeypatch)
    try:
        servers = {"KAFKA_BOOTSTRAP_SERVERS": info.kafka_bootstrap_servers,
                   "REDIS_URL": info.redis_url}
        namespace = make_namespace(servers, tmp_path / "faulty")
        await ensure_topics(namespace.settings)
        worker = namespace.worker()
        workers.append(worker)
        sending = asyncio.create_task(replay(namespace.settings, events, progress=False))
        await until_received(namespace, namespace.settings.web_port, len(events) // 3)
        await asyncio.to_thread(stack.down, stack_dir)  # Kafka (and its Redis) go away
        await asyncio.sleep(5)
        assert worker.poll() is None, "the worker must wait for the broker, not exit"
        await asyncio.to_thread(stack.up, stack_dir)
        await asyncio.wait_for(sending, 180)  # the replay producer carried over the outage
        await namespace.processed(worker, timeout_s=240)
        await assert_same_outcome(namespace, reference)
        reconnects = (namespace.workdir / "worker.log").read_text().count("Unable connect to")
        assert reconnects < 20, f"aiokafka's reconnect loop logged {reconnects} lines"
    finally:
        for worker in workers:  # before its broker goes: a worker without one cannot leave
            stop_worker(worker)
        await asyncio.to_thread(stack.down, stack_dir)


async def test_redis_stopped_restarted_and_flushed_mid_run_the_view_comes_back_complete(
        stack_env: dict[str, str], tmp_path: Path, events: list[ReplayEvent],
        workers: list, reference: Reference) -> None:
    """A redis-server of the test's own (the shared one stays up), stopped during the run."""
    from altseason.stack import ensure_redis_server

    port = free_port()
    cmd = [ensure_redis_server(), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
           "--appendonly", "no", "--dir", str(tmp_path)]

    def start_redis() -> subprocess.Popen[bytes]:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def answers() -> bool:
        client = redis.from_url(f"redis://127.0.0.1:{port}/0")
        try:
            return bool(await client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            await client.aclose()

    async def until_answers() -> None:
        async with asyncio.timeout(20):
            while not await answers():  # noqa: ASYNC110 (polling a server, not an event)
                await asyncio.sleep(0.1)

    server = start_redis()
    try:
        await until_answers()
        servers = {**stack_env, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
        namespace = make_namespace(servers, tmp_path / "faulty")
        await ensure_topics(namespace.settings)
        worker = namespace.worker()
        workers.append(worker)
        sending = asyncio.create_task(replay(namespace.settings, events, progress=False))
        await until_received(namespace, namespace.settings.web_port, len(events) // 3)
        server.terminate()
        server.wait(10)
        received = await metric(namespace.settings.web_port,
                                "altseason_messages_received_per_topic_total")
        await asyncio.sleep(3)
        # processing goes on without Redis, and says so in its metrics
        assert await metric(namespace.settings.web_port,
                            "altseason_messages_received_per_topic_total") > received
        assert await metric(namespace.settings.web_port,
                            "altseason_redis_write_errors_total") > 0
        server = start_redis()  # empty: no persistence
        await until_answers()
        await sending
        await namespace.processed(worker)
        client = redis.from_url(f"redis://127.0.0.1:{port}/0")
        await client.flushall()  # and once more, after the run
        await client.aclose()
        await assert_same_outcome(namespace, reference)
        assert await metric(namespace.settings.web_port, "altseason_redis_rebuilds_total") >= 2
    finally:
        server.terminate()
        server.wait(10)
