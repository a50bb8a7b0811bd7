"""``altseason report``: PNG charts and a Markdown summary of the dashboard's views.

The recorded data (``data/replay/``) is replayed offline, without a broker: the events of
``producers.replay.load_replay`` go, in event-time order, through
``streams.pipeline.OfflinePipeline``, which runs the worker's own view steps
(``streams/views/``). The report only collects what those steps produce: the records they
apply, the Redis views they write and their signals. So it covers every view and every signal
type, and its signals are the worker's, id for id. The charts are drawn by
``altseason.report_charts``. Bars are not part of the report.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

from tqdm import tqdm

from foundation.config import Settings
from producers.replay import ReplayEvent, load_replay
from schemas.decode import parse_utc, to_ms
from schemas.records import MarketCap, Observation, SeriesPoint, Signal
from schemas.redis_layout import ViewUpdate
from streams.pipeline import OfflinePipeline
from streams.views.step import Outputs


@dataclass(frozen=True)
class SignalRow:
    """A fired signal, as far as the report needs it."""

    id: str
    type: str
    subject: str
    event_time: str
    t_ms: int
    value: float
    message: str

    @classmethod
    def of(cls, signal: Signal) -> SignalRow:
        return cls(signal.id, signal.type, signal.subject, signal.event_time,
                   t_ms_of(signal.event_time), signal.value, signal.message)


@dataclass(frozen=True)
class ScorePoint:
    """The altseason score after one component update (a ``score`` view)."""

    t_ms: int
    score: float
    band: str
    #: component -> points it contributed (they add up to the score)
    points: dict[str, float]
    #: component -> its value mapped to 0..1
    values: dict[str, float]
    missing: tuple[str, ...]


@dataclass
class LongShortSeries:
    """One (exchange, symbol, variant) long/short series: (t_ms, ratio, z-score) rows."""

    exchange: str
    symbol: str
    variant: str
    period: str
    #: its latest ``longshort`` view
    latest: dict[str, Any]
    rows: list[tuple[int, float, float | None]] = field(default_factory=list)

    @property
    def coin(self) -> str:
        return str(self.latest["coin"])


@dataclass
class ReportData:
    """What the offline pipeline produced, for the charts and the summary."""

    settings: Settings
    events: int = 0
    first_t_ms: int | None = None
    last_t_ms: int | None = None
    events_by_topic: Counter[str] = field(default_factory=Counter)
    #: series name (RUT, SPX, TOTAL, TOTAL3, BTC, ETH, ...) -> (t_ms, value) of its closes
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    #: the index's ``index`` views (symbol day close ath ath_day pct_from_ath ytd_change),
    #: plus t_ms, the close's time
    index: list[dict[str, Any]] = field(default_factory=list)
    #: the pair's ``regime`` views (subject day streak longest_since ... risk_on), plus t_ms
    streaks: list[dict[str, Any]] = field(default_factory=list)
    #: pair -> window -> (t_ms, correlation of daily log returns)
    correlations: dict[str, dict[int, list[tuple[int, float]]]] = field(default_factory=dict)
    #: pair -> its latest ``correlation`` view (corr_30d, beta_30d, regime_30d, ...)
    latest_correlation: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: "exchange:symbol:variant" (the view's name) -> series
    longshort: dict[str, LongShortSeries] = field(default_factory=dict)
    #: variant -> its latest ``longshort-cross`` view (altcoin ratios against rank)
    longshort_cross: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: coin -> (rank, market cap, t_ms) from coin market caps that carry a rank
    coin_ranks: dict[str, tuple[int, float, int]] = field(default_factory=dict)
    #: "exchange:token" -> (t_ms, {window: netflow}, imbalance over the signal window)
    netflows: dict[str, list[tuple[int, dict[str, float], float | None]]] = field(
        default_factory=dict)
    #: "exchange:token" -> its latest ``netflow`` view (band, inflow_7d, ...)
    latest_netflow: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: coin -> its latest ``drawdown`` view (price ath ath_time drawdown event_time)
    drawdowns: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (t_ms, share of altcoins deep below their high)
    breadth: list[tuple[int, float]] = field(default_factory=list)
    score: list[ScorePoint] = field(default_factory=list)
    #: the latest ``score`` view (score band event_time components missing)
    latest_score: dict[str, Any] | None = None
    signals: list[SignalRow] = field(default_factory=list)
    #: rejected events per step (as the worker would dead-letter them)
    dead_letters: Counter[str] = field(default_factory=Counter)

    def signal_counts(self) -> Counter[str]:
        return Counter(s.type for s in self.signals)


def t_ms_of(event_time: str) -> int:
    return to_ms(parse_utc(event_time))


def collect(data: ReportData, step: str, record: Any, outputs: Outputs) -> None:
    """The pipeline's observer: keep what the report shows of one applied event."""
    if step in ("correlate", "track_regime") and isinstance(record, SeriesPoint) \
            and record.role != "intraday":
        rows = data.series.setdefault(record.series, [])
        if not rows or rows[-1][0] < record.t_ms:  # one close reaches several pairs
            rows.append((record.t_ms, record.value))
    elif step == "track_long_short" and isinstance(record, Observation) \
            and record.kind == "market_cap":
        cap = MarketCap.from_data(record.event)
        if cap.rank is not None:
            data.coin_ranks[cap.asset] = (cap.rank, cap.market_cap, record.t_ms)
    for view in outputs.views:
        keep = VIEW_COLLECTORS.get(view.view)
        if keep is not None:
            keep(data, view, record)


