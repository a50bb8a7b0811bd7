"""The REST-polled live sources without a network: scheduling, Retry-After and weight rules,
and each normaliser on real rows (the bundled Binance and OKX long/short data) or on the
response examples of the providers' documentation."""

from __future__ import annotations

import csv
import random
import re
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import ccxt
import pytest

from foundation.errors import ConfigError
from producers.live.coingecko import coin_market_cap, total_market_cap
from producers.live.coingecko import from_config as coingecko_from_config
from producers.live.derivatives import funding_record, open_interest_record
from producers.live.http import (
    PERIOD_MS,
    header,
    next_boundary,
    retry_after_seconds,
    weight_pause_seconds,
)
from producers.live.index_quotes import (
    chart_bars,
    daily_closes,
    finnhub_from_config,
    minute_closes,
    session_close_ms,
    yahoo_from_config,
)
from producers.live.longshort import (
    binance_account_row,
    binance_taker_row,
    bitget_row,
    bybit_row,
    okx_row,
    override_api_urls,
)
from producers.live.longshort import from_config as longshort_from_config
from producers.live.netflows import (
    cryptoquant_from_config,
    cryptoquant_totals,
    csv_flow,
    parse_window_start,
)
from producers.live.registry import SOURCE_TYPES
from schemas.decode import decode_event
from schemas.records import Event

ROOT = Path(__file__).resolve().parents[2]
BINANCE_CSV = ROOT / "data" / "replay" / "binance_btcusdt_global_long_short_30m.csv"
OKX_CSV = ROOT / "data" / "replay" / "okx_sol_usdt_swap_long_short_1h.csv"


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def valid(record: Event) -> None:
    """The record passes the topic validator the worker applies."""
    assert decode_event(type(record), record.dumps()) == record


# -- scheduling and politeness --------------------------------------------------------------

@pytest.mark.parametrize("period", sorted(PERIOD_MS))
def test_next_boundary_is_the_next_utc_aligned_multiple(period: str) -> None:
    step = PERIOD_MS[period]
    rng = random.Random(7)
    for _ in range(500):
        now = rng.randrange(ms("2024-01-01 00:00:00"), ms("2026-01-01 00:00:00"))
        b = next_boundary(now, step)
        assert b % step == 0 and now < b <= now + step
    # exactly on a boundary: the next one, never the same instant (no double poll)
    assert next_boundary(ms("2024-09-01 00:00:00"), step) == ms("2024-09-01 00:00:00") + step
    assert next_boundary(ms("2024-09-01 23:59:59"), PERIOD_MS["1d"]) == ms("2024-09-02 00:00:00")
    assert next_boundary(ms("2024-09-01 10:07:00"), PERIOD_MS["4h"]) == ms("2024-09-01 12:00:00")


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    now = datetime(2024, 9, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(" 0.5 ") == 0.5
    assert retry_after_seconds("-3") == 0.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=90), usegmt=True),
                               now) == 90.0
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=90), usegmt=True),
                               now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("") is None
    assert retry_after_seconds(None) is None


def test_binance_weight_header_slows_down_only_near_the_limit() -> None:
    now = ms("2024-09-01 12:00:42")
    assert weight_pause_seconds({"X-MBX-USED-WEIGHT-1M": "1919"}, 2400, now) == 0.0
    # 80 % used: wait for the next minute (18 s away) and a second more
    assert weight_pause_seconds({"x-mbx-used-weight-1m": "1920"}, 2400, now) == 19.0
    assert weight_pause_seconds({"X-MBX-USED-WEIGHT-1M": "2399"}, 2400, now) == 19.0
    assert weight_pause_seconds({}, 2400, now) == 0.0
    assert weight_pause_seconds({"X-MBX-USED-WEIGHT-1M": "n/a"}, 2400, now) == 0.0
    assert header({"Retry-After": "3"}, "retry-after") == "3"


def test_api_url_override_keeps_each_endpoint_path() -> None:
    binance = ccxt.binanceusdm().urls["api"]
    local = override_api_urls(binance, "http://127.0.0.1:8080/")
    assert local["fapiData"] == "http://127.0.0.1:8080/futures/data"
    assert local["fapiPublic"] == "http://127.0.0.1:8080/fapi/v1"
    assert all(url.startswith("http://127.0.0.1:8080") for url in local.values()
               if isinstance(url, str))
    assert override_api_urls(ccxt.okx().urls["api"], "http://h:1") == {"rest": "http://h:1"}


