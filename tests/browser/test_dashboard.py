"""The dashboard page in a real headless Chromium, following a real worker on the real stack.

The page is opened first, then three months of the bundled real data (and a few days of
exchange netflows, which the bundled data lacks: made-up but plausible flows) go through
Kafka and a real Faust worker, so the charts fill from the websocket as the worker publishes.
Then: a signal published as the worker does appears in the feed; a reload renders from
/api/state; stopping the dashboard server shows the disconnected banner and a restart clears
it by itself.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as redis
from aiokafka import AIOKafkaProducer
from browser_harness import DashboardServer
from harness import Namespace, free_port
from playwright.async_api import Browser, Page

from agents.redis_view import RedisView
from foundation.config import Settings
from producers.replay import load_replay, replay
from schemas.records import ExchangeNetflow, Signal
from streams.signals import make_signal

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SINCE, UNTIL = date(2024, 7, 1), date(2024, 9, 30)
BTC_SERIES = "binanceusdm:BTC/USDT:USDT:global_account"
CHART_SIZES = """() => Object.fromEntries(Object.entries(window.altseasonCharts)
    .map(([name, chart]) => [name, chart.data.datasets.map(d => d.data.length)]))"""


def netflows() -> list[ExchangeNetflow]:
    """14 daily windows for 2 tokens on 2 exchanges: BTC leaving Binance (accumulation), ETH
    flowing into Coinbase (distribution), the other two balanced."""
    bias = {("binance", "BTC"): -0.4, ("binance", "ETH"): 0.0,
            ("coinbase", "BTC"): 0.02, ("coinbase", "ETH"): 0.35}
    scale = {"BTC": 4_000.0, "ETH": 60_000.0}
    flows = []
    start = datetime(2024, 9, 1, 23, 59, 59, 999_000, tzinfo=UTC)
    for (exchange, token), b in bias.items():
        for day in range(14):
            wobble = 1 + 0.1 * ((day * 7) % 5 - 2) / 2
            inflow = scale[token] * (1 + b) * wobble
            outflow = scale[token] * (1 - b)
            flows.append(ExchangeNetflow(
                exchange=exchange, token=token,
                event_time=(start + timedelta(days=day)).isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                window="1d", inflow=inflow, outflow=outflow, netflow=inflow - outflow))
    return flows


async def send_netflows(namespace: Namespace) -> None:
    settings = namespace.settings
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for flow in netflows():
            await producer.send(settings.topic("netflows"), flow.dumps(),
                                key=f"{flow.exchange}:{flow.token}".encode())
        await producer.flush()
    finally:
        await producer.stop()


def crowding_signal(n: int) -> Signal:
    return make_signal("long_crowding", BTC_SERIES, f"2024-09-{10 + n}T12:00:00.000Z", "warning",
                       3.5, f"Browser test signal {n}: crowded longs on binanceusdm.",
                       {"zscore": 2.7, "window": 336, "history_mean": 2.41})


async def wait_js(page: Page, expression: str, timeout_s: float = 20) -> None:
    await page.wait_for_function(expression, timeout=timeout_s * 1000)


async def test_dashboard_follows_a_replay_and_recovers_from_a_server_restart(
        namespace: Namespace, workers: list, redis_client: redis.Redis, browser: Browser,
        replay_dir: Path, tmp_path: Path) -> None:
    settings = namespace.settings
    server = DashboardServer(settings, free_port())
    writer = RedisView(settings)
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    try:
        await server.start()
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(server.url)
        await page.wait_for_selector("#conn.pill-ok", timeout=10_000)

        # the worker's output reaches the open page through the websocket
        workers.append(namespace.worker(ALTSEASON_SIGNALS__ATH_MIN_HISTORY_DAYS="0",
                                        ALTSEASON_SIGNALS__LONGSHORT_CROWDING_Z="2.0"))
        await send_netflows(namespace)
        events = load_replay(replay_dir, SINCE, UNTIL)
        assert await replay(settings, events, progress=False) == len(events)
        await namespace.processed(workers[0])

        recent = await redis_client.llen(settings.redis_key("signals", "recent"))
        assert recent > 0
        await wait_js(page, f"() => document.querySelectorAll('#feed .signal').length === "
                            f"{min(recent, 200)}")
        await page.click("#corr-windows button[data-window='30']")
        await wait_js(page, """() => {
            const c = window.altseasonCharts;
            return c.market.data.datasets.every(d => d.data.length > 100)
                && c.correlation.data.datasets.length >= 3
                && c.correlation.data.datasets.every(d => d.data.length > 10)
                && c.longshort.data.datasets[0].data.length === 1
                && c.score.data.labels.length >= 1; }""")
        sizes = await page.evaluate(CHART_SIZES)
        assert sizes["longshort"] == [1, 2], sizes  # BTC, and the ratio-1 line

        btc = await redis_client.hgetall(settings.redis_key("longshort", BTC_SERIES))
        point = await page.evaluate("window.altseasonCharts.longshort.data.datasets[0].data[0]")
        assert (point["coin"], point["x"], point["y"]) == ("BTC", 1, float(btc["ratio"]))
        line = await page.evaluate("window.altseasonCharts.longshort.data.datasets[1].data")
        assert [p["y"] for p in line] == [1, 1]
        score = await redis_client.hgetall(settings.redis_key("score", "altseason"))
        await wait_js(page, f"() => document.querySelector('#score-value').textContent === "
                            f"'{float(score['score']):.0f}'")
        rows = await page.locator("#netflow-table tbody tr").all_inner_texts()
        assert len(rows) == 4 and all(("accumulation" in row) or ("distribution" in row)
                                      or ("neutral" in row) for row in rows), rows
        assert rows[0].startswith("binance:BTC") and "accumulation" in rows[0]

        # a signal published as the worker publishes it shows up, with its evidence
        signal = crowding_signal(1)
        await writer.signal(signal)
        item = page.locator(f"#feed .signal[data-id='{signal.id}']")
        await item.wait_for(timeout=5_000)
        assert signal.message in await item.inner_text()
        assert "zscore" in await item.locator(".evidence").inner_text()

        # a fresh page renders from /api/state and /api/history
        await page.reload()
        await page.wait_for_selector("#conn.pill-ok", timeout=10_000)
        await item.wait_for(timeout=5_000)
        await wait_js(page, """() => window.altseasonCharts.market.data.datasets
            .every(d => d.data.length > 100)""")

        # the server goes away: the banner says so; it comes back: the page recovers
        await server.stop()
        banner = page.locator("#banner")
        await banner.wait_for(state="visible", timeout=5_000)
        assert "Disconnected" in await banner.inner_text()
        await server.start()
        await banner.wait_for(state="hidden", timeout=20_000)
        await page.wait_for_selector("#conn.pill-ok", timeout=5_000)
        signal = crowding_signal(2)
        await writer.signal(signal)
        await page.locator(f"#feed .signal[data-id='{signal.id}']").wait_for(timeout=5_000)

        await page.screenshot(path=tmp_path / "dashboard.png", full_page=True)
        assert (tmp_path / "dashboard.png").stat().st_size > 10_000
        assert errors == []
    finally:
        await context.close()
        await server.stop()
        await writer.client.aclose()


async def test_page_shows_empty_views_without_errors(
        redis_settings: Settings, browser: Browser) -> None:
    """A fresh Redis prefix: every panel says it has nothing yet, and the page is live."""
    server = DashboardServer(redis_settings, free_port())
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    try:
        await server.start()
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(server.url)
        await page.wait_for_selector("#conn.pill-ok", timeout=10_000)
        await asyncio.sleep(0.5)
        assert "No signals yet" in await page.locator("#feed").inner_text()
        assert "No exchange netflows" in await page.locator("#netflow-table").inner_text()
        assert await page.locator("#banner").is_hidden()
        assert errors == []
    finally:
        await context.close()
        await server.stop()
