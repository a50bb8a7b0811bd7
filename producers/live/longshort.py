"""Long/short ratios of perpetual swaps over REST: backfill the history, then follow it.

Variants (``LongShortRatio.variant``):

- ``global_account``: share of all accounts net long / net short (ccxt's unified
  ``fetch_long_short_ratio_history``) on binance (USD-M), bybit, okx and bitget;
- ``top_account``, ``top_position``: the same among Binance's top 20 % traders by margin,
  counted by accounts or by position size (``/futures/data/topLongShortAccountRatio``,
  ``topLongShortPositionRatio``, ccxt's implicit ``fapiDataGet...`` methods);
- ``taker_volume``: Binance's taker buy and sell volume over the period
  (``/futures/data/takerlongshortRatio``): long_share = buyVol / (buyVol + sellVol).

Exchanges publish one row per period (5m .. 1d) just after each period boundary, so the
source polls just after each boundary (``publish_delay_seconds`` later) and asks only for rows
newer than the last it emitted. On start it backfills what the exchange keeps (Binance: 30
days, paged ``page_limit`` periods per request; bybit and bitget: their latest page), logging
one status line per series. Every row is emitted once (dedupe key
``exchange:symbol:variant:period:timestamp``); event time = the row's timestamp.

``ratio`` is the exchange's own long/short ratio where it reports one (Binance, OKX), else
long_share / short_share; OKX reports only the ratio, so its shares are r/(1+r) and 1/(1+r).

Config (``type: long_short_ratio``)::

    exchange: binance            # binance | bybit | okx | bitget
    symbols: [BTC/USDT:USDT]     # ccxt unified perpetual swap symbols
    variants: [global_account]   # binance: any of the four; others: global_account
    period: 5m                   # 5m 15m 30m 1h 2h 4h 6h 12h 1d (bybit: no 2h, 6h, 12h)
    backfill_days: 30            # history to fetch on start (capped at what the exchange keeps)
    page_limit: 500              # rows per request (capped at the exchange's maximum)
    publish_delay_seconds: 10    # poll this long after each boundary
    rest_url: null               # replaces scheme and host of every REST URL (tests, proxies)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from foundation.config import VARIANTS
from foundation.errors import ConfigError
from producers.live.core import (
    Emitter,
    MalformedInput,
    Source,
    SourceConfig,
    epoch_ms,
    iso_from_ms,
    number,
    status_log,
)
from producers.live.http import (
    PERIOD_MS,
    Clock,
    call_ccxt,
    next_boundary,
    optional_url,
    poll_until_published,
    sleep_until,
)
from schemas.decode import shown
from schemas.records import LongShortRatio

log = logging.getLogger(__name__)

TOPIC = "long-short-ratios"
DAY_MS = 86_400_000


@dataclass(frozen=True)
class RatioRow:
    """One normalised row: long and short shares in [0, 1], and the long/short ratio."""

    t_ms: int
    long_share: float
    short_share: float
    ratio: float


def binance_account_row(row: Mapping[str, Any]) -> RatioRow:
    """Binance ``globalLongShortAccountRatio``, ``topLongShortAccountRatio`` or
    ``topLongShortPositionRatio`` row (USD-M: longAccount/shortAccount; COIN-M positions:
    longPosition/shortPosition)."""
    long_key = "longAccount" if "longAccount" in row else "longPosition"
    short_key = "shortAccount" if "shortAccount" in row else "shortPosition"
    return RatioRow(epoch_ms(row["timestamp"], "timestamp"),
                    number(row[long_key], long_key, minimum=0, maximum=1),
                    number(row[short_key], short_key, minimum=0, maximum=1),
                    number(row["longShortRatio"], "longShortRatio", minimum=0))


def binance_taker_row(row: Mapping[str, Any]) -> RatioRow:
    """Binance ``takerlongshortRatio`` row: taker buy and sell volume over the period."""
    buy = number(row["buyVol"], "buyVol", minimum=0)
    sell = number(row["sellVol"], "sellVol", minimum=0)
    if not 0 < buy + sell < math.inf:
        raise MalformedInput(f"buyVol {shown(row['buyVol'])} + sellVol "
                             f"{shown(row['sellVol'])}: must be > 0 and finite")
    return RatioRow(epoch_ms(row["timestamp"], "timestamp"), buy / (buy + sell),
                    sell / (buy + sell),
                    number(row["buySellRatio"], "buySellRatio", minimum=0))


def bybit_row(row: Mapping[str, Any]) -> RatioRow:
    """Bybit ``/v5/market/account-ratio`` list item: buyRatio, sellRatio (shares)."""
    long_share = number(row["buyRatio"], "buyRatio", minimum=0, maximum=1)
    short_share = number(row["sellRatio"], "sellRatio", positive=True, maximum=1)  # divides
    return RatioRow(epoch_ms(row["timestamp"], "timestamp"), long_share, short_share,
                    long_share / short_share)


def okx_row(row: Mapping[str, Any]) -> RatioRow:
    """OKX ``rubik/stat/contracts/long-short-account-ratio-contract`` entry, as ccxt reshapes
    ``[ts, ratio]``: only the ratio r is published, so long = r/(1+r), short = 1/(1+r)."""
    ratio = number(row["longShortRatio"], "longShortRatio", minimum=0)
    return RatioRow(epoch_ms(row["timestamp"], "timestamp"), ratio / (1 + ratio),
                    1 / (1 + ratio), ratio)


def bitget_row(row: Mapping[str, Any]) -> RatioRow:
    """Bitget ``/api/v2/mix/market/account-long-short`` item: longAccountRatio,
    shortAccountRatio (shares), ts."""
    long_share = number(row["longAccountRatio"], "longAccountRatio", minimum=0, maximum=1)
    short_share = number(row["shortAccountRatio"], "shortAccountRatio", positive=True,
                         maximum=1)  # divides
    return RatioRow(epoch_ms(row["ts"], "ts"), long_share, short_share,
                    long_share / short_share)


@dataclass(frozen=True)
class ExchangeSpec:
    """What one exchange offers and how to ask it."""

    ccxt_id: str
    #: ccxt market types to load: only derivatives, so loading markets costs few requests
    market_types: tuple[str, ...]
    #: our period -> the timeframe ccxt passes on
    periods: Mapping[str, str]
    variants: tuple[str, ...]
    #: most rows one request returns
    max_limit: int
    #: how much history the exchange keeps, in days (None: not documented)
    history_days: float | None
    #: honours since/until, so history can be paged through window by window
    windowed: bool
    #: request-weight budget per minute to stay under (Binance), else None
    weight_limit: int | None
    parse: Callable[[Mapping[str, Any]], RatioRow]


_ALL_PERIODS = {p: p for p in PERIOD_MS}
EXCHANGES: dict[str, ExchangeSpec] = {
    "binance": ExchangeSpec("binanceusdm", ("linear",), _ALL_PERIODS, VARIANTS, 500, 30, True,
                            2400, binance_account_row),
    "bybit": ExchangeSpec("bybit", ("linear", "inverse"),
                          {"5m": "5min", "15m": "15min", "30m": "30min", "1h": "1h",
                           "4h": "4h", "1d": "1d"},
                          ("global_account",), 500, None, False, None, bybit_row),
    "okx": ExchangeSpec("okx", ("swap",), _ALL_PERIODS, ("global_account",), 100, None, True,
                        None, okx_row),
    "bitget": ExchangeSpec("bitget", ("swap",), _ALL_PERIODS, ("global_account",), 100, None,
                           False, None, bitget_row),
}
#: Binance's implicit ccxt methods of the top-trader and taker variants
BINANCE_METHODS = {
    "top_account": "fapiDataGetTopLongShortAccountRatio",
    "top_position": "fapiDataGetTopLongShortPositionRatio",
    "taker_volume": "fapiDataGetTakerlongshortRatio",
}


def override_api_urls(urls: Any, api_url: str) -> Any:
    """ccxt's ``urls['api']`` with every URL's scheme and host replaced by ``api_url``."""
    if isinstance(urls, str):
        return api_url.rstrip("/") + urlsplit(urls).path
    if isinstance(urls, dict):
        return {key: override_api_urls(value, api_url) for key, value in urls.items()}
    return urls


def open_exchange(exchange: str, api_url: str | None) -> Any:
    """A ccxt async client for ``exchange`` (a key of EXCHANGES), derivatives markets only."""
    import ccxt.async_support as ccxt

    spec = EXCHANGES[exchange]
    client = getattr(ccxt, spec.ccxt_id)({"enableRateLimit": True})
    client.options["fetchMarkets"] = {**client.options.get("fetchMarkets", {}),
                                      "types": list(spec.market_types)}
    if api_url is not None:
        client.urls["api"] = override_api_urls(client.urls["api"], api_url)
    return client


async def load_markets(name: str, client: Any, symbols: list[str], field: str,
                       clock: Clock, source: Source) -> None:
    """Load the exchange's markets (retrying) and check every configured symbol exists."""
    await call_ccxt(name, client.load_markets, client, source.stats, clock)
    for symbol in symbols:
        if symbol not in client.markets:
            raise ConfigError(f"{field}: {symbol!r} is not a market of {client.id} "
                              "(use ccxt unified symbols of perpetual swaps, e.g. BTC/USDT:USDT)")


