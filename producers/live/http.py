"""Polite REST polling: retries, Retry-After, Binance's weight header, period-aligned schedules.

``RestClient`` GETs JSON from one API over aiohttp. Network errors, timeouts and 5xx answers
are retried with capped, fully jittered backoff, forever unless ``max_attempts`` is set (a
poller must outlive an exchange's outage); 429 and 418 answers wait what ``Retry-After`` says
and count ``rate_limited``; other 4xx answers are configuration errors (a bad symbol, key or
URL never heals by retrying). When
``weight_limit`` is set the client reads Binance's ``X-MBX-USED-WEIGHT-1M`` and waits for the
next minute once 80 % of the limit is used, before Binance answers 429 (and then 418, a ban).

``call_ccxt`` applies the same policy to a ccxt call, whose exceptions say which case it is.
Time goes through a ``Clock`` so tests can run days of polling in a second.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, TypeVar

import aiohttp

from foundation.errors import ConfigError, SourceError
from producers.live.core import SourceConfig, SourceStats, backoff_delays

log = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K")

#: the periods exchanges publish derivatives statistics on, in milliseconds
PERIOD_MS: dict[str, int] = {
    "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000, "2h": 7_200_000,
    "4h": 14_400_000, "6h": 21_600_000, "12h": 43_200_000, "1d": 86_400_000,
}
MINUTE_MS = 60_000
#: Binance's request-weight budget per minute and IP on USD-M futures (exchangeInfo rateLimits)
BINANCE_FUTURES_WEIGHT_LIMIT = 2400
#: fraction of the weight budget after which requests wait for the next minute
WEIGHT_SLOWDOWN_AT = 0.8
#: answers retried like network errors (timeouts and "too early") rather than config errors
RETRYABLE_4XX = frozenset({408, 425})


class Clock:
    """Wall-clock time and sleeping; tests substitute a virtual clock."""

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


async def sleep_until(clock: Clock, t_ms: int) -> None:
    """Sleep until ``t_ms`` (epoch ms) on ``clock``; at once if it is past."""
    delay_ms = t_ms - clock.now_ms()
    if delay_ms > 0:
        await clock.sleep(delay_ms / 1000)


def next_boundary(now_ms: int, period_ms: int) -> int:
    """The first multiple of ``period_ms`` (since the epoch, so UTC-aligned) after ``now_ms``.

    Exchanges close their 5m..1d statistics on these boundaries: polling just after one gets
    the new row with one request instead of many.
    """
    if period_ms <= 0:
        raise ValueError(f"period_ms must be > 0, got {period_ms}")
    return (now_ms // period_ms + 1) * period_ms


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header's value, whatever the case of its name (ccxt keeps the server's spelling)."""
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds to wait: delta-seconds or an HTTP date; None if unusable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def weight_pause_seconds(headers: Mapping[str, str] | None, limit: int, now_ms: int) -> float:
    """How long to wait before the next request given Binance's used weight this minute.

    Binance counts weight per calendar minute; near the limit, waiting for the next minute is
    the only way not to be answered 429 (and banned with 418 if one keeps going).
    """
    used = header(headers, "X-MBX-USED-WEIGHT-1M")
    try:
        weight = int(used) if used is not None else 0
    except ValueError:
        return 0.0
    if weight < WEIGHT_SLOWDOWN_AT * limit:
        return 0.0
    return (next_boundary(now_ms, MINUTE_MS) - now_ms) / 1000 + 1.0


