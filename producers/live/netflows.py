"""Exchange netflows: CryptoQuant's exchange-flows API (keyed), or a CSV file exported elsewhere.

``cryptoquant`` GETs ``/v1/{asset}/exchange-flows/inflow`` and ``/outflow`` (``exchange=``,
``window=day|hour``, header ``Authorization: Bearer <key>``) and joins ``inflow_total`` and
``outflow_total`` of the same window into one ``ExchangeNetflow`` (netflow = inflow - outflow)
per finished window. On start it fetches the last ``backfill_windows`` windows, then polls
``publish_delay_seconds`` after each window boundary for the windows after the last emitted.

``netflow_csv`` reads a CSV file with the header ``time,exchange,token,window,inflow,outflow``:

- ``time``: start of the window, UTC: ``2024-03-01``, ``2024-03-01T13:00:00Z`` or
  ``2024-03-01 13:00:00`` (no offset = UTC);
- ``exchange``: e.g. ``binance``; ``token``: e.g. ``BTC`` (upper-cased);
- ``window``: ``1d`` or ``1h`` (``day``, ``hour`` accepted);
- ``inflow``, ``outflow``: token amounts >= 0.

It emits every row, then re-reads the file every ``poll_seconds`` and emits rows appended since
(rows of a series must be in time order: one older than the last emitted is ignored).

Both stamp a window at its last millisecond (a day's flows at 23:59:59.999, like the replay's
daily closes) and dedupe on ``exchange:token:window:start``.

Config (``type: cryptoquant``)::

    asset: btc                   # btc | eth
    exchanges: [binance]         # CryptoQuant names, or all_exchange, spot_exchange, ...
    window: day                  # day | hour
    api_key_env: CRYPTOQUANT_API_KEY
    backfill_windows: 30
    publish_delay_seconds: 600
    rest_url: https://api.cryptoquant.com/v1

Config (``type: netflow_csv``)::

    path: exports/netflows.csv
    poll_seconds: 60
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from foundation.errors import ConfigError
from producers.live.core import (
    MAX_TEXT_CHARS,
    Emitter,
    Source,
    SourceConfig,
    iso_from_ms,
    number,
    plausible_ms,
    status_log,
)
from producers.live.http import (
    Clock,
    RestClient,
    next_boundary,
    optional_url,
    poll_until_published,
    sleep_until,
)
from schemas.decode import shown
from schemas.records import ExchangeNetflow

log = logging.getLogger(__name__)

TOPIC = "netflows"
#: window names -> (record window, length in ms)
WINDOWS: dict[str, tuple[str, int]] = {
    "day": ("1d", 86_400_000), "1d": ("1d", 86_400_000),
    "hour": ("1h", 3_600_000), "1h": ("1h", 3_600_000),
}
CSV_COLUMNS = ("time", "exchange", "token", "window", "inflow", "outflow")


@dataclass(frozen=True)
class Flow:
    """Inflow and outflow of one token on one exchange over [start, start + window)."""

    exchange: str
    token: str
    window: str
    start_ms: int
    inflow: float
    outflow: float

    def record(self) -> ExchangeNetflow:
        end_ms = self.start_ms + WINDOWS[self.window][1] - 1
        return ExchangeNetflow(exchange=self.exchange, token=self.token,
                               event_time=iso_from_ms(end_ms), window=self.window,
                               inflow=self.inflow, outflow=self.outflow,
                               netflow=self.inflow - self.outflow)

    @property
    def series(self) -> tuple[str, str, str]:
        return self.exchange, self.token, self.window


def parse_window_start(text: str) -> int:
    """A window start (date, or date and time; UTC unless an offset is given) as epoch ms;
    ValueError if it is none, or not a plausible time (see ``plausible_ms``)."""
    if not isinstance(text, str):
        raise ValueError(f"window start {shown(text)} is not text")
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return plausible_ms(int(moment.timestamp() * 1000), "window start")


def cryptoquant_totals(data: Mapping[str, Any], metric: str) -> dict[int, float]:
    """{window start ms: ``<metric>_total``} of an exchange-flows response (rows with a null
    total are left out). ValueError if the response is not a result."""
    result = data["result"]
    totals: dict[int, float] = {}
    for row in result["data"]:
        if not isinstance(row, Mapping):
            raise TypeError(f"data row {shown(row)} is not an object")
        value = row.get(f"{metric}_total")
        if value is None:
            continue
        totals[parse_window_start(row.get("datetime") or row["date"])] = number(
            value, f"{metric}_total", minimum=0)
    return totals


def csv_flow(row: Mapping[str, str]) -> Flow:
    """One CSV row as a Flow; ValueError (or KeyError) says what is wrong with it."""
    for column in CSV_COLUMNS:
        if not isinstance(row[column], str):  # None: the line has fewer columns
            raise ValueError(f"no {column} (a short line?)")
    window = row["window"].strip()
    if window not in WINDOWS:
        raise ValueError(f"window {shown(window)} is not 1d or 1h")
    exchange, token = row["exchange"].strip(), row["token"].strip().upper()
    if not exchange or not token.isalnum() or max(len(exchange), len(token)) > MAX_TEXT_CHARS:
        raise ValueError(f"exchange {shown(exchange)} / token {shown(token)} unusable")
    window, length_ms = WINDOWS[window]
    start_ms = parse_window_start(row["time"])
    plausible_ms(start_ms + length_ms - 1, "window end")  # its event time
    return Flow(exchange, token, window, start_ms, number(row["inflow"], "inflow", minimum=0),
                number(row["outflow"], "outflow", minimum=0))


async def emit_flow(source: Source, out: Emitter, flow: Flow,
                    last_ms: dict[tuple[str, str, str], int], origin: str) -> bool:
    """Emit a flow newer than its series' last; False if it was not newer."""
    if flow.start_ms <= last_ms.get(flow.series, -1):
        return False
    last_ms[flow.series] = flow.start_ms
    await out.emit(TOPIC, f"{flow.exchange}:{flow.token}", flow.record(),
                   dedupe_key=f"{origin}:{flow.exchange}:{flow.token}:{flow.window}:"
                              f"{flow.start_ms}")
    return True


