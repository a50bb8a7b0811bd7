"""Trades and tickers of any ccxt.pro exchange (binance, binanceusdm, bybit, okx, coinbase,
coinbaseexchange, kraken, krakenfutures) onto ``ticks`` and ``tickers``.

ccxt keeps each symbol's recent trades in a cache and wakes ``watch_trades_for_symbols`` up
when one arrives. A wake-up can be missed while the source is blocked on a full queue, so on
every wake-up (and every second) the source reads each symbol's cache from its end back to
the first trade it has already seen (it marks the trades it read), and emits the newer ones
in order: nothing waits for the symbol's next trade. Trades are deduplicated on
``exchange:symbol:id`` (snapshots and replays after a reconnect). Each connection is a fresh
ccxt exchange object (the markets loaded once are reused), so a reconnect starts clean.
Limit: a symbol that receives more than ccxt's ``tradesLimit`` (default 1000) trades while the
source is blocked loses the oldest; raise it with ``options: {tradesLimit: N}``. No gap
detection: trade ids are not consecutive on most exchanges.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import ccxt.pro as ccxtpro
from ccxt.base.errors import BadSymbol, NetworkError

from foundation.errors import ConfigError, SourceError
from producers.live.core import (
    MAX_TEXT_CHARS,
    Backoff,
    Emitter,
    MalformedInput,
    Source,
    SourceConfig,
    StaleConnection,
    iso_from_ms,
    number,
    optional_number,
    plausible_ms,
    reconnect_forever,
)
from schemas.records import CryptoTick, CryptoTicker

log = logging.getLogger(__name__)

EXCHANGES = ("binance", "binanceusdm", "bybit", "okx", "coinbase", "coinbaseexchange",
             "kraken", "krakenfutures")
#: what the ticks schema accepts (no dated futures such as "BTC/USD:BTC-210924")
SYMBOL = re.compile(r"^[A-Z0-9]+/[A-Z0-9]+(:[A-Z0-9]+)?\Z")  # \Z: no final newline
#: the mark ccxt's cached trades get once read
SEEN = "_altseason_seen"


def _time(epoch_ms: int, kind: str) -> str:
    try:
        return iso_from_ms(plausible_ms(epoch_ms, "timestamp"))
    except ValueError:
        raise MalformedInput(f"{kind} with an implausible timestamp") from None


def trade_tick(trade: Mapping[str, Any], exchange: str) -> CryptoTick:
    """A ccxt unified trade as a CryptoTick (side: the taker's, as ccxt gives it)."""
    timestamp, symbol = trade.get("timestamp"), trade.get("symbol")
    if not isinstance(timestamp, int):
        raise MalformedInput("trade without a timestamp")
    if not isinstance(symbol, str) or not SYMBOL.match(symbol) or len(symbol) > MAX_TEXT_CHARS:
        raise MalformedInput("trade without a usable symbol")
    price = number(trade.get("price"), "trade.price", positive=True)
    amount = number(trade.get("amount"), "trade.amount", minimum=0)
    side = trade.get("side")  # ccxt gives the taker's (it inverts Coinbase's maker side)
    trade_id = str(trade.get("id") or "")
    if len(trade_id) > MAX_TEXT_CHARS:
        raise MalformedInput("trade with an overlong id")
    return CryptoTick(exchange=exchange, symbol=symbol, event_time=_time(timestamp, "trade"),
                      price=price, amount=amount,
                      side=side if side in ("buy", "sell") else "unknown",
                      trade_id=trade_id)


def ticker_record(ticker: Mapping[str, Any], exchange: str, received_ms: int) -> CryptoTicker:
    """A ccxt unified ticker as a CryptoTicker (kind "ticker"); no time: time of receipt."""
    symbol = ticker.get("symbol")
    if not isinstance(symbol, str) or not SYMBOL.match(symbol) or len(symbol) > MAX_TEXT_CHARS:
        raise MalformedInput("ticker without a usable symbol")
    values = {field: optional_number(ticker.get(field), f"ticker.{field}",
                                     minimum=0 if field in ("bid", "ask") else None,
                                     positive=field in ("last", "markPrice"))
              for field in ("bid", "ask", "last", "markPrice")}
    if all(v is None for v in values.values()):
        raise MalformedInput("ticker without bid, ask, last or mark price")
    timestamp = ticker.get("timestamp")
    return CryptoTicker(exchange=exchange, symbol=symbol,
                        event_time=_time(timestamp if isinstance(timestamp, int)
                                         else received_ms, "ticker"),
                        kind="ticker", bid=values["bid"], ask=values["ask"],
                        last=values["last"], mark_price=values["markPrice"])


def rehost(urls: Any, base: str) -> Any:
    """Every URL in a ccxt ``urls`` tree with its ``scheme://host[:port]`` replaced by
    ``base``, paths kept: how a source is pointed at a local server."""
    if isinstance(urls, str):
        return re.sub(r"^[a-z]+://[^/]+", base, urls)
    if isinstance(urls, dict):
        return {key: rehost(value, base) for key, value in urls.items()}
    if isinstance(urls, list):
        return [rehost(value, base) for value in urls]
    return urls


class CcxtStreams(Source):
    """One ccxt.pro exchange, many symbols: trades (and optionally tickers)."""

    def __init__(self, name: str, exchange: str, symbols: list[str], channels: list[str],
                 ws_url: str | None = None, rest_url: str | None = None,
                 watchdog_seconds: float = 60.0, backoff_base: float = 0.5,
                 backoff_cap: float = 30.0, options: Mapping[str, Any] | None = None,
                 where: str = "") -> None:
        super().__init__(name)
        self.exchange_id = exchange
        self.symbols = symbols
        self.channels = channels
        self.ws_url, self.rest_url = ws_url, rest_url
        self.watchdog_seconds = watchdog_seconds
        self.backoff = Backoff(backoff_base, backoff_cap)
        self.options = dict(options or {})
        self.where = where
        self._markets: tuple[Any, Any] | None = None
        self._last_ticker: dict[str, tuple[Any, ...]] = {}

    def new_exchange(self) -> Any:
        """A fresh ccxt.pro exchange object, pointed at the overridden URLs if any."""
        exchange = getattr(ccxtpro, self.exchange_id)({
            "enableRateLimit": True, "newUpdates": True, "options": dict(self.options),
        })
        api = exchange.urls["api"]
        if self.ws_url:
            api["ws"] = rehost(api["ws"], self.ws_url)
        if self.rest_url:
            for key in list(api) if isinstance(api, dict) else []:
                if key != "ws":
                    api[key] = rehost(api[key], self.rest_url)
        if self._markets is not None:
            exchange.set_markets(*self._markets)
        return exchange

    async def run(self, out: Emitter) -> None:
        await reconnect_forever(self, lambda: self._connect_once(out), self.backoff)

    async def _connect_once(self, out: Emitter) -> None:
        exchange = self.new_exchange()
        try:
            if self._markets is None:
                await exchange.load_markets()
                unknown = [s for s in self.symbols if s not in exchange.markets]
                if unknown:
                    raise ConfigError(f"{self.where}.symbols: {', '.join(unknown)} not listed "
                                      f"on {self.exchange_id}")
                self._markets = (exchange.markets, exchange.currencies)
            await self._watch(exchange, out)
        except BadSymbol as exc:
            raise ConfigError(f"{self.where}.symbols: {exc}") from None
        except NetworkError as exc:
            raise SourceError(f"{self.exchange_id}: {type(exc).__name__}: {exc}") from None
        finally:
            await exchange.close()

    async def _watch(self, exchange: Any, out: Emitter) -> None:
        """Wake up on data (or every second), read the caches; StaleConnection on silence."""
        watchers: dict[str, Callable[[], Any]] = {}
        if "trades" in self.channels:
            watchers["trades"] = lambda: exchange.watch_trades_for_symbols(self.symbols)
        if "ticker" in self.channels:
            watchers["ticker"] = lambda: exchange.watch_tickers(self.symbols)
        pending = {asyncio.ensure_future(start()): name for name, start in watchers.items()}
        last_data = time.monotonic()
        try:
            while True:
                done, _ = await asyncio.wait(pending, timeout=1.0,
                                             return_when=asyncio.FIRST_COMPLETED)
                failure: BaseException | None = None
                for task in done:
                    name = pending.pop(task)
                    failure = failure or task.exception()
                    pending[asyncio.ensure_future(watchers[name]())] = name
                # the caches, not the wake-ups, say whether data arrives: ccxt does not wake
                # every watcher up (coinbaseexchange resolves by id what it awaits by symbol);
                # and what arrived before a connection failed is read before it is dropped
                drained = await self._drain(exchange, out)
                if failure is not None:
                    raise failure
                if drained:
                    last_data = time.monotonic()
                    self.backoff.reset()
                elif time.monotonic() - last_data > self.watchdog_seconds:
                    raise StaleConnection(f"{self.name}: nothing received for "
                                          f"{self.watchdog_seconds:g} s")
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _drain(self, exchange: Any, out: Emitter) -> int:
        """Emit every cached trade not read yet (and every changed ticker), oldest first;
        how many there were."""
        count = 0
        for symbol in self.symbols:
            cache = exchange.trades.get(symbol) if isinstance(exchange.trades, dict) else None
            if cache:
                fresh = []
                for trade in reversed(cache):
                    if trade.get(SEEN):
                        break
                    fresh.append(trade)
                count += len(fresh)
                self.stats.messages += len(fresh)
                for trade in reversed(fresh):
                    trade[SEEN] = True
                    await self._emit_trade(trade, out)
            ticker = exchange.tickers.get(symbol) if "ticker" in self.channels else None
            if ticker:
                state = tuple(ticker.get(k) for k in ("timestamp", "bid", "ask", "last",
                                                      "markPrice"))
                if self._last_ticker.get(symbol) != state:
                    self._last_ticker[symbol] = state
                    count += 1
                    self.stats.messages += 1
                    try:
                        record = ticker_record(ticker, self.exchange_id, int(time.time() * 1000))
                    except MalformedInput as exc:
                        self.malformed(exc.reason, ticker)
                        continue
                    await out.emit("tickers", f"{self.exchange_id}:{symbol}", record)
        return count

    async def _emit_trade(self, trade: Mapping[str, Any], out: Emitter) -> None:
        try:
            tick = trade_tick(trade, self.exchange_id)
        except MalformedInput as exc:
            self.malformed(exc.reason, trade.get("info"))
            return
        dedupe = f"{self.exchange_id}:{tick.symbol}:{tick.trade_id}" if tick.trade_id else None
        await out.emit("ticks", f"{self.exchange_id}:{tick.symbol}", tick, dedupe_key=dedupe)


def from_config(data: Mapping[str, Any], where: str) -> CcxtStreams:
    """``type: ccxt_ws`` -> a CcxtStreams source; ConfigError names the bad field."""
    cfg = SourceConfig(data, where)
    name = cfg.source_name()
    exchange = cfg.text("exchange", choices=EXCHANGES)
    symbols = cfg.texts("symbols")
    for i, symbol in enumerate(symbols):
        if not SYMBOL.match(symbol):
            raise ConfigError(f"{cfg.field('symbols')}[{i}]: {symbol!r} is not a ccxt unified "
                              "spot or perpetual symbol (like BTC/USDT or BTC/USDT:USDT)")
    channels = cfg.texts("channels", ["trades"])
    for i, channel in enumerate(channels):
        if channel not in ("trades", "ticker"):
            raise ConfigError(f"{cfg.field('channels')}[{i}]: {channel!r} is not one of "
                              "trades, ticker")
    options = cfg.mapping("options", {})
    source = CcxtStreams(
        name, exchange, symbols, channels,
        ws_url=cfg.optional_text("ws_url") and cfg.url("ws_url", schemes=("wss://", "ws://")),
        rest_url=cfg.optional_text("rest_url") and cfg.url("rest_url"),
        watchdog_seconds=cfg.number("watchdog_seconds", 60.0, minimum=1.0),
        backoff_base=cfg.number("backoff_base_seconds", 0.5, minimum=0.001),
        backoff_cap=cfg.number("backoff_cap_seconds", 30.0, minimum=0.001),
        options=options, where=where,
    )
    if source.backoff.cap < source.backoff.base:
        raise ConfigError(f"{cfg.field('backoff_cap_seconds')}: must be >= backoff_base_seconds")
    cfg.finish()
    return source