class RestClient:
    """GET JSON from one REST API politely. ``async with RestClient(...) as http: ...``.

    ``min_interval_s`` spaces requests (keyless APIs allow a few per minute); ``weight_limit``
    enables Binance's weight-based slowdown. Secrets go in ``headers`` and are never logged.
    ``max_attempts``: SourceError after that many failed requests in a row (rate limits not
    counted), for a caller that can do without the answer; None retries forever.
    """

    def __init__(self, name: str, base_url: str, stats: SourceStats, *,
                 headers: Mapping[str, str] | None = None, clock: Clock | None = None,
                 min_interval_s: float = 0.0, weight_limit: int | None = None,
                 backoff_base_s: float = 1.0, backoff_cap_s: float = 60.0,
                 timeout_s: float = 30.0, max_attempts: int | None = None,
                 rng: random.Random | None = None) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.stats = stats
        self.headers = dict(headers or {})
        self.clock = clock or Clock()
        self.min_interval_s = min_interval_s
        self.weight_limit = weight_limit
        self.backoff_base_s, self.backoff_cap_s = backoff_base_s, backoff_cap_s
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self._rng = rng
        self._not_before_ms = 0
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RestClient:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s), headers=self.headers)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get_json(self, path: str, params: Mapping[str, str | int | float] | None = None,
                       ) -> Any:
        """The decoded JSON of ``GET base_url + path``; retries until it gets an answer."""
        if self._session is None:
            raise RuntimeError("RestClient used outside 'async with'")
        url = self.base_url + path
        query = {k: str(v) for k, v in (params or {}).items()}
        delays = backoff_delays(self.backoff_base_s, self.backoff_cap_s, self._rng)
        failures = 0
        while True:
            await sleep_until(self.clock, self._not_before_ms)
            self._not_before_ms = self.clock.now_ms() + int(self.min_interval_s * 1000)
            try:
                async with self._session.get(url, params=query) as response:
                    status, headers = response.status, response.headers
                    body = await response.text(errors="replace")
            except (aiohttp.ClientError, TimeoutError) as exc:
                why = f"GET {path} failed ({exc!r})"
            else:
                self.stats.messages += 1
                if status in (429, 418):  # waiting out a rate limit is no failure
                    self.stats.rate_limited += 1
                    wait = retry_after_seconds(header(headers, "Retry-After"))
                    await self._wait(wait if wait is not None else next(delays),
                                     f"GET {path} rate limited ({status})")
                    continue
                if status >= 500 or status in RETRYABLE_4XX:
                    why = f"GET {path} answered {status}"
                elif status >= 400:
                    raise ConfigError(f"{self.name}: GET {url} answered {status} "
                                      f"({body[:200].strip()!r}); check the source's settings")
                else:
                    try:
                        data = json.loads(body)
                    except ValueError:
                        why = (f"GET {path} answered {status} with no JSON "
                               f"({body[:80].strip()!r})")
                    else:
                        if self.weight_limit is not None:
                            self.slow_down(headers, self.weight_limit)
                        return data
            failures += 1
            if self.max_attempts is not None and failures >= self.max_attempts:
                raise SourceError(f"{self.name}: {why}; gave up after {failures} attempts")
            await self._wait(next(delays), why)

    def slow_down(self, headers: Mapping[str, str] | None, limit: int) -> None:
        """Push the next request past the current minute when Binance's weight is near ``limit``."""
        pause = weight_pause_seconds(headers, limit, self.clock.now_ms())
        if pause > 0:
            log.info("%s: request weight near %d/min; pausing %.0f s", self.name, limit, pause)
            self._not_before_ms = max(self._not_before_ms,
                                      self.clock.now_ms() + int(pause * 1000))

    async def _wait(self, seconds: float, why: str) -> None:
        log.warning("%s: %s; retrying in %.1f s", self.name, why, seconds)
        await self.clock.sleep(seconds)


async def call_ccxt(name: str, call: Callable[[], Awaitable[T]], exchange: Any,
                    stats: SourceStats, clock: Clock, delays: Iterator[float] | None = None,
                    weight_limit: int | None = None) -> T:
    """Await a ccxt call, retrying with RestClient's policy until it returns.

    ccxt raises DDoSProtection (and its subclass RateLimitExceeded) for 429/418, other
    NetworkErrors for timeouts, 5xx and lost connections, OperationFailed or ExchangeError for
    an exchange's own transient error codes; those are retried. Errors in the request itself
    (bad symbol, authentication, unsupported) are configuration errors.
    ``weight_limit``: wait for the next minute when Binance's used weight is near it.
    """
    import ccxt.async_support as ccxt

    delays = delays or backoff_delays(1.0, 60.0)
    while True:
        try:
            result = await call()
        except ccxt.DDoSProtection as exc:
            stats.rate_limited += 1
            wait = retry_after_seconds(header(exchange.last_response_headers, "Retry-After"))
            seconds, why = (wait if wait is not None else next(delays)), f"rate limited ({exc})"
        except (ccxt.BadRequest, ccxt.AuthenticationError, ccxt.PermissionDenied,
                ccxt.NotSupported, ccxt.ArgumentsRequired) as exc:
            raise ConfigError(f"{name}: {exc}; check the source's settings") from None
        except ccxt.BaseError as exc:  # NetworkError, OperationFailed (Binance -1000), ...
            seconds, why = next(delays), f"{type(exc).__name__}: {str(exc)[:200]}"
        else:
            stats.messages += 1
            if weight_limit is not None:
                pause = weight_pause_seconds(exchange.last_response_headers, weight_limit,
                                             clock.now_ms())
                if pause > 0:
                    log.info("%s: request weight near %d/min; pausing %.0f s",
                             name, weight_limit, pause)
                    await clock.sleep(pause)
            return result
        log.warning("%s: %s; retrying in %.1f s", name, why, seconds)
        await clock.sleep(seconds)


async def poll_until_published(clock: Clock, series: list[K],
                               fetch_new: Callable[[K], Awaitable[int]], retries: int,
                               delay_s: float) -> None:
    """Just after a period boundary: fetch each series' new rows (``fetch_new`` says how many
    it emitted), and ask again, ``retries`` times ``delay_s`` apart, for the series that had
    none yet: an API publishes a little after the boundary. A row still missing is fetched at
    the next boundary, so nothing is lost."""
    waiting = list(series)
    for attempt in range(retries + 1):
        if attempt:
            await clock.sleep(delay_s)
        waiting = [key for key in waiting if await fetch_new(key) == 0]
        if not waiting:
            return


def optional_url(cfg: SourceConfig, key: str) -> str | None:
    """An optional http(s) URL field (``rest_url``: tests and proxies), None when absent."""
    return cfg.url(key) if cfg.optional_text(key) is not None else None
