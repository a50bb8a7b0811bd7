"""The dashboard's HTTP and websocket API with aiohttp's test client, on the real redis-server.

Views are written with the worker's own writer (``agents.redis_view.RedisView``), so the
server reads exactly what the worker writes. The Redis outage test runs its own short-lived
redis-server: the shared one must not be stopped.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer
from harness import free_port

from agents.redis_view import RedisView
from altseason.dashboard import create_app
from altseason.dashboard.history import index_close_ms
from foundation.config import Settings, load_settings
from schemas.records import Signal
from streams.signals import make_signal

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SCORE_COMPONENTS = {"index_ath": {"raw": -0.02, "component": 0.9, "weight": 0.25,
                                  "normalized_weight": 0.5, "contribution": 45.0, "age_ms": 0}}


def crowding_signal(message: str) -> Signal:
    return make_signal("long_crowding", "binanceusdm:BTC/USDT:USDT:global_account",
                       "2024-09-07T12:00:00.000Z", "warning", 3.6, message,
                       {"zscore": 2.6, "window": 336, "history_mean": 2.43})


async def write_views(view: RedisView) -> None:
    await view.update("index", "RUT", {"symbol": "RUT", "day": "2020-03-16", "close": 1037.42,
                                       "ath": 1740.75, "ath_day": "2018-08-31",
                                       "pct_from_ath": -0.404, "ytd_change": None})
    await view.update("correlation", "RUT~TOTAL", {
        "pair": "RUT~TOTAL", "event_time": "2020-03-16T20:00:00.000Z", "anchor": 1037.42,
        "other": 1.4e11, "corr_30d": 0.61, "beta_30d": float("nan"), "regime_30d": "coupled"})
    await view.update("longshort", "binanceusdm:BTC/USDT:USDT:global_account", {
        "exchange": "binanceusdm", "symbol": "BTC/USDT:USDT", "coin": "BTC",
        "variant": "global_account", "ratio": 2.45, "crowded": True, "zscore": None},
        rankings=[("global_account", "binanceusdm:BTC/USDT:USDT", 2.45)])
    await view.update("score", "altseason", {"score": 45.0, "band": "cold",
                                             "components": SCORE_COMPONENTS,
                                             "missing": ["correlation"]})


@pytest.fixture
async def client(redis_settings: Settings, replay_dir: Path) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(redis_settings, replay_dir))) as test_client:
        yield test_client


@pytest.fixture
async def view(redis_settings: Settings) -> AsyncIterator[RedisView]:
    writer = RedisView(redis_settings)
    yield writer
    await writer.client.aclose()


async def next_message(ws: Any, timeout_s: float = 10) -> dict[str, Any]:
    message = await ws.receive(timeout=timeout_s)
    assert message.type == WSMsgType.TEXT, message
    data: dict[str, Any] = json.loads(message.data)
    return data


async def until_status(ws: Any, up: bool, timeout_s: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        assert remaining > 0, f"no _status redis={up}"
        message = await next_message(ws, remaining)
        if message == {"channel": "_status", "data": {"redis": up}}:
            return


async def test_state_is_every_view_parsed_back_to_values(
        client: TestClient, view: RedisView, redis_settings: Settings) -> None:
    await write_views(view)
    await view.signal(crowding_signal("older"))
    await view.signal(crowding_signal("newer"))

    response = await client.get("/api/state")
    assert response.status == 200
    state = await response.json()
    assert state["redis"] is True and state["prefix"] == redis_settings.redis_prefix
    index = state["views"]["index"]["RUT"]
    assert (index["close"], index["day"], index["ytd_change"]) == (1037.42, "2020-03-16", None)
    corr = state["views"]["correlation"]["RUT~TOTAL"]
    assert corr["corr_30d"] == 0.61 and corr["beta_30d"] is None  # NaN is not JSON
    series = state["views"]["longshort"]["binanceusdm:BTC/USDT:USDT:global_account"]
    assert series["crowded"] is True and series["ratio"] == 2.45
    assert state["rankings"]["longshort-ranking"]["global_account"] == [
        ["binanceusdm:BTC/USDT:USDT", 2.45]]
    score = state["views"]["score"]["altseason"]
    assert score["components"] == SCORE_COMPONENTS and score["missing"] == ["correlation"]
    assert [s["message"] for s in state["signals"]] == ["newer", "older"]
    assert state["config"]["longshort_variant"] == "global_account"


async def test_history_is_cut_at_the_day_redis_has_reached(
        client: TestClient, view: RedisView) -> None:
    await write_views(view)  # index:RUT at 2020-03-16
    response = await client.get("/api/history", params={"years": "2"})
    assert response.status == 200
    history = await response.json()
    rut, total = history["series"]["RUT"], history["series"]["TOTAL"]
    close = index_close_ms(date(2020, 3, 16))
    assert rut[-1] == [close, pytest.approx(1037.42, abs=0.01)]
    assert rut[0][0] >= close - 2 * 366 * 86_400_000 and len(rut) > 400
    assert total and total[-1][0] <= history["until_ms"] and math.isfinite(total[-1][1])
    assert "not live" in history["source"]
    assert (await client.get("/api/history", params={"years": "x"})).status == 400


async def test_websocket_fans_one_subscription_out_and_ignores_what_browsers_send(
        client: TestClient, view: RedisView, redis_settings: Settings) -> None:
    first = await client.ws_connect("/ws")
    second = await client.ws_connect("/ws")
    for ws in (first, second):
        await until_status(ws, True)
    await first.send_str(json.dumps({"channel": "index", "data": {"close": 1}}))  # ignored

    await view.update("index", "RUT", {"symbol": "RUT", "day": "2020-03-17", "close": 1014.08})
    await view.signal(crowding_signal("live one"))
    for ws in (first, second):
        assert await next_message(ws) == {"channel": "index", "data": {
            "view": "index", "name": "RUT", "symbol": "RUT", "day": "2020-03-17",
            "close": 1014.08}}
        message = await next_message(ws)
        assert message["channel"] == "signals" and message["data"]["message"] == "live one"
    reader = redis.from_url(redis_settings.redis_url, decode_responses=True)
    try:
        subscribers = await reader.pubsub_numsub(redis_settings.redis_key("index"))
        assert subscribers == [(redis_settings.redis_key("index"), 1)]
    finally:
        await reader.aclose()
    health = await (await client.get("/health")).json()
    assert health == {"status": "ok", "redis": True, "subscribed": True, "clients": 2}
    await first.close()
    await second.close()


async def test_nothing_is_writable(client: TestClient, view: RedisView,
                                   redis_settings: Settings) -> None:
    await write_views(view)
    reader = redis.from_url(redis_settings.redis_url, decode_responses=True)
    try:
        before = sorted([k async for k in reader.scan_iter(f"{redis_settings.redis_prefix}*")])
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            for path in ("/", "/api/state", "/api/history", "/health", "/ws",
                         "/static/app.js"):
                response = await client.request(method, path, data=b"{}")
                assert response.status == 405, (method, path)
        assert (await client.get("/static/vendor/chart.umd.min.js")).status == 200
        assert (await client.get("/static/../server.py")).status in (403, 404)
        after = sorted([k async for k in reader.scan_iter(f"{redis_settings.redis_prefix}*")])
        assert after == before
    finally:
        await reader.aclose()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    """A redis-server of this test's own (port, started processes), stopped at the end."""
    port = free_port()
    started: list[subprocess.Popen[bytes]] = []
    yield port, started
    for process in started:
        process.kill()
        process.wait()


