"""Russell 2000 and S&P 500 levels: Yahoo Finance's chart API (keyless) or Finnhub (keyed).

``yahoo_chart`` polls ``/v8/finance/chart/{symbol}`` (unofficial, keyless; ``^RUT`` -> RUT,
``^GSPC`` -> SPX, ETFs ``IWM``/``SPY`` as themselves). With ``interval: 1d`` it emits each
session's close stamped at 16:00 New York once the session is 15 minutes over, like the
replay, which is what the index agents expect (one close per day). With ``interval: 1m`` it
emits each finished one-minute bar's close stamped at the bar's end, for intraday consumers.
On start the chart's ``range`` is the backfill.

``finnhub`` streams trades of ETF proxies over ``wss://ws.finnhub.io?token=KEY`` (free plans
have no index data): IWM for the Russell 2000, SPY for the S&P 500. They are published as
symbols IWM and SPY with source ``finnhub:proxy``, at most one quote per symbol per
``min_interval_ms`` of trade time (SPY trades hundreds of times a second).

Config (``type: yahoo_chart``)::

    symbols: ["^RUT", "^GSPC"]   # ^RUT, ^GSPC, IWM, SPY
    interval: 1d                 # 1d (session closes) | 1m (one-minute bars)
    range: 5d                    # history on start: 1d 5d 1mo 3mo 6mo 1y 2y 5y 10y ytd max
    poll_seconds: 300            # 1m: 60
    rest_url: https://query1.finance.yahoo.com

Config (``type: finnhub``)::

    symbols: [IWM, SPY]
    api_key_env: FINNHUB_API_KEY # name of the variable holding the key (required)
    min_interval_ms: 1000
    stale_seconds: 90            # reconnect after this long without any frame (Finnhub pings)
    ws_url: wss://ws.finnhub.io
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from foundation.errors import ConfigError
from producers.live.core import (
    Backoff,
    Emitter,
    Source,
    SourceConfig,
    epoch_ms,
    iso_from_ms,
    number,
    optional_number,
    reconnect_forever,
    watched,
)
from producers.live.http import (
    MINUTE_MS,
    Clock,
    RestClient,
    next_boundary,
    optional_url,
    sleep_until,
)
from schemas.decode import shown
from schemas.records import IndexQuote

log = logging.getLogger(__name__)

TOPIC = "index-quotes"
#: Yahoo symbol -> (published symbol, source)
YAHOO_SYMBOLS: dict[str, tuple[str, str]] = {
    "^RUT": ("RUT", "yahoo:^RUT"),
    "^GSPC": ("SPX", "yahoo:^GSPC"),
    "IWM": ("IWM", "yahoo:proxy"),
    "SPY": ("SPY", "yahoo:proxy"),
}
YAHOO_RANGES = ("1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max")
NEW_YORK = ZoneInfo("America/New_York")
SESSION_CLOSE = time(16, 0)
#: a session's close is taken as final this long after 16:00 (Yahoo settles the last print)
CLOSE_SETTLE_MS = 15 * 60_000
#: Yahoo answers 429 to the default user agents of HTTP libraries
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) altseason"


def session_close_ms(day: date, zone: ZoneInfo = NEW_YORK) -> int:
    """Epoch ms of 16:00 on ``day`` in the exchange's time zone (the replay's stamp)."""
    return int(datetime.combine(day, SESSION_CLOSE, zone).timestamp() * 1000)


def chart_bars(data: Mapping[str, Any]) -> tuple[ZoneInfo, list[tuple[int, float]]]:
    """(exchange time zone, [(bar start epoch ms, close)]) of a chart response; bars without
    a close (no trade in the bar) are left out. ValueError if the response has no result."""
    chart = _object(data["chart"], "chart")
    if not chart.get("result"):
        raise ValueError(f"no result: {shown(chart.get('error'))}")
    result = _object(chart["result"][0], "chart.result[0]")
    name = _object(result["meta"], "meta").get("exchangeTimezoneName") or "America/New_York"
    try:
        zone = ZoneInfo(name)
    except OSError:  # a name too long for a file name, a directory...
        raise ValueError(f"exchangeTimezoneName {shown(name)} is no time zone") from None
    stamps = result.get("timestamp") or []
    closes = _object(result["indicators"]["quote"][0], "quote").get("close") or []
    bars = []
    for t, c in zip(stamps, closes, strict=False):
        close = optional_number(c, "close", positive=True)  # None: no trade in the bar
        if close is not None:
            bars.append((epoch_ms(t, "timestamp", unit_ms=1000), close))
    return zone, bars


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} is {type(value).__name__}, not an object")
    return value


def daily_closes(zone: ZoneInfo, bars: list[tuple[int, float]],
                 now_ms: int) -> list[tuple[int, float]]:
    """[(16:00 close epoch ms, close)] of the sessions that are over, oldest first."""
    closes: dict[int, float] = {}
    for t_ms, close in bars:
        day = datetime.fromtimestamp(t_ms / 1000, UTC).astimezone(zone).date()
        stamp = session_close_ms(day, zone)
        if stamp + CLOSE_SETTLE_MS <= now_ms:
            closes[stamp] = close
    return sorted(closes.items())


def minute_closes(bars: list[tuple[int, float]], now_ms: int) -> list[tuple[int, float]]:
    """[(bar end epoch ms, close)] of the finished one-minute bars, oldest first."""
    return sorted((t + MINUTE_MS, c) for t, c in bars if t + MINUTE_MS <= now_ms)


class YahooChartSource(Source):
    """Polls Yahoo's chart of each symbol and emits the closes not yet emitted."""

    def __init__(self, name: str, symbols: list[str], *, interval: str = "1d",
                 chart_range: str = "5d", poll_s: float = 300.0,
                 api_url: str = "https://query1.finance.yahoo.com",
                 clock: Clock | None = None) -> None:
        super().__init__(name)
        self.symbols, self.interval, self.chart_range = symbols, interval, chart_range
        self.poll_ms = int(poll_s * 1000)
        self.api_url = api_url
        self.clock = clock or Clock()
        self.last_ms: dict[str, int] = {}

    async def run(self, out: Emitter) -> None:
        async with RestClient(self.name, self.api_url, self.stats, clock=self.clock,
                              headers={"User-Agent": USER_AGENT}, min_interval_s=1.0) as http:
            while True:
                for symbol in self.symbols:
                    await self.poll(out, http, symbol)
                await sleep_until(self.clock, next_boundary(self.clock.now_ms(),
                                                            self.poll_ms) + 5000)

    async def poll(self, out: Emitter, http: RestClient, symbol: str) -> None:
        data = await http.get_json(f"/v8/finance/chart/{quote(symbol, safe='')}",
                                   {"interval": self.interval, "range": self.chart_range})
        try:
            zone, bars = chart_bars(data)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            self.malformed(f"chart of {symbol}: {exc}", data)
            return
        now = self.clock.now_ms()
        closes = (daily_closes(zone, bars, now) if self.interval == "1d"
                  else minute_closes(bars, now))
        published, source = YAHOO_SYMBOLS[symbol]
        for t_ms, close in closes:
            if t_ms <= self.last_ms.get(symbol, -1):
                continue
            self.last_ms[symbol] = t_ms
            record = IndexQuote(symbol=published, event_time=iso_from_ms(t_ms), price=close,
                                source=source)
            await out.emit(TOPIC, published, record,
                           dedupe_key=f"yahoo:{published}:{self.interval}:{t_ms}")