class LongShortSource(Source):
    """Long/short ratios of one exchange's swaps: backfill, then poll after each boundary."""

    def __init__(self, name: str, exchange: str, symbols: list[str], variants: list[str],
                 period: str, *, backfill_days: float = 30.0, page_limit: int = 500,
                 publish_delay_s: float = 10.0, publish_retries: int = 3,
                 api_url: str | None = None, clock: Clock | None = None,
                 where: str = "long_short_ratio") -> None:
        super().__init__(name)
        self.exchange, self.symbols, self.variants, self.period = (exchange, symbols,
                                                                   variants, period)
        self.spec = EXCHANGES[exchange]
        self.period_ms = PERIOD_MS[period]
        self.backfill_days = backfill_days
        self.page_limit = min(page_limit, self.spec.max_limit)
        self.publish_delay_s, self.publish_retries = publish_delay_s, publish_retries
        self.api_url = api_url
        self.clock = clock or Clock()
        self.where = where
        self.client: Any = None
        #: last emitted row time per (symbol, variant)
        self.last_ms: dict[tuple[str, str], int] = {}

    async def run(self, out: Emitter) -> None:
        self.client = open_exchange(self.exchange, self.api_url)
        try:
            await load_markets(self.name, self.client, self.symbols, f"{self.where}.symbols",
                               self.clock, self)
            for symbol in self.symbols:
                for variant in self.variants:
                    count = await self.catch_up(out, symbol, variant)
                    self.stats.backfilled += count
                    status_log.info("%s: backfilled %d %s %s rows of %s %s", self.name,
                                    count, self.period, variant, self.exchange, symbol)
            while True:
                boundary = next_boundary(self.clock.now_ms(), self.period_ms)
                await sleep_until(self.clock, boundary + int(self.publish_delay_s * 1000))
                await self.poll_after(out)
        finally:
            await self.client.close()

    async def poll_after(self, out: Emitter) -> None:
        """Fetch each series' new rows after a boundary (see ``poll_until_published``)."""
        await poll_until_published(
            self.clock, [(s, v) for s in self.symbols for v in self.variants],
            lambda series: self.catch_up(out, *series), self.publish_retries,
            self.publish_delay_s)

    async def catch_up(self, out: Emitter, symbol: str, variant: str) -> int:
        """Emit the series' rows newer than the last emitted (or the backfill start)."""
        now = self.clock.now_ms()
        last = self.last_ms.get((symbol, variant))
        if not self.spec.windowed:  # the latest page: all of it once, then what is new
            limit = self.page_limit if last is None else min(
                self.page_limit, (now - last) // self.period_ms + 2)
            return await self._emit_rows(out, symbol, variant,
                                         await self.fetch(symbol, variant, None, None, limit))
        start = last + 1 if last is not None else self.backfill_start(now)
        span = self.page_limit * self.period_ms
        emitted = 0
        for since in range(start, now + 1, span):
            rows = await self.fetch(symbol, variant, since, min(since + span - 1, now),
                                    self.page_limit)
            emitted += await self._emit_rows(out, symbol, variant, rows)
        return emitted

    def backfill_start(self, now_ms: int) -> int:
        """The first period boundary within ``backfill_days`` and the exchange's history."""
        days = self.backfill_days
        if self.spec.history_days is not None:
            days = min(days, self.spec.history_days)
        return next_boundary(now_ms - int(days * DAY_MS), self.period_ms)

    async def fetch(self, symbol: str, variant: str, since: int | None, until: int | None,
                    limit: int) -> list[RatioRow]:
        """The rows the exchange returns for [since, until] (latest page if None), sorted."""
        client = self.client
        what = f"{self.name} {symbol} {variant}"
        if variant == "global_account":
            timeframe = self.spec.periods[self.period]
            params = {"until": until} if until is not None else {}
            unified = await call_ccxt(
                what, lambda: client.fetch_long_short_ratio_history(
                    symbol, timeframe, since, limit, params),
                client, self.stats, self.clock, weight_limit=self.spec.weight_limit)
            raw = [item["info"] for item in unified]
            parse = self.spec.parse
        else:
            request: dict[str, Any] = {"symbol": client.market(symbol)["id"],
                                       "period": self.period, "limit": limit}
            if since is not None:
                request["startTime"] = since
            if until is not None:
                request["endTime"] = until
            method = getattr(client, BINANCE_METHODS[variant])
            raw = await call_ccxt(what, lambda: method(request), client, self.stats,
                                  self.clock, weight_limit=self.spec.weight_limit)
            parse = binance_taker_row if variant == "taker_volume" else binance_account_row
        rows = []
        for item in raw if isinstance(raw, list) else []:
            try:
                rows.append(parse(item))
            except (KeyError, TypeError, ValueError) as exc:
                self.malformed(f"{variant} row: {exc}", item)
        return sorted(rows, key=lambda row: row.t_ms)

    async def _emit_rows(self, out: Emitter, symbol: str, variant: str,
                         rows: list[RatioRow]) -> int:
        """Emit rows newer than the series' last, in time order; how many went out."""
        emitted = 0
        for row in rows:
            if row.t_ms <= self.last_ms.get((symbol, variant), -1):
                continue
            record = LongShortRatio(
                exchange=self.exchange, symbol=symbol, event_time=iso_from_ms(row.t_ms),
                period=self.period, variant=variant, long_share=row.long_share,
                short_share=row.short_share, ratio=row.ratio)
            dedupe = f"{self.exchange}:{symbol}:{variant}:{self.period}:{row.t_ms}"
            if await out.emit(TOPIC, f"{self.exchange}:{symbol}", record, dedupe_key=dedupe):
                emitted += 1
            self.last_ms[(symbol, variant)] = row.t_ms
        return emitted


def from_config(data: Mapping[str, Any], where: str) -> LongShortSource:
    """Build a ``long_short_ratio`` source from its ``sources[i]`` mapping."""
    cfg = SourceConfig(data, where)
    name = cfg.source_name()
    exchange = cfg.text("exchange", choices=tuple(EXCHANGES))
    spec = EXCHANGES[exchange]
    symbols = cfg.texts("symbols")
    variants = cfg.texts("variants", ["global_account"])
    for i, variant in enumerate(variants):
        if variant not in spec.variants:
            raise ConfigError(f"{cfg.field('variants')}[{i}]: {variant!r}: {exchange} offers "
                              f"{', '.join(spec.variants)}")
    period = cfg.text("period", "5m", choices=tuple(spec.periods))
    source = LongShortSource(
        name, exchange, symbols, variants, period,
        backfill_days=cfg.number("backfill_days", 30.0, minimum=0),
        page_limit=cfg.integer("page_limit", spec.max_limit, minimum=1,
                               maximum=spec.max_limit),
        publish_delay_s=cfg.number("publish_delay_seconds", 10.0, minimum=0, maximum=3600),
        api_url=optional_url(cfg, "rest_url"),
        where=where,
    )
    cfg.finish()
    return source
