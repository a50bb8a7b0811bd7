"""The live dashboard: one page, the Redis views as JSON, and their updates over a websocket.

Read-only by design: GET routes and a websocket whose incoming messages are ignored; nothing
here writes to Redis. One Redis subscription per server (``Hub``) is fanned out to every
browser, so the load on Redis does not grow with the number of open pages. When Redis goes
away the server keeps running, resubscribes with capped exponential backoff, and tells the
browsers (``{"channel": "_status", "data": {"redis": false}}``) so the page can say so.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import redis.asyncio as redis
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from altseason.dashboard.history import (
    DEFAULT_REPLAY_DIR,
    Series,
    history_window,
    index_close_ms,
    read_series,
)
from altseason.dashboard.state import CHANNELS, finite, parse_payload, read_state
from foundation.config import Settings
from foundation.connections import redis_client

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
STATUS_CHANNEL = "_status"
#: messages queued for one browser; a browser that falls this far behind is disconnected
#: (its page reconnects and reloads the state) instead of holding up the others
CLIENT_QUEUE = 10_000
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.5, 10.0
DEFAULT_HISTORY_YEARS = 5.0


@dataclass
class Client:
    """One browser socket's outgoing queue."""

    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE))
    overflowed: bool = False


class Hub:
    """The server's single Redis subscription, forwarded to every browser socket."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clients: dict[web.WebSocketResponse, Client] = {}
        self.redis_up = False

    def join(self, ws: web.WebSocketResponse) -> Client:
        client = Client()
        client.queue.put_nowait(self._status())
        self.clients[ws] = client
        return client

    def leave(self, ws: web.WebSocketResponse) -> None:
        self.clients.pop(ws, None)

    def _status(self) -> str:
        return json.dumps({"channel": STATUS_CHANNEL, "data": {"redis": self.redis_up}})

    def broadcast(self, text: str) -> None:
        for client in self.clients.values():
            if client.queue.full():
                client.overflowed = True
            else:
                client.queue.put_nowait(text)

    def set_redis(self, up: bool) -> None:
        if up != self.redis_up:
            self.redis_up = up
            self.broadcast(self._status())

    def forward(self, channel: str, payload: str) -> None:
        """Send one Redis message to every browser, its channel without the prefix."""
        name = channel.removeprefix(self.settings.redis_prefix)
        self.broadcast(json.dumps({"channel": name, "data": finite(parse_payload(payload))},
                                  allow_nan=False))

    async def follow(self) -> None:
        """Subscribe to the view channels and forward them until cancelled; resubscribe with
        backoff when Redis goes away (no silent retries inside redis-py, so the browsers
        learn about every gap and reload the state)."""
        delay = BACKOFF_MIN_S
        channels = [self.settings.redis_key(name) for name in CHANNELS]
        while True:
            client = redis_client(self.settings, decode_responses=True,
                                    retry=Retry(NoBackoff(), 0), socket_connect_timeout=5,
                                    socket_keepalive=True, health_check_interval=10)
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(*channels)
                    self.set_redis(True)
                    delay = BACKOFF_MIN_S
                    while True:
                        message = await pubsub.get_message(timeout=5.0)
                        if message and message["type"] == "message":
                            self.forward(message["channel"], message["data"])
            except (RedisError, OSError) as exc:
                log.warning("dashboard: Redis subscription lost (%r); retrying in %.1f s",
                            exc, delay)
            finally:
                await client.aclose()
            self.set_redis(False)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, BACKOFF_MAX_S)


SETTINGS = web.AppKey("settings", Settings)
HUB = web.AppKey("hub", Hub)
READER = web.AppKey("reader", redis.Redis)
REPLAY_DIR = web.AppKey("replay_dir", Path)
SERIES: web.AppKey[dict[str, Series]] = web.AppKey("series", dict)
SERIES_LOCK = web.AppKey("series_lock", asyncio.Lock)


async def index_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def health(request: web.Request) -> web.Response:
    try:
        up = bool(await asyncio.wait_for(request.app[READER].ping(), 2.0))
    except (RedisError, OSError, TimeoutError):
        up = False
    hub = request.app[HUB]
    return web.json_response({"status": "ok", "redis": up, "subscribed": hub.redis_up,
                              "clients": len(hub.clients)})


async def api_state(request: web.Request) -> web.Response:
    try:
        state = await read_state(request.app[READER], request.app[SETTINGS])
    except (RedisError, OSError) as exc:
        return web.json_response({"redis": False, "error": f"Redis unavailable: {exc}"},
                                 status=503)
    return web.json_response({"redis": True, **state},
                             dumps=lambda data: json.dumps(data, allow_nan=False))


async def _series(app: web.Application) -> dict[str, Series]:
    async with app[SERIES_LOCK]:
        if not app[SERIES]:
            index = app[SETTINGS].signals.regime_index
            app[SERIES].update(await asyncio.to_thread(read_series, app[REPLAY_DIR], index))
        return app[SERIES]


async def api_history(request: web.Request) -> web.Response:
    """Index closes and total crypto market cap from the replay files (see history.py)."""
    try:
        years = float(request.query.get("years", DEFAULT_HISTORY_YEARS))
    except ValueError:
        years = -1.0
    if not 0 < years <= 50:
        raise web.HTTPBadRequest(text="years must be a number in (0, 50]")
    settings = request.app[SETTINGS]
    until_ms = None
    try:
        day = await request.app[READER].hget(
            settings.redis_key("index", settings.signals.regime_index), "day")
    except (RedisError, OSError):
        day = None
    if day:
        with suppress(ValueError):
            until_ms = index_close_ms(date.fromisoformat(str(day)),
                                      settings.signals.alignment_lookahead_hours)
    series = await _series(request.app)
    since_ms, until_ms = history_window(series, years, until_ms)
    return web.json_response({
        "source": f"recorded replay files in {request.app[REPLAY_DIR]} (not live), up to the "
                  "day the Redis views have reached",
        "since_ms": since_ms,
        "until_ms": until_ms,
        "series": {name: s.window(since_ms, until_ms) for name, s in series.items()},
    })


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """Push every view update to this browser; what the browser sends is ignored."""
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    hub = request.app[HUB]
    client = hub.join(ws)
    writer = asyncio.create_task(_write(ws, client))
    try:
        async for _ in ws:
            pass
    finally:
        hub.leave(ws)
        writer.cancel()
        with suppress(asyncio.CancelledError):
            await writer
    return ws


async def _write(ws: web.WebSocketResponse, client: Client) -> None:
    try:
        while True:
            text = await client.queue.get()
            if client.overflowed:
                await ws.close(code=1013, message=b"too far behind: reload the state")
                return
            await ws.send_str(text)
    except (ConnectionError, RuntimeError):  # the browser went away mid-send
        return


async def _follow_redis(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[HUB].follow())
    yield
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
    await app[READER].aclose()


async def _close_sockets(app: web.Application) -> None:
    for ws in list(app[HUB].clients):
        await ws.close(code=1001, message=b"server shutdown")


def create_app(settings: Settings, replay_dir: Path = DEFAULT_REPLAY_DIR) -> web.Application:
    """The dashboard application (``aiohttp.web``), for ``serve_dashboard`` and the tests.

    ``replay_dir``: where ``/api/history`` reads the recorded index and market-cap series.
    """
    app = web.Application()
    app[SETTINGS] = settings
    app[HUB] = Hub(settings)
    app[READER] = redis_client(settings, decode_responses=True,
                                 socket_timeout=5, socket_connect_timeout=2)
    app[REPLAY_DIR] = replay_dir
    app[SERIES] = {}
    app[SERIES_LOCK] = asyncio.Lock()
    app.router.add_get("/", index_page)
    app.router.add_get("/health", health)
    app.router.add_get("/api/state", api_state)
    app.router.add_get("/api/history", api_history)
    app.router.add_get("/ws", websocket)
    app.router.add_static("/static/", STATIC_DIR)
    app.cleanup_ctx.append(_follow_redis)
    app.on_shutdown.append(_close_sockets)
    return app


async def serve_dashboard(settings: Settings, host: str | None = None, port: int | None = None,
                          replay_dir: Path = DEFAULT_REPLAY_DIR) -> None:
    """Serve the dashboard until cancelled (defaults: ``dashboard_host``, ``dashboard_port``)."""
    host = settings.dashboard_host if host is None else host
    port = settings.dashboard_port if port is None else port
    runner = web.AppRunner(create_app(settings, replay_dir), handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        print(f"dashboard: http://{host}:{port}/ (Redis {settings.redis_prefix}* views)",
              flush=True)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
