"""``altseason report``: PNG charts and a Markdown summary of the dashboard's views.

The recorded data (``data/replay/``) is replayed offline, without a broker: the events of
``producers.replay.load_replay`` go, in event-time order, through the router of the worker
(``streams.routing.route``) and the same pure classes the agents drive (``streams/``), so the
numbers are the pipeline's (the score's up to the order in which the live agents happen to
deliver its components). The charts are drawn by ``altseason.report_charts``.

Left out offline, because their rules live only inside agents (``agents/``): the
``long_crowding`` signal and the altcoin cross-section behind the score's ``long_bias``
(``agents/longshort.py``), and the netflow bands, their signals and the score's
``accumulation`` (``agents/netflow.py``). Bars are not part of the report.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from foundation.config import Settings
from foundation.errors import EventOrderError, SchemaError
from producers.replay import ReplayEvent, load_replay
from schemas.decode import parse_utc, to_ms
from schemas.records import (
    CryptoTick,
    ExchangeNetflow,
    LongShortRatio,
    MarketCap,
    Observation,
    SeriesPoint,
    Signal,
)
from streams.correlation import (
    CorrelationParams,
    CorrelationUpdate,
    PairCorrelation,
    correlation_signals,
)
from streams.drawdown import Drawdown, share_below
from streams.hysteresis import Cooldown
from streams.index_regime import IndexRegime, RiskOnParams
from streams.longshort import RatioHistory, coin_of
from streams.netflow import DAY_MS, RollingNetflow, imbalance
from streams.routing import route
from streams.score import AltseasonScore, ScoreUpdate

HOUR_MS = 3_600_000

@dataclass(frozen=True)
class SignalRow:
    """A fired signal, as far as the report needs it."""

    type: str
    subject: str
    t_ms: int
    value: float
    message: str


@dataclass(frozen=True)
class ScorePoint:
    """The altseason score after one component update."""

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
    history: RatioHistory
    rows: list[tuple[int, float, float | None]] = field(default_factory=list)

    @property
    def coin(self) -> str:
        return coin_of(self.symbol)


@dataclass
class ReportData:
    """Everything the offline replay computed, for the charts and the summary."""

    settings: Settings
    events: int = 0
    first_t_ms: int | None = None
    last_t_ms: int | None = None
    events_by_topic: Counter[str] = field(default_factory=Counter)
    #: series name (RUT, SPX, TOTAL, TOTAL3, BTC, ETH, ...) -> (t_ms, value) of its closes
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    #: RUT's index snapshots (IndexRegime): symbol day close ath ath_day pct_from_ath ytd_change
    index: list[dict[str, Any]] = field(default_factory=list)
    #: RUT/SPX streak snapshots (IndexRegime): day streak longest_since ... risk_on
    streaks: list[dict[str, Any]] = field(default_factory=list)
    #: pair -> window -> (t_ms, correlation of daily log returns)
    correlations: dict[str, dict[int, list[tuple[int, float]]]] = field(default_factory=dict)
    #: pair -> its latest aligned point
    latest_correlation: dict[str, CorrelationUpdate] = field(default_factory=dict)
    #: "exchange|symbol|variant" -> series
    longshort: dict[str, LongShortSeries] = field(default_factory=dict)
    #: coin -> (rank, market cap, t_ms) from coin market caps that carry a rank
    coin_ranks: dict[str, tuple[int, float, int]] = field(default_factory=dict)
    #: "exchange:token" -> (t_ms, {window: netflow}, imbalance over the signal window)
    netflows: dict[str, list[tuple[int, dict[str, float], float | None]]] = field(
        default_factory=dict)
    #: coin -> its drawdown from its all-time high
    drawdowns: dict[str, Drawdown] = field(default_factory=dict)
    #: (t_ms, share of altcoins deep below their high)
    breadth: list[tuple[int, float]] = field(default_factory=list)
    score: list[ScorePoint] = field(default_factory=list)
    latest_score: ScoreUpdate | None = None
    signals: list[SignalRow] = field(default_factory=list)
    #: rejected events per agent (as the worker would dead-letter them)
    dead_letters: Counter[str] = field(default_factory=Counter)

    def signal_counts(self) -> Counter[str]:
        return Counter(s.type for s in self.signals)


class OfflineReplay:
    """Feeds input events through ``streams.routing.route`` and the pure classes of
    ``streams/`` the way the agents drive them, keeping what the report shows."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        config = settings.signals
        self.config = config
        self.data = ReportData(settings)
        self.correlation_params = CorrelationParams(
            windows=config.correlation_windows,
            lookahead_ms=int(config.alignment_lookahead_hours * HOUR_MS),
            max_staleness_ms=int(config.alignment_max_staleness_hours * HOUR_MS),
            low=config.correlation_low,
            high=config.correlation_high,
            hysteresis=config.correlation_hysteresis,
            cooldown_ms=int(config.correlation_cooldown_days * 24 * HOUR_MS),
            levels=config.correlation_levels,
        )
        self.score_pair, self.score_window = config.score_correlation_target
        self.pairs: dict[str, PairCorrelation] = {}
        self.regimes: dict[str, IndexRegime] = {}
        self.flows: dict[str, RollingNetflow] = {}
        self.netflow_windows = {f"{days}d": days * DAY_MS for days in config.netflow_windows_days}
        self.altseason = AltseasonScore(
            config.score_weight_map,
            max_age_ms=int(config.score_max_age_days * DAY_MS),
            hysteresis=config.score_hysteresis,
            levels=(("cold", -math.inf), ("warming", config.score_warming),
                    ("altseason", config.score_altseason)),
        )
        self.score_cooldown = Cooldown(int(config.score_cooldown_hours * HOUR_MS))

    def apply(self, event: ReplayEvent) -> None:
        """One input event, through validation and routing to each view that uses it."""
        data = self.data
        data.events += 1
        data.events_by_topic[event.topic] += 1
        data.first_t_ms = event.t_ms if data.first_t_ms is None else data.first_t_ms
        data.last_t_ms = event.t_ms
        try:
            routed = route(event.topic, event.key.encode(), event.record.dumps(), self.config)
        except SchemaError:
            data.dead_letters["route_inputs"] += 1
            return
        for agent, _key, record in routed:
            if agent == "correlation":
                assert isinstance(record, SeriesPoint)
                self._correlate(record)
            elif agent == "regime":
                assert isinstance(record, SeriesPoint)
                self._regime(record)
            elif agent == "longshort":
                assert isinstance(record, Observation)
                self._long_short(record)
            elif agent == "netflow":
                assert isinstance(record, Observation)
                self._netflow(record)
            elif agent == "drawdown":
                assert isinstance(record, Observation)
                self._drawdown(record)

    def _keep_series(self, series: str, t_ms: int, value: float) -> None:
        rows = self.data.series.setdefault(series, [])
        if not rows or rows[-1][0] < t_ms:  # one event reaches several pairs
            rows.append((t_ms, value))

    def _signal(self, signal: Signal) -> None:
        self.data.signals.append(SignalRow(signal.type, signal.subject,
                                           to_ms(parse_utc(signal.event_time)), signal.value,
                                           signal.message))

    def _correlate(self, point: SeriesPoint) -> None:
        """As ``agents/correlation.py``: one PairCorrelation per pair."""
        self._keep_series(point.series, point.t_ms, point.value)
        pair = self.pairs.setdefault(point.pair,
                                     PairCorrelation(point.pair, self.correlation_params))
        try:
            updates = pair.add(point.role, point.t_ms, point.value)
        except EventOrderError:
            self.data.dead_letters["correlate"] += 1
            return
        by_window = self.data.correlations.setdefault(point.pair, {})
        for update in updates:
            self.data.latest_correlation[update.pair] = update
            for window, r in update.correlations.items():
                if r is not None and math.isfinite(r):
                    by_window.setdefault(window, []).append((update.t_ms, r))
            for signal in correlation_signals(update, self.correlation_params):
                self._signal(signal)
            r = update.correlations.get(self.score_window)
            if update.pair == self.score_pair and r is not None:
                self._component("correlation", update.t_ms, r)

    def _regime(self, point: SeriesPoint) -> None:
        """As ``agents/regime.py``: RUT against SPX on session closes."""
        if point.role == "intraday":  # only the session view, which the report does not show
            return
        self._keep_series(point.series, point.t_ms, point.value)
        config = self.config
        regime = self.regimes.get(point.pair)
        if regime is None:
            regime = self.regimes[point.pair] = IndexRegime(
                config.regime_index, config.regime_benchmark, config.ath_breakout_min_gap_days,
                config.streak_min_days, config.ath_min_history_days,
                RiskOnParams(config.risk_on_max_pct_from_ath, config.relative_strength_days,
                             config.risk_on_cooldown_days))
        try:
            result = regime.add(point.role, point.t_ms, point.value)
        except (EventOrderError, ValueError):
            self.data.dead_letters["track_regime"] += 1
            return
        if result.index_snapshot:
            self.data.index.append({**result.index_snapshot, "t_ms": point.t_ms})
        if result.streak_snapshot:
            self.data.streaks.append({**result.streak_snapshot, "t_ms": point.t_ms})
        for signal in result.signals:
            self._signal(signal)
        for component, raw in result.components:
            self._component(component, point.t_ms, raw)

    def _long_short(self, observation: Observation) -> None:
        """The per-series ratio history of ``agents/longshort.py`` (z-scores only) and the
        coins' market-cap ranks."""
        if observation.kind == "market_cap":
            cap = MarketCap.from_data(observation.event)
            if cap.rank is not None:
                self.data.coin_ranks[cap.asset] = (cap.rank, cap.market_cap, observation.t_ms)
            return
        ratio = LongShortRatio.from_data(observation.event)
        key = f"{ratio.exchange}|{ratio.symbol}|{ratio.variant}"
        series = self.data.longshort.get(key)
        if series is None:
            series = self.data.longshort[key] = LongShortSeries(
                ratio.exchange, ratio.symbol, ratio.variant, ratio.period,
                RatioHistory(self.config.longshort_window, self.config.longshort_min_periods))
        try:
            z = series.history.update(observation.t_ms, ratio.ratio)
        except (EventOrderError, ValueError):
            self.data.dead_letters["track_long_short"] += 1
            return
        series.rows.append((observation.t_ms, ratio.ratio, z))

    def _netflow(self, observation: Observation) -> None:
        """The rolling sums of ``agents/netflow.py`` (no bands: their rule is in the agent)."""
        flow = ExchangeNetflow.from_data(observation.event)
        flows = self.flows.setdefault(observation.subject, RollingNetflow(self.netflow_windows))
        try:
            sums = flows.update(observation.t_ms, flow.inflow, flow.outflow)
        except (EventOrderError, ValueError):
            self.data.dead_letters["track_netflows"] += 1
            return
        window = f"{self.config.netflow_signal_window_days}d"
        self.data.netflows.setdefault(observation.subject, []).append(
            (observation.t_ms, sums, imbalance(flows.inflow(window), flows.outflow(window))))

    def _drawdown(self, observation: Observation) -> None:
        """As ``agents/drawdown.py``: each coin's drawdown, and the altcoins' breadth."""
        tick = CryptoTick.from_data(observation.event)
        drawdown = self.data.drawdowns.setdefault(observation.subject, Drawdown())
        try:
            drawdown.update(observation.t_ms, tick.price)
        except (EventOrderError, ValueError):
            self.data.dead_letters["track_drawdowns"] += 1
            return
        drawdowns = {coin: d.drawdown for coin, d in self.data.drawdowns.items()
                     if d.drawdown is not None}
        share = share_below(drawdowns, -self.config.drawdown_deep,
                            exclude=self.config.non_altcoins)
        if share is None:
            return
        as_of = max(d.last_t_ms for d in self.data.drawdowns.values() if d.last_t_ms)
        self.data.breadth.append((as_of, share))
        self._component("breadth", as_of, share)

    def _component(self, component: str, t_ms: int, raw: float) -> None:
        """As ``agents/score.py``: the score, and a signal when its band changes (cooldown)."""
        try:
            update = self.altseason.update(component, t_ms, raw)
        except (EventOrderError, ValueError):
            self.data.dead_letters["track_score"] += 1
            return
        if update is None:
            return
        self.data.latest_score = update
        self.data.score.append(ScorePoint(
            update.t_ms, update.score, update.band,
            {name: c["contribution"] for name, c in update.contributions.items()},
            {name: c["component"] for name, c in update.contributions.items()},
            tuple(update.missing)))
        if update.changed and self.score_cooldown.ready("band", update.t_ms):
            self.score_cooldown.fired("band", update.t_ms)
            self.data.signals.append(SignalRow(
                "altseason_score", "altseason", update.t_ms, update.score,
                f"Altseason score {update.score:.0f}/100: {update.band} "
                f"(was {update.previous_band})."))


