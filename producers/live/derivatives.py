"""Funding rates and open interest of perpetual swaps, polled through ccxt on a fixed period.

``funding_rate`` calls ``fetch_funding_rate`` (Binance: ``/fapi/v1/premiumIndex``: the rate of
the coming settlement, mark and index price), ``open_interest`` calls ``fetch_open_interest``
(Binance: ``/fapi/v1/openInterest``), for each symbol just after each ``interval`` boundary.
Neither endpoint has history worth backfilling (it is the current value), so there is no
backfill. A value is emitted when the exchange's timestamp moved on (dedupe key
``exchange:symbol:funding|open_interest:timestamp``), so a series' event times only increase.

Config (``type: funding_rate`` or ``type: open_interest``)::

    exchange: binance            # binance | bybit | okx | bitget
    symbols: [BTC/USDT:USDT]     # ccxt unified perpetual swap symbols
    interval: 1m                 # 1m 5m 15m 30m 1h ... 1d: poll once per boundary
    rest_url: null               # replaces scheme and host of every REST URL (tests, proxies)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from producers.live.core import (
    Emitter,
    Source,
    SourceConfig,
    epoch_ms,
    iso_from_ms,
    number,
    number_if_usable,
)
from producers.live.http import (
    MINUTE_MS,
    PERIOD_MS,
    Clock,
    call_ccxt,
    next_boundary,
    optional_url,
    sleep_until,
)
from producers.live.longshort import EXCHANGES, load_markets, open_exchange
from schemas.records import Event, FundingRate, OpenInterest

log = logging.getLogger(__name__)

INTERVALS = {"1m": MINUTE_MS, **PERIOD_MS}
#: a funding interval as FundingRate.interval reads it ("8h")
INTERVAL = re.compile(r"[0-9]{1,4}h")


def funding_record(exchange: str, symbol: str, unified: Mapping[str, Any],
                   now_ms: int) -> tuple[int, FundingRate]:
    """(timestamp, record) of ccxt's funding-rate structure; ValueError if it has no rate."""
    rate = number(unified.get("fundingRate"), "fundingRate", minimum=-1, maximum=1)
    t_ms = epoch_ms(unified.get("timestamp") or now_ms, "timestamp")
    next_ms = unified.get("fundingTimestamp")
    interval = unified.get("interval")
    return t_ms, FundingRate(
        exchange=exchange, symbol=symbol, event_time=iso_from_ms(t_ms), funding_rate=rate,
        next_funding_time=iso_from_ms(epoch_ms(next_ms, "fundingTimestamp")) if next_ms
        else None,
        interval=interval if isinstance(interval, str) and INTERVAL.fullmatch(interval)
        else None,
        mark_price=number_if_usable(unified.get("markPrice"), "markPrice", positive=True),
        index_price=number_if_usable(unified.get("indexPrice"), "indexPrice", positive=True))


def open_interest_record(exchange: str, symbol: str, unified: Mapping[str, Any],
                         now_ms: int) -> tuple[int, OpenInterest]:
    """(timestamp, record) of ccxt's open-interest structure; ValueError without an amount."""
    # ccxt fills the amount, or only its older name baseVolume (the value: quoteVolume)
    amount_field = ("openInterestAmount" if unified.get("openInterestAmount") is not None
                    else "baseVolume")
    amount = number(unified.get(amount_field), amount_field, minimum=0)
    value_field = ("openInterestValue" if unified.get("openInterestValue") is not None
                   else "quoteVolume")
    t_ms = epoch_ms(unified.get("timestamp") or now_ms, "timestamp")
    return t_ms, OpenInterest(
        exchange=exchange, symbol=symbol, event_time=iso_from_ms(t_ms), open_interest=amount,
        open_interest_value=number_if_usable(unified.get(value_field), value_field, minimum=0))


class DerivativesPoller(Source):
    """Polls one ccxt method per symbol after each interval boundary (funding or OI)."""

    #: ccxt method, topic, dedupe tag, normaliser
    method = ""
    topic = ""
    tag = ""

    def __init__(self, name: str, exchange: str, symbols: list[str], interval: str, *,
                 api_url: str | None = None, clock: Clock | None = None,
                 where: str = "derivatives") -> None:
        super().__init__(name)
        self.exchange, self.symbols = exchange, symbols
        self.interval_ms = INTERVALS[interval]
        self.api_url, self.where = api_url, where
        self.clock = clock or Clock()
        self.last_ms: dict[str, int] = {}

    def normalise(self, symbol: str, unified: Mapping[str, Any]) -> tuple[int, Event]:
        raise NotImplementedError

    async def run(self, out: Emitter) -> None:
        client = open_exchange(self.exchange, self.api_url)
        try:
            await load_markets(self.name, client, self.symbols, f"{self.where}.symbols",
                               self.clock, self)
            while True:
                for symbol in self.symbols:
                    await self.poll(out, client, symbol)
                await sleep_until(self.clock, next_boundary(self.clock.now_ms(),
                                                            self.interval_ms) + 1000)
        finally:
            await client.close()

    async def poll(self, out: Emitter, client: Any, symbol: str) -> None:
        fetch = getattr(client, self.method)
        unified = await call_ccxt(f"{self.name} {symbol}", lambda: fetch(symbol), client,
                                  self.stats, self.clock,
                                  weight_limit=EXCHANGES[self.exchange].weight_limit)
        try:
            t_ms, record = self.normalise(symbol, unified)
        except (TypeError, ValueError) as exc:
            self.malformed(str(exc), unified.get("info") if isinstance(unified, dict) else "")
            return
        if t_ms <= self.last_ms.get(symbol, -1):
            return  # the exchange has not moved on since the last poll
        self.last_ms[symbol] = t_ms
        await out.emit(self.topic, f"{self.exchange}:{symbol}", record,
                       dedupe_key=f"{self.exchange}:{symbol}:{self.tag}:{t_ms}")


class FundingRateSource(DerivativesPoller):
    method, topic, tag = "fetch_funding_rate", "funding-rates", "funding"

    def normalise(self, symbol: str, unified: Mapping[str, Any]) -> tuple[int, Event]:
        return funding_record(self.exchange, symbol, unified, self.clock.now_ms())


class OpenInterestSource(DerivativesPoller):
    method, topic, tag = "fetch_open_interest", "open-interest", "open_interest"

    def normalise(self, symbol: str, unified: Mapping[str, Any]) -> tuple[int, Event]:
        return open_interest_record(self.exchange, symbol, unified, self.clock.now_ms())


def _from_config(kind: type[DerivativesPoller], data: Mapping[str, Any],
                 where: str) -> DerivativesPoller:
    cfg = SourceConfig(data, where)
    source = kind(cfg.source_name(), cfg.text("exchange", choices=tuple(EXCHANGES)),
                  cfg.texts("symbols"), cfg.text("interval", "1m", choices=tuple(INTERVALS)),
                  api_url=optional_url(cfg, "rest_url"), where=where)
    cfg.finish()
    return source


def funding_from_config(data: Mapping[str, Any], where: str) -> DerivativesPoller:
    """Build a ``funding_rate`` source from its ``sources[i]`` mapping."""
    return _from_config(FundingRateSource, data, where)


def open_interest_from_config(data: Mapping[str, Any], where: str) -> DerivativesPoller:
    """Build an ``open_interest`` source from its ``sources[i]`` mapping."""
    return _from_config(OpenInterestSource, data, where)