# -- long/short normalisers ------------------------------------------------------------------

def binance_rows() -> list[dict[str, Any]]:
    with BINANCE_CSV.open(newline="") as fh:
        return [{"symbol": r["symbol"], "longShortRatio": r["longShortRatio"],
                 "longAccount": r["longAccount"], "shortAccount": r["shortAccount"],
                 "timestamp": str(ms(r["timestamp"]))} for r in csv.DictReader(fh)]


def test_binance_account_rows_real_data() -> None:
    rows = binance_rows()
    assert len(rows) == 1482
    for row in rows:
        out = binance_account_row(row)
        assert out.t_ms == int(row["timestamp"])
        assert out.long_share == float(row["longAccount"])
        assert out.short_share == float(row["shortAccount"])
        assert out.ratio == float(row["longShortRatio"])
        # Binance rounds each to 4 decimals: the shares add up and the ratio is their quotient
        assert abs(out.long_share + out.short_share - 1) <= 2e-4
        assert abs(out.ratio - out.long_share / out.short_share) <= 2e-3 * out.ratio


def test_binance_top_position_and_taker_rows_from_the_docs() -> None:
    # USD-M topLongShortPositionRatio example; COIN-M names its shares longPosition/shortPosition
    usdm = binance_account_row({"symbol": "BTCUSDT", "longShortRatio": "1.4342",
                                "longAccount": "0.5891", "shortAccount": "0.4108",
                                "timestamp": "1583139600000"})
    assert (usdm.t_ms, usdm.long_share, usdm.short_share, usdm.ratio) == (
        1583139600000, 0.5891, 0.4108, 1.4342)
    coinm = binance_account_row({"pair": "BTCUSD", "longShortRatio": "0.7869",
                                 "longPosition": "0.6442", "shortPosition": "0.4404",
                                 "timestamp": 1592870400000})
    assert (coinm.long_share, coinm.short_share) == (0.6442, 0.4404)
    taker = binance_taker_row({"buySellRatio": "1.5586", "buyVol": "387.3300",
                               "sellVol": "248.5030", "timestamp": "1585614900000"})
    assert taker.long_share == pytest.approx(387.33 / (387.33 + 248.503), rel=1e-12)
    assert taker.short_share == pytest.approx(248.503 / (387.33 + 248.503), rel=1e-12)
    assert taker.ratio == 1.5586 and taker.t_ms == 1585614900000


