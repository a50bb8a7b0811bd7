"""CoinGecko market caps: the whole market (``/global``) and the top coins (``/coins/markets``).

``/global`` becomes ``MarketCap(asset="TOTAL")`` stamped at its ``updated_at`` (CoinGecko
refreshes it about every 10 minutes); each ``/coins/markets`` item (USD, ordered by market
cap, ``per_page`` up to 250) becomes ``MarketCap(asset=SYMBOL, rank=market_cap_rank)`` stamped
at its ``last_updated``. A value is emitted only when its time moved on (dedupe key
``coingecko:ASSET:time``). Coins whose symbol is not plain letters and digits, that have no
market cap, or that repeat a better-ranked coin's symbol, are skipped (counted malformed).

Plans: ``public`` (keyless, a few calls a minute: requests are spaced 6 s apart), ``demo``
(header ``x-cg-demo-api-key``, 30 calls a minute) and ``pro`` (``pro-api.coingecko.com``,
header ``x-cg-pro-api-key``); the key comes from the environment variable named by
``api_key_env``.

Config (``type: coingecko``)::

    plan: public                 # public | demo | pro
    api_key_env: null            # e.g. COINGECKO_API_KEY (demo and pro)
    coins: 100                   # top coins by market cap (0: only TOTAL)
    interval_seconds: 300        # one round (global + coin pages) per interval boundary
    rest_url: null               # overrides the plan's base URL (tests, proxies)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from foundation.errors import ConfigError, SchemaError
from producers.live.core import (
    MAX_TEXT_CHARS,
    Emitter,
    Source,
    SourceConfig,
    epoch_ms,
    iso_from_ms,
    number,
    number_if_usable,
    plausible_ms,
)
from producers.live.http import Clock, RestClient, next_boundary, optional_url, sleep_until
from schemas.decode import INT64, iso_utc, parse_utc, shown, to_ms
from schemas.records import MarketCap

log = logging.getLogger(__name__)

TOPIC = "market-caps"
SOURCE = "coingecko"
PER_PAGE = 250
ASSET = re.compile(r"^[A-Z0-9]+\Z")  # \Z: no final newline
#: plan -> (base URL, key header, seconds between requests)
PLANS: dict[str, tuple[str, str | None, float]] = {
    "public": ("https://api.coingecko.com/api/v3", None, 6.0),
    "demo": ("https://api.coingecko.com/api/v3", "x-cg-demo-api-key", 2.0),
    "pro": ("https://pro-api.coingecko.com/api/v3", "x-cg-pro-api-key", 0.2),
}


def total_market_cap(data: Mapping[str, Any]) -> tuple[int, MarketCap]:
    """(time, record) of ``/global``'s response; ValueError if it lacks the USD total."""
    body = data["data"]
    if not isinstance(body, Mapping):
        raise TypeError(f"data is {type(body).__name__}, not an object")
    cap = number(body["total_market_cap"]["usd"], "total_market_cap.usd", positive=True)
    t_ms = epoch_ms(body["updated_at"], "updated_at", unit_ms=1000)
    volumes = body.get("total_volume")
    volume = volumes.get("usd") if isinstance(volumes, Mapping) else None
    return t_ms, MarketCap(asset="TOTAL", event_time=iso_from_ms(t_ms), market_cap=cap,
                           source=SOURCE,
                           volume_24h=number_if_usable(volume, "total_volume.usd", minimum=0))


def coin_market_cap(item: Mapping[str, Any]) -> tuple[int, MarketCap]:
    """(time, record) of one ``/coins/markets`` item; ValueError if it is unusable."""
    asset = str(item["symbol"]).upper()
    if not ASSET.match(asset) or len(asset) > MAX_TEXT_CHARS:
        raise ValueError(f"symbol {shown(item['symbol'])} is not letters and digits")
    cap = number(item.get("market_cap"), f"{asset} market_cap", positive=True)
    try:
        moment = parse_utc(str(item["last_updated"]))
    except SchemaError as exc:
        raise ValueError(f"last_updated: {exc}") from None
    t_ms = plausible_ms(to_ms(moment), "last_updated")
    rank = item.get("market_cap_rank")
    return t_ms, MarketCap(
        asset=asset, event_time=iso_utc(moment), market_cap=cap, source=SOURCE,
        rank=int(rank) if isinstance(rank, int) and 1 <= rank <= INT64[1] else None,
        volume_24h=number_if_usable(item.get("total_volume"), "total_volume", minimum=0))