def _index(data: ReportData, view: ViewUpdate, record: Any) -> None:
    data.index.append({**view.snapshot, "t_ms": record.t_ms})


def _regime(data: ReportData, view: ViewUpdate, record: Any) -> None:
    data.streaks.append({**view.snapshot, "t_ms": record.t_ms})


def _correlation(data: ReportData, view: ViewUpdate, _record: Any) -> None:
    snapshot = view.snapshot
    data.latest_correlation[view.name] = snapshot
    t_ms = t_ms_of(snapshot["event_time"])
    by_window = data.correlations.setdefault(view.name, {})
    for window in data.settings.signals.correlation_windows:
        r = snapshot.get(f"corr_{window}d")
        if r is not None and math.isfinite(r):
            by_window.setdefault(window, []).append((t_ms, r))


def _long_short(data: ReportData, view: ViewUpdate, _record: Any) -> None:
    latest = view.snapshot
    series = data.longshort.get(view.name)
    if series is None:
        series = data.longshort[view.name] = LongShortSeries(
            latest["exchange"], latest["symbol"], latest["variant"], latest["period"], latest)
    series.latest = latest
    series.rows.append((latest["t_ms"], latest["ratio"], latest["zscore"]))


def _long_short_cross(data: ReportData, view: ViewUpdate, _record: Any) -> None:
    data.longshort_cross[view.name] = view.snapshot


def _netflow(data: ReportData, view: ViewUpdate, _record: Any) -> None:
    latest = view.snapshot
    windows = [f"{days}d" for days in data.settings.signals.netflow_windows_days]
    data.latest_netflow[view.name] = latest
    data.netflows.setdefault(view.name, []).append(
        (latest["t_ms"], {w: latest[f"netflow_{w}"] for w in windows}, latest["imbalance"]))


def _drawdown(data: ReportData, view: ViewUpdate, _record: Any) -> None:
    data.drawdowns[view.name] = view.snapshot


def _breadth(data: ReportData, view: ViewUpdate, _record: Any) -> None:
    data.breadth.append((t_ms_of(view.snapshot["event_time"]), view.snapshot["share_deep"]))


def _score(data: ReportData, view: ViewUpdate, _record: Any) -> None:
    shown = view.snapshot
    data.latest_score = shown
    components = shown["components"]
    data.score.append(ScorePoint(
        t_ms_of(shown["event_time"]), shown["score"], shown["band"],
        {name: c["contribution"] for name, c in components.items()},
        {name: c["component"] for name, c in components.items()},
        tuple(shown["missing"])))


#: Redis view -> what the report keeps of it (the bars and sessions are not shown)
VIEW_COLLECTORS = {
    "index": _index,
    "regime": _regime,
    "correlation": _correlation,
    "longshort": _long_short,
    "longshort-cross": _long_short_cross,
    "netflow": _netflow,
    "drawdown": _drawdown,
    "breadth": _breadth,
    "score": _score,
}