class CryptoQuantSource(Source):
    """Inflow and outflow of one asset on some exchanges, one record per finished window."""

    def __init__(self, name: str, asset: str, exchanges: list[str], api_key: str, *,
                 window: str = "day", backfill_windows: int = 30,
                 publish_delay_s: float = 600.0, publish_retries: int = 3,
                 api_url: str = "https://api.cryptoquant.com/v1",
                 clock: Clock | None = None) -> None:
        super().__init__(name)
        self.asset, self.exchanges, self.api_key = asset, exchanges, api_key
        self.window = window
        self.record_window, self.window_ms = WINDOWS[window]
        self.backfill_windows = backfill_windows
        self.publish_delay_s, self.publish_retries = publish_delay_s, publish_retries
        self.api_url = api_url
        self.clock = clock or Clock()
        self.last_ms: dict[tuple[str, str, str], int] = {}

    async def run(self, out: Emitter) -> None:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        async with RestClient(self.name, self.api_url, self.stats, headers=headers,
                              clock=self.clock, min_interval_s=1.0) as http:
            for exchange in self.exchanges:
                count = await self.catch_up(out, http, exchange)
                self.stats.backfilled += count
                status_log.info("%s: backfilled %d %s windows of %s on %s", self.name, count,
                                self.window, self.asset.upper(), exchange)
            while True:
                boundary = next_boundary(self.clock.now_ms(), self.window_ms)
                await sleep_until(self.clock, boundary + int(self.publish_delay_s * 1000))
                await poll_until_published(
                    self.clock, self.exchanges,
                    lambda exchange: self.catch_up(out, http, exchange),
                    self.publish_retries, self.publish_delay_s)

    async def catch_up(self, out: Emitter, http: RestClient, exchange: str) -> int:
        """Emit the finished windows after the last emitted one (or the backfill)."""
        series = (exchange, self.asset.upper(), self.record_window)
        params: dict[str, str | int] = {"exchange": exchange, "window": self.window}
        last = self.last_ms.get(series)
        if last is None:
            params["limit"] = self.backfill_windows + 1  # the current window may be listed
        else:
            start = datetime.fromtimestamp((last + self.window_ms) / 1000, UTC)
            params["from"] = start.strftime("%Y%m%dT%H%M%S")
            params["limit"] = 1000
        flows = []
        for metric in ("inflow", "outflow"):
            data = await http.get_json(f"/{self.asset}/exchange-flows/{metric}", params)
            try:
                flows.append(cryptoquant_totals(data, metric))
            except (KeyError, TypeError, ValueError) as exc:
                self.malformed(f"{metric}: {exc}", data)
                return 0
        inflows, outflows = flows
        now = self.clock.now_ms()
        # a window not over yet is left out: its totals still grow
        finished = [t for t in sorted(set(inflows) & set(outflows)) if t + self.window_ms <= now]
        if last is None:
            finished = finished[-self.backfill_windows:] if self.backfill_windows else []
        emitted = 0
        for start_ms in finished:
            flow = Flow(exchange, self.asset.upper(), self.record_window, start_ms,
                        inflows[start_ms], outflows[start_ms])
            emitted += await emit_flow(self, out, flow, self.last_ms, "cryptoquant")
        return emitted


