"""What every live source shares: its counters, the emitter it writes to, backoff, watchdog.

A ``Source`` runs forever: it connects, normalises what it receives into records and hands
them to an ``Emitter`` (the Kafka sink in production, ``MemoryEmitter`` in unit tests), and
reconnects on its own when the connection fails or goes silent. It raises only for
configuration errors. ``SourceConfig`` reads one ``sources[i]`` mapping of the YAML file so
that every error names its field.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import random
import re
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, Protocol, TypeVar

from foundation.errors import ConfigError, SourceError
from schemas.decode import MAX_FUTURE_SECONDS, iso_utc, shown
from schemas.records import Event

log = logging.getLogger(__name__)
#: the live producer's status lines (its periodic one, a source's backfill summary), shown
#: whatever the log level
status_log = logging.getLogger("producers.live.status")
status_log.setLevel(logging.INFO)

T = TypeVar("T")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: distinct malformed reasons logged per source; later ones are only counted
MAX_MALFORMED_REASONS = 1000
#: the longest text a source copies from what it receives into a record (a symbol, a trade
#: id): a hostile frame must not make a record too large for Kafka, which would refuse it
MAX_TEXT_CHARS = 200


@dataclass
class SourceStats:
    """Counters of one source, logged in the status line; only ever increase."""

    #: frames or responses received (before parsing)
    messages: int = 0
    #: records acknowledged by Kafka
    produced: int = 0
    #: records not emitted because their dedupe key was seen already
    duplicates: int = 0
    #: frames that could not be parsed (skipped, logged once per reason)
    malformed: int = 0
    #: connections lost (error, close or silence) and opened again
    reconnects: int = 0
    #: holes detected in a sequence (trade ids), on the stream or after a reconnect
    gaps: int = 0
    #: records recovered over REST to fill gaps
    backfilled: int = 0
    #: HTTP 429/418 (or an exchange's equivalent) answers honoured
    rate_limited: int = 0
    #: times an emit had to wait because the queue to Kafka was full
    backpressure_waits: int = 0
    #: records lost; always 0: a full queue blocks the source, a failed send is retried
    dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class Emitter(Protocol):
    """Where a source puts its records: ``topic`` is unprefixed ("ticks")."""

    async def emit(self, topic: str, key: str, record: Event,
                   dedupe_key: str | None = None) -> bool:
        """Queue a record for ``topic``; False (a duplicate) if ``dedupe_key`` was seen recently.

        Blocks while the queue to Kafka is full (backpressure), never drops.
        """
        ...


class Source(ABC):
    """A live input: runs forever, reconnects on its own, raises only for config errors."""

    name: str
    stats: SourceStats

    def __init__(self, name: str) -> None:
        self.name = name
        self.stats = SourceStats()
        self._malformed_reasons: set[str] = set()

    @abstractmethod
    async def run(self, out: Emitter) -> None:
        """Produce into ``out`` until cancelled."""

    def malformed(self, reason: str, detail: object = "") -> None:
        """Count a frame that could not be used; log each distinct reason once (the first
        MAX_MALFORMED_REASONS of them: a reason may quote a value, and hostile input must not
        grow this set or the log without bound)."""
        self.stats.malformed += 1
        reason = reason[:200]
        if reason not in self._malformed_reasons \
                and len(self._malformed_reasons) < MAX_MALFORMED_REASONS:
            self._malformed_reasons.add(reason)
            log.warning("%s: skipping malformed message (%s) %.200s (logged once per reason)",
                        self.name, reason, detail)


class RecentKeys:
    """The last ``size`` dedupe keys (least recently seen forgotten first): bounded memory."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self.size = size
        self._keys: OrderedDict[str, None] = OrderedDict()

    def add(self, key: str) -> bool:
        """Remember ``key``; False if it was already remembered."""
        if key in self._keys:
            self._keys.move_to_end(key)
            return False
        self._keys[key] = None
        if len(self._keys) > self.size:
            self._keys.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._keys)


