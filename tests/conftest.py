"""Shared fixtures: paths of the bundled real data, and the real stack with a private
namespace per test (used by tests/integration and tests/browser).

The stack is the project's own (``altseason stack up``): taken from KAFKA_BOOTSTRAP_SERVERS /
REDIS_URL when set (``make test`` sets them), else started here and stopped at the end.
Each test gets its own topic prefix, Faust app id and Redis prefix, so tests never share state.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as redis
from aiokafka.errors import KafkaError

ROOT = Path(__file__).resolve().parents[1]
# the integration harness, importable as ``harness`` from every test folder (one module)
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from harness import Namespace, delete_topics, private_env  # noqa: E402

from altseason import stack  # noqa: E402
from altseason.kafka_admin import ensure_topics  # noqa: E402
from altseason.run import stop_worker  # noqa: E402
from foundation.config import load_settings  # noqa: E402


@pytest.fixture(scope="session")
def replay_dir() -> Path:
    return ROOT / "data" / "replay"


@pytest.fixture(scope="session")
def stack_env() -> Iterator[dict[str, str]]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("REDIS_URL"):
        yield {"KAFKA_BOOTSTRAP_SERVERS": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
               "REDIS_URL": os.environ["REDIS_URL"]}
        return
    already_running = stack.status() is not None
    info = stack.up()
    try:
        yield {"KAFKA_BOOTSTRAP_SERVERS": info.kafka_bootstrap_servers,
               "REDIS_URL": info.redis_url}
    finally:
        if not already_running:  # someone else's stack (another session) stays up
            stack.down()


@pytest.fixture
async def namespace(stack_env: dict[str, str], tmp_path: Path,
                    monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Namespace]:
    """The test's own namespace; its topics are deleted afterwards."""
    env = private_env(stack_env, tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(env=env)
    await ensure_topics(settings)
    yield Namespace(env, settings, tmp_path)
    try:
        await delete_topics(settings)
    except KafkaError as exc:  # a leftover topic is harmless; a test that stopped Kafka
        warnings.warn(f"could not delete the test's topics: {exc!r}", stacklevel=1)


@pytest.fixture
async def redis_client(namespace: Namespace) -> AsyncIterator[redis.Redis]:
    client = redis.from_url(namespace.settings.redis_url, decode_responses=True)
    yield client
    keys = [k async for k in client.scan_iter(f"{namespace.settings.redis_prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def workers(namespace: Namespace) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes a test starts (append to the list); all stopped at the end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        stop_worker(process)