def replay_offline(events: Sequence[ReplayEvent], settings: Settings,
                   progress: bool = True) -> ReportData:
    """Every event through the worker's steps (``streams.pipeline.OfflinePipeline``), in the
    given (event-time) order, then the end of input."""
    data = ReportData(settings)
    pipeline = OfflinePipeline(settings.signals, partial(collect, data))
    with tqdm(events, total=len(events), unit="ev", desc="report: replay", file=sys.stderr,
              disable=not progress, mininterval=0.5) as bar:
        for event in bar:
            data.events += 1
            data.events_by_topic[event.topic] += 1
            data.first_t_ms = event.t_ms if data.first_t_ms is None else data.first_t_ms
            data.last_t_ms = event.t_ms
            pipeline.feed(event.topic, event.key.encode(), event.record.dumps())
    pipeline.finish()
    # a fan-in's signals come when it applies what it held (the score's at the end of input
    # when a component never comes): in event-time order per step, not across steps
    data.signals = sorted((SignalRow.of(s) for s in pipeline.signals),
                          key=lambda s: (s.t_ms, s.type, s.subject))
    data.dead_letters = +pipeline.dead_letters  # without the steps that rejected nothing
    return data


def write_report(out_dir: Path, data_dir: Path = Path("data/replay"),
                 settings: Settings | None = None, progress: bool = True,
                 since: date | None = None, until: date | None = None) -> Path:
    """Replay ``data_dir`` offline (days ``since`` .. ``until``, default all), draw the charts
    into ``out_dir`` and write its ``README.md`` summary; returns the Markdown's path.

    ``settings`` default to ``Settings()`` (the CLI passes the loaded ones). ConfigError when
    ``data_dir`` lacks a replay file.
    """
    from altseason import report_charts  # matplotlib is only needed here

    settings = settings or Settings()
    events = load_replay(data_dir, since, until)
    data = replay_offline(events, settings, progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    drawn = report_charts.draw_all(data, out_dir, progress)
    markdown = out_dir / "README.md"
    markdown.write_text(summary(data, data_dir, drawn))
    return markdown


# --- the Markdown summary -------------------------------------------------------------------


def day_of(t_ms: int | None) -> str:
    """The UTC date of an event time, "-" for none."""
    if t_ms is None:
        return "-"
    return datetime.fromtimestamp(t_ms / 1000, UTC).date().isoformat()


def _num(value: float | None, fmt: str = ",.2f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, fmt)


def _pct(value: float | None) -> str:
    return _num(None if value is None else 100 * value, "+.1f") + (" %" if value is not None
                                                                  else "")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def summary(data: ReportData, data_dir: Path, drawn: Sequence[str]) -> str:
    """The report's Markdown: data, signals, latest values, charts, how it is computed."""
    config = data.settings.signals
    out = [
        "# altseason report",
        "",
        f"Offline replay of `{data_dir}` (no broker): **{data.events:,} events** from "
        f"{day_of(data.first_t_ms)} to {day_of(data.last_t_ms)}, "
        f"**{len(data.signals):,} signals**, "
        f"{sum(data.dead_letters.values())} events rejected (dead-lettered).",
        "",
        "## Data",
        "",
    ]
    rows = [[f"`{name}`", f"{len(values):,}", day_of(values[0][0]), day_of(values[-1][0])]
            for name, values in sorted(data.series.items())]
    rows += [[f"`{s.exchange}:{s.symbol}` long/short ({s.variant})", f"{len(s.rows):,}",
              day_of(s.rows[0][0]), day_of(s.rows[-1][0])]
             for s in data.longshort.values() if s.rows]
    out += _table(["series", "points", "first", "last"], rows)
    out += ["", "Events by topic: " + ", ".join(
        f"`{topic}` {n:,}" for topic, n in sorted(data.events_by_topic.items())) + "."]
    if data.dead_letters:
        out += ["", "Rejected per agent: " + ", ".join(
            f"`{agent}` {n:,}" for agent, n in sorted(data.dead_letters.items())) + "."]

    out += ["", "## Signals", ""]
    counts = data.signal_counts()
    rows = []
    for kind in sorted(counts):
        of_kind = [s for s in data.signals if s.type == kind]
        rows.append([f"`{kind}`", str(counts[kind]), day_of(of_kind[0].t_ms),
                     day_of(of_kind[-1].t_ms)])
    rows.append(["**total**", str(len(data.signals)), day_of(
        data.signals[0].t_ms if data.signals else None), day_of(
        data.signals[-1].t_ms if data.signals else None)])
    out += _table(["type", "count", "first", "last"], rows)
    out += ["", "These are the signals the worker emits for the same data, id for id: both "
            "run the same steps (`streams/views/`) in event-time order. A type missing here "
            "did not fire on this data."]
    latest = data.signals[-8:]
    if latest:
        out += ["", "Latest signals:", ""]
        out += [f"- {day_of(s.t_ms)} `{s.type}` {s.subject}: {s.message}" for s in latest]

    out += ["", "## Latest values", ""]
    out += _index_section(data)
    out += _correlation_section(data)
    out += _score_section(data)
    out += _longshort_section(data)
    out += _netflow_section(data)
    out += _drawdown_section(data)

    out += ["", "## Charts", ""]
    titles = {
        "rut_vs_total.png": "Russell 2000 vs total crypto market cap",
        "correlations.png": "Rolling correlations",
        "rank_vs_longshort.png": "Rank vs long/short ratio",
        "netflows.png": "Exchange netflows",
        "altseason_score.png": "Altseason score",
        "signals.png": "Signals over time",
    }
    for name in drawn:
        out += [f"### {titles.get(name, name)}", "", f"![{titles.get(name, name)}]({name})", ""]
    if "netflows.png" not in drawn:
        out += ["No `netflows.png`: the replayed data has no exchange netflows (see Netflows "
                "above).", ""]

    pair, window = config.score_correlation_target
    out += [
        "## How it is computed",
        "",
        "- The events are those `altseason replay` sends (`producers/replay.py`), in event-time "
        "order, through `streams.pipeline.OfflinePipeline`: the worker's steps "
        "(`streams/views/`), each route applied at once, without Kafka, Redis or Faust. The "
        "numbers below are the Redis views those steps write.",
        "- Index regime (`streams.index_regime.IndexRegime`): all-time high, breakouts "
        f"(`index_ath`, previous high at least {config.ath_breakout_min_gap_days} days old, "
        f"after {config.ath_min_history_days} days of history), the streak of sessions RUT "
        f"beat SPX (`outperformance_streak` from {config.streak_min_days}), "
        f"{config.relative_strength_days}-session relative strength and `risk_on_rotation`.",
        "- Correlations (`streams.correlation.PairCorrelation`): each anchor close is paired "
        f"with the other series' last value at or before close + "
        f"{config.alignment_lookahead_hours:g} h (skipped when older than "
        f"{config.alignment_max_staleness_hours:g} h), and the daily log returns of "
        "consecutive aligned points feed one rolling Pearson correlation per window; bands: "
        f"coupled >= {config.correlation_high:g}, decoupled <= {config.correlation_low:g}, "
        f"hysteresis {config.correlation_hysteresis:g}.",
        "- Long/short (`streams/views/longshort.py`): each series' z-score against its "
        f"last {config.longshort_window} readings; `long_crowding` when it reaches "
        f"{config.longshort_crowding_z:g} with a ratio of at least "
        f"{config.longshort_crowding_min_ratio:g} (cooldown "
        f"{config.longshort_cooldown_hours:g} h); the altcoins' ratios against their "
        "market-cap rank (`longshort-cross`, the score's `long_bias`). The rank chart shows "
        "each coin's latest ratio.",
        "- Netflows (`streams/views/netflow.py`): rolling inflow, outflow and netflow over "
        f"{', '.join(f'{d}d' for d in config.netflow_windows_days)}; the "
        f"{config.netflow_signal_window_days}d imbalance's band (`netflow_accumulation` <= "
        f"-{config.netflow_imbalance:g}, `netflow_distribution` >= "
        f"{config.netflow_imbalance:g}, hysteresis {config.netflow_hysteresis:g}); the share "
        "of series in accumulation is the score's `accumulation`.",
        "- Drawdowns (`streams.drawdown`): each reference coin's drawdown from its high, and "
        f"the share of altcoins (not {', '.join(config.non_altcoins)}) more than "
        f"{config.drawdown_deep:.0%} below it (`breadth`).",
        f"- Score (`streams/views/score.py`): the weighted components "
        f"{', '.join(f'`{c}`' for c in config.score_weight_map if config.score_weight_map[c] > 0)}"
        f" (`correlation`: {pair} {window}d), applied in event-time order, each fresh within "
        f"{config.score_max_age_days:g} days; bands warming >= {config.score_warming:g}, "
        f"altseason >= {config.score_altseason:g} (hysteresis {config.score_hysteresis:g}, "
        f"cooldown {config.score_cooldown_hours:g} h).",
        "",
    ]
    return "\n".join(out)


def _index_section(data: ReportData) -> list[str]:
    config = data.settings.signals
    out = [f"### {config.regime_index} against its all-time high", ""]
    if not data.index:
        return out + ["No index closes.", ""]
    last = data.index[-1]
    breakouts = [s for s in data.signals if s.type == "index_ath"]
    out += [
        f"- Close {last['day']}: **{_num(last['close'])}**",
        f"- All-time high: **{_num(last['ath'])}** on {last['ath_day']}",
        f"- From the high: **{_pct(last['pct_from_ath'])}**; year to date: "
        f"{_pct(last['ytd_change'])}",
        f"- Breakouts (`index_ath`): {len(breakouts)}"
        + (f", the last on {day_of(breakouts[-1].t_ms)}" if breakouts else ""),
    ]
    if data.streaks:
        streak = data.streaks[-1]
        strength = streak.get(f"relative_strength_{config.relative_strength_days}d")
        longest = max(data.streaks, key=lambda s: s["streak"])
        out += [
            f"- {streak['subject']} on {streak['day']}: streak **{streak['streak']}** "
            f"session(s) beating {config.regime_benchmark}"
            + (f" (longest since {streak['longest_since']})" if streak["longest_since"]
               else "")
            + f"; longest in the data: {longest['streak']} (to {longest['day']})",
            f"- Relative strength over {config.relative_strength_days} sessions: "
            f"**{_pct(strength)}**; risk-on: {'yes' if streak['risk_on'] else 'no'}",
        ]
    return out + [""]


def _correlation_section(data: ReportData) -> list[str]:
    windows = data.settings.signals.correlation_windows
    out = ["### Correlations of daily log returns", ""]
    header = ["pair", "as of"] + [f"{w}d" for w in windows] + [f"regime {w}d" for w in windows] \
        + [f"beta {windows[-1]}d"]
    rows = []
    for pair in data.settings.signals.correlation_pairs:
        view = data.latest_correlation.get(pair)
        if view is None:
            rows.append([f"`{pair}`", "-"] + ["-"] * (2 * len(windows) + 1))
            continue
        rows.append([f"`{pair}`", day_of(t_ms_of(view["event_time"]))]
                    + [_num(view.get(f"corr_{w}d"), "+.4f") for w in windows]
                    + [view.get(f"regime_{w}d") or "-" for w in windows]
                    + [_num(view.get(f"beta_{windows[-1]}d"), ".3f")])
    out += _table(header, rows)
    out += ["", "Each pair's latest value is as of the last anchor close both series cover; "
            "the series end at different dates."]
    return out + [""]


def _score_section(data: ReportData) -> list[str]:
    config = data.settings.signals
    out = ["### Altseason score", ""]
    shown = data.latest_score
    if shown is None:
        return out + ["No score (fewer than two fresh components).", ""]
    out += [f"Score **{shown['score']:.1f}**/100, band **{shown['band']}**, as of "
            f"{day_of(t_ms_of(shown['event_time']))} (warming >= {config.score_warming:g}, "
            f"altseason >= {config.score_altseason:g}).", ""]
    rows = [[f"`{name}`", _num(c["raw"], "+.4f"), _num(c["component"], ".3f"),
             _num(c["normalized_weight"], ".3f"), _num(c["contribution"], ".1f")]
            for name, c in shown["components"].items()]
    out += _table(["component", "raw", "0..1", "weight", "points"], rows)
    if shown["missing"]:
        out += ["", "Missing (not fresh, or no data): " + ", ".join(
            f"`{m}`" for m in shown["missing"]) + "."]
    bands = Counter(p.band for p in data.score)
    out += ["", f"{len(data.score):,} score updates from {day_of(data.score[0].t_ms)}; "
            "share of updates per band: " + ", ".join(
                f"{band} {bands[band] / len(data.score):.0%}"
                for band in ("cold", "warming", "altseason")) + "."]
    return out + [""]


def latest_ratio_by_coin(data: ReportData) -> dict[str, LongShortSeries]:
    """Each coin's series with the newest ratio (of the long/short variant the views use)."""
    by_coin: dict[str, LongShortSeries] = {}
    for series in data.longshort.values():
        if series.variant != data.settings.signals.longshort_variant or not series.rows:
            continue
        held = by_coin.get(series.coin)
        if held is None or series.rows[-1][0] > held.rows[-1][0]:
            by_coin[series.coin] = series
    return by_coin


def _longshort_section(data: ReportData) -> list[str]:
    config = data.settings.signals
    out = ["### Long/short ratios", ""]
    if not data.longshort:
        return out + ["No long/short ratios in the data.", ""]
    rows = []
    for series in data.longshort.values():
        t_ms, ratio, z = series.rows[-1]
        rank = data.coin_ranks.get(series.coin)
        rows.append([f"`{series.exchange}:{series.symbol}`", series.variant, day_of(t_ms),
                     _num(ratio, ".2f"), _num(z, "+.2f"),
                     "yes" if series.latest["crowded"] else "no", str(rank[0]) if rank else "-",
                     "no" if series.coin in config.non_altcoins else "yes"])
    out += _table(["series", "variant", "latest", "ratio", "z-score", "crowded", "rank",
                   "altcoin"], rows)
    crowding = [s for s in data.signals if s.type == "long_crowding"]
    out += ["", f"`long_crowding` (z-score >= {config.longshort_crowding_z:g}, ratio >= "
            f"{config.longshort_crowding_min_ratio:g}): {len(crowding)} signal(s)"
            + (f", the last {day_of(crowding[-1].t_ms)} ({crowding[-1].subject})"
               if crowding else "") + "."]
    coins = latest_ratio_by_coin(data)
    ranked = [c for c in coins if c in data.coin_ranks]
    out += ["", f"{len(coins)} coin(s) have ratios, {len(ranked)} of them a market-cap rank."]
    cross = data.longshort_cross.get(config.longshort_variant)
    if cross is not None:
        out += ["", f"Altcoins against rank (`longshort-cross`, {day_of(cross['t_ms'])}): "
                f"{cross['coins']} altcoin(s) with a recent ratio, {_pct(cross['share_long'])}"
                f" of them more long than short (the score's `long_bias`); "
                f"{cross['ranked_coins']} ranked, Spearman of ratio vs rank "
                f"{_num(cross['spearman_ratio_vs_rank'], '+.2f')}, ln(ratio) per rank "
                f"{_num(cross['slope_log_ratio_per_rank'], '+.4f')}."]
    if len(ranked) < 3:
        spans = ", ".join(
            f"{coin} on {s.exchange} {day_of(s.rows[0][0])} .. {day_of(s.rows[-1][0])}"
            for coin, s in sorted(coins.items()))
        out += ["", f"Too few for a cross-section (Spearman of ratio vs rank needs 3 ranked "
                f"altcoins): the data has long/short ratios of {len(coins)} coin(s) only "
                f"({spans})"
                + ("" if data.coin_ranks else ", and no coin market caps with a rank (its "
                   "market caps are the aggregates TOTAL and TOTAL3)")
                + ". The rank chart shows the coins without a rank on a strip of their own."]
    return out + [""]


def _netflow_section(data: ReportData) -> list[str]:
    config = data.settings.signals
    out = ["### Netflows", ""]
    if not data.netflows:
        return out + ["None: the replayed data has no exchange netflows (none of the files "
                      "`producers.replay` reads holds netflows), so there is no "
                      "`netflows.png`.", ""]
    windows = [f"{d}d" for d in config.netflow_windows_days]
    rows = []
    for key, values in sorted(data.netflows.items()):
        t_ms, sums, share = values[-1]
        rows.append([f"`{key}`", day_of(t_ms)] + [_num(sums[w]) for w in windows]
                    + [_num(share, "+.3f"), data.latest_netflow[key]["band"]])
    out += _table(["exchange:token", "as of"] + [f"netflow {w}" for w in windows]
                  + [f"imbalance {config.netflow_signal_window_days}d", "band"], rows)
    flow_signals = Counter(s.type for s in data.signals if s.type.startswith("netflow_"))
    out += ["", f"Band changes: `netflow_accumulation` {flow_signals['netflow_accumulation']}, "
            f"`netflow_distribution` {flow_signals['netflow_distribution']}."]
    return out + [""]


def _drawdown_section(data: ReportData) -> list[str]:
    out = ["### Drawdowns", ""]
    if not data.drawdowns:
        return out + ["No reference prices.", ""]
    rows = [[f"`{coin}`", day_of(t_ms_of(d["event_time"])), _pct(d["drawdown"]),
             _num(d["ath"]), day_of(t_ms_of(d["ath_time"]))]
            for coin, d in sorted(data.drawdowns.items())]
    out += _table(["coin", "as of", "from the high", "high", "high on"], rows)
    if data.breadth:
        t_ms, share = data.breadth[-1]
        altcoins = [c for c in sorted(data.drawdowns)
                    if c not in data.settings.signals.non_altcoins]
        out += ["", f"Share of altcoins more than {data.settings.signals.drawdown_deep:.0%} "
                f"below their high ({day_of(t_ms)}): {share:.0%} (altcoins here: "
                f"{', '.join(altcoins)})."]
    return out + [""]
