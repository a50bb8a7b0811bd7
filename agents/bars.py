"""OHLCV bars per symbol (1m, 1h, 1d by default): the ``bars`` topic and Redis ``bar:*``."""

from __future__ import annotations

from typing import Any

from faust import StreamT
from mode import Service

from agents.outputs import dead_letter, delivered, failpoint, view
from agents.redis_view import ViewUpdate
from agents.route import AGENT_TOPICS
from altseason.errors import EventOrderError, SchemaError
from schemas.decode import parse_utc, to_ms
from schemas.records import Bar
from schemas.topics import topic_spec
from streams.app import app, settings
from streams.bars import OHLCV, BarBuilder, interval_name
from streams.correlation import ms_to_iso
from streams.routing import record_routes, tick_for_bars
from streams.topics import bars_topic, ticks_topic

config = settings.signals
LATENESS_MS = int(config.bar_allowed_lateness_seconds * 1000)
#: "exchange:symbol" -> BarBuilder.to_state(); as many partitions as ``ticks``, which it is
#: updated from (a symbol's state lives in the partition its ticks' key hashes to)
bar_state = app.Table("bar-state", default=dict, partitions=topic_spec("ticks").partitions)
#: the open bars of the symbols that ticked since the last flush to Redis, by "exchange:symbol"
unflushed: dict[str, list[OHLCV]] = {}


def bar_record(exchange: str, symbol: str, bar: OHLCV) -> Bar:
    return Bar(exchange=exchange, symbol=symbol, interval=interval_name(bar.interval_s),
               start=ms_to_iso(bar.start_ms), end=ms_to_iso(bar.end_ms), open=bar.open,
               high=bar.high, low=bar.low, close=bar.close, volume=bar.volume,
               trades=bar.trades)


async def show(bars_by_key: dict[str, list[OHLCV]], only_if_missing: bool = False) -> None:
    """Mirror open bars into ``bar:<exchange>:<symbol>:<interval>``, all in one round trip
    (each expires after two intervals, so a symbol that stops trading drops out); closed
    bars go to the topic."""
    await view.update_many(
        (ViewUpdate("bar", f"{key}:{interval_name(bar.interval_s)}",
                    bar_record(*key_parts(key), bar).asdict(),
                    ttl_s=max(2 * bar.interval_s, 3600))
         for key, bars in bars_by_key.items() for bar in bars),
        only_if_missing=only_if_missing)


def key_parts(key: str) -> tuple[str, str]:
    """"exchange:symbol" -> (exchange, symbol); symbols may hold a colon (BTC/USDT:USDT)."""
    exchange, _, symbol = key.partition(":")
    return exchange, symbol


def open_bars(builder: BarBuilder) -> list[OHLCV]:
    """The bars still open, one per configured interval."""
    return [bar for interval in config.bar_intervals
            if (bar := builder.current(interval)) is not None]


@app.agent(ticks_topic)
async def build_bars(stream: StreamT) -> None:
    async for event in stream.events():
        try:
            tick = tick_for_bars(event.message.key, event.value)
        except SchemaError as exc:
            await dead_letter(event.message, event.value, str(exc), "build_bars")
            continue
        # a reference-exchange coin is a series of its own (correlation, drawdown)
        for agent, routed_key, record in record_routes(tick, config):
            await AGENT_TOPICS[agent].send(key=routed_key.encode(), value=record)
        key = f"{tick.exchange}:{tick.symbol}"
        builder = BarBuilder.from_state(config.bar_intervals, LATENESS_MS, bar_state.get(key))
        try:
            closed = builder.add(to_ms(parse_utc(tick.event_time)), tick.price, tick.amount,
                                 (event.message.partition, event.message.offset))
        except EventOrderError as exc:
            await dead_letter(event.message, tick.dumps(), str(exc), "build_bars")
            continue
        sent = []
        for bar in closed:
            await failpoint("bar")
            sent.append(await bars_topic.send(key=key.encode(),
                                              value=bar_record(tick.exchange, tick.symbol, bar)))
        await delivered(*sent)
        if settings.bar_view_flush_seconds:
            unflushed[key] = open_bars(builder)  # BarViewFlusher writes it
        else:
            await show({key: open_bars(builder)})
        bar_state[key] = builder.to_state()  # last: after all it causes (outputs.py)


async def rebuild_bar_views(only_if_missing: bool = True) -> None:
    """Write the open bars of the symbols whose ``ticks`` partitions this worker owns, from
    the table: where they are missing after a Redis flush, and all of them after each
    rebalance (``rewrite_bar_views`` below). The in-memory store also holds standby copies of
    other workers' partitions; their owners write those."""
    ticks = settings.topic("ticks")
    owned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == ticks}
    builders = {key: BarBuilder.from_state(config.bar_intervals, LATENESS_MS, state)
                for key, state in list(bar_state.items())}
    await show({key: open_bars(builder) for key, builder in builders.items()
                if builder.applied.keys() <= owned}, only_if_missing=only_if_missing)


@bar_state.on_recover
async def rewrite_bar_views() -> None:
    """After a rebalance, before the agents run: a trade whose state reached the changelog
    but whose view did not (a crash or a handover) is rejected as a duplicate when it comes
    again, so its view would stay stale until the symbol trades again."""
    await rebuild_bar_views(only_if_missing=False)


async def flush_bar_views() -> None:
    """Write the open bars of the symbols that ticked since the last flush."""
    if unflushed:
        pending = dict(unflushed)
        unflushed.clear()
        await show(pending)


@app.on_partitions_revoked.connect
async def flush_before_handover(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Write what is pending before partitions move, so that no write of this worker lands
    after their new owner's (which rewrites them from the table once it has recovered)."""
    await flush_bar_views()


@app.service
class BarViewFlusher(Service):
    """Writes the latest open bars of the symbols that ticked, every ``bar_view_flush_seconds``:
    one round trip and one hash write per bar per flush however fast ticks come, where a
    write per tick was the largest cost of a tick (``bench/RESULTS.md``)."""

    @Service.task
    async def _flush_every_interval(self) -> None:
        while not self.should_stop and settings.bar_view_flush_seconds:
            await self.sleep(settings.bar_view_flush_seconds)  # returns early on a stop
            await flush_bar_views()

    async def on_stop(self) -> None:
        await flush_bar_views()  # a graceful stop writes what is left, if the task was cancelled
