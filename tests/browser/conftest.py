"""Browser tests: the dashboard served in-process, driven by a real headless Chromium.

Chromium is Debian's (``apt-get install -y chromium``), driven by Playwright for Python with
``executable_path``, so no browser download is needed (``ALTSEASON_CHROMIUM`` overrides the
path). The stack fixtures (``stack_env``, ``namespace``, ``workers``, ``redis_client``) come
from ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as redis
from playwright.async_api import Browser, async_playwright

from foundation.config import Settings, load_settings

CHROMIUM = Path(os.environ.get("ALTSEASON_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install -y chromium "
                    "(or set ALTSEASON_CHROMIUM)")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(chromium_path))
        yield chromium
        await chromium.close()


@pytest.fixture
async def redis_settings(stack_env: dict[str, str]) -> AsyncIterator[Settings]:
    """Settings with a private Redis prefix on the shared redis-server (no Kafka needed);
    its keys are deleted afterwards."""
    prefix = f"d{uuid.uuid4().hex[:8]}:"
    settings = load_settings(env={**stack_env, "ALTSEASON_REDIS_PREFIX": prefix})
    yield settings
    client = redis.from_url(settings.redis_url, decode_responses=True)
    keys = [k async for k in client.scan_iter(f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
