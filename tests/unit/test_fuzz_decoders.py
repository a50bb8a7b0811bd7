"""Hostile input through every decoder and every live parser (hypothesis, derandomized).

Inputs: arbitrary bytes, arbitrary JSON values, and valid-shaped records or exchange payloads
with one field replaced by a wrong type, NaN, an infinity, a negative or zero price, a huge
number or a 1 MB string, an unknown symbol, or a time at year 1, 9999, in 2100, negative or
as text. The properties:

- the worker's decoder (``schemas.decode``) and router (``streams.routing``) return a valid
  record that can be sent on (serialisable, finite, UTF-8, re-keyed into a message far below
  Kafka's 1 MB), or raise SchemaError with a short reason that names the field at fault;
  never any other exception;
- each live parser returns records that satisfy their topic's schema, fit in a message and are
  never dated more than a day ahead (the worker may still refuse a 1970 stamp or a price of
  1e-300: dead-lettered then), or fails the way its source counts as ``malformed``; a whole
  frame or CSV file handled by a source never raises.

Each falsifying input found so far is kept as an explicit ``@example``.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_routing import route_message

from foundation.config import SignalSettings
from foundation.errors import SchemaError
from producers.live import binance_ws, ccxt_ws, coingecko, derivatives, longshort, netflows
from producers.live.core import MalformedInput, MemoryEmitter
from producers.live.index_quotes import (
    FinnhubSource,
    chart_bars,
    daily_closes,
    minute_closes,
)
from schemas.decode import (
    EARLIEST_EVENT_TIME,
    MAX_FUTURE_SECONDS,
    MAX_PAYLOAD_BYTES,
    decode_event,
    iso_utc,
    parse_utc,
)
from schemas.records import (
    Bar,
    CryptoTick,
    CryptoTicker,
    DeadLetter,
    Event,
    ExchangeNetflow,
    FundingRate,
    IndexQuote,
    LongShortRatio,
    MarketCap,
    OpenInterest,
    Signal,
)
from streams.routing import INPUT_RECORDS, decode_input

#: deterministic and bounded: the whole file runs in seconds, the same examples every time
FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=300,
                suppress_health_check=list(HealthCheck))
FEW = settings(FUZZ, max_examples=40)

NOW = datetime.now(UTC)
NOW_MS = int(NOW.timestamp() * 1000)
CONFIG = SignalSettings()
T = "2024-03-04T21:00:00.000Z"
T_MS = 1709586000000
HUGE = "x" * (1 << 20)  # 1 MB
#: a reason travels in a dead letter (next to at most 64 KB of payload): it must stay short
MAX_REASON_CHARS = 1000

# -- hostile values ------------------------------------------------------------------------

TIMES = [
    "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", "1970-01-01T00:00:00Z",
    "1999-12-31T23:59:59.999Z", "2100-01-01T00:00:00Z", "0000-01-01T00:00:00Z",
    iso_utc(NOW + timedelta(days=2)), iso_utc(NOW + timedelta(hours=23)),
    "2024-02-30T00:00:00Z", "2024-03-04T25:00:00Z", "2024-03-04T21:00:00+05:00",
    "2024-03-04T21:00:00-00:00", "2024-03-04T21:00:00+24:00", "2024-03-04T21:00:00",
    "2024-03-04t21:00:00.123456789z", "2024-03-04 21:00:00Z", "-2024-03-04T21:00:00Z",
    "2024-03-04T21:00:00Z\n", "１９７０-01-01T00:00:00Z", "yesterday",
]
EPOCHS: list[Any] = [
    0, -1, 1, -62135596800000, -62135596800001, 253402300799999, 253402300800000, 2**53,
    2**63, -(2**63), 10**30, NOW_MS + 2 * 86_400_000, NOW_MS, T_MS, 1.5, str(T_MS), "1e3",
    4102444800000,  # 2100-01-01
]
NUMBERS: list[Any] = [
    0, -0.0, -1, 1, 0.5, -1.5, 1e308, -1e308, 5e-324, 10**400, -(10**400), 2**63,
    math.nan, math.inf, -math.inf,
]
TEXTS: list[Any] = [
    "", " ", "0", "-1", "NaN", "nan", "inf", "-Infinity", "1e400", "abc", "\ud800", "\x00",
    "ZZZ/ZZZ", "btc-usd", "btc\n", "NOPE", "R UT", "BTC/USD\n", "usd₮0", "a" * 300, HUGE,
]
OTHERS: list[Any] = [None, True, False, [], {}, [1, 2], {"a": {"b": None}}, [[[]]]]
HOSTILE: list[Any] = [*NUMBERS, *TEXTS, *TIMES, *EPOCHS, *OTHERS]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
    st.sampled_from(HOSTILE),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
hostile = st.one_of(st.sampled_from(HOSTILE), json_values)


def dumps(value: Any) -> bytes:
    """JSON as a lenient producer would write it (NaN, Infinity and huge ints included)."""
    return json.dumps(value).encode()


#: raw messages that are no valid event whatever the record: not JSON, not UTF-8, too deep
RAW_SPECIALS: list[bytes] = [
    b"", b" ", b"null", b"{", b"{}", b"[]", b'"text"', b"\xff\xfe\x00", b"\xef\xbb\xbf{}",
    b"[" * 10_000, b'{"a":' * 10_000, b"1" * 5000, b"1e999999", b"NaN", b"-Infinity",
    b'{"price": 1e400}', b"{" + b" " * (MAX_PAYLOAD_BYTES + 1) + b"}",
]
raw_messages = st.one_of(
    st.binary(max_size=200),
    json_values.map(dumps),
    st.sampled_from(RAW_SPECIALS),
)

# -- the worker's decoder and router ---------------------------------------------------------

#: a valid instance of every record with a schema
VALID: dict[type[Event], dict[str, Any]] = {
    CryptoTick: {"exchange": "replay", "symbol": "BTC/USD", "event_time": T, "price": 67000.5,
                 "amount": 0.25, "side": "buy", "trade_id": "2024-03-04", "schema_version": 1},
    CryptoTicker: {"exchange": "binanceusdm", "symbol": "BTC/USDT:USDT", "event_time": T,
                   "kind": "mark", "bid": 1.0, "ask": 2.0, "last": 1.5, "mark_price": 67010.2,
                   "funding_rate": 0.0001, "schema_version": 1},
    IndexQuote: {"symbol": "RUT", "event_time": T, "price": 2075.5, "source": "test",
                 "schema_version": 1},
    MarketCap: {"asset": "SOL", "event_time": T, "market_cap": 2.4e10, "source": "coingecko",
                "rank": 5, "volume_24h": 9.1e9, "schema_version": 1},
    LongShortRatio: {"exchange": "binance", "symbol": "BTC/USDT:USDT", "event_time": T,
                     "period": "1h", "variant": "global_account", "long_share": 0.6,
                     "short_share": 0.4, "ratio": 1.5, "schema_version": 1},
    ExchangeNetflow: {"exchange": "binance", "token": "BTC", "event_time": T, "window": "1d",
                      "inflow": 10.0, "outflow": 12.5, "netflow": -2.5, "schema_version": 1},
    FundingRate: {"exchange": "binance", "symbol": "BTC/USDT:USDT", "event_time": T,
                  "funding_rate": 0.0001, "next_funding_time": T, "interval": "8h",
                  "mark_price": 67010.2, "index_price": 67001.5, "schema_version": 1},
    OpenInterest: {"exchange": "binance", "symbol": "BTC/USDT:USDT", "event_time": T,
                   "open_interest": 81234.5, "open_interest_value": 5.44e9,
                   "schema_version": 1},
    Bar: {"exchange": "binanceusdm", "symbol": "SUSHI/USDT:USDT", "interval": "1m",
          "start": T, "end": T, "open": 7.6, "high": 7.62, "low": 7.6, "close": 7.615,
          "volume": 1234.0, "trades": 40, "schema_version": 1},
    Signal: {"id": "0b6f5a4e-3c1d-5e2f-8a9b-1c2d3e4f5a6b", "type": "index_ath",
             "subject": "RUT", "event_time": T, "emitted_at": T, "severity": "notice",
             "value": 2075.5, "message": "m", "evidence": {"close": 2075.5},
             "schema_version": 1},
    DeadLetter: {"topic": "ticks", "partition": 0, "offset": 42, "key": None, "payload": "{",
                 "reason": "malformed JSON", "source": "route_inputs", "failed_at": T,
                 "schema_version": 1},
}
RECORDS = list(VALID)
TOPIC_OF = {record: topic for topic, record in INPUT_RECORDS.items()}


@st.composite
def mutated(draw: st.DrawFn, record: type[Event]) -> tuple[bytes, str]:
    """(raw event, the field changed): one field of a valid record replaced or dropped."""
    data = dict(VALID[record])
    name = draw(st.sampled_from([*data, "extra"]))
    if draw(st.integers(0, 9)) == 0:
        data.pop(name, None)
    else:
        data[name] = draw(hostile)
    return dumps(data), name


def check_accepted(record: Event) -> None:
    """What the decoder accepts can be sent on: every number finite, every text encodable,
    serialisable by Faust, and decoded again to the same record."""
    for name, value in record.asdict().items():
        if isinstance(value, float):
            assert math.isfinite(value), name
        if isinstance(value, str):
            value.encode("utf-8")
    dumped = record.dumps()
    if len(dumped) <= MAX_PAYLOAD_BYTES:
        assert decode_event(type(record), dumped) == record


def decode_or_reject(record: type[Event], raw: bytes | None, field: str | None = None) -> None:
    try:
        decoded = decode_event(record, raw)
    except SchemaError as exc:
        reason = str(exc)
        assert 0 < len(reason) <= MAX_REASON_CHARS, reason[:300]
        if field is not None and raw is not None and len(raw) <= MAX_PAYLOAD_BYTES:
            assert field in reason, (field, reason)
        return
    assert isinstance(decoded, record)
    check_accepted(decoded)


@FUZZ
@given(record=st.sampled_from(RECORDS), raw=raw_messages)
@example(record=IndexQuote, raw=b"[" * 10_000)  # RecursionError
@example(record=CryptoTick, raw=b'{"a":' * 10_000)
def test_decoder_on_arbitrary_messages(record: type[Event], raw: bytes) -> None:
    decode_or_reject(record, raw)


def bad(record: type[Event], field: str, value: Any) -> tuple[type[Event], bytes, str]:
    return record, dumps({**VALID[record], field: value}), field


@st.composite
def one_bad_field(draw: st.DrawFn, records: list[type[Event]]) -> tuple[type[Event], bytes, str]:
    record = draw(st.sampled_from(records))
    raw, field = draw(mutated(record))
    return record, raw, field


@FUZZ
@given(case=one_bad_field(RECORDS))
@example(case=bad(IndexQuote, "price", 10**400))  # OverflowError in float()
@example(case=bad(MarketCap, "rank", 2**64))  # accepted, then Faust could not serialise it
@example(case=bad(CryptoTick, "exchange", "\ud800"))  # accepted, then unencodable
@example(case=bad(IndexQuote, "price", 5e-324))  # the next return is inf: the pair agents stop
@example(case=bad(FundingRate, "next_funding_time", "soon"))  # reason said "event time"
@example(case=bad(CryptoTick, "schema_version", HUGE[:900_000]))  # a 900 KB reason
@example(case=bad(Signal, "evidence", json.loads('{"a":' * 300 + "1" + "}" * 300)))  # orjson
def test_decoder_on_one_bad_field(case: tuple[type[Event], bytes, str]) -> None:
    record, raw, field = case
    decode_or_reject(record, raw, field)


@pytest.mark.parametrize(("when", "accepted"), [
    (lambda: iso_utc(datetime.now(UTC) + timedelta(hours=23)), True),
    (lambda: iso_utc(datetime.now(UTC) + timedelta(seconds=MAX_FUTURE_SECONDS + 60)), False),
    (lambda: "2100-01-04T21:00:00.000Z", False),
    (lambda: "9999-12-31T23:59:59.999Z", False),
    (lambda: "0001-01-01T00:00:00.000Z", False),
    (lambda: iso_utc(EARLIEST_EVENT_TIME), True),
    (lambda: iso_utc(EARLIEST_EVENT_TIME - timedelta(milliseconds=1)), False),
], ids=["23h-ahead", "a-day-and-a-minute-ahead", "2100", "9999", "year-1", "earliest",
        "before-earliest"])
def test_event_times_far_in_the_past_or_future_are_rejected(
        when: Callable[[], str], accepted: bool) -> None:
    """A tick dated 2100 would make every later real event of its series "out of order":
    the decoder refuses event times more than MAX_FUTURE_SECONDS after the wall clock (not the
    Kafka timestamp: a replay sends old events now) and before EARLIEST_EVENT_TIME. Times
    relative to now are taken when the test runs, not when it is collected."""
    value = when()
    for record in INPUT_RECORDS.values():
        raw = dumps({**VALID[record], "event_time": value})
        if accepted:
            assert decode_event(record, raw).event_time == value
        else:
            with pytest.raises(SchemaError, match="field event_time .*implausibly far"):
                decode_event(record, raw)


def check_routed(routed: list[tuple[str, str, Any]]) -> None:
    """What route_inputs sends on: an encodable key and a record Faust can serialise."""
    for agent, key, record in routed:
        assert agent in ("correlation", "regime", "longshort", "netflow", "drawdown")
        # far below Kafka's 1 MB: a bigger re-keyed message crashes route_inputs
        assert len(key.encode("utf-8")) + len(record.dumps()) < 64 * 1024


@FUZZ
@given(topic=st.sampled_from(list(INPUT_RECORDS)), raw=st.one_of(raw_messages, st.none()))
def test_router_on_arbitrary_messages(topic: str, raw: bytes | None) -> None:
    try:
        routed = route_message(topic, raw, CONFIG)
    except SchemaError as exc:
        assert 0 < len(str(exc)) <= MAX_REASON_CHARS
        return
    check_routed(routed)


@FUZZ
@given(case=one_bad_field(list(INPUT_RECORDS.values())))
@example(case=bad(CryptoTick, "exchange", "\ud800"))  # UnicodeEncodeError on the key
@example(case=bad(IndexQuote, "symbol", "Z" * 900_000))  # a 900 KB unknown symbol: reason
@example(case=bad(CryptoTick, "exchange", "e" * 600_000))  # a 1.2 MB re-keyed message
def test_router_on_one_bad_field(case: tuple[type[Event], bytes, str]) -> None:
    record, raw, field = case
    try:
        routed = route_message(TOPIC_OF[record], raw, CONFIG)
    except SchemaError as exc:
        reason = str(exc)
        assert len(reason) <= MAX_REASON_CHARS, reason[:300]
        assert field in reason or "index symbol" in reason or "netflow" in reason \
            or len(raw) > MAX_PAYLOAD_BYTES, (field, reason)
        return
    check_routed(routed)


@FEW
@given(topic=st.text(max_size=30))
def test_unknown_topics_are_schema_errors(topic: str) -> None:
    if topic in INPUT_RECORDS:
        return
    with pytest.raises(SchemaError, match="no route for topic"):
        decode_input(topic, dumps(VALID[CryptoTick]))


@FEW
@given(symbol=st.sampled_from(["NDX", "ZZZ", "RUTX", "R", "1", "SPX.", "^RUT"]),
       asset=st.sampled_from(["ZZZ", "TOTAL9", "XYZ123"]))
def test_unknown_symbols(symbol: str, asset: str) -> None:
    """An unknown index symbol is dead-lettered (the reason names it); an unknown coin is a
    series of its own, routed like any other."""
    with pytest.raises(SchemaError, match=re.escape(f"unknown index symbol '{symbol}'")):
        route_message("index-quotes", dumps({**VALID[IndexQuote], "symbol": symbol}), CONFIG)
    check_routed(route_message("market-caps", dumps({**VALID[MarketCap], "asset": asset}), CONFIG))
    check_routed(route_message("ticks", dumps({**VALID[CryptoTick], "symbol": f"{asset}/USD"}),
                               CONFIG))


# -- live parsers --------------------------------------------------------------------------

def check_publishable(record: Event) -> None:
    """A live parser's record satisfies its topic's published schema, fits in a Kafka message,
    and is never dated more than MAX_FUTURE_SECONDS ahead (such a record would also hold back
    the source's own "newer than the last emitted" checks). The worker's decoder may still
    reject it for what only the decoder asks (a time before EARLIEST_EVENT_TIME, a magnitude
    beyond its bounds): then it is dead-lettered with that reason."""
    for name, value in record.asdict().items():
        if isinstance(value, str) and name in ("event_time", "next_funding_time"):
            moment = parse_utc(value)
            assert (moment - datetime.now(UTC)).total_seconds() <= MAX_FUTURE_SECONDS, name
    try:
        decode_event(type(record), record.dumps())
    except SchemaError as exc:
        reason = str(exc)
        assert "outside the magnitudes" in reason or "implausibly far in the past" in reason \
            and (parse_utc(record.event_time) < EARLIEST_EVENT_TIME or (
                isinstance(record, FundingRate) and record.next_funding_time is not None
                and parse_utc(record.next_funding_time) < EARLIEST_EVENT_TIME)), reason


@st.composite
def payload(draw: st.DrawFn, valid: Mapping[str, Any]) -> Any:
    """An exchange payload: a valid one with one field replaced or dropped, or any JSON."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(json_values)
    data = dict(valid)
    name = draw(st.sampled_from(list(data)))
    if choice == 1:
        data.pop(name)
    else:
        data[name] = draw(hostile)
    return data


def parsed_or_malformed(parse: Callable[[], Any],
                        malformed: tuple[type[BaseException], ...]) -> Any:
    """The parser's result, or None when it raised what its source counts as malformed."""
    try:
        return parse()
    except malformed as exc:
        assert str(exc)
        return None


# Binance (binance_ws): frames, aggTrade, bookTicker, markPriceUpdate

AGG_TRADE = {"e": "aggTrade", "E": 1626992742291, "a": 14888302, "s": "AKROUSDT",
             "p": "0.01731", "q": "312", "f": 27931348, "l": 27931348, "T": 1626992742134,
             "m": True}
BOOK = {"u": 400900217, "s": "BNBUSDT", "b": "25.35190000", "B": "31.21000000",
        "a": "25.36520000", "A": "40.66000000", "T": 1626992741421, "E": 1626992741423}
MARK = {"e": "markPriceUpdate", "E": 1562305380000, "s": "BTCUSDT", "p": "11794.15000000",
        "i": "11784.62659091", "P": "11784.25641265", "r": "0.00038167", "T": 1562306400000}
MALFORMED_FRAME = (MalformedInput,)


@FUZZ
@given(raw=st.one_of(raw_messages, json_values.map(lambda v: json.dumps({"stream": "x@y",
                                                                          "data": v}))))
@example(raw=b"[" * 10_000)  # RecursionError
def test_binance_frames(raw: bytes | str) -> None:
    parsed_or_malformed(lambda: binance_ws.parse_combined(raw), MALFORMED_FRAME)


@FUZZ
@given(data=payload(AGG_TRADE))
@example(data={**AGG_TRADE, "p": 10**400})  # OverflowError
@example(data={**AGG_TRADE, "T": 10**30})  # OverflowError
@example(data={**AGG_TRADE, "T": 4102444800000})  # 2100
def test_binance_agg_trades(data: Any) -> None:
    if not isinstance(data, dict):
        return  # parse_combined hands on objects only
    out = parsed_or_malformed(lambda: binance_ws.agg_trade_tick(data, "binanceusdm",
                                                                "AKRO/USDT:USDT"),
                              MALFORMED_FRAME)
    if out is not None:
        check_publishable(out[0])


@FUZZ
@given(data=payload(BOOK), received=st.sampled_from([NOW_MS, 0, T_MS]))
@example(data={**BOOK, "T": -(2**63)}, received=NOW_MS)
def test_binance_book_tickers(data: Any, received: int) -> None:
    if not isinstance(data, dict):
        return
    record = parsed_or_malformed(lambda: binance_ws.book_ticker(data, "binance", "BNB/USDT",
                                                                received), MALFORMED_FRAME)
    if record is not None:
        check_publishable(record)


@FUZZ
@given(data=payload(MARK))
@example(data={**MARK, "r": 10**400})
def test_binance_mark_prices(data: Any) -> None:
    if not isinstance(data, dict):
        return
    record = parsed_or_malformed(lambda: binance_ws.mark_price_ticker(data, "binanceusdm",
                                                                      "BTC/USDT:USDT"),
                                 MALFORMED_FRAME)
    if record is not None:
        check_publishable(record)


def binance_source() -> binance_ws.BinanceStreams:
    return binance_ws.from_config({"type": "binance_ws", "name": "bf", "market": "usdm",
                                   "symbols": ["AKRO/USDT:USDT", "BNB/USDT:USDT"],
                                   "channels": ["aggTrade", "bookTicker", "markPrice"],
                                   "rest_catch_up": False}, "sources[0]")


@FUZZ
@given(stream=st.sampled_from(["akrousdt@aggTrade", "bnbusdt@bookTicker",
                               "akrousdt@markPrice", "zzzusdt@aggTrade", "akrousdt@depth",
                               "@", "akrousdt@"]),
       data=st.one_of(payload(AGG_TRADE), payload(BOOK), payload(MARK)))
def test_binance_source_never_raises_on_a_frame(stream: str, data: Any) -> None:
    """A whole frame through the source: emitted or counted as malformed, never raised (a
    raise would drop the connection and reconnect)."""
    source = binance_source()
    out = MemoryEmitter(source.stats)
    asyncio.run(source.handle(json.dumps({"stream": stream, "data": data}), out))
    assert source.stats.malformed + len(out.records) + source.stats.duplicates == 1
    for _, _, record in out.records:
        check_publishable(record)


# ccxt (ccxt_ws): unified trades and tickers

TRADE = {"symbol": "BTC/USDT", "timestamp": 1626992741012, "price": 67000.5, "amount": 0.1,
         "side": "buy", "id": "42", "info": {}}
TICKER = {"symbol": "BTC/USDT", "timestamp": 1626992741012, "bid": 1.0, "ask": 2.0,
          "last": 1.5, "markPrice": None}
MALFORMED_TRADE = (MalformedInput,)


@FUZZ
@given(trade=payload(TRADE))
@example(trade={**TRADE, "price": 10**400})  # OverflowError
@example(trade={**TRADE, "timestamp": 10**30})  # OverflowError
@example(trade={**TRADE, "id": HUGE})  # a record too large for Kafka
def test_ccxt_trades(trade: Any) -> None:
    if not isinstance(trade, dict):
        return  # ccxt's trade cache holds dicts
    record = parsed_or_malformed(lambda: ccxt_ws.trade_tick(trade, "okx"), MALFORMED_TRADE)
    if record is not None:
        check_publishable(record)


@FUZZ
@given(ticker=payload(TICKER), received=st.sampled_from([NOW_MS, 0]))
@example(ticker={**TICKER, "bid": -1.0}, received=NOW_MS)  # a negative bid on the topic
@example(ticker={**TICKER, "last": 0}, received=NOW_MS)
@example(ticker={**TICKER, "symbol": "BTC/USD\n"}, received=NOW_MS)  # "$" before a newline
def test_ccxt_tickers(ticker: Any, received: int) -> None:
    if not isinstance(ticker, dict):
        return
    record = parsed_or_malformed(lambda: ccxt_ws.ticker_record(ticker, "okx", received),
                                 MALFORMED_TRADE)
    if record is not None:
        check_publishable(record)


# long/short ratios (longshort): the rows of each exchange

ROW_MALFORMED = (KeyError, TypeError, ValueError)  # what LongShortSource.fetch counts
ROWS: list[tuple[Callable[[Any], longshort.RatioRow], dict[str, Any]]] = [
    (longshort.binance_account_row, {"symbol": "BTCUSDT", "longShortRatio": "1.4342",
                                     "longAccount": "0.5891", "shortAccount": "0.4108",
                                     "timestamp": "1583139600000"}),
    (longshort.binance_taker_row, {"buySellRatio": "1.5586", "buyVol": "387.3300",
                                   "sellVol": "248.5030", "timestamp": "1585614900000"}),
    (longshort.bybit_row, {"symbol": "BTCUSDT", "buyRatio": "0.5707", "sellRatio": "0.4293",
                           "timestamp": "1729123200000"}),
    (longshort.okx_row, {"timestamp": "1729123200000", "longShortRatio": "1.38"}),
    (longshort.bitget_row, {"longAccountRatio": "0.58", "shortAccountRatio": "0.42",
                            "longShortAccountRatio": "1.38", "ts": "1729312200000"}),
]


def ratio_record(row: longshort.RatioRow) -> LongShortRatio:
    """The record LongShortSource._emit_rows makes of a row."""
    return LongShortRatio(exchange="binance", symbol="BTC/USDT:USDT",
                          event_time=longshort.iso_from_ms(row.t_ms), period="1h",
                          variant="global_account", long_share=row.long_share,
                          short_share=row.short_share, ratio=row.ratio)


@FUZZ
@given(case=st.integers(0, len(ROWS) - 1), data=st.data())
@example(case=0, data=None).via("timestamp inf: OverflowError")
@example(case=3, data=None).via("timestamp 10**30: OverflowError in iso_from_ms")
@example(case=1, data=None).via("buyVol 10**400: OverflowError")
def test_long_short_rows(case: int, data: st.DataObject | None) -> None:
    parse, valid = ROWS[case]
    if data is None:
        row = {0: {**valid, "timestamp": math.inf}, 3: {**valid, "timestamp": 10**30},
               1: {**valid, "buyVol": 10**400}}[case]
    else:
        row = data.draw(payload(valid))
    out = parsed_or_malformed(lambda: parse(row), ROW_MALFORMED)
    if out is not None:
        check_publishable(ratio_record(out))


# funding rates and open interest (derivatives): ccxt's unified structures

FUNDING = {"symbol": "BTC/USDT:USDT", "markPrice": 11793.63, "indexPrice": 11781.8,
           "interestRate": 0.0001, "timestamp": 1597370495002, "fundingRate": 0.00038246,
           "fundingTimestamp": 1597392000000, "interval": "8h", "info": {}}
INTEREST = {"symbol": "BTC/USDT:USDT", "openInterestAmount": 10659.509,
            "openInterestValue": None, "timestamp": 1589437530011, "info": {}}
POLL_MALFORMED = (TypeError, ValueError)  # what DerivativesPoller.poll counts


@FUZZ
@given(unified=payload(FUNDING))
@example(unified={**FUNDING, "timestamp": math.inf})  # OverflowError
@example(unified={**FUNDING, "fundingTimestamp": 10**30})  # OverflowError
@example(unified={**FUNDING, "interval": "every 8h"})  # not the schema's interval
def test_funding_rates(unified: Any) -> None:
    if not isinstance(unified, dict):
        return  # ccxt's fetch_funding_rate returns a dict
    out = parsed_or_malformed(lambda: derivatives.funding_record("binance", "BTC/USDT:USDT",
                                                                 unified, NOW_MS),
                              POLL_MALFORMED)
    if out is not None:
        check_publishable(out[1])


@FUZZ
@given(unified=payload(INTEREST))
@example(unified={**INTEREST, "timestamp": -math.inf})
def test_open_interest(unified: Any) -> None:
    if not isinstance(unified, dict):
        return
    out = parsed_or_malformed(lambda: derivatives.open_interest_record(
        "binance", "BTC/USDT:USDT", unified, NOW_MS), POLL_MALFORMED)
    if out is not None:
        check_publishable(out[1])


# CoinGecko (coingecko): /global and /coins/markets

GECKO_MALFORMED = (KeyError, TypeError, ValueError)  # what CoinGeckoSource.poll counts
GLOBAL = {"total_market_cap": {"usd": 2721226850772.63}, "total_volume": {"usd": 6.9e10},
          "updated_at": 1712512855}
COIN = {"id": "bitcoin", "symbol": "btc", "market_cap": 1381651251183, "market_cap_rank": 1,
        "total_volume": 20154184933, "last_updated": "2024-04-07T16:49:31.736Z"}


@FUZZ
@given(body=payload(GLOBAL), wrap=st.booleans())
@example(body={**GLOBAL, "total_volume": [1]}, wrap=True)  # AttributeError
@example(body={**GLOBAL, "total_market_cap": {"usd": 10**400}}, wrap=True)  # OverflowError
@example(body={**GLOBAL, "updated_at": 10**20}, wrap=True)  # OverflowError
@example(body={**GLOBAL, "total_volume": {"usd": -1}}, wrap=True)  # negative on the topic
def test_coingecko_global(body: Any, wrap: bool) -> None:
    data = {"data": body} if wrap else body
    out = parsed_or_malformed(lambda: coingecko.total_market_cap(data), GECKO_MALFORMED)
    if out is not None:
        check_publishable(out[1])


@FUZZ
@given(item=payload(COIN))
@example(item={**COIN, "last_updated": "soon"})  # SchemaError escaped the source
@example(item={**COIN, "market_cap": 10**400})  # OverflowError
@example(item={**COIN, "total_volume": math.inf})  # infinite volume on the topic
@example(item={**COIN, "last_updated": "2100-01-01T00:00:00Z"})  # holds back later updates
@example(item={**COIN, "symbol": "btc\n"})  # "$" matches before a final newline
@example(item={**COIN, "symbol": "b" * 900_000})  # a record too large for Kafka
def test_coingecko_coins(item: Any) -> None:
    out = parsed_or_malformed(lambda: coingecko.coin_market_cap(item), GECKO_MALFORMED)
    if out is not None:
        check_publishable(out[1])


# index quotes (index_quotes): Yahoo's chart, Finnhub's trades

CHART_MALFORMED = (KeyError, IndexError, TypeError, ValueError)  # YahooChartSource.poll
RESULT = {"meta": {"symbol": "^RUT", "exchangeTimezoneName": "America/New_York"},
          "timestamp": [1758202200, 1758288600],
          "indicators": {"quote": [{"close": [2467.7, None]}]}}


@FUZZ
@given(result=payload(RESULT), shape=st.integers(0, 3))
@example(result={**RESULT, "meta": {"exchangeTimezoneName": "a" * 300}}, shape=0)  # OSError
@example(result={**RESULT, "meta": []}, shape=0)  # AttributeError
@example(result=RESULT, shape=3)  # "chart" is a list: AttributeError
@example(result={**RESULT, "timestamp": [math.inf]}, shape=0)  # OverflowError
@example(result={**RESULT, "timestamp": [10**15]}, shape=0)  # fromtimestamp out of range
@example(result={**RESULT, "indicators": {"quote": [{"close": [10**400]}]}}, shape=0)
@example(result={**RESULT, "timestamp": [4102444800]}, shape=0)  # 2100
def test_yahoo_charts(result: Any, shape: int) -> None:
    data: Any = [{"chart": {"result": [result], "error": None}}, {"chart": {"result": result}},
                 result, {"chart": [result]}][shape]

    def parse() -> list[tuple[int, float]]:
        zone, bars = chart_bars(data)
        return daily_closes(zone, bars, NOW_MS) + minute_closes(bars, NOW_MS)

    closes = parsed_or_malformed(parse, CHART_MALFORMED)
    for t_ms, close in closes or []:
        check_publishable(IndexQuote(symbol="RUT", event_time=longshort.iso_from_ms(t_ms),
                                     price=close, source="yahoo:^RUT"))


FINNHUB_TRADE = {"p": 571.2, "s": "SPY", "t": 1712512855123, "v": 100}


@FUZZ
@given(frame=st.one_of(
    raw_messages,
    payload({"type": "trade", "data": [FINNHUB_TRADE]}).map(dumps),
    st.lists(payload(FINNHUB_TRADE), max_size=3).map(
        lambda trades: dumps({"type": "trade", "data": trades}))))
@example(frame=dumps({"type": "trade", "data": 5}))  # TypeError: not iterable
@example(frame=dumps({"type": "trade", "data": [{**FINNHUB_TRADE, "t": math.inf}]}))
@example(frame=dumps({"type": "trade", "data": [{**FINNHUB_TRADE, "t": 10**30}]}))
@example(frame=b"[" * 10_000)  # RecursionError
def test_finnhub_frames(frame: bytes) -> None:
    """A whole Finnhub frame through the source: emitted, skipped or malformed, never raised."""
    source = FinnhubSource("fh", ["SPY", "IWM"], "key", min_interval_ms=0)
    out = MemoryEmitter(source.stats)
    asyncio.run(source.handle(out, frame))
    for _, _, record in out.records:
        check_publishable(record)


# netflows (netflows): CryptoQuant responses, CSV rows and files

FLOW_MALFORMED = (KeyError, TypeError, ValueError)  # what the sources count
CQ_ROW = {"date": "2019-10-02", "datetime": "2019-10-02 00:00:00", "inflow_total": 12345.6}
CSV_ROW = {"time": "2024-03-01", "exchange": "binance", "token": "btc", "window": "day",
           "inflow": "10.5", "outflow": "12"}


@FUZZ
@given(row=payload(CQ_ROW), wrap=st.booleans())
@example(row={**CQ_ROW, "datetime": 20191002}, wrap=True)  # AttributeError
@example(row={**CQ_ROW, "inflow_total": 10**400}, wrap=True)  # OverflowError
@example(row={**CQ_ROW, "datetime": "9999-12-31 23:00:00"}, wrap=True)  # record(): Overflow
@example(row={**CQ_ROW, "datetime": "2100-01-01"}, wrap=True)  # holds back later windows
@example(row=[1], wrap=True)  # AttributeError
def test_cryptoquant_totals(row: Any, wrap: bool) -> None:
    data = {"result": {"data": [row]}} if wrap else row
    totals = parsed_or_malformed(lambda: netflows.cryptoquant_totals(data, "inflow"),
                                 FLOW_MALFORMED)
    for start_ms, amount in (totals or {}).items():
        if start_ms + 86_400_000 > NOW_MS:
            continue  # CryptoQuantSource emits finished windows only
        flow = netflows.Flow("binance", "BTC", "1d", start_ms, amount, 0.0)
        check_publishable(flow.record())


@FUZZ
@given(row=payload(CSV_ROW).filter(lambda r: isinstance(r, dict)))
@example(row={**CSV_ROW, "window": None})  # a short CSV line: AttributeError
@example(row={**CSV_ROW, "time": "9999-12-31"})  # record(): OverflowError
@example(row={**CSV_ROW, "time": "0001-01-01T00:00:00+05:00"})  # timestamp(): OverflowError
def test_csv_flow_rows(row: dict[str, Any]) -> None:
    # csv.DictReader gives text, None for a missing value and a list for extra values
    row = {k: v if v is None or isinstance(v, list) else str(v) for k, v in row.items()}
    flow = parsed_or_malformed(lambda: netflows.csv_flow(row), FLOW_MALFORMED)
    if flow is not None:
        check_publishable(flow.record())


HEADER = b"time,exchange,token,window,inflow,outflow"


@FEW
@given(header=st.sampled_from([HEADER, b"\xef\xbb\xbf" + HEADER, b"time,exchange",
                               b"h" * 200_000]),
       lines=st.lists(st.one_of(
           st.sampled_from([b"2024-03-01,binance,btc,day,1,2", b"2024-03-01,binance", b"",
                            b",,,,,", b"2024-03-01,binance,btc,day,1,2,3,4",
                            b"9999-12-31,x,btc,1d,1,1", b"2100-01-01,x,btc,1d,1,1",
                            b'"unterminated', b"\x00,\x00", b"\xff\xfe,binance",
                            b"2024-03-01," + b"e" * 200_000 + b",btc,day,1,2"]),
           st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b)),
           max_size=6))
@example(header=HEADER, lines=[b"2024-03-01,binance"])  # None.strip(): AttributeError
@example(header=HEADER, lines=[b"\xff\xfe,x"])  # UnicodeDecodeError stopped the source
@example(header=HEADER, lines=[b"a" * 200_000])  # csv.Error: field larger than field limit
def test_csv_files_never_stop_the_source(tmp_path_factory: pytest.TempPathFactory,
                                         header: bytes, lines: list[bytes]) -> None:
    path = Path(tmp_path_factory.mktemp("csv")) / "flows.csv"
    path.write_bytes(b"\n".join([header, *lines]) + b"\n")
    source = netflows.NetflowCsvSource("csv", path)
    out = MemoryEmitter(source.stats)
    asyncio.run(source.read(out))
    for _, _, record in out.records:
        check_publishable(record)