class MemoryEmitter:
    """An Emitter that keeps records in a list: unit tests and dry runs."""

    def __init__(self, stats: SourceStats | None = None, dedupe_size: int = 100_000) -> None:
        self.stats = stats or SourceStats()
        self.records: list[tuple[str, str, Event]] = []
        self._recent = RecentKeys(dedupe_size)

    async def emit(self, topic: str, key: str, record: Event,
                   dedupe_key: str | None = None) -> bool:
        if dedupe_key is not None and not self._recent.add(dedupe_key):
            self.stats.duplicates += 1
            return False
        self.records.append((topic, key, record))
        self.stats.produced += 1
        return True


# -- reconnection ---------------------------------------------------------------------------

def backoff_delays(base: float, cap: float, rng: random.Random | None = None) -> Iterator[float]:
    """Endless delays: uniform in [0, min(cap, base * 2**attempt)] ("full jitter").

    Jitter spreads the reconnections of many clients after a shared outage; start a new
    iterator (``Backoff.reset``) once a connection has worked.
    """
    if base <= 0 or cap < base:
        raise ValueError(f"backoff needs 0 < base <= cap (base={base}, cap={cap})")
    rng = rng or random.Random()
    attempt = 0
    while True:
        yield rng.uniform(0.0, min(cap, base * 2.0 ** attempt))
        attempt = min(attempt + 1, 60)


class Backoff:
    """Delays between reconnection attempts; ``reset()`` after a connection that worked."""

    def __init__(self, base: float = 0.5, cap: float = 30.0,
                 rng: random.Random | None = None) -> None:
        self.base, self.cap, self._rng = base, cap, rng
        self._delays = backoff_delays(base, cap, rng)

    def next_delay(self) -> float:
        return next(self._delays)

    def reset(self) -> None:
        self._delays = backoff_delays(self.base, self.cap, self._rng)

    async def sleep(self) -> float:
        delay = self.next_delay()
        await asyncio.sleep(delay)
        return delay


class StaleConnection(SourceError):
    """A connection received nothing for its watchdog period: close it and reconnect."""


async def watchdog(awaitable: Awaitable[T], seconds: float, what: str) -> T:
    """Await ``awaitable`` (e.g. ``ws.recv()``); StaleConnection if it takes ``seconds``."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        raise StaleConnection(f"{what}: nothing received for {seconds:g} s") from None


async def watched(frames: AsyncIterable[T], seconds: float, what: str) -> AsyncIterator[T]:
    """Iterate ``frames`` (e.g. a websocket), raising StaleConnection after ``seconds`` of
    silence: a half-open TCP connection looks exactly like a quiet market otherwise."""
    iterator = aiter(frames)
    while True:
        try:
            item = await watchdog(anext(iterator), seconds, what)
        except StopAsyncIteration:
            return
        yield item


async def reconnect_forever(source: Source, connect_once: Callable[[], Awaitable[None]],
                            backoff: Backoff) -> NoReturn:
    """Run ``connect_once`` again and again; each end or error counts a reconnect and waits.

    ``connect_once`` calls ``backoff.reset()`` once its connection works (e.g. after the first
    frame), so a long-lived connection that drops reconnects quickly. Config errors and
    cancellation propagate; anything else is logged and retried.
    """
    while True:
        try:
            await connect_once()
            reason = "connection closed"
        except (ConfigError, asyncio.CancelledError):
            raise
        except (OSError, SourceError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
        except Exception as exc:
            log.debug("%s: connection failed", source.name, exc_info=True)
            reason = f"{type(exc).__name__}: {exc}"
        source.stats.reconnects += 1
        delay = backoff.next_delay()
        log.warning("%s: %s; reconnecting in %.1f s", source.name, reason, delay)
        await asyncio.sleep(delay)


# -- what sources receive ------------------------------------------------------------------

class MalformedInput(ValueError):
    """Input from outside (a frame, a REST row, a CSV line) that cannot be used: its source
    counts it as malformed. ``reason`` names the field, shows the value and says what was
    expected."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def number(value: Any, field: str, *, minimum: float | None = None,
           maximum: float | None = None, positive: bool = False) -> float:
    """``value`` (a number, or its text as exchanges send it) as a finite float within the
    bounds (``positive``: > 0); MalformedInput naming ``field`` otherwise. True and False are
    not numbers."""
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError
        result = float(value)
    except (ValueError, OverflowError):  # OverflowError: an integer beyond any float
        result = math.nan
    if not math.isfinite(result):
        expected = "a finite number"
    elif positive and result <= 0:
        expected = "> 0"
    elif minimum is not None and result < minimum:
        expected = f">= {minimum:g}"
    elif maximum is not None and result > maximum:
        expected = f"<= {maximum:g}"
    else:
        return result
    if value is None:
        raise MalformedInput(f"{field}: missing, must be {expected}")
    raise MalformedInput(f"{field}: {shown(value)} must be {expected}")


