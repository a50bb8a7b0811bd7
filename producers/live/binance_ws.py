"""Binance spot and USD-M futures market streams, natively (``websockets``), onto Kafka.

Combined streams (``/stream?streams=a/b/c``, events wrapped as ``{"stream", "data"}``):
``<symbol>@aggTrade`` -> ``CryptoTick`` on ``ticks``; ``<symbol>@bookTicker`` and (USD-M)
``<symbol>@markPrice`` -> ``CryptoTicker`` on ``tickers``. Symbols are ccxt unified
("BTC/USDT" spot, "BTC/USDT:USDT" USD-M) and the exchange is named like ccxt ("binance",
"binanceusdm"), so ticks from here and from ``ccxt_ws`` look alike.

Aggregate trade ids (``a``) are consecutive per symbol: a jump, on the stream or after a
reconnect, is a gap, filled from ``GET /api/v3/aggTrades`` (``/fapi/v1/aggTrades``) before
the newer trade is emitted, so each symbol's ticks stay in order. An id not above the last one
is a replay (counted as a duplicate, skipped). The REST calls go through ``http.RestClient``:
429/418 + Retry-After honoured, ``X-MBX-USED-WEIGHT-1M`` kept under the minute's limit, a 4xx
answer a configuration error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import websockets

from foundation.errors import ConfigError, SourceError
from producers.live.core import (
    Backoff,
    Emitter,
    MalformedInput,
    Source,
    SourceConfig,
    iso_from_ms,
    number,
    optional_number,
    plausible_ms,
    reconnect_forever,
    watched,
)
from producers.live.http import RestClient
from schemas.records import CryptoTick, CryptoTicker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BinanceMarket:
    """What differs between Binance spot and USD-M futures (documented limits)."""

    exchange: str
    ws_url: str
    rest_url: str
    agg_trades_path: str
    #: "A single connection can listen to a maximum of N streams"
    max_streams_per_connection: int
    #: REQUEST_WEIGHT per minute (exchangeInfo rateLimits)
    weight_limit: int
    channels: tuple[str, ...]
    symbol_pattern: re.Pattern[str]


MARKETS: dict[str, BinanceMarket] = {
    "spot": BinanceMarket(
        "binance", "wss://stream.binance.com:9443", "https://api.binance.com",
        "/api/v3/aggTrades", 1024, 6000, ("aggTrade", "bookTicker"),
        re.compile(r"^([A-Z0-9]+)/([A-Z0-9]+)$"),
    ),
    "usdm": BinanceMarket(
        "binanceusdm", "wss://fstream.binance.com", "https://fapi.binance.com",
        "/fapi/v1/aggTrades", 200, 2400, ("aggTrade", "bookTicker", "markPrice"),
        re.compile(r"^([A-Z0-9]+)/([A-Z0-9]+):\2$"),
    ),
}
#: a REST answer may carry at most this many trades (the endpoints' maximum ``limit``)
REST_PAGE = 1000
#: failed REST requests in a row after which a catch-up or backfill is given up (the stream
#: goes on; a gap it leaves is logged)
REST_ATTEMPTS = 6
#: baseline of a symbol that had no trade when first subscribed: every trade is new
NO_TRADE = -1


def _integer(data: Mapping[str, Any], field: str, kind: str) -> int:
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedInput(f"{kind} without an integer {field!r}")
    return value


def _time(data: Mapping[str, Any], field: str, kind: str) -> str:
    """An integer epoch-ms field as ISO 8601, if it is a plausible event time."""
    return _stamp(_integer(data, field, kind), field, kind)


def _stamp(epoch_ms: int, field: str, kind: str) -> str:
    try:
        return iso_from_ms(plausible_ms(epoch_ms, field))
    except ValueError:
        raise MalformedInput(f"{kind} with an implausible time {field!r}") from None


def parse_combined(raw: str | bytes) -> tuple[str, Mapping[str, Any]]:
    """``{"stream": "btcusdt@aggTrade", "data": {...}}`` -> (stream, data)."""
    try:
        frame = json.loads(raw)
    except (TypeError, ValueError, RecursionError):
        raise MalformedInput("not JSON") from None
    if not isinstance(frame, dict):
        raise MalformedInput("not a JSON object")
    stream, data = frame.get("stream"), frame.get("data")
    if not isinstance(stream, str) or "@" not in stream or not isinstance(data, dict):
        raise MalformedInput("not a combined-stream event (no stream/data)")
    return stream, data


def agg_trade_tick(data: Mapping[str, Any], exchange: str, symbol: str) -> tuple[CryptoTick, int]:
    """An aggTrade (stream event or REST row, same fields) -> (tick, aggregate trade id).

    ``m`` is "the buyer is the market maker": then the taker sold, so the side is "sell".
    """
    kind = "aggTrade"
    agg_id = _integer(data, "a", kind)
    price = number(data.get("p"), f"{kind}.p", positive=True)
    amount = number(data.get("q"), f"{kind}.q", minimum=0)
    maker = data.get("m")
    if not isinstance(maker, bool):
        raise MalformedInput(f"{kind} without a boolean 'm'")
    tick = CryptoTick(exchange=exchange, symbol=symbol,
                      event_time=_time(data, "T", kind),
                      price=price, amount=amount, side="sell" if maker else "buy",
                      trade_id=str(agg_id))
    return tick, agg_id


def book_ticker(data: Mapping[str, Any], exchange: str, symbol: str,
                received_ms: int) -> CryptoTicker:
    """Best bid/ask. Spot events carry no time: then the time of receipt is used."""
    kind = "bookTicker"
    bid = number(data.get("b"), f"{kind}.b", minimum=0)
    ask = number(data.get("a"), f"{kind}.a", minimum=0)
    stamp = data.get("T", data.get("E", received_ms))
    if isinstance(stamp, bool) or not isinstance(stamp, int):
        raise MalformedInput(f"{kind} with a non-integer time")
    return CryptoTicker(exchange=exchange, symbol=symbol, event_time=_stamp(stamp, "T", kind),
                        kind="book", bid=bid, ask=ask)


def mark_price_ticker(data: Mapping[str, Any], exchange: str, symbol: str) -> CryptoTicker:
    """USD-M ``markPriceUpdate``: mark price ``p`` and current funding rate ``r``."""
    kind = "markPriceUpdate"
    mark = number(data.get("p"), f"{kind}.p", positive=True)
    funding = optional_number(data.get("r"), f"{kind}.r")
    return CryptoTicker(exchange=exchange, symbol=symbol,
                        event_time=_time(data, "E", kind),
                        kind="mark", mark_price=mark, funding_rate=funding)


def connection_urls(ws_url: str, streams: list[str], per_connection: int) -> list[str]:
    """Combined-stream URLs, each with at most ``per_connection`` streams."""
    return [f"{ws_url}/stream?streams=" + "/".join(streams[i:i + per_connection])
            for i in range(0, len(streams), per_connection)]


class BinanceStreams(Source):
    """One Binance market (spot or USD-M), many symbols, over as many connections as needed."""

    def __init__(self, name: str, market: str, symbols: list[str], channels: list[str],
                 ws_url: str | None = None, rest_url: str | None = None,
                 streams_per_connection: int | None = None, watchdog_seconds: float = 60.0,
                 backoff_base: float = 0.5, backoff_cap: float = 30.0,
                 rest_weight_limit: int | None = None, rest_catch_up: bool = True) -> None:
        super().__init__(name)
        self.rest_catch_up = rest_catch_up
        spec = MARKETS[market]
        self.market = spec
        self.exchange = spec.exchange
        #: Binance id ("BTCUSDT") -> ccxt unified symbol ("BTC/USDT" or "BTC/USDT:USDT")
        self.symbols = {binance_id(spec, s): s for s in symbols}
        self.channels = channels
        self.ws_url = (ws_url or spec.ws_url).rstrip("/")
        self.watchdog_seconds = watchdog_seconds
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        per_connection = streams_per_connection or spec.max_streams_per_connection
        streams = [f"{sid.lower()}@{channel}" for sid in self.symbols for channel in channels]
        self.urls = connection_urls(self.ws_url, streams, per_connection)
        #: per connection URL, the symbol ids whose aggTrade stream it carries
        self.trade_symbols = {url: [sid for sid in self.symbols
                                    if f"{sid.lower()}@aggTrade" in url.split("=", 1)[1]
                                    .split("/")]
                              for url in self.urls}
        self.rest = RestClient(name, rest_url or spec.rest_url, self.stats,
                               weight_limit=rest_weight_limit or spec.weight_limit,
                               backoff_base_s=0.5, backoff_cap_s=30.0, timeout_s=15.0,
                               max_attempts=REST_ATTEMPTS)
        #: last aggregate trade id emitted per Binance symbol id; survives reconnects
        self.last_trade_id: dict[str, int] = {}

    async def run(self, out: Emitter) -> None:
        async with self.rest, asyncio.TaskGroup() as group:
            for i, url in enumerate(self.urls):
                group.create_task(self._connection(url, out), name=f"{self.name}#{i}")

    async def _connection(self, url: str, out: Emitter) -> None:
        backoff = Backoff(self.backoff_base, self.backoff_cap)

        async def connect_once() -> None:
            await self.catch_up(self.trade_symbols[url], out)
            async with websockets.connect(url, open_timeout=10, close_timeout=2,
                                          max_size=2 ** 22) as ws:
                log.info("%s: connected (%d streams)", self.name, url.count("@"))
                async for raw in watched(ws, self.watchdog_seconds, self.name):
                    backoff.reset()
                    await self.handle(raw, out)

        await reconnect_forever(self, connect_once, backoff)

    async def handle(self, raw: str | bytes, out: Emitter) -> None:
        """One frame: parse, fill a trade-id gap if there is one, emit."""
        self.stats.messages += 1
        try:
            stream, data = parse_combined(raw)
            sid = stream.split("@", 1)[0].upper()
            channel = stream.split("@", 2)[1]
            symbol = self.symbols.get(sid)
            if symbol is None:
                raise MalformedInput("event for a symbol not subscribed")
            if channel == "aggTrade":
                tick, trade_id = agg_trade_tick(data, self.exchange, symbol)
            elif channel == "bookTicker":
                ticker = book_ticker(data, self.exchange, symbol, int(time.time() * 1000))
            elif channel == "markPrice":
                ticker = mark_price_ticker(data, self.exchange, symbol)
            else:
                raise MalformedInput(f"event of unexpected stream type {channel!r}")
        except MalformedInput as exc:
            self.malformed(exc.reason, raw)
            return
        key = f"{self.exchange}:{symbol}"
        if channel != "aggTrade":
            await out.emit("tickers", key, ticker)
            return
        last = self.last_trade_id.get(sid)
        if last is not None and trade_id <= last:
            self.stats.duplicates += 1  # replayed after a reconnect
            return
        if last is not None and last != NO_TRADE and trade_id > last + 1:
            self.stats.gaps += 1
            log.info("%s: gap in %s trades %d..%d; backfilling over REST", self.name, symbol,
                     last + 1, trade_id - 1)
            await self.backfill(sid, last + 1, trade_id - 1, out)
        await self._emit_trade(sid, tick, trade_id, out)

    async def catch_up(self, sids: list[str], out: Emitter) -> None:
        """Before (re)connecting: fetch over REST the trades made while away, or on the first
        connection the newest trade id, the baseline after which every trade is produced.

        Without it a quiet symbol would show its gap only at its next trade, and trades of a
        symbol made between the first connection and a drop, before it traded on the stream,
        would be lost. Each call costs REST weight: ``rest_catch_up: false`` turns it off.
        """
        if not self.rest_catch_up:
            return
        for sid in sids:
            last = self.last_trade_id.get(sid)
            if last is None:
                try:
                    newest = await self.rest.get_json(self.market.agg_trades_path,
                                                      {"symbol": sid, "limit": 1})
                    # no trade yet (a new listing): every trade from id 0 on is new
                    self.last_trade_id[sid] = int(newest[-1]["a"]) if newest else NO_TRADE
                except (SourceError, LookupError, TypeError, ValueError) as exc:
                    log.warning("%s: no baseline trade id for %s (%s); the first trade on the "
                                "stream sets it", self.name, self.symbols[sid], exc)
            elif await self.backfill(sid, last + 1, None, out):
                self.stats.gaps += 1

    async def _emit_trade(self, sid: str, tick: CryptoTick, trade_id: int, out: Emitter) -> None:
        await out.emit("ticks", f"{self.exchange}:{tick.symbol}", tick,
                       dedupe_key=f"{self.exchange}:{tick.symbol}:{trade_id}")
        self.last_trade_id[sid] = trade_id

    async def backfill(self, sid: str, first: int, last: int | None, out: Emitter) -> int:
        """Emit aggregate trades ``first``..``last`` (None: up to the newest) of ``sid`` from
        REST, in order; the number emitted. A gap REST cannot fill is logged, not retried."""
        symbol = self.symbols[sid]
        next_id, emitted = first, 0
        while last is None or next_id <= last:
            limit = REST_PAGE if last is None else min(REST_PAGE, last - next_id + 1)
            try:
                rows = await self.rest.get_json(self.market.agg_trades_path,
                                                {"symbol": sid, "fromId": next_id,
                                                 "limit": limit})
            except SourceError as exc:
                log.error("%s: backfill of %s trades from %d abandoned: %s", self.name, symbol,
                          next_id, exc)
                return emitted
            if not isinstance(rows, list):
                self.malformed("REST aggTrades answer is not a list", rows)
                return emitted
            for row in rows:
                try:
                    tick, trade_id = agg_trade_tick(row, self.exchange, symbol)
                except MalformedInput as exc:
                    self.malformed(f"REST {exc.reason}", row)
                    continue
                if trade_id < next_id:
                    continue
                if last is not None and trade_id > last:
                    return emitted
                await self._emit_trade(sid, tick, trade_id, out)
                self.stats.backfilled += 1
                emitted += 1
                next_id = trade_id + 1
            if len(rows) < limit:
                if last is not None and next_id <= last:
                    log.error("%s: REST has no %s trades %d..%d; they are missing", self.name,
                              symbol, next_id, last)
                return emitted
        return emitted


def binance_id(market: BinanceMarket, symbol: str) -> str:
    match = market.symbol_pattern.match(symbol)
    if match is None:
        raise ValueError(symbol)
    return match[1] + match[2]


def from_config(data: Mapping[str, Any], where: str) -> BinanceStreams:
    """``type: binance_ws`` -> a BinanceStreams source; ConfigError names the bad field."""
    cfg = SourceConfig(data, where)
    name = cfg.source_name()
    market_name = cfg.text("market", "spot", choices=tuple(MARKETS))
    market = MARKETS[market_name]
    symbols = cfg.texts("symbols")
    for i, symbol in enumerate(symbols):
        if not market.symbol_pattern.match(symbol):
            example = "BTC/USDT" if market_name == "spot" else "BTC/USDT:USDT"
            raise ConfigError(f"{cfg.field('symbols')}[{i}]: {symbol!r} is not a ccxt unified "
                              f"symbol of Binance {market_name} (like {example})")
    ids = [binance_id(market, s) for s in symbols]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{cfg.field('symbols')}: two symbols map to the same Binance id")
    channels = cfg.texts("channels", ["aggTrade"])
    for i, channel in enumerate(channels):
        if channel not in market.channels:
            raise ConfigError(f"{cfg.field('channels')}[{i}]: {channel!r} is not one of "
                              f"{', '.join(market.channels)} (Binance {market_name})")
    source = BinanceStreams(
        name, market_name, symbols, channels,
        ws_url=cfg.url("ws_url", market.ws_url, schemes=("wss://", "ws://")),
        rest_url=cfg.url("rest_url", market.rest_url),
        streams_per_connection=cfg.integer("streams_per_connection",
                                           market.max_streams_per_connection, minimum=1,
                                           maximum=market.max_streams_per_connection),
        watchdog_seconds=cfg.number("watchdog_seconds", 60.0, minimum=0.1),
        backoff_base=cfg.number("backoff_base_seconds", 0.5, minimum=0.001),
        backoff_cap=cfg.number("backoff_cap_seconds", 30.0, minimum=0.001),
        rest_weight_limit=cfg.integer("rest_weight_limit", market.weight_limit, minimum=1),
        rest_catch_up=cfg.flag("rest_catch_up", True),
    )
    if source.backoff_cap < source.backoff_base:
        raise ConfigError(f"{cfg.field('backoff_cap_seconds')}: must be >= backoff_base_seconds")
    cfg.finish()
    return source
