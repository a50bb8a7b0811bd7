"""Local stand-ins for the REST and websocket APIs the live sources poll, on 127.0.0.1.

Each answers with the documented response shape of the real endpoint (Binance USD-M futures,
CoinGecko, Yahoo Finance chart, CryptoQuant, Finnhub), serves only the rows that exist at the
test's virtual time, records every request, and can be told to fail the next requests to a
path (429 with Retry-After, 500, ...). Time is a ``VirtualClock`` shared with the source under
test: it moves only when the source sleeps, so days of polling take a moment.
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from aiohttp import web
from harness import free_port
from websockets.asyncio.server import serve

from producers.live.http import Clock

ROOT = Path(__file__).resolve().parents[2]
BINANCE_GLOBAL_CSV = ROOT / "data" / "replay" / "binance_btcusdt_global_long_short_30m.csv"
OKX_RATIO_CSV = ROOT / "data" / "replay" / "okx_sol_usdt_swap_long_short_1h.csv"


class VirtualClock(Clock):
    """Time that moves only when someone sleeps; every sleep is recorded."""

    def __init__(self, start_ms: int) -> None:
        self.t_ms = start_ms
        self.sleeps: list[float] = []

    def now_ms(self) -> int:
        return self.t_ms

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t_ms += max(0, int(seconds * 1000))
        await asyncio.sleep(0)


def utc_ms(text: str) -> int:
    """'2024-09-01 23:30:00' (UTC) as epoch milliseconds."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@dataclass
class Failure:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