def optional_number(value: Any, field: str, *, minimum: float | None = None,
                    maximum: float | None = None, positive: bool = False) -> float | None:
    """None for a missing value (None or ""), else ``number``: a bad value is malformed."""
    if value is None or value == "":
        return None
    return number(value, field, minimum=minimum, maximum=maximum, positive=positive)


def number_if_usable(value: Any, field: str, *, minimum: float | None = None,
                     maximum: float | None = None, positive: bool = False) -> float | None:
    """``number``, or None when the value is missing or unusable: for an extra field (a
    volume, a mark price) whose bad value must not cost the record it comes with."""
    try:
        return number(value, field, minimum=minimum, maximum=maximum, positive=positive)
    except MalformedInput:
        return None


def iso_from_ms(epoch_ms: int | float) -> str:
    """Exchange epoch milliseconds as the topics' ISO 8601 UTC form (exact, no float drift)."""
    return iso_utc(EPOCH + timedelta(milliseconds=int(epoch_ms)))


def plausible_ms(epoch_ms: int, what: str) -> int:
    """``epoch_ms`` if a source may stamp an event with it: not before 1970 and at most
    ``MAX_FUTURE_SECONDS`` after the wall clock; ValueError naming ``what`` otherwise.

    A later time would be dead-lettered by the worker anyway, and would hold back the source's
    own "newer than the last emitted" checks until then (a row dated 2100 would silence its
    series); an earlier one is no exchange's clock, and may not even be a date.
    """
    latest = int(time.time() * 1000) + MAX_FUTURE_SECONDS * 1000
    if not 0 <= epoch_ms <= latest:
        raise ValueError(f"{what} {shown(epoch_ms)} is not a plausible time in epoch ms "
                         f"(1970 .. {MAX_FUTURE_SECONDS // 3600} h from now)")
    return epoch_ms


