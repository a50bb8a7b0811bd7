"""What integration tests share: a private namespace per test, and reading a whole topic."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer

from altseason.kafka_admin import delete_topics_starting_with, topic_partitions
from altseason.run import start_worker, wait_until_processed
from foundation.config import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


WRITING_METHODS = ("POST", "PUT", "PATCH", "DELETE")


async def writing_statuses(port: int, paths: list[str]) -> dict[tuple[str, str], int]:
    """The status of every writing method on every path of a local web server: what a caller
    without any credentials gets (the endpoints are read-only, so nothing may accept one)."""
    statuses = {}
    async with aiohttp.ClientSession() as session:
        for path in paths:
            for method in WRITING_METHODS:
                async with session.request(method, f"http://127.0.0.1:{port}{path}",
                                           data=b"{}") as response:
                    statuses[(method, path)] = response.status
    return statuses


def private_env(servers: dict[str, str], workdir: Path) -> dict[str, str]:
    """Settings of a namespace of its own on the given Kafka and Redis: topic prefix, app id
    (consumer group), Redis prefix, table folder and free ports."""
    tag = uuid.uuid4().hex[:8]
    return {
        **servers,
        "ALTSEASON_TOPIC_PREFIX": f"t{tag}.",
        "ALTSEASON_APP_ID": f"altseason-t{tag}",
        "ALTSEASON_REDIS_PREFIX": f"t{tag}:",
        "ALTSEASON_DATADIR": str(workdir / "worker-data"),
        "ALTSEASON_WEB_PORT": str(free_port()),
        "ALTSEASON_PRODUCER_WEB_PORT": str(free_port()),
        "ALTSEASON_DASHBOARD_PORT": str(free_port()),
        "ALTSEASON_LOG_LEVEL": "info",
        # a fan-in applies what it holds once its ended sources have been silent this long
        "ALTSEASON_FAN_IN_MAX_WAIT_SECONDS": "1",
    }


@dataclass
class Namespace:
    """One test's private topics, consumer group, Redis keys, and the env that selects them."""

    env: dict[str, str]
    settings: Settings
    workdir: Path

    def worker(self, **extra_env: str) -> subprocess.Popen[bytes]:
        return start_worker(self.workdir / "worker.log", {**self.env, **extra_env})

    async def processed(self, worker: subprocess.Popen[bytes], timeout_s: float = 240) -> None:
        await wait_until_processed(self.settings, worker, self.workdir / "worker.log", timeout_s)


async def wait_ready(port: int, worker: subprocess.Popen[bytes], timeout_s: float = 90) -> dict:
    """Until the worker on ``port`` answers /ready (partitions assigned, tables recovered,
    Kafka and Redis reachable); its checks."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with aiohttp.ClientSession() as session:
        while asyncio.get_running_loop().time() < deadline:
            assert worker.poll() is None, "the worker exited"
            try:
                async with session.get(f"http://127.0.0.1:{port}/ready") as response:
                    if response.status == 200:
                        return dict(json.loads(await response.text()))
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError("the worker never became ready")


async def delete_topics(settings: Settings) -> None:
    """Delete a namespace's topics (public, internal, changelogs): each has about 140
    partitions, and a broker with a 512 MB heap ran out of memory at 16,000."""
    await delete_topics_starting_with(settings, (settings.topic_prefix, f"{settings.app_id}-"))


async def read_topic(settings: Settings, topic: str, timeout_s: float = 10) -> list[bytes]:
    """Every message currently in a topic, read with a plain consumer (read_committed)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    try:
        partitions = await topic_partitions(settings, [topic])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        values: list[bytes] = []
        deadline = asyncio.get_running_loop().time() + timeout_s
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"could not read {topic} to its end")
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                values.extend(m.value for m in messages)
        return values
    finally:
        await consumer.stop()