class FinnhubSource(Source):
    """Finnhub trades of ETF proxies (IWM, SPY) as index quotes, throttled per symbol."""

    def __init__(self, name: str, symbols: list[str], api_key: str, *,
                 min_interval_ms: int = 1000, stale_s: float = 90.0,
                 url: str = "wss://ws.finnhub.io", key_env: str = "FINNHUB_API_KEY") -> None:
        super().__init__(name)
        self.symbols, self.api_key = symbols, api_key
        self.min_interval_ms, self.stale_s = min_interval_ms, stale_s
        self.url, self.key_env = url, key_env
        self.last_ms: dict[str, int] = {}
        self.throttled = 0

    async def run(self, out: Emitter) -> None:
        backoff = Backoff(1.0, 60.0)

        async def connect_once() -> None:
            await self.stream(out, backoff)

        await reconnect_forever(self, connect_once, backoff)

    async def stream(self, out: Emitter, backoff: Backoff) -> None:
        """One connection: subscribe, then emit trades until it closes or goes silent."""
        try:
            ws = await connect(f"{self.url}?token={self.api_key}", open_timeout=20)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise ConfigError(f"{self.name}: Finnhub refused the key in {self.key_env} "
                                  f"({status})") from None
            raise
        async with ws:
            for symbol in self.symbols:
                await ws.send(json.dumps({"type": "subscribe", "symbol": symbol}))
            log.info("%s: connected to %s, subscribed to %s", self.name, self.url,
                     ", ".join(self.symbols))
            async for frame in watched(ws, self.stale_s, f"{self.name} {self.url}"):
                backoff.reset()
                self.stats.messages += 1
                await self.handle(out, frame)

    async def handle(self, out: Emitter, frame: str | bytes) -> None:
        try:
            message = json.loads(frame)
            kind = message["type"]
        except (ValueError, KeyError, TypeError) as exc:
            self.malformed(f"frame: {exc}", frame)
            return
        except RecursionError:
            self.malformed("frame: nested too deeply", frame)
            return
        if kind == "ping":
            return
        if kind == "error":
            log.warning("%s: Finnhub says %s", self.name, message.get("msg"))
            return
        if kind != "trade":
            self.malformed(f"frame type {shown(kind)}", frame)
            return
        trades = message.get("data") or []
        if not isinstance(trades, list):
            self.malformed("trade frame whose data is not a list", frame)
            return
        for trade in trades:
            try:
                symbol = str(trade["s"])
                price = number(trade["p"], "p", positive=True)
                t_ms = epoch_ms(trade["t"], "t")
            except (KeyError, TypeError, ValueError) as exc:
                self.malformed(f"trade: {exc}", trade)
                continue
            if symbol not in self.symbols:
                continue
            last = self.last_ms.get(symbol)
            if last is not None and t_ms < last + self.min_interval_ms:
                self.throttled += 1
                continue
            self.last_ms[symbol] = t_ms
            await out.emit(TOPIC, symbol, IndexQuote(symbol=symbol, event_time=iso_from_ms(t_ms),
                                                     price=price, source="finnhub:proxy"))


