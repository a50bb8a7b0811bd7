"""Records, generated JSON Schema files and the hand-written decoder: no drift, round trips, and
the decoder rejects (with its reason) what the published schema rejects."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from foundation.errors import SchemaError
from schemas.decode import MAX_PAYLOAD_BYTES, decode_event, iso_utc
from schemas.jsonschema import JSON_DIR, schema_files
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
from schemas.topics import TOPICS, topic_spec

T = "2024-03-04T21:00:00.000Z"
SAMPLES: dict[str, Event] = {
    "ticks": CryptoTick(exchange="replay", symbol="BTC/USD", event_time=T, price=67000.5,
                        amount=0.25, side="buy", trade_id="2024-03-04"),
    "tickers": CryptoTicker(exchange="binanceusdm", symbol="BTC/USDT:USDT", event_time=T,
                            kind="mark", mark_price=67010.2, funding_rate=0.0001),
    "index-quotes": IndexQuote(symbol="RUT", event_time=T, price=2075.5, source="yahoo ^RUT"),
    "market-caps": MarketCap(asset="TOTAL", event_time=T, market_cap=2.4e12, source="coingecko",
                             volume_24h=9.1e10),
    "long-short-ratios": LongShortRatio(exchange="binance", symbol="BTC/USDT:USDT", event_time=T,
                                        period="1h", variant="top_account", long_share=0.6,
                                        short_share=0.4, ratio=1.5),
    "netflows": ExchangeNetflow(exchange="binance", token="BTC", event_time=T, window="1d",
                                inflow=10.0, outflow=12.5, netflow=-2.5),
    "funding-rates": FundingRate(exchange="binance", symbol="BTC/USDT:USDT", event_time=T,
                                 funding_rate=0.0001, next_funding_time=T, interval="8h",
                                 mark_price=67010.2, index_price=67001.5),
    "open-interest": OpenInterest(exchange="binance", symbol="BTC/USDT:USDT", event_time=T,
                                  open_interest=81234.5, open_interest_value=5.44e9),
    "signals": Signal(id="0b6f5a4e-3c1d-5e2f-8a9b-1c2d3e4f5a6b", type="index_ath", subject="RUT",
                      event_time=T, emitted_at=T, severity="notice", value=2075.5,
                      message="RUT closed at an all-time high", evidence={"close": 2075.5}),
    "bars": Bar(exchange="binanceusdm", symbol="SUSHI/USDT:USDT", interval="1m",
                start="2021-07-22T22:26:00.000Z", end="2021-07-22T22:27:00.000Z", open=7.611,
                high=7.62, low=7.6, close=7.615, volume=1234.0, trades=40),
    "deadletter": DeadLetter(topic="ticks", partition=0, offset=42, key=None, payload="{",
                             reason="malformed JSON", source="route_inputs", failed_at=T),
}
VALID: dict[str, dict[str, Any]] = {
    name: json.loads(SAMPLES[name].dumps()) for name in ("ticks", "index-quotes", "market-caps")
}


def validator(topic: str) -> Draft202012Validator:
    schema = json.loads((JSON_DIR / f"{topic}.v1.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def payload(topic: str, drop: str | None = None, **changes: Any) -> bytes:
    data = {k: v for k, v in VALID[topic].items() if k != drop}
    return json.dumps({**data, **changes}).encode()


def test_committed_schema_files_match_the_records() -> None:
    committed = {path.name: path.read_text() for path in JSON_DIR.glob("*.json")}
    generated = schema_files()
    assert sorted(committed) == sorted(generated), "run `altseason schemas generate`"
    for name, text in generated.items():
        assert committed[name] == text, f"{name} is stale: run `altseason schemas generate`"
    assert set(generated) == {f"{spec.name}.v1.schema.json" for spec in TOPICS}


def test_every_topic_has_a_sample() -> None:
    assert set(SAMPLES) == {spec.name for spec in TOPICS}


@pytest.mark.parametrize("topic", [spec.name for spec in TOPICS])
def test_sample_round_trips_and_matches_its_json_schema(topic: str) -> None:
    sample = SAMPLES[topic]
    assert isinstance(sample, topic_spec(topic).record)
    decoded = decode_event(topic_spec(topic).record, sample.dumps())
    assert decoded == sample and decoded.asdict() == sample.asdict()
    validator(topic).validate(json.loads(sample.dumps()))


FUTURE = iso_utc(datetime.now(UTC) + timedelta(days=3))
# JSON Schema rejects it too: JS always, FMT with a date-time format checker, NO never (it
# cannot express it, or there is no JSON instance)
JS, FMT, NO = "schema", "date-time format", "no"
# (id, topic, raw payload, fragment of the SchemaError, whether JSON Schema rejects it too)
BAD: list[tuple[str, str, bytes | None, str, str]] = [
    ("malformed", "ticks", b'{"price": ', "malformed JSON", NO),
    ("not-object", "ticks", b"[1, 2]", "expected a JSON object, got list", JS),
    ("missing", "ticks", payload("ticks", drop="trade_id"), "missing field trade_id", JS),
    ("wrong-type", "ticks", payload("ticks", price="67000"),
     "field price is str, expected int/float", JS),
    ("null", "ticks", payload("ticks", side=None), "field side is null", JS),
    ("bool-number", "index-quotes", payload("index-quotes", price=True),
     "field price is bool, expected int/float", JS),
    ("float-integer", "market-caps", payload("market-caps", rank=1.5),
     "field rank is float, expected int", JS),
    ("nan", "ticks", payload("ticks", price=float("nan")),
     "field price is nan, not a finite number", NO),
    ("infinity", "market-caps", payload("market-caps", market_cap=float("inf")),
     "field market_cap is inf, not a finite number", NO),
    ("negative-price", "ticks", payload("ticks", price=-1.5), "field price is -1.5; it must be > 0",
     JS),
    ("zero-price", "index-quotes", payload("index-quotes", price=0),
     "field price is 0; it must be > 0", JS),
    ("negative-amount", "ticks", payload("ticks", amount=-0.1),
     "field amount is -0.1; it must be >= 0", JS),
    ("rank-zero", "market-caps", payload("market-caps", rank=0),
     "field rank is 0; it must be >= 1", JS),
    ("bad-side", "ticks", payload("ticks", side="long"),
     "field side is 'long', not one of ['buy', 'sell', 'unknown']", JS),
    ("bad-symbol", "ticks", payload("ticks", symbol="btc-usd"),
     "field symbol is 'btc-usd', not of the form ^[A-Z0-9]+/", JS),
    ("bad-index", "index-quotes", payload("index-quotes", symbol="R UT"),
     "field symbol is 'R UT', not of the form", JS),
    ("bad-asset", "market-caps", payload("market-caps", asset="total"),
     "field asset is 'total', not of the form", JS),
    ("empty-source", "index-quotes", payload("index-quotes", source=""), "field source is empty",
     JS),
    ("not-iso", "ticks", payload("ticks", event_time="yesterday"),
     "event time 'yesterday' is not an RFC 3339 (ISO 8601) date-time", FMT),
    ("no-timezone", "index-quotes", payload("index-quotes", event_time="2024-03-04T21:00:00"),
     "event time '2024-03-04T21:00:00' must be in UTC (end it with Z)", FMT),
    ("non-utc", "index-quotes", payload("index-quotes", event_time="2024-03-04T16:00:00-05:00"),
     "must be in UTC (end it with Z)", NO),
    ("year-1990", "market-caps", payload("market-caps", event_time="1990-01-02T00:00:00Z"),
     "field event_time is 1990-01-02T00:00:00Z, implausibly far in the past or future", NO),
    ("future", "ticks", payload("ticks", event_time=FUTURE),
     f"field event_time is {FUTURE}, implausibly far", NO),
    ("version-2", "ticks", payload("ticks", schema_version=2),
     "schema_version 2 is not supported (this is v1)", JS),
    ("too-big", "ticks", payload("ticks", trade_id="x" * MAX_PAYLOAD_BYTES),
     f"exceeds {MAX_PAYLOAD_BYTES}", NO),
    ("none", "ticks", None, "empty message (no value)", NO),
]


@pytest.mark.parametrize(("topic", "raw", "fragment"), [c[1:4] for c in BAD],
                         ids=[c[0] for c in BAD])
def test_decoder_rejects_with_reason(topic: str, raw: bytes | None, fragment: str) -> None:
    with pytest.raises(SchemaError) as info:
        decode_event(topic_spec(topic).record, raw)
    assert fragment in str(info.value)


@pytest.mark.parametrize(("topic", "raw", "how"), [(c[1], c[2], c[4]) for c in BAD if c[4] != NO],
                         ids=[c[0] for c in BAD if c[4] != NO])
def test_json_schema_rejects_it_too(topic: str, raw: bytes, how: str) -> None:
    if how == FMT and "date-time" not in FormatChecker.checkers:
        pytest.skip("jsonschema checks format date-time only with rfc3339-validator installed")
    assert not validator(topic).is_valid(json.loads(raw))


@pytest.mark.parametrize("changes", [{"symbol": "BTC/USD\n"},
                                     {"event_time": "20240304T210000Z"},
                                     {"event_time": "2024-W10-1T21:00Z"}], ids=repr)
def test_decoder_rejects_what_rfc3339_and_ecma_regexes_reject(changes: dict[str, str]) -> None:
    with pytest.raises(SchemaError):
        decode_event(CryptoTick, payload("ticks", **changes))


def test_int_where_float_declared_becomes_float_and_extra_fields_are_ignored() -> None:
    quote = decode_event(IndexQuote, payload("index-quotes", price=2075, venue="x", extra={}))
    assert type(quote.price) is float and quote.price == 2075.0
    assert quote.asdict() == {**SAMPLES["index-quotes"].asdict(), "price": 2075.0}
    assert not hasattr(quote, "venue")
    cap = decode_event(MarketCap, payload("market-caps", rank=3, volume_24h=0))
    assert (cap.rank, type(cap.volume_24h), cap.volume_24h) == (3, float, 0.0)
    assert decode_event(MarketCap, payload("market-caps", rank=None)).rank is None