class NetflowCsvSource(Source):
    """Flows from a CSV file, then the rows appended to it."""

    def __init__(self, name: str, path: Path, *, poll_s: float = 60.0,
                 clock: Clock | None = None) -> None:
        super().__init__(name)
        self.path, self.poll_s = path, poll_s
        self.clock = clock or Clock()
        self.last_ms: dict[tuple[str, str, str], int] = {}
        self._seen: tuple[float, int] | None = None
        #: data rows already read (a file that shrank was rewritten: read it all again)
        self._rows_read = 0

    async def run(self, out: Emitter) -> None:
        while True:
            await self.read(out)
            await self.clock.sleep(self.poll_s)

    async def read(self, out: Emitter) -> int:
        """Emit the file's rows not emitted yet (if it changed since the last read)."""
        try:
            stat = self.path.stat()
        except OSError as exc:
            log.warning("%s: cannot read %s (%s); trying again in %g s", self.name, self.path,
                        exc.strerror, self.poll_s)
            return 0
        if self._seen == (stat.st_mtime, stat.st_size):
            return 0
        if self._seen is not None and stat.st_size < self._seen[1]:
            self._rows_read = 0
        self._seen = (stat.st_mtime, stat.st_size)
        flows = []
        # bytes that are not UTF-8, or a field over csv's size limit, make that row malformed
        # (not the source stop); a byte order mark (spreadsheet exports) is not a column name
        with self.path.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
            reader = csv.DictReader(fh)
            try:
                fieldnames = reader.fieldnames
            except csv.Error as exc:
                self.malformed(f"header: {exc}", self.path)
                return 0
            missing = [c for c in CSV_COLUMNS if c not in (fieldnames or [])]
            if missing:
                self.malformed(f"header lacks {', '.join(missing)}", fieldnames)
                return 0
            line = 1
            while True:
                row: dict[str, Any] | None = None
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    problem = str(exc)
                line += 1
                if line - 2 < self._rows_read:
                    continue
                self._rows_read += 1
                self.stats.messages += 1
                try:
                    if row is None:
                        raise ValueError(problem)
                    flows.append(csv_flow(row))
                except (KeyError, TypeError, ValueError) as exc:
                    self.malformed(f"row: {exc}", f"{self.path}:{line}: {row}")
        emitted = 0
        for flow in sorted(flows, key=lambda f: (f.start_ms, f.exchange, f.token)):
            emitted += await emit_flow(self, out, flow, self.last_ms, "csv")
        return emitted


def cryptoquant_from_config(data: Mapping[str, Any], where: str) -> CryptoQuantSource:
    """Build a ``cryptoquant`` source from its ``sources[i]`` mapping."""
    cfg = SourceConfig(data, where)
    name = cfg.source_name()
    asset = cfg.text("asset", "btc", choices=("btc", "eth"))
    exchanges = cfg.texts("exchanges", ["binance"])
    window = cfg.text("window", "day", choices=("day", "hour"))
    api_key = cfg.secret("api_key_env", required=True)
    assert api_key is not None
    source = CryptoQuantSource(
        name, asset, exchanges, api_key, window=window,
        backfill_windows=cfg.integer("backfill_windows", 30, minimum=0, maximum=10_000),
        publish_delay_s=cfg.number("publish_delay_seconds", 600.0, minimum=0),
        api_url=optional_url(cfg, "rest_url") or "https://api.cryptoquant.com/v1")
    cfg.finish()
    return source


def csv_from_config(data: Mapping[str, Any], where: str) -> NetflowCsvSource:
    """Build a ``netflow_csv`` source from its ``sources[i]`` mapping."""
    cfg = SourceConfig(data, where)
    name = cfg.source_name()
    path = Path(cfg.text("path"))
    if not path.is_file():
        raise ConfigError(f"{cfg.field('path')}: {str(path)!r} is not a file")
    source = NetflowCsvSource(name, path, poll_s=cfg.number("poll_seconds", 60.0, minimum=1))
    cfg.finish()
    return source
