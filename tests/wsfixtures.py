"""Local exchange servers that replay the recorded sessions of ``tests/data/ws/``.

Each server speaks its exchange's wire format on 127.0.0.1 (a free port): it answers the
subscriptions the client sends (or reads them from the URL, for Binance combined streams) the
way the exchange does, then streams the recorded frames of what was subscribed, as fast as the
client reads. A ``Plan`` per connection scripts failures: drop or close the connection after
some frames, go silent, skip frames (trades that happen while the client is away: a gap) or
send some again (a replay). The same port answers the REST calls the clients make (Binance
``aggTrades`` for backfills; markets for ccxt).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

DATA = Path(__file__).resolve().parent / "data" / "ws"
BINANCE_FUTURES = DATA / "cryptofeed_BINANCE_FUTURES.ws.1.0.txt"
BINANCE_SPOT = DATA / "cryptofeed_BINANCE.ws.1.0.txt"
COINBASE = DATA / "cryptofeed_COINBASE.ws.28.0.txt"
KRAKEN_FUTURES = DATA / "cryptofeed_KRAKEN_FUTURES.ws.1.0.txt"

_RECEIVED = re.compile(r"^(\d+(?:\.\d+)?): (.*)$")
_SENT = re.compile(r"^\S+ <- (\d+(?:\.\d+)?): (.*)$")


@dataclass
class Recording:
    url: str
    #: frames the client sent (subscriptions), parsed
    sent: list[dict[str, Any]]
    #: frames the client received, as the exact text
    frames: list[str]


def load_recording(path: Path) -> Recording:
    lines = path.read_text().splitlines()
    url = lines[0].split(" <-> ")[0]
    sent: list[dict[str, Any]] = []
    frames: list[str] = []
    for line in lines[1:]:
        if match := _SENT.match(line):
            sent.append(json.loads(match[2]))
        elif match := _RECEIVED.match(line):
            frames.append(match[2])
    return Recording(url, sent, frames)


@dataclass
class Plan:
    """What the server does on one connection (the n-th plan for the n-th connection)."""

    #: frames to send on this connection (None: all that are left)
    frames: int | None = None
    #: then: "silent" (keep the connection open, send nothing), "drop" (abort the TCP
    #: connection, no close frame) or "close" (a clean close frame)
    then: str = "silent"
    #: after this connection, this many frames happen while the client is away (never sent)
    missed: int = 0
    #: before sending, go back this many frames (they are sent again)
    rewind: int = 0


class ReplayServer:
    """Base: a websockets server on a free port with plans, cursors and a REST hook."""

    def __init__(self, frames: list[str], plans: list[Plan] | None = None) -> None:
        self.frames = frames
        self.plans = list(plans or [])
        self.connections = 0
        #: per subscription (the set of streams/channels), the next frame to send
        self.cursors: dict[frozenset[str], int] = {}
        #: the subscription of each connection, in order
        self.subscriptions: list[frozenset[str]] = []
        self.rest_requests: list[str] = []
        self._server: Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(next(iter(self._server.sockets)).getsockname()[1])

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> ReplayServer:
        self._server = await serve(self._handle, "127.0.0.1", 0,
                                   process_request=self._process_request, max_size=2 ** 22)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    # -- to override ------------------------------------------------------------------------

    def rest(self, path: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """(status, JSON body, headers) of a REST GET."""
        return 404, {"error": f"no route {path}"}, {}

    async def subscribe(self, ws: ServerConnection) -> frozenset[str] | None:
        """Read and answer the client's subscription; the set of what it subscribed."""
        raise NotImplementedError

    def selects(self, frame: str, subscription: frozenset[str]) -> bool:
        """Whether a recorded frame belongs to the subscription."""
        raise NotImplementedError

    def render(self, frame: str, ws: ServerConnection) -> str:
        """The frame as sent on this connection."""
        return frame

    async def answer(self, ws: ServerConnection, message: str | bytes) -> None:
        """A client message received after the subscription (pings, more subscriptions)."""

    def happened(self, frame: str) -> None:
        """A frame was sent or missed: what it reports is now history (REST may serve it)."""

    # -- machinery --------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        url = urlsplit(request.path)
        self.rest_requests.append(request.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        status, body, headers = self.rest(url.path, query)
        return Response(status, HTTPStatus(status).phrase, Headers({
            "Content-Type": "application/json", "Connection": "close", **headers,
        }), json.dumps(body).encode())

    async def _handle(self, ws: ServerConnection) -> None:
        plan = self.plans[self.connections] if self.connections < len(self.plans) else Plan()
        self.connections += 1
        subscription = await self.subscribe(ws)
        if subscription is None:
            return
        self.subscriptions.append(subscription)
        selected = [f for f in self.frames if self.selects(f, subscription)]
        position = max(0, self.cursors.get(subscription, 0) - plan.rewind)
        end = len(selected) if plan.frames is None else min(len(selected),
                                                            position + plan.frames)
        reader = asyncio.create_task(self._read(ws))
        try:
            for frame in selected[position:end]:
                self.happened(frame)
                await ws.send(self.render(frame, ws))
                position += 1
                self.cursors[subscription] = position
            for frame in selected[position:position + plan.missed]:
                self.happened(frame)
            self.cursors[subscription] = min(len(selected), position + plan.missed)
            if plan.then == "drop":
                ws.transport.abort()
            elif plan.then == "close":
                await ws.close()
            else:
                await ws.wait_closed()
        except ConnectionClosed:
            pass
        finally:
            reader.cancel()

    async def _read(self, ws: ServerConnection) -> None:
        try:
            async for message in ws:
                await self.answer(ws, message)
        except ConnectionClosed:
            pass


# -- Binance ----------------------------------------------------------------------------------

def combined_stream(frame: str) -> str | None:
    try:
        stream = json.loads(frame).get("stream")
    except (ValueError, AttributeError):
        return None
    return stream if isinstance(stream, str) else None


class BinanceServer(ReplayServer):
    """Binance combined streams (``/stream?streams=a/b``) and raw ``/ws`` with SUBSCRIBE, plus
    ``GET /api/v3/aggTrades`` and ``/fapi/v1/aggTrades`` served from the recorded trades.

    A frame that names no stream (garbage injected by a test) goes to every connection.
    """

    def __init__(self, frames: list[str], plans: list[Plan] | None = None,
                 rate_limit_first: int = 0) -> None:
        super().__init__(frames, plans)
        #: REST answers to refuse with 429 + Retry-After before answering normally
        self.rate_limit_first = rate_limit_first
        self.rest_weight = 0
        #: per symbol, the trades made so far (sent or missed), as REST rows
        self.trades: dict[str, list[dict[str, Any]]] = {}

    def happened(self, frame: str) -> None:
        stream = combined_stream(frame)
        if stream and stream.endswith("@aggTrade"):
            data = json.loads(frame)["data"]
            rows = self.trades.setdefault(str(data.get("s")), [])
            if isinstance(data.get("a"), int) and (not rows or data["a"] > rows[-1]["a"]):
                rows.append({k: v for k, v in data.items() if k not in ("e", "E", "s")})

    async def subscribe(self, ws: ServerConnection) -> frozenset[str] | None:
        assert ws.request is not None
        url = urlsplit(ws.request.path)
        if url.path == "/stream":
            streams = parse_qs(url.query).get("streams", [""])[0]
            return frozenset(s for s in streams.split("/") if s)
        # raw endpoint: {"method": "SUBSCRIBE", "params": [...], "id": n} -> {"result": null}
        message = json.loads(await ws.recv())
        await ws.send(json.dumps({"result": None, "id": message.get("id")}))
        return frozenset(message.get("params", []))

    def selects(self, frame: str, subscription: frozenset[str]) -> bool:
        stream = combined_stream(frame)
        return stream is None or stream in subscription

    def render(self, frame: str, ws: ServerConnection) -> str:
        assert ws.request is not None
        if urlsplit(ws.request.path).path == "/stream" or combined_stream(frame) is None:
            return frame
        return json.dumps(json.loads(frame)["data"])  # raw streams carry the bare event

    async def answer(self, ws: ServerConnection, message: str | bytes) -> None:
        request = json.loads(message)
        await ws.send(json.dumps({"result": None, "id": request.get("id")}))

    def rest(self, path: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if path not in ("/api/v3/aggTrades", "/fapi/v1/aggTrades"):
            return super().rest(path, query)
        if self.rate_limit_first > 0:
            self.rate_limit_first -= 1
            return 429, {"code": -1003, "msg": "Too many requests."}, {"Retry-After": "1"}
        self.rest_weight += 20
        rows = self.trades.get(query.get("symbol", ""), [])
        limit = int(query.get("limit", 500))
        if "fromId" in query:
            page = [row for row in rows if row["a"] >= int(query["fromId"])][:limit]
        else:
            page = rows[-limit:]  # the most recent trades
        return 200, page, {"X-MBX-USED-WEIGHT-1M": str(self.rest_weight)}


def binance_agg_trades(frames: list[str]) -> list[dict[str, Any]]:
    """The ``data`` of every aggTrade event of a recording, in order."""
    return [json.loads(f)["data"] for f in frames
            if (combined_stream(f) or "").endswith("@aggTrade")]


def binance_flood(template: dict[str, Any], count: int) -> list[str]:
    """``count`` aggTrade events of one symbol with consecutive ids, after a real one."""
    frames = []
    symbol = str(template["s"]).lower()
    for i in range(count):
        data = {**template, "a": template["a"] + 1 + i, "T": template["T"] + i,
                "E": template["E"] + i, "m": i % 3 == 0}
        frames.append(json.dumps({"stream": f"{symbol}@aggTrade", "data": data}))
    return frames


async def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 25.0) -> None:
    """Poll ``condition`` until it holds; TimeoutError naming ``what`` after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


# -- subscribe-by-message exchanges -----------------------------------------------------------

class MessageSubscribedServer(ReplayServer):
    """Exchanges where the client subscribes with messages after connecting: collect them
    (until 0.3 s pass without one), acknowledge each like the exchange, then stream."""

    #: recorded frame -> (channel, product) it belongs to, or None (not streamed)
    def route(self, frame: dict[str, Any]) -> tuple[str, str] | None:
        raise NotImplementedError

    def subscription_of(self, message: dict[str, Any]) -> list[tuple[str, str]]:
        raise NotImplementedError

    def acknowledgements(self, message: dict[str, Any],
                         subscribed: set[tuple[str, str]]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def welcome(self) -> list[dict[str, Any]]:
        return []

    async def subscribe(self, ws: ServerConnection) -> frozenset[str] | None:
        for frame in self.welcome():
            await ws.send(json.dumps(frame))
        subscribed: set[tuple[str, str]] = set()
        timeout = 10.0
        while True:
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            except TimeoutError:
                break
            except ConnectionClosed:
                return None
            subscribed.update(self.subscription_of(message))
            for ack in self.acknowledgements(message, subscribed):
                await ws.send(json.dumps(ack))
            timeout = 0.3
        return frozenset(f"{channel}:{product}" for channel, product in subscribed)

    async def answer(self, ws: ServerConnection, message: str | bytes) -> None:
        request = json.loads(message)
        for ack in self.acknowledgements(request, set(self.subscription_of(request))):
            await ws.send(json.dumps(ack))

    def selects(self, frame: str, subscription: frozenset[str]) -> bool:
        route = self.route(json.loads(frame))
        return route is not None and f"{route[0]}:{route[1]}" in subscription


class CoinbaseExchangeServer(MessageSubscribedServer):
    """Coinbase Exchange (formerly Pro) ``ws-feed``: ``{"type": "subscribe", "product_ids",
    "channels"}`` answered by ``{"type": "subscriptions", ...}``; REST ``/products`` and
    ``/currencies`` for ccxt's markets."""

    CHANNEL = {"match": "matches", "last_match": "matches", "ticker": "ticker",
               "snapshot": "level2", "l2update": "level2"}

    def route(self, frame: dict[str, Any]) -> tuple[str, str] | None:
        channel = self.CHANNEL.get(frame.get("type", ""))
        product = frame.get("product_id")
        return (channel, product) if channel and isinstance(product, str) else None

    def subscription_of(self, message: dict[str, Any]) -> list[tuple[str, str]]:
        pairs = []
        for channel in message.get("channels", []):
            name = channel if isinstance(channel, str) else channel["name"]
            products = (message.get("product_ids", []) if isinstance(channel, str)
                        else channel["product_ids"])
            pairs.extend((name, product) for product in products)
        return pairs

    def acknowledgements(self, message: dict[str, Any],
                         subscribed: set[tuple[str, str]]) -> list[dict[str, Any]]:
        channels: dict[str, list[str]] = {}
        for channel, product in sorted(subscribed):
            channels.setdefault(channel, []).append(product)
        return [{"type": "subscriptions", "channels": [
            {"name": name, "product_ids": products} for name, products in channels.items()]}]

    def products(self) -> list[str]:
        found = {json.loads(f).get("product_id") for f in self.frames}
        return sorted(p for p in found if isinstance(p, str))

    def rest(self, path: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if path == "/currencies":
            return 200, [], {}
        if path == "/products":
            return 200, [{
                "id": product, "base_currency": product.split("-")[0],
                "quote_currency": product.split("-")[1], "quote_increment": "0.00000001",
                "base_increment": "0.01", "display_name": product.replace("-", "/"),
                "min_market_funds": "1", "margin_enabled": False, "post_only": False,
                "limit_only": False, "cancel_only": False, "trading_disabled": False,
                "status": "online", "status_message": "", "auction_mode": False,
            } for product in self.products()], {}
        return super().rest(path, query)


class KrakenFuturesServer(MessageSubscribedServer):
    """Kraken Futures ``/ws/v1``: ``{"event": "info"}`` on connect, ``{"event":
    "subscribe", "feed", "product_ids"}`` answered by one ``subscribed`` event per product;
    REST ``/derivatives/api/v3/instruments`` for ccxt's markets."""

    FEED = {"trade": "trade", "trade_snapshot": "trade", "ticker_lite": "ticker_lite",
            "ticker": "ticker", "book": "book", "book_snapshot": "book"}

    def welcome(self) -> list[dict[str, Any]]:
        return [{"event": "info", "version": 1}]

    def route(self, frame: dict[str, Any]) -> tuple[str, str] | None:
        if "event" in frame:
            return None
        feed, product = self.FEED.get(frame.get("feed", "")), frame.get("product_id")
        return (feed, product.upper()) if feed and isinstance(product, str) else None

    def subscription_of(self, message: dict[str, Any]) -> list[tuple[str, str]]:
        if message.get("event") != "subscribe":
            return []
        return [(message["feed"], p.upper()) for p in message.get("product_ids", [])]

    def acknowledgements(self, message: dict[str, Any],
                         subscribed: set[tuple[str, str]]) -> list[dict[str, Any]]:
        return [{"event": "subscribed", "feed": message.get("feed"), "product_ids": [p.upper()]}
                for p in message.get("product_ids", [])]

    def rest(self, path: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if path != "/derivatives/api/v3/instruments":
            return super().rest(path, query)
        products = {p.upper() for p in (json.loads(f).get("product_id") for f in self.frames)
                    if isinstance(p, str)}
        instruments = []
        for product in sorted(products):
            kind, pair, *expiry = product.split("_")
            instrument = {"symbol": product, "type": "futures_inverse",
                          "underlying": f"rr_{pair.lower()}", "tickSize": 0.01,
                          "contractSize": 1, "tradeable": True,
                          "contractValueTradePrecision": 0}
            if expiry:
                day = expiry[0]
                instrument["lastTradingTime"] = f"20{day[:2]}-{day[2:4]}-{day[4:]}T15:00:00.000Z"
            instruments.append(instrument)
        return 200, {"result": "success", "instruments": instruments,
                     "serverTime": "2021-07-22T23:02:07.000Z"}, {}
