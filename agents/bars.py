"""OHLCV bars per symbol (1m, 1h, 1d by default): the ``bars`` topic and Redis ``bar:*``."""

from __future__ import annotations

from faust import StreamT

from agents.outputs import dead_letter, view
from altseason.errors import EventOrderError
from schemas.decode import parse_utc, to_ms
from schemas.records import Bar, CryptoTick
from streams.app import app, settings
from streams.bars import OHLCV, BarBuilder, interval_name
from streams.correlation import ms_to_iso
from streams.topics import bar_ticks_topic, bars_topic

config = settings.signals
LATENESS_MS = int(config.bar_allowed_lateness_seconds * 1000)
#: "exchange:symbol" -> BarBuilder.to_state()
bar_state = app.Table("bar-state", default=dict)


def bar_record(exchange: str, symbol: str, bar: OHLCV) -> Bar:
    return Bar(exchange=exchange, symbol=symbol, interval=interval_name(bar.interval_s),
               start=ms_to_iso(bar.start_ms), end=ms_to_iso(bar.end_ms), open=bar.open,
               high=bar.high, low=bar.low, close=bar.close, volume=bar.volume,
               trades=bar.trades)


async def show(key: str, exchange: str, symbol: str, bar: OHLCV) -> None:
    """Mirror the open bar into ``bar:<exchange>:<symbol>:<interval>`` (expires after two
    intervals, so a symbol that stops trading drops out); closed bars go to the topic."""
    snapshot = bar_record(exchange, symbol, bar).asdict()
    await view.update("bar", f"{key}:{interval_name(bar.interval_s)}", snapshot,
                      ttl_s=max(2 * bar.interval_s, 3600))


@app.agent(bar_ticks_topic)
async def build_bars(stream: StreamT) -> None:
    async for event in stream.events():
        tick: CryptoTick = event.value
        key = f"{tick.exchange}:{tick.symbol}"
        builder = BarBuilder.from_state(config.bar_intervals, LATENESS_MS, bar_state.get(key))
        try:
            closed = builder.add(to_ms(parse_utc(tick.event_time)), tick.price, tick.amount)
        except EventOrderError as exc:
            await dead_letter(event.message, tick.dumps(), str(exc), "build_bars")
            continue
        bar_state[key] = builder.to_state()
        for bar in closed:
            await bars_topic.send(key=key.encode(),
                                  value=bar_record(tick.exchange, tick.symbol, bar))
        for interval in config.bar_intervals:
            current = builder.current(interval)
            if current is not None:
                await show(key, tick.exchange, tick.symbol, current)


async def rebuild_bar_views() -> None:
    """Redis after a flush: the open bar of every symbol this worker owns."""
    for key, state in list(bar_state.items()):
        exchange, _, symbol = key.partition(":")
        builder = BarBuilder.from_state(config.bar_intervals, LATENESS_MS, state)
        for interval in config.bar_intervals:
            current = builder.current(interval)
            if current is not None:
                await show(key, exchange, symbol, current)