def start_redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server not found"
    return subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_redis_outage_is_reported_and_the_subscription_comes_back(
        private_redis: tuple[int, list[subprocess.Popen[bytes]]], tmp_path: Path) -> None:
    port, started = private_redis
    settings = load_settings(env={"REDIS_URL": f"redis://127.0.0.1:{port}/0",
                                  "ALTSEASON_REDIS_PREFIX": "outage:"})
    started.append(start_redis(port, tmp_path))
    async with TestClient(TestServer(create_app(settings))) as client:
        ws = await client.ws_connect("/ws")
        await until_status(ws, True)

        started[0].kill()
        started[0].wait()
        await until_status(ws, False)
        assert (await (await client.get("/health")).json())["redis"] is False
        assert (await client.get("/api/state")).status == 503

        started.append(start_redis(port, tmp_path))
        await until_status(ws, True, timeout_s=30)  # backoff is capped at 10 s
        writer = RedisView(settings)
        try:
            await writer.update("score", "altseason", {"score": 12.5, "band": "cold"})
        finally:
            await writer.client.aclose()
        assert await next_message(ws) == {"channel": "score", "data": {
            "view": "score", "name": "altseason", "score": 12.5, "band": "cold"}}
        assert (await (await client.get("/health")).json())["redis"] is True
        await ws.close()