def replay_offline(events: Sequence[ReplayEvent], settings: Settings,
                   progress: bool = True) -> ReportData:
    """Every event through the offline views, in the given (event-time) order."""
    replay = OfflineReplay(settings)
    with tqdm(events, total=len(events), unit="ev", desc="report: replay", file=sys.stderr,
              disable=not progress, mininterval=0.5) as bar:
        for event in bar:
            replay.apply(event)
    replay.data.signals.sort(key=lambda s: (s.t_ms, s.type, s.subject))
    return replay.data


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
    out += ["", "Not replayed offline: `long_crowding` and `netflow_accumulation` / "
            "`netflow_distribution` (their rules live only in `agents/longshort.py` and "
            "`agents/netflow.py`). The live pipeline runs each agent at its own pace, so its "
            "counts can differ from this strictly event-time-ordered replay (mostly "
            "`altseason_score`)."]
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
        "order, each validated and routed by `streams.routing.route` as the worker does; no "
        "Kafka, Redis or Faust is involved.",
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
        "- Long/short (`streams.longshort.RatioHistory`): each series' z-score against its "
        f"last {config.longshort_window} readings; the rank chart shows each coin's latest "
        "ratio.",
        "- Drawdowns (`streams.drawdown`): each reference coin's drawdown from its high, and "
        f"the share of altcoins (not {', '.join(config.non_altcoins)}) more than "
        f"{config.drawdown_deep:.0%} below it (`breadth`).",
        f"- Score (`streams.score.AltseasonScore`): components `index_ath`, "
        f"`relative_strength`, `correlation` ({pair} {window}d) and `breadth`, each fresh "
        f"within {config.score_max_age_days:g} days; bands warming >= "
        f"{config.score_warming:g}, altseason >= {config.score_altseason:g} (hysteresis "
        f"{config.score_hysteresis:g}, cooldown {config.score_cooldown_hours:g} h). "
        "`long_bias` and `accumulation` are not fed offline.",
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
        update = data.latest_correlation.get(pair)
        if update is None:
            rows.append([f"`{pair}`", "-"] + ["-"] * (2 * len(windows) + 1))
            continue
        rows.append([f"`{pair}`", day_of(update.t_ms)]
                    + [_num(update.correlations.get(w), "+.4f") for w in windows]
                    + [update.regimes.get(w) or "-" for w in windows]
                    + [_num(update.betas.get(windows[-1]), ".3f")])
    out += _table(header, rows)
    out += ["", "Each pair's latest value is as of the last anchor close both series cover; "
            "the series end at different dates."]
    return out + [""]