class CoinGeckoSource(Source):
    """Polls ``/global`` and the top ``coins`` of ``/coins/markets`` once per interval."""

    def __init__(self, name: str, *, plan: str = "public", api_key: str | None = None,
                 coins: int = 100, interval_s: float = 300.0, api_url: str | None = None,
                 clock: Clock | None = None) -> None:
        super().__init__(name)
        base, self.key_header, self.min_interval_s = PLANS[plan]
        self.base_url = api_url or base
        self.api_key = api_key
        self.coins = coins
        self.interval_ms = int(interval_s * 1000)
        self.clock = clock or Clock()
        self.last_ms: dict[str, int] = {}

    async def run(self, out: Emitter) -> None:
        headers = {"accept": "application/json"}
        if self.key_header and self.api_key:
            headers[self.key_header] = self.api_key
        async with RestClient(self.name, self.base_url, self.stats, headers=headers,
                              clock=self.clock, min_interval_s=self.min_interval_s) as http:
            while True:
                await self.poll(out, http)
                await sleep_until(self.clock, next_boundary(self.clock.now_ms(),
                                                            self.interval_ms))

    async def poll(self, out: Emitter, http: RestClient) -> None:
        """One round: the total, then the coin pages, best-ranked first."""
        data = await http.get_json("/global")
        try:
            await self._emit(out, *total_market_cap(data))
        except (KeyError, TypeError, ValueError) as exc:
            self.malformed(f"/global: {exc}", data)
        seen: set[str] = set()
        # pages are per_page items each (page 2 of 250 is ranks 251..500): keep the size
        per_page = min(PER_PAGE, self.coins)
        for page in range(1, -(-self.coins // PER_PAGE) + 1 if self.coins else 1):
            items = await http.get_json("/coins/markets", {
                "vs_currency": "usd", "order": "market_cap_desc", "per_page": per_page,
                "page": page})
            wanted = self.coins - (page - 1) * per_page
            for item in items[:wanted] if isinstance(items, list) else []:
                try:
                    t_ms, record = coin_market_cap(item)
                except (KeyError, TypeError, ValueError) as exc:
                    self.malformed(f"/coins/markets: {exc}", item)
                    continue
                if record.asset in seen:  # another coin with a better rank has this symbol
                    self.malformed("symbol shared with a better-ranked coin", item)
                    continue
                seen.add(record.asset)
                await self._emit(out, t_ms, record)

    async def _emit(self, out: Emitter, t_ms: int, record: MarketCap) -> None:
        if t_ms <= self.last_ms.get(record.asset, -1):
            return  # not updated since the last round
        self.last_ms[record.asset] = t_ms
        await out.emit(TOPIC, record.asset, record,
                       dedupe_key=f"{SOURCE}:{record.asset}:{t_ms}")


def from_config(data: Mapping[str, Any], where: str) -> CoinGeckoSource:
    """Build a ``coingecko`` source from its ``sources[i]`` mapping."""
    cfg = SourceConfig(data, where)
    name = cfg.source_name()
    plan = cfg.text("plan", "public", choices=tuple(PLANS))
    api_key = cfg.secret("api_key_env", required=plan != "public")
    if plan == "public" and api_key:
        raise ConfigError(f"{cfg.field('plan')}: a key is set; use plan demo or pro with it")
    source = CoinGeckoSource(
        name, plan=plan, api_key=api_key,
        coins=cfg.integer("coins", 100, minimum=0, maximum=5000),
        interval_s=cfg.number("interval_seconds", 300.0, minimum=60),
        api_url=optional_url(cfg, "rest_url"))
    cfg.finish()
    return source