@pytest.mark.parametrize("row, parse, reason", [
    ({"longShortRatio": "1", "longAccount": "1.2", "shortAccount": "0.1", "timestamp": 1},
     binance_account_row, "longAccount"),
    ({"longShortRatio": "-1", "longAccount": "0.5", "shortAccount": "0.5", "timestamp": 1},
     binance_account_row, "longShortRatio"),
    ({"buySellRatio": "0", "buyVol": "0", "sellVol": "0", "timestamp": 1},
     binance_taker_row, "buyVol"),
    ({"buySellRatio": "1", "buyVol": "nan", "sellVol": "1", "timestamp": 1},
     binance_taker_row, "buyVol"),
    ({"symbol": "BTCUSDT", "buyRatio": "0.5", "sellRatio": "0", "timestamp": "1"},
     bybit_row, "sellRatio"),
    ({"timestamp": "1", "longShortRatio": "inf"}, okx_row, "longShortRatio"),
])
def test_unusable_rows_are_rejected_with_the_reason(row: dict[str, Any], parse: Any,
                                                     reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse(row)
    with pytest.raises(KeyError):
        parse({})


def test_bybit_okx_bitget_rows() -> None:
    bybit = bybit_row({"symbol": "BTCUSDT", "buyRatio": "0.5707", "sellRatio": "0.4293",
                       "timestamp": "1729123200000"})
    assert (bybit.long_share, bybit.short_share) == (0.5707, 0.4293)
    assert bybit.ratio == pytest.approx(0.5707 / 0.4293)
    bitget = bitget_row({"longAccountRatio": "0.58", "shortAccountRatio": "0.42",
                         "longShortAccountRatio": "1.38", "ts": "1729312200000"})
    assert (bitget.t_ms, bitget.long_share, bitget.ratio) == (1729312200000, 0.58,
                                                              pytest.approx(0.58 / 0.42))
    # OKX publishes only the ratio (real SOL-USDT-SWAP rows): the shares follow from it
    with OKX_CSV.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 625
    for r in rows:
        out = okx_row({"timestamp": r["ts"], "longShortRatio": r["ratio"]})
        ratio = float(r["ratio"])
        assert out.ratio == ratio and out.t_ms == int(r["ts"])
        assert out.long_share + out.short_share == pytest.approx(1)
        assert out.long_share / out.short_share == pytest.approx(ratio)


def test_okx_rows_through_ccxt_parse_keep_what_okx_row_reads() -> None:
    okx = ccxt.okx()
    market = {"symbol": "SOL/USDT:USDT", "id": "SOL-USDT-SWAP"}
    parsed = okx.parse_long_short_ratio({"timestamp": "1780239600000",
                                         "longShortRatio": "3.44"}, market)
    assert okx_row(parsed["info"]).ratio == 3.44


# -- funding rate and open interest ----------------------------------------------------------

def test_funding_and_open_interest_from_binance_documented_payloads_via_ccxt() -> None:
    binance = ccxt.binanceusdm()
    unified = binance.parse_funding_rate({
        "symbol": "BTCUSDT", "markPrice": "11793.63104562", "indexPrice": "11781.80495970",
        "estimatedSettlePrice": "11781.16138815", "lastFundingRate": "0.00038246",
        "interestRate": "0.00010000", "nextFundingTime": 1597392000000,
        "time": 1597370495002})
    t_ms, funding = funding_record("binance", "BTC/USDT:USDT", unified, now_ms=0)
    assert t_ms == 1597370495002
    assert funding.funding_rate == 0.00038246 and funding.mark_price == 11793.63104562
    assert funding.index_price == 11781.8049597
    assert funding.next_funding_time == "2020-08-14T08:00:00.000Z"
    assert funding.event_time == "2020-08-14T02:01:35.002Z"
    valid(funding)
    unified = binance.parse_open_interest({"openInterest": "10659.509", "symbol": "BTCUSDT",
                                           "time": 1589437530011})
    t_ms, interest = open_interest_record("binance", "BTC/USDT:USDT", unified, now_ms=0)
    assert (t_ms, interest.open_interest, interest.open_interest_value) == (
        1589437530011, 10659.509, None)
    valid(interest)
    with pytest.raises(ValueError, match="fundingRate"):
        funding_record("binance", "BTC/USDT:USDT", {"fundingRate": None}, now_ms=0)
    with pytest.raises(ValueError, match="openInterestAmount"):
        open_interest_record("binance", "BTC/USDT:USDT", {"openInterestAmount": "-1"}, 0)


# -- CoinGecko -------------------------------------------------------------------------------

def test_coingecko_global_and_coins_from_the_documented_shapes() -> None:
    t_ms, total = total_market_cap({"data": {
        "active_cryptocurrencies": 13690, "markets": 1046,
        "total_market_cap": {"btc": 39003738.08, "usd": 2721226850772.63},
        "total_volume": {"usd": 69556505941.52}, "market_cap_percentage": {"btc": 50.4},
        "market_cap_change_percentage_24h_usd": 1.72, "updated_at": 1712512855}})
    assert t_ms == 1712512855000 and total.asset == "TOTAL"
    assert total.market_cap == 2721226850772.63 and total.volume_24h == 69556505941.52
    valid(total)
    t_ms, btc = coin_market_cap({"id": "bitcoin", "symbol": "btc", "market_cap": 1381651251183,
                                 "market_cap_rank": 1, "total_volume": 20154184933,
                                 "last_updated": "2024-04-07T16:49:31.736Z"})
    assert (btc.asset, btc.rank, btc.market_cap, btc.volume_24h) == (
        "BTC", 1, 1381651251183.0, 20154184933.0)
    assert btc.event_time == "2024-04-07T16:49:31.736Z" and t_ms == ms("2024-04-07 16:49:31.736")
    valid(btc)
    bad_items: list[tuple[dict[str, Any], str]] = [
        ({"symbol": "usd₮0"}, "letters"),
        ({"symbol": "abc", "market_cap": None}, "ABC market_cap: missing, must be a finite"),
        ({"symbol": "abc", "market_cap": 0}, "ABC market_cap: 0 must be > 0")]
    for bad, why in bad_items:
        with pytest.raises(ValueError, match=why):
            coin_market_cap({"last_updated": "2024-04-07T16:49:31.736Z", **bad})


# -- Yahoo chart -----------------------------------------------------------------------------

def chart(symbol: str, stamps: list[int], closes: list[float | None]) -> dict[str, Any]:
    return {"chart": {"result": [{
        "meta": {"symbol": symbol, "exchangeTimezoneName": "America/New_York",
                 "regularMarketPrice": closes[-1]},
        "timestamp": stamps,
        "indicators": {"quote": [{"close": closes, "open": closes}]}}], "error": None}}


def test_yahoo_daily_closes_are_stamped_at_the_new_york_close_once_final() -> None:
    # session bars start 09:30 New York: EDT (UTC-4) in September, EST (UTC-5) in January
    stamps = [ms("2025-09-17 13:30:00") // 1000, ms("2025-09-18 13:30:00") // 1000,
              ms("2025-09-19 13:30:00") // 1000]
    zone, bars = chart_bars(chart("^RUT", stamps, [2411.2, 2467.7, None]))
    assert bars == [(stamps[0] * 1000, 2411.2), (stamps[1] * 1000, 2467.7)]
    # 2025-09-18 16:14 New York: that session is not final yet
    closes = daily_closes(zone, bars, ms("2025-09-18 20:14:00"))
    assert closes == [(ms("2025-09-17 20:00:00"), 2411.2)]
    closes = daily_closes(zone, bars, ms("2025-09-18 20:15:00"))
    assert closes[-1] == (ms("2025-09-18 20:00:00"), 2467.7)
    assert session_close_ms(date(2026, 1, 14)) == ms("2026-01-14 21:00:00")
    # one-minute bars: only finished ones, stamped at their end
    t0 = ms("2025-09-18 14:00:00")
    bars = [(t0, 1.0), (t0 + 60_000, 2.0), (t0 + 120_000, 3.0)]
    assert minute_closes(bars, t0 + 150_000) == [(t0 + 60_000, 1.0), (t0 + 120_000, 2.0)]
    with pytest.raises(ValueError, match="no result"):
        chart_bars({"chart": {"result": None, "error": {"code": "Not Found"}}})


# -- CryptoQuant and CSV ---------------------------------------------------------------------

def test_cryptoquant_totals_day_and_hour_windows() -> None:
    day = {"status": {"code": 200, "message": "success"}, "result": {"window": "day", "data": [
        {"date": "2019-10-02", "inflow_total": 12345.6, "inflow_top10": 1.0},
        {"date": "2019-10-01", "inflow_total": None}]}}
    assert cryptoquant_totals(day, "inflow") == {ms("2019-10-02 00:00:00"): 12345.6}
    hour = {"status": {"code": 200}, "result": {"window": "hour", "data": [
        {"date": "2019-10-01", "datetime": "2019-10-01 10:00:00", "outflow_total": 3.5}]}}
    assert cryptoquant_totals(hour, "outflow") == {ms("2019-10-01 10:00:00"): 3.5}
    with pytest.raises(KeyError):
        cryptoquant_totals({"status": {"code": 401, "message": "Unauthorized"}}, "inflow")


def test_csv_rows() -> None:
    flow = csv_flow({"time": "2024-03-01", "exchange": "binance", "token": "btc",
                     "window": "day", "inflow": "10.5", "outflow": "12"})
    record = flow.record()
    assert (record.exchange, record.token, record.window) == ("binance", "BTC", "1d")
    assert record.event_time == "2024-03-01T23:59:59.999Z" and record.netflow == -1.5
    valid(record)
    hourly = csv_flow({"time": "2024-03-01T13:00:00Z", "exchange": "okx", "token": "ETH",
                       "window": "1h", "inflow": "1", "outflow": "0"}).record()
    assert hourly.event_time == "2024-03-01T13:59:59.999Z"
    assert parse_window_start("2024-03-01 13:00:00") == parse_window_start("2024-03-01T14:00+01:00")
    for bad, why in [({"window": "1w"}, "window"), ({"inflow": "-1"}, "inflow"),
                     ({"token": "B-T"}, "token"), ({"time": "yesterday"}, "Invalid")]:
        row = {"time": "2024-03-01", "exchange": "binance", "token": "btc", "window": "1d",
               "inflow": "1", "outflow": "1", **bad}
        with pytest.raises(ValueError, match=why):
            csv_flow(row)


# -- configuration ---------------------------------------------------------------------------

def test_every_source_type_of_this_module_is_registered() -> None:
    for kind in ("long_short_ratio", "funding_rate", "open_interest", "coingecko",
                 "yahoo_chart", "finnhub", "cryptoquant", "netflow_csv"):
        assert kind in SOURCE_TYPES


@pytest.mark.parametrize("factory, data, field", [
    (longshort_from_config, {"exchange": "bybit", "symbols": ["BTC/USDT:USDT"],
                             "variants": ["top_account"]}, "sources[3].variants[0]"),
    (longshort_from_config, {"exchange": "bybit", "symbols": ["BTC/USDT:USDT"],
                             "period": "2h"}, "sources[3].period"),
    (longshort_from_config, {"exchange": "kraken", "symbols": ["BTC/USD"]},
     "sources[3].exchange"),
    (longshort_from_config, {"exchange": "binance", "symbols": ["BTC/USDT:USDT"],
                             "page_limit": 501}, "sources[3].page_limit"),
    (longshort_from_config, {"exchange": "binance", "symbols": ["BTC/USDT:USDT"],
                             "perod": "5m"}, "sources[3].perod"),
    (coingecko_from_config, {"plan": "demo"}, "sources[3].api_key_env"),
    (coingecko_from_config, {"plan": "pro", "api_key": "abc"}, "sources[3].api_key"),
    (coingecko_from_config, {"rest_url": "ftp://x"}, "sources[3].rest_url"),
    (yahoo_from_config, {"symbols": ["^IXIC"]}, "sources[3].symbols[0]"),
    (finnhub_from_config, {"symbols": ["IWM"]}, "sources[3].api_key_env"),
    (finnhub_from_config, {"symbols": ["iwm"], "api_key_env": "X"}, "sources[3].symbols[0]"),
    (cryptoquant_from_config, {"asset": "sol", "api_key_env": "X"}, "sources[3].asset"),
])
def test_config_errors_name_the_field(factory: Any, data: dict[str, Any], field: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("X", raising=False)
    with pytest.raises(ConfigError, match="^" + re.escape(field)):
        factory({"type": "t", "name": "n", **data}, "sources[3]")


def test_configs_build_with_their_defaults(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setenv("CG_KEY", "cg-secret")
    monkeypatch.setenv("CQ_KEY", "cq-secret")
    monkeypatch.setenv("FH_KEY", "fh-secret")
    source = longshort_from_config({"type": "long_short_ratio", "name": "ls",
                                    "exchange": "binance", "symbols": ["BTC/USDT:USDT"]}, "s")
    assert (source.period, source.variants, source.page_limit) == ("5m", ["global_account"], 500)
    cg = SOURCE_TYPES["coingecko"]({"type": "coingecko", "name": "cg", "plan": "pro",
                                    "api_key_env": "CG_KEY"}, "s")
    assert cg.base_url == "https://pro-api.coingecko.com/api/v3"  # type: ignore[attr-defined]
    assert cg.key_header == "x-cg-pro-api-key"  # type: ignore[attr-defined]
    fh = SOURCE_TYPES["finnhub"]({"type": "finnhub", "name": "fh", "api_key_env": "FH_KEY"}, "s")
    assert fh.symbols == ["IWM", "SPY"]  # type: ignore[attr-defined]
    cq = SOURCE_TYPES["cryptoquant"]({"type": "cryptoquant", "name": "cq", "asset": "eth",
                                      "api_key_env": "CQ_KEY"}, "s")
    assert cq.exchanges == ["binance"]  # type: ignore[attr-defined]
    path = tmp_path / "flows.csv"
    path.write_text(",".join(["time", "exchange", "token", "window", "inflow", "outflow"]))
    assert SOURCE_TYPES["netflow_csv"]({"type": "netflow_csv", "name": "c",
                                        "path": str(path)}, "s").name == "c"
    with pytest.raises(ConfigError, match="is not a file"):
        SOURCE_TYPES["netflow_csv"]({"type": "netflow_csv", "name": "c",
                                     "path": str(tmp_path / "nope.csv")}, "s")