def _score_section(data: ReportData) -> list[str]:
    config = data.settings.signals
    out = ["### Altseason score", ""]
    update = data.latest_score
    if update is None:
        return out + ["No score (fewer than two fresh components).", ""]
    out += [f"Score **{update.score:.1f}**/100, band **{update.band}**, as of "
            f"{day_of(update.t_ms)} (warming >= {config.score_warming:g}, altseason >= "
            f"{config.score_altseason:g}).", ""]
    rows = [[f"`{name}`", _num(c["raw"], "+.4f"), _num(c["component"], ".3f"),
             _num(c["normalized_weight"], ".3f"), _num(c["contribution"], ".1f")]
            for name, c in update.contributions.items()]
    out += _table(["component", "raw", "0..1", "weight", "points"], rows)
    if update.missing:
        out += ["", "Missing (not fresh or not fed): " + ", ".join(
            f"`{m}`" for m in update.missing) + "."]
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
                     _num(ratio, ".2f"), _num(z, "+.2f"), str(rank[0]) if rank else "-",
                     "no" if series.coin in config.non_altcoins else "yes"])
    out += _table(["series", "variant", "latest", "ratio", "z-score", "rank", "altcoin"], rows)
    coins = latest_ratio_by_coin(data)
    ranked = [c for c in coins if c in data.coin_ranks]
    out += ["", f"{len(coins)} coin(s) have ratios, {len(ranked)} of them a market-cap rank."]
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
                    + [_num(share, "+.3f")])
    out += _table(["exchange:token", "as of"] + [f"netflow {w}" for w in windows]
                  + [f"imbalance {config.netflow_signal_window_days}d"], rows)
    return out + [""]


def _drawdown_section(data: ReportData) -> list[str]:
    out = ["### Drawdowns", ""]
    if not data.drawdowns:
        return out + ["No reference prices.", ""]
    rows = [[f"`{coin}`", day_of(d.last_t_ms), _pct(d.drawdown), _num(d.ath),
             day_of(d.ath_t_ms)] for coin, d in sorted(data.drawdowns.items())]
    out += _table(["coin", "as of", "from the high", "high", "high on"], rows)
    if data.breadth:
        t_ms, share = data.breadth[-1]
        altcoins = [c for c in sorted(data.drawdowns)
                    if c not in data.settings.signals.non_altcoins]
        out += ["", f"Share of altcoins more than {data.settings.signals.drawdown_deep:.0%} "
                f"below their high ({day_of(t_ms)}): {share:.0%} (altcoins here: "
                f"{', '.join(altcoins)})."]
    return out + [""]
