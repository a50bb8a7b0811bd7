"""The live producers' shared core: backoff, watchdog, dedupe memory, config errors."""

from __future__ import annotations

import asyncio
import itertools
import random
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from foundation.errors import ConfigError
from producers.live.config import SinkConfig, load_live_config
from producers.live.core import (
    Backoff,
    MalformedInput,
    MemoryEmitter,
    RecentKeys,
    Source,
    SourceConfig,
    SourceStats,
    StaleConnection,
    backoff_delays,
    iso_from_ms,
    number,
    number_if_usable,
    optional_number,
    reconnect_forever,
    watched,
)
from schemas.records import CryptoTick


def test_backoff_is_capped_jittered_exponential_and_endless() -> None:
    delays = list(itertools.islice(backoff_delays(0.5, 30.0, random.Random(7)), 5000))
    assert len(delays) == 5000 and all(0.0 <= d <= 30.0 for d in delays)
    # attempt k is uniform in [0, min(cap, base * 2**k)]
    for k, delay in enumerate(delays[:12]):
        assert delay <= min(30.0, 0.5 * 2 ** k)
    late = delays[100:]
    assert max(late) > 25.0 and min(late) < 5.0  # full jitter over the whole capped range
    assert len(set(late)) == len(late)
    assert sum(late) / len(late) == pytest.approx(15.0, rel=0.1)


def test_backoff_restarts_small_after_reset() -> None:
    backoff = Backoff(1.0, 60.0, random.Random(1))
    for _ in range(20):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() <= 1.0 and backoff.next_delay() <= 2.0


@pytest.mark.parametrize(("base", "cap"), [(0.0, 1.0), (2.0, 1.0), (-1.0, 5.0)])
def test_backoff_rejects_bad_bounds(base: float, cap: float) -> None:
    with pytest.raises(ValueError):
        next(backoff_delays(base, cap))


async def test_watchdog_raises_on_silence_but_not_while_frames_flow() -> None:
    async def frames(gaps: list[float]) -> AsyncIterator[int]:
        for i, gap in enumerate(gaps):
            await asyncio.sleep(gap)
            yield i

    assert [i async for i in watched(frames([0.01] * 5), 0.2, "test")] == [0, 1, 2, 3, 4]
    got: list[int] = []
    with pytest.raises(StaleConnection, match="nothing received for 0.1 s"):
        async for i in watched(frames([0.0, 0.0, 1.0]), 0.1, "test"):
            got.append(i)
    assert got == [0, 1]


class Flaky(Source):
    """Fails twice, then works once and stops the test."""

    def __init__(self) -> None:
        super().__init__("flaky")
        self.attempts = 0

    async def run(self, out: Any) -> None:
        raise NotImplementedError


async def test_reconnect_forever_counts_and_retries_until_cancelled() -> None:
    source = Flaky()
    done = asyncio.Event()

    async def connect_once() -> None:
        source.attempts += 1
        if source.attempts < 3:
            raise ConnectionResetError("reset by peer")
        done.set()
        await asyncio.sleep(10)

    task = asyncio.create_task(reconnect_forever(source, connect_once, Backoff(0.001, 0.01)))
    await asyncio.wait_for(done.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert source.stats.reconnects == 2


async def test_reconnect_forever_lets_config_errors_through() -> None:
    async def connect_once() -> None:
        raise ConfigError("sources[0].symbols: bad")

    with pytest.raises(ConfigError):
        await reconnect_forever(Flaky(), connect_once, Backoff(0.001, 0.01))


def test_recent_keys_forget_the_oldest_and_stay_bounded() -> None:
    keys = RecentKeys(3)
    assert [keys.add(k) for k in "abca"] == [True, True, True, False]
    keys.add("d")  # evicts b, the least recently seen ("a" was just seen again)
    assert len(keys) == 3 and keys.add("b") is True and keys.add("a") is False


async def test_memory_emitter_dedupes_and_counts() -> None:
    stats = SourceStats()
    out = MemoryEmitter(stats)
    tick = CryptoTick(exchange="x", symbol="BTC/USD", event_time="2024-01-01T00:00:00.000Z",
                      price=1.0, amount=1.0, side="buy", trade_id="1")
    assert await out.emit("ticks", "x:BTC/USD", tick, "x:BTC/USD:1") is True
    assert await out.emit("ticks", "x:BTC/USD", tick, "x:BTC/USD:1") is False
    assert await out.emit("ticks", "x:BTC/USD", tick) is True
    assert (stats.produced, stats.duplicates, len(out.records)) == (2, 1, 2)
    assert set(stats.as_dict()) == {"messages", "produced", "duplicates", "malformed",
                                    "reconnects", "gaps", "backfilled", "rate_limited",
                                    "backpressure_waits", "dropped"}


def test_iso_from_ms_is_exact() -> None:
    assert iso_from_ms(1626992741012) == "2021-07-22T22:25:41.012Z"
    assert iso_from_ms(999) == "1970-01-01T00:00:00.999Z"


# -- configuration ----------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "message"), [
    ({"api_key": "abc"}, "sources[2].api_key: secrets never go in the config file"),
    ({"secret": "abc"}, "sources[2].secret: secrets never go in the config file"),
    ({"api_key_env": "sk-live 123"}, "sources[2].api_key_env: must be the NAME"),
    ({"api_key_env": "ALTSEASON_TEST_UNSET_KEY"},
     "sources[2].api_key_env: environment variable ALTSEASON_TEST_UNSET_KEY is not set"),
])
def test_secrets_only_through_environment_variable_names(data: dict[str, Any],
                                                         message: str) -> None:
    with pytest.raises(ConfigError) as info:
        cfg = SourceConfig(data, "sources[2]", env={})
        cfg.secret("api_key_env")
    assert message in str(info.value)
    assert "abc" not in str(info.value) and "sk-live" not in str(info.value)