class LocalServer:
    """An aiohttp app on a free 127.0.0.1 port that records requests and fails on demand."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.app = web.Application(middlewares=[self._middleware])
        #: (path, query, virtual time) of every request
        self.requests: list[tuple[str, dict[str, str], int]] = []
        self.failures: dict[str, list[Failure]] = defaultdict(list)
        self.scheduled: list[tuple[int, str, list[Failure]]] = []
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, path: str, *failures: Failure) -> None:
        """Answer the next requests to ``path`` with these failures, in order."""
        self.failures[path].extend(failures)

    def fail_at(self, t_ms: int, path: str, *failures: Failure) -> None:
        """From virtual time ``t_ms`` on, answer the next requests to ``path`` with these."""
        self.scheduled.append((t_ms, path, list(failures)))

    def requests_to(self, path: str) -> list[tuple[dict[str, str], int]]:
        return [(query, t_ms) for p, query, t_ms in self.requests if p == path]

    @property
    def pending_failures(self) -> int:
        return sum(len(f) for f in self.failures.values()) + sum(
            len(f) for _, _, f in self.scheduled)

    async def start(self) -> Self:
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _middleware(self, request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                          ) -> web.StreamResponse:
        now = self.clock.now_ms()
        self.requests.append((request.path, dict(request.query), now))
        for item in [i for i in self.scheduled if i[0] <= now and i[1] == request.path]:
            self.scheduled.remove(item)
            self.failures[request.path].extend(item[2])
        queued = self.failures.get(request.path)
        if queued:
            failure = queued.pop(0)
            return web.Response(status=failure.status, headers=failure.headers,
                                text=failure.body or f"{failure.status} from the test server")
        return await handler(request)


# -- Binance USD-M futures ------------------------------------------------------------------

def binance_exchange_info(symbols: list[tuple[str, str, str]]) -> dict[str, Any]:
    """``GET /fapi/v1/exchangeInfo`` in its documented shape, for (id, base, quote) perpetuals."""
    return {
        "timezone": "UTC", "serverTime": 1565613908500, "exchangeFilters": [],
        "rateLimits": [{"interval": "MINUTE", "intervalNum": 1, "limit": 2400,
                        "rateLimitType": "REQUEST_WEIGHT"}],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "0"}],
        "symbols": [{
            "symbol": market_id, "pair": market_id, "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000, "onboardDate": 1569398400000, "status": "TRADING",
            "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
            "baseAsset": base, "quoteAsset": quote, "marginAsset": quote,
            "pricePrecision": 2, "quantityPrecision": 3, "baseAssetPrecision": 8,
            "quotePrecision": 8, "underlyingType": "COIN", "underlyingSubType": ["PoW"],
            "settlePlan": 0, "triggerProtect": "0.0500",
            "filters": [
                {"filterType": "PRICE_FILTER", "maxPrice": "4529764", "minPrice": "556.80",
                 "tickSize": "0.10"},
                {"filterType": "LOT_SIZE", "maxQty": "1000", "minQty": "0.001",
                 "stepSize": "0.001"},
                {"filterType": "MARKET_LOT_SIZE", "maxQty": "120", "minQty": "0.001",
                 "stepSize": "0.001"},
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MIN_NOTIONAL", "notional": "100"},
                {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500",
                 "multiplierDown": "0.9500", "multiplierDecimal": "4"},
            ],
            "OrderType": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                          "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            "liquidationFee": "0.012500", "marketTakeBound": "0.05",
        } for market_id, base, quote in symbols],
    }


def binance_global_rows() -> list[dict[str, Any]]:
    """The bundled real Binance globalLongShortAccountRatio rows in the API's JSON shape
    (numbers as strings, timestamp in epoch ms), oldest first."""
    with BINANCE_GLOBAL_CSV.open(newline="") as fh:
        rows = [{"symbol": r["symbol"], "longShortRatio": r["longShortRatio"],
                 "longAccount": r["longAccount"], "shortAccount": r["shortAccount"],
                 "timestamp": utc_ms(r["timestamp"])} for r in csv.DictReader(fh)]
    return sorted(rows, key=lambda r: r["timestamp"])


class BinanceFutures(LocalServer):
    """``/fapi/v1/exchangeInfo``, ``/futures/data/*`` long/short endpoints, premiumIndex and
    openInterest. ``series[(endpoint, symbol, period)]`` holds rows oldest first; a row exists
    from ``timestamp + publish_lag_ms`` on. ``premium`` and ``open_interest`` map a symbol to
    a function of the virtual time giving the answer."""

    DATA = ("globalLongShortAccountRatio", "topLongShortAccountRatio",
            "topLongShortPositionRatio", "takerlongshortRatio")

    def __init__(self, clock: VirtualClock, publish_lag_ms: int = 3000) -> None:
        super().__init__(clock)
        self.publish_lag_ms = publish_lag_ms
        self.series: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self.markets = [("BTCUSDT", "BTC", "USDT"), ("ETHUSDT", "ETH", "USDT")]
        #: X-MBX-USED-WEIGHT-1M of the next /futures/data answers, then 1
        self.weights: list[int] = []
        self.premium: dict[str, Callable[[int], dict[str, Any]]] = {}
        self.open_interest: dict[str, Callable[[int], dict[str, Any]]] = {}
        self.app.router.add_get("/fapi/v1/exchangeInfo", self.exchange_info)
        for name in self.DATA:
            self.app.router.add_get(f"/futures/data/{name}", self.ratio_rows)
        self.app.router.add_get("/fapi/v1/premiumIndex", self.premium_index)
        self.app.router.add_get("/fapi/v1/openInterest", self.open_interest_now)

    def _json(self, data: Any, weight: int = 1) -> web.Response:
        return web.json_response(data, headers={"X-MBX-USED-WEIGHT-1M": str(weight)})

    async def exchange_info(self, request: web.Request) -> web.Response:
        return self._json(binance_exchange_info(self.markets))

    async def ratio_rows(self, request: web.Request) -> web.Response:
        q = request.query
        endpoint = request.path.rsplit("/", 1)[1]
        if "symbol" not in q or "period" not in q:
            return web.json_response({"code": -1102, "msg": "Mandatory parameter missing"},
                                     status=400)
        limit = min(int(q.get("limit", 30)), 500)
        visible = self.clock.now_ms() - self.publish_lag_ms
        # the documented examples give timestamp as a string, ccxt's as a number
        rows = [r for r in self.series.get((endpoint, q["symbol"], q["period"]), [])
                if int(q.get("startTime", 0)) <= int(r["timestamp"])
                <= min(visible, int(q.get("endTime", visible)))]
        # startTime alone: the first rows from it; otherwise the latest ones
        rows = rows[:limit] if "startTime" in q and "endTime" not in q else rows[-limit:]
        return self._json(rows, self.weights.pop(0) if self.weights else 1)

    async def premium_index(self, request: web.Request) -> web.Response:
        answer = self.premium.get(request.query.get("symbol", ""))
        if answer is None:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        return self._json(answer(self.clock.now_ms()))

    async def open_interest_now(self, request: web.Request) -> web.Response:
        answer = self.open_interest.get(request.query.get("symbol", ""))
        if answer is None:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        return self._json(answer(self.clock.now_ms()))


# -- CoinGecko ------------------------------------------------------------------------------

class CoinGecko(LocalServer):
    """``/api/v3/global`` and ``/api/v3/coins/markets``; checks the key header when set.
    ``global_at`` and ``coins_at`` give the answer at a virtual time."""

    def __init__(self, clock: VirtualClock, key_header: str | None = None,
                 key: str | None = None) -> None:
        super().__init__(clock)
        self.key_header, self.key = key_header, key
        self.global_at: Callable[[int], dict[str, Any]] = lambda now: {}
        self.coins_at: Callable[[int], list[dict[str, Any]]] = lambda now: []
        self.app.router.add_get("/api/v3/global", self.global_)
        self.app.router.add_get("/api/v3/coins/markets", self.markets)

    def _unauthorised(self, request: web.Request) -> web.Response | None:
        if self.key_header and request.headers.get(self.key_header) != self.key:
            return web.json_response({"status": {"error_code": 10002,
                                                 "error_message": "API Key Missing"}},
                                     status=401)
        return None

    async def global_(self, request: web.Request) -> web.Response:
        return self._unauthorised(request) or web.json_response(
            {"data": self.global_at(self.clock.now_ms())})

    async def markets(self, request: web.Request) -> web.Response:
        denied = self._unauthorised(request)
        if denied:
            return denied
        q = request.query
        assert q["vs_currency"] == "usd" and q["order"] == "market_cap_desc"
        per_page, page = int(q["per_page"]), int(q.get("page", 1))
        coins = self.coins_at(self.clock.now_ms())
        return web.json_response(coins[(page - 1) * per_page: page * per_page])


def coingecko_global(total_usd: float, volume_usd: float, updated_at_s: int) -> dict[str, Any]:
    """The ``data`` object of ``/global`` in its documented shape."""
    return {
        "active_cryptocurrencies": 13690, "upcoming_icos": 0, "ongoing_icos": 49,
        "ended_icos": 3376, "markets": 1046,
        "total_market_cap": {"btc": 39003738.08, "eth": 803832743.66, "usd": total_usd},
        "total_volume": {"btc": 993675.22, "eth": 20478757.29, "usd": volume_usd},
        "market_cap_percentage": {"btc": 50.45, "eth": 14.92},
        "market_cap_change_percentage_24h_usd": 1.72, "updated_at": updated_at_s,
    }


def coingecko_coin(coin_id: str, symbol: str, rank: int | None, market_cap: float | None,
                   volume: float, last_updated: str) -> dict[str, Any]:
    """One item of ``/coins/markets`` in its documented shape."""
    return {
        "id": coin_id, "symbol": symbol, "name": coin_id.title(),
        "image": f"https://assets.coingecko.com/coins/images/1/large/{coin_id}.png",
        "current_price": 70187, "market_cap": market_cap, "market_cap_rank": rank,
        "fully_diluted_valuation": market_cap, "total_volume": volume, "high_24h": 70215,
        "low_24h": 68060, "price_change_24h": 2126.88, "price_change_percentage_24h": 3.12502,
        "market_cap_change_24h": 44287678051, "market_cap_change_percentage_24h": 3.3205,
        "circulating_supply": 19675987, "total_supply": 21000000, "max_supply": 21000000,
        "ath": 73738, "ath_change_percentage": -4.77063, "ath_date": "2024-03-14T07:10:36.635Z",
        "atl": 67.81, "atl_change_percentage": 103455.83335,
        "atl_date": "2013-07-06T00:00:00.000Z", "roi": None, "last_updated": last_updated,
    }


# -- Yahoo Finance chart --------------------------------------------------------------------

class YahooChart(LocalServer):
    """``/v8/finance/chart/{symbol}``: bars[symbol][interval] = [(epoch s, close or None)];
    a bar is served once it has started (the last one is still forming)."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(clock)
        self.bars: dict[str, dict[str, list[tuple[int, float | None]]]] = {}
        self.app.router.add_get("/v8/finance/chart/{symbol}", self.chart)

    async def chart(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"]
        interval = request.query.get("interval", "1d")
        if symbol not in self.bars:
            return web.json_response({"chart": {"result": None, "error": {
                "code": "Not Found", "description": "No data found, symbol may be delisted"}}},
                status=404)
        now_s = self.clock.now_ms() // 1000
        bars = [(t, c) for t, c in self.bars[symbol].get(interval, []) if t <= now_s]
        closes = [c for _, c in bars]
        last = next((c for c in reversed(closes) if c is not None), None)
        meta = {
            "currency": "USD", "symbol": symbol, "exchangeName": "WCB",
            "fullExchangeName": "Chicago Options", "instrumentType": "INDEX",
            "firstTradeDate": 558279000, "regularMarketTime": now_s, "hasPrePostMarketData":
            False, "gmtoffset": -14400, "timezone": "EDT",
            "exchangeTimezoneName": "America/New_York", "regularMarketPrice": last,
            "chartPreviousClose": closes[0] if closes else None, "priceHint": 2,
            "dataGranularity": interval, "range": request.query.get("range", "1d"),
        }
        quote = {"open": closes, "high": closes, "low": closes, "close": closes,
                 "volume": [0 for _ in closes]}
        return web.json_response({"chart": {"result": [{
            "meta": meta, "timestamp": [t for t, _ in bars],
            "indicators": {"quote": [quote]}}], "error": None}})


# -- CryptoQuant ----------------------------------------------------------------------------

class CryptoQuant(LocalServer):
    """``/v1/{asset}/exchange-flows/{inflow|outflow}``: bearer token checked; rows newest
    first like the real API; the current window is listed too, with the totals so far."""

    def __init__(self, clock: VirtualClock, token: str) -> None:
        super().__init__(clock)
        self.token = token
        #: flows[(asset, exchange, window)] = [(window start ms, inflow, outflow)], oldest first
        self.flows: dict[tuple[str, str, str], list[tuple[int, float, float]]] = {}
        self.app.router.add_get("/v1/{asset}/exchange-flows/{metric}", self.exchange_flows)

    async def exchange_flows(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"status": {"code": 401, "message": "Unauthorized"}},
                                     status=401)
        asset, metric = request.match_info["asset"], request.match_info["metric"]
        q = request.query
        window = q.get("window", "day")
        length = 86_400_000 if window == "day" else 3_600_000
        now = self.clock.now_ms()
        rows = [r if r[0] + length <= now else  # not over: the totals so far
                (r[0], r[1] * (now - r[0]) / length, r[2] * (now - r[0]) / length)
                for r in self.flows.get((asset, q["exchange"], window), []) if r[0] <= now]
        if "from" in q:
            start = _cq_time(q["from"])
            rows = [r for r in rows if r[0] >= start]
        rows = rows[-int(q.get("limit", 100)):]
        column = 1 if metric == "inflow" else 2
        data = []
        for row in reversed(rows):
            moment = datetime.fromtimestamp(row[0] / 1000, UTC)
            item: dict[str, Any] = {"date": moment.strftime("%Y-%m-%d")}
            if window == "hour":
                item["datetime"] = moment.strftime("%Y-%m-%d %H:%M:%S")
            item[f"{metric}_total"] = row[column]
            item[f"{metric}_top10"] = row[column] / 3
            item[f"{metric}_mean"] = row[column] / 100
            item[f"{metric}_mean_ma7"] = row[column] / 90
            data.append(item)
        return web.json_response({"status": {"code": 200, "message": "success"},
                                  "result": {"window": window, "data": data}})


def _cq_time(text: str) -> int:
    """CryptoQuant's ``from``: YYYYMMDD or YYYYMMDDTHHMMSS (UTC)."""
    fmt = "%Y%m%dT%H%M%S" if "T" in text else "%Y%m%d"
    return int(datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp() * 1000)


# -- Finnhub websocket ----------------------------------------------------------------------

class FinnhubWs:
    """``wss://ws.finnhub.io?token=...`` stand-in: checks the token, records subscriptions,
    and sends what the test queues (trade frames, pings) to every subscribed client."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.port = free_port()
        self.subscriptions: list[str] = []
        self.connections = 0
        self.outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._server: Any = None
        self._closing = False

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> FinnhubWs:
        self._server = await serve(self._handle, "127.0.0.1", self.port,
                                   process_request=self._check_token)
        return self

    async def stop(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _check_token(self, connection: Any, request: Any) -> Any:
        if f"token={self.token}" not in request.path:
            return connection.respond(401, "Invalid API key\n")
        return None

    async def _handle(self, ws: Any) -> None:
        self.connections += 1
        message = json.loads(await ws.recv())
        assert message["type"] == "subscribe"
        self.subscriptions.append(message["symbol"])
        while True:
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), 0.01))
                self.subscriptions.append(message["symbol"])
            except TimeoutError:
                break
        while not self._closing:
            try:
                frame = await asyncio.wait_for(self.outbox.get(), 0.05)
            except TimeoutError:
                continue
            if frame is None:  # drop this connection
                await ws.close()
                return
            await ws.send(json.dumps(frame))


# -- OKX -------------------------------------------------------------------------------------

def okx_ratio_rows() -> list[tuple[int, str]]:
    """The bundled real OKX SOL-USDT-SWAP long/short account ratios (1H), oldest first."""
    with OKX_RATIO_CSV.open(newline="") as fh:
        return sorted((int(r["ts"]), r["ratio"]) for r in csv.DictReader(fh))


class Okx(LocalServer):
    """``/api/v5/public/instruments`` (SWAP) and ``/api/v5/rubik/stat/contracts/
    long-short-account-ratio-contract``: rows newest first, ``begin`` and ``end`` exclusive,
    at most ``limit`` (100) of the latest; a row exists from ``ts + publish_lag_ms`` on."""

    def __init__(self, clock: VirtualClock, publish_lag_ms: int = 3000) -> None:
        super().__init__(clock)
        self.publish_lag_ms = publish_lag_ms
        #: ratios[(instId, period)] = [(ts, ratio text)], oldest first
        self.ratios: dict[tuple[str, str], list[tuple[int, str]]] = {}
        self.app.router.add_get("/api/v5/public/instruments", self.instruments)
        self.app.router.add_get("/api/v5/rubik/stat/contracts/long-short-account-ratio-contract",
                                self.long_short)

    async def instruments(self, request: web.Request) -> web.Response:
        data = []
        if request.query.get("instType") == "SWAP":
            data = [{
                "alias": "", "baseCcy": "", "category": "1", "ctMult": "1", "ctType": "linear",
                "ctVal": "1", "ctValCcy": "SOL", "expTime": "", "instFamily": "SOL-USDT",
                "instId": "SOL-USDT-SWAP", "instType": "SWAP", "lever": "50",
                "listTime": "1611916828000", "lotSz": "0.01", "maxIcebergSz": "100000000",
                "maxLmtAmt": "20000000", "maxLmtSz": "100000000", "maxMktAmt": "",
                "maxMktSz": "30000", "maxStopSz": "30000", "maxTriggerSz": "100000000",
                "maxTwapSz": "100000000", "minSz": "0.01", "optType": "", "quoteCcy": "",
                "settleCcy": "USDT", "state": "live", "stk": "", "tickSz": "0.01",
                "uly": "SOL-USDT"}]
        return web.json_response({"code": "0", "data": data, "msg": ""})

    async def long_short(self, request: web.Request) -> web.Response:
        q = request.query
        visible = self.clock.now_ms() - self.publish_lag_ms
        begin, end = int(q.get("begin", 0)), int(q.get("end", 1 << 62))
        rows = [(t, r) for t, r in self.ratios.get((q["instId"], q.get("period", "5m")), [])
                if begin < t < end and t <= visible]
        rows = rows[-min(int(q.get("limit", 100)), 100):]
        return web.json_response({"code": "0", "data": [[str(t), r] for t, r in reversed(rows)],
                                  "msg": ""})


# -- Bybit -----------------------------------------------------------------------------------

class Bybit(LocalServer):
    """``/v5/market/instruments-info`` and ``/v5/market/account-ratio`` (an exchange whose
    history the source reads as the latest page: rows newest first, at most ``limit``)."""

    def __init__(self, clock: VirtualClock, publish_lag_ms: int = 3000) -> None:
        super().__init__(clock)
        self.publish_lag_ms = publish_lag_ms
        #: ratios[(symbol, period)] = [(timestamp, buyRatio, sellRatio)], oldest first
        self.ratios: dict[tuple[str, str], list[tuple[int, str, str]]] = {}
        self.app.router.add_get("/v5/market/instruments-info", self.instruments)
        self.app.router.add_get("/v5/market/account-ratio", self.account_ratio)

    def _ok(self, result: dict[str, Any]) -> web.Response:
        return web.json_response({"retCode": 0, "retMsg": "OK", "result": result,
                                  "retExtInfo": {}, "time": self.clock.now_ms()})

    async def instruments(self, request: web.Request) -> web.Response:
        category = request.query.get("category")
        items = []
        if category == "linear" and "status" not in request.query:
            items = [{
                "symbol": "BTCUSDT", "contractType": "LinearPerpetual", "status": "Trading",
                "baseCoin": "BTC", "quoteCoin": "USDT", "launchTime": "1585526400000",
                "deliveryTime": "0", "deliveryFeeRate": "", "priceScale": "2",
                "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00",
                                   "leverageStep": "0.01"},
                "priceFilter": {"minPrice": "0.50", "maxPrice": "999999.00", "tickSize": "0.50"},
                "lotSizeFilter": {"maxOrderQty": "100.000", "minOrderQty": "0.001",
                                  "qtyStep": "0.001", "postOnlyMaxOrderQty": "1000.000"},
                "unifiedMarginTrade": True, "fundingInterval": 480, "settleCoin": "USDT"}]
        return self._ok({"category": category, "list": items, "nextPageCursor": ""})

    async def account_ratio(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("category") not in ("linear", "inverse") or "symbol" not in q:
            return web.json_response({"retCode": 10001, "retMsg": "params error"})
        visible = self.clock.now_ms() - self.publish_lag_ms
        rows = [r for r in self.ratios.get((q["symbol"], q["period"]), []) if r[0] <= visible]
        rows = rows[-min(int(q.get("limit", 50)), 500):]
        return self._ok({"list": [{"symbol": q["symbol"], "buyRatio": b, "sellRatio": s,
                                   "timestamp": str(t)} for t, b, s in reversed(rows)],
                         "nextPageCursor": ""})