def epoch_ms(value: Any, what: str, unit_ms: int = 1) -> int:
    """``int(value) * unit_ms`` (a number or its text, in units of ``unit_ms``: 1000 for
    epoch seconds), checked by ``plausible_ms``; ValueError naming ``what`` otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{what} {value!r} is not a time")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{what} {shown(value)} is not a time in epoch "
                         f"{'ms' if unit_ms == 1 else 's'}") from None
    return plausible_ms(number * unit_ms, what)


# -- configuration --------------------------------------------------------------------------

_REQUIRED: Any = object()
#: field names that would hold a credential: only ``<name>_env`` (a variable NAME) is allowed
_SECRET_FIELD = re.compile(r"(^|_)(api_?key|key|secret|password|passphrase|token)s?($|_)")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SourceConfig:
    """Typed reads of one ``sources[i]`` mapping; every error names the field.

    Read each field once, then call ``finish()``: fields never read are unknown, an error.
    """

    def __init__(self, data: Mapping[str, Any], where: str,
                 env: Mapping[str, str] | None = None) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: must be a mapping with at least type and name")
        self.where = where
        self._data = dict(data)
        self._env = os.environ if env is None else env
        self._read: set[str] = set()
        for key in self._data:
            if not isinstance(key, str):
                raise ConfigError(f"{where}: field names must be text, got {key!r}")
            words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).lower()  # apiKey: api_key
            if _SECRET_FIELD.search(words) and not key.endswith("_env"):
                raise ConfigError(
                    f"{self.field(key)}: secrets never go in the config file; put the value in "
                    f"an environment variable and give its name as {key}_env"
                )

    def field(self, key: str) -> str:
        return f"{self.where}.{key}"

    def source_name(self) -> str:
        """The ``name`` every source has; its ``type`` (which chose the factory) is read too."""
        self.text("type")
        return self.text("name")

    def _get(self, key: str, default: Any) -> Any:
        self._read.add(key)
        if key in self._data and self._data[key] is not None:
            return self._data[key]
        if default is _REQUIRED:
            raise ConfigError(f"{self.field(key)}: required")
        return default

    def text(self, key: str, default: Any = _REQUIRED,
             choices: tuple[str, ...] | None = None) -> str:
        value = self._get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{self.field(key)}: {value!r} must be non-empty text")
        if choices is not None and value not in choices:
            raise ConfigError(f"{self.field(key)}: {value!r} is not one of {', '.join(choices)}")
        return value

    def optional_text(self, key: str, choices: tuple[str, ...] | None = None) -> str | None:
        if self._get(key, None) is None:
            return None
        return self.text(key, choices=choices)

    def texts(self, key: str, default: Any = _REQUIRED) -> list[str]:
        """A non-empty list of distinct non-empty strings."""
        value = self._get(key, default)
        if not isinstance(value, list | tuple) or not value:
            raise ConfigError(f"{self.field(key)}: must be a non-empty list")
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise ConfigError(f"{self.field(key)}[{i}]: {item!r} must be non-empty text")
        duplicates = sorted({item for item in value if list(value).count(item) > 1})
        if duplicates:
            raise ConfigError(f"{self.field(key)}: listed twice: {', '.join(duplicates)}")
        return list(value)

    def integer(self, key: str, default: Any = _REQUIRED, minimum: int | None = None,
                maximum: int | None = None) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.field(key)}: {value!r} is not an integer")
        self.number(key, default, minimum, maximum)
        return value

    def number(self, key: str, default: Any = _REQUIRED, minimum: float | None = None,
               maximum: float | None = None) -> float:
        """A YAML number (text is refused: ``"5"`` is a quoting mistake) within the bounds."""
        value = self._get(key, default)
        if isinstance(value, str):
            raise ConfigError(f"{self.field(key)}: {value!r} is not a number")
        try:
            return number(value, self.field(key), minimum=minimum, maximum=maximum)
        except MalformedInput as exc:
            raise ConfigError(exc.reason) from None

    def flag(self, key: str, default: Any = _REQUIRED) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.field(key)}: {value!r} must be true or false")
        return value

    def url(self, key: str, default: Any = _REQUIRED,
            schemes: tuple[str, ...] = ("https://", "http://")) -> str:
        value = self.text(key, default)
        if not value.startswith(schemes):
            raise ConfigError(f"{self.field(key)}: {value!r} must start with "
                              f"{' or '.join(schemes)}")
        return value.rstrip("/")

    def mapping(self, key: str, default: Any = _REQUIRED) -> dict[str, Any]:
        value = self._get(key, default)
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise ConfigError(f"{self.field(key)}: must be a mapping")
        return dict(value)

    def secret(self, key: str, required: bool = False) -> str | None:
        """The value of the environment variable NAMED by ``key`` (e.g. ``api_key_env``).

        The value itself is never logged nor put in an error message.
        """
        if not key.endswith("_env"):
            raise ValueError("secret fields are named <something>_env")
        name = self._get(key, _REQUIRED if required else None)
        if name is None:
            return None
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise ConfigError(f"{self.field(key)}: must be the NAME of an environment variable "
                              "(e.g. FINNHUB_KEY), not the secret itself")
        value = self._env.get(name)
        if not value:
            raise ConfigError(f"{self.field(key)}: environment variable {name} is not set")
        return value

    def finish(self) -> None:
        """Fail on any field that was never read: a typo must not be silently ignored."""
        unknown = sorted(set(self._data) - self._read)
        if unknown:
            raise ConfigError(f"{self.field(unknown[0])}: unknown field "
                              f"(known: {', '.join(sorted(self._read))})")