def yahoo_from_config(data: Mapping[str, Any], where: str) -> YahooChartSource:
    """Build a ``yahoo_chart`` source from its ``sources[i]`` mapping."""
    cfg = SourceConfig(data, where)
    name = cfg.source_name()
    symbols = cfg.texts("symbols", ["^RUT", "^GSPC"])
    for i, symbol in enumerate(symbols):
        if symbol not in YAHOO_SYMBOLS:
            raise ConfigError(f"{cfg.field('symbols')}[{i}]: {symbol!r} is not one of "
                              f"{', '.join(YAHOO_SYMBOLS)}")
    interval = cfg.text("interval", "1d", choices=("1d", "1m"))
    source = YahooChartSource(
        name, symbols, interval=interval,
        chart_range=cfg.text("range", "5d" if interval == "1d" else "1d", choices=YAHOO_RANGES),
        poll_s=cfg.number("poll_seconds", 300.0 if interval == "1d" else 60.0, minimum=15),
        api_url=optional_url(cfg, "rest_url") or "https://query1.finance.yahoo.com")
    cfg.finish()
    return source


def finnhub_from_config(data: Mapping[str, Any], where: str) -> FinnhubSource:
    """Build a ``finnhub`` source from its ``sources[i]`` mapping."""
    cfg = SourceConfig(data, where)
    name = cfg.source_name()
    symbols = cfg.texts("symbols", ["IWM", "SPY"])
    for i, symbol in enumerate(symbols):
        if not re.fullmatch(r"[A-Z0-9.]+", symbol):
            raise ConfigError(f"{cfg.field('symbols')}[{i}]: {symbol!r} is not a US ticker "
                              "(e.g. IWM, SPY)")
    key_env = str(data.get("api_key_env") or "")
    api_key = cfg.secret("api_key_env", required=True)
    assert api_key is not None
    source = FinnhubSource(
        name, symbols, api_key,
        min_interval_ms=cfg.integer("min_interval_ms", 1000, minimum=0),
        stale_s=cfg.number("stale_seconds", 90.0, minimum=5),
        url=cfg.url("ws_url", "wss://ws.finnhub.io", schemes=("wss://", "ws://")),
        key_env=key_env)
    cfg.finish()
    return source