def test_secret_value_is_read_from_the_named_variable() -> None:
    cfg = SourceConfig({"api_key_env": "FINNHUB_KEY"}, "sources[0]", env={"FINNHUB_KEY": "s3"})
    assert cfg.secret("api_key_env") == "s3"
    cfg.finish()


@pytest.mark.parametrize(("read", "data", "message"), [
    (lambda c: c.integer("size", 1, minimum=1), {"size": 0}, "sources[1].size: 0 must be >= 1"),
    (lambda c: c.integer("size", 1), {"size": 1.5}, "sources[1].size: 1.5 is not an integer"),
    (lambda c: c.integer("size", 1), {"size": True}, "sources[1].size: True is not an integer"),
    (lambda c: c.number("wait", 1.0), {"wait": "soon"}, "sources[1].wait: 'soon' is not a number"),
    (lambda c: c.texts("symbols"), {"symbols": []}, "sources[1].symbols: must be a non-empty list"),
    (lambda c: c.texts("symbols"), {"symbols": ["A", 3]}, "sources[1].symbols[1]: 3 must be"),
    (lambda c: c.texts("symbols"), {"symbols": ["A", "A"]}, "sources[1].symbols: listed twice: A"),
    (lambda c: c.text("market", choices=("spot", "usdm")), {"market": "coinm"},
     "sources[1].market: 'coinm' is not one of spot, usdm"),
    (lambda c: c.text("name"), {}, "sources[1].name: required"),
    (lambda c: c.flag("on", True), {"on": "yes"}, "sources[1].on: 'yes' must be true or false"),
    (lambda c: c.url("ws_url", schemes=("wss://",)), {"ws_url": "http://x"},
     "sources[1].ws_url: 'http://x' must start with wss://"),
])
def test_config_errors_name_the_field(read: Any, data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        read(SourceConfig(data, "sources[1]"))
    assert message in str(info.value)


def test_unknown_fields_are_errors() -> None:
    cfg = SourceConfig({"name": "a", "symbolz": ["BTC/USDT"]}, "sources[0]")
    cfg.text("name")
    with pytest.raises(ConfigError, match=r"sources\[0\]\.symbolz: unknown field \(known: name\)"):
        cfg.finish()


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


BINANCE = {"type": "binance_ws", "name": "b", "symbols": ["BTC/USDT"]}


@pytest.mark.parametrize(("data", "message"), [
    ({"sources": []}, "sources: must be a non-empty list"),
    ({"sources": [BINANCE], "kafka": {"queue_size": 0}}, "kafka.queue_size: 0 must be >= 1"),
    ({"sources": [BINANCE], "kafka": {"compression": "brotli"}},
     "kafka.compression: 'brotli' is not one of gzip, snappy, lz4, zstd"),
    ({"sources": [BINANCE], "kafka": {"bootstrap": "x"}}, "kafka.bootstrap: unknown field"),
    ({"sources": [BINANCE], "extra": 1}, "extra: unknown field"),
    ({"sources": [BINANCE, {"name": "c"}]}, "sources[1].type: None is not one of"),
    ({"sources": [BINANCE, {"type": "nope", "name": "c"}]}, "sources[1].type: 'nope'"),
    ({"sources": [BINANCE, BINANCE]}, "sources[1].name: 'b' is used by another source"),
    ({"sources": [BINANCE, {**BINANCE, "name": "c", "symbols": ["BTC/USDT", "ETH-USDT"]}]},
     "sources[1].symbols[1]: 'ETH-USDT' is not a ccxt unified symbol of Binance spot"),
    ({"sources": [{**BINANCE, "market": "usdm"}]},
     "sources[0].symbols[0]: 'BTC/USDT' is not a ccxt unified symbol of Binance usdm "
     "(like BTC/USDT:USDT)"),
    ({"sources": [{**BINANCE, "channels": ["markPrice"]}]},
     "sources[0].channels[0]: 'markPrice' is not one of aggTrade, bookTicker (Binance spot)"),
    ({"sources": [{**BINANCE, "streams_per_connection": 1025}]},
     "sources[0].streams_per_connection: 1025 must be <= 1024"),
    ({"sources": [{**BINANCE, "ws_url": "https://x"}]},
     "sources[0].ws_url: 'https://x' must start with wss:// or ws://"),
    ({"sources": [{**BINANCE, "api_secret": "hunter2"}]},
     "sources[0].api_secret: secrets never go in the config file"),
    ({"sources": [{**BINANCE, "watchdog": 5}]}, "sources[0].watchdog: unknown field"),
    ({"sources": [BINANCE], "status_interval_seconds": 0}, "status_interval_seconds: 0"),
])
def test_live_config_errors_name_the_field(tmp_path: Path, data: dict[str, Any],
                                           message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_live_config(write(tmp_path, data))
    assert message in str(info.value)
    assert "hunter2" not in str(info.value)


def test_live_config_defaults_and_values(tmp_path: Path) -> None:
    config = load_live_config(write(tmp_path, {"sources": [BINANCE]}))
    assert config.sink == SinkConfig() and config.status_interval_seconds == 30.0
    assert [s.name for s in config.sources] == ["b"]
    config = load_live_config(write(tmp_path, {
        "kafka": {"queue_size": 5, "linger_ms": 0, "compression": "gzip"},
        "sources": [BINANCE]}))
    assert (config.sink.queue_size, config.sink.linger_ms, config.sink.compression) == (
        5, 0, "gzip")


def test_missing_or_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_live_config(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("sources: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_live_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- sources")
    with pytest.raises(ConfigError, match=r"live config .*list.yaml must hold a mapping"):
        load_live_config(tmp_path / "list.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"sources: [caf\xe9]")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_live_config(tmp_path / "latin1.yaml")


def test_example_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "live.yaml"
    data = yaml.safe_load(example.read_text())
    for source in data["sources"]:  # credentials are named, not given: provide dummies
        for key, value in source.items():
            if key.endswith("_env"):
                monkeypatch.setenv(value, "dummy")
    config = load_live_config(example)
    assert [s.name for s in config.sources] == [s["name"] for s in data["sources"]]
    assert {"binance_ws", "ccxt_ws"} <= {s["type"] for s in data["sources"]}


def test_one_number_parser_for_what_sources_receive() -> None:
    assert number("1.5", "p") == 1.5 and number(2, "q", minimum=0) == 2.0
    assert number("0", "bid", minimum=0) == 0.0 and number(1, "share", maximum=1) == 1.0
    for value, bounds, reason in [
        (None, {}, "p: missing, must be a finite number"),
        ("abc", {}, "p: 'abc' must be a finite number"),
        (True, {}, "p: True must be a finite number"),
        ("inf", {}, "p: 'inf' must be a finite number"),
        (10**400, {}, "must be a finite number"),
        ([1], {}, "p: [1] must be a finite number"),
        ("0", {"positive": True}, "p: '0' must be > 0"),
        (-1, {"minimum": 0}, "p: -1 must be >= 0"),
        (1.5, {"minimum": 0, "maximum": 1}, "p: 1.5 must be <= 1"),
    ]:
        with pytest.raises(MalformedInput, match=re.escape(reason)):
            number(value, "p", **bounds)  # type: ignore[arg-type]
    assert optional_number(None, "r") is None and optional_number("", "r") is None
    assert optional_number("0.1", "r") == 0.1
    with pytest.raises(MalformedInput, match="r: 'x' must be a finite number"):
        optional_number("x", "r")
    assert number_if_usable("x", "volume") is None
    assert number_if_usable(-1, "volume", minimum=0) is None
    assert number_if_usable("7", "volume", minimum=0) == 7.0
