"""The report's PNG charts, drawn from ``altseason.report.ReportData`` (matplotlib, Agg).

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas directly, never with
pyplot, so drawing needs no display and leaves no global state behind. Each chart is
1400 x 800 pixels.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from tqdm import tqdm

from altseason.report import LongShortSeries, ReportData, ScorePoint, latest_ratio_by_coin
from streams.score import COMPONENTS

SIZE_IN = (14.0, 8.0)
DPI = 100
SIGNAL_COLORS = {
    "index_ath": "tab:red",
    "outperformance_streak": "tab:blue",
    "risk_on_rotation": "tab:orange",
    "correlation_regime": "tab:purple",
    "long_crowding": "tab:brown",
    "netflow_accumulation": "tab:green",
    "netflow_distribution": "tab:olive",
    "altseason_score": "black",
}
COMPONENT_COLORS = dict(zip(COMPONENTS, ("tab:red", "tab:blue", "tab:purple", "tab:brown",
                                         "tab:green", "tab:gray"), strict=True))
SERIES_NAMES = {"TOTAL": "total crypto market cap", "TOTAL3": "altcoins ex BTC and ETH",
                "TOTAL2": "crypto ex BTC", "BTC": "bitcoin", "ETH": "ether"}
BAND_COLORS = {"cold": "#dbe9f6", "warming": "#fde8c8", "altseason": "#f8d0cc"}


def _dates(t_ms: Sequence[int]) -> np.ndarray:
    return np.asarray(t_ms, dtype="int64").astype("datetime64[ms]")


def _new_figure() -> Figure:
    fig = Figure(figsize=SIZE_IN, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _date_axis(ax: Axes) -> None:
    locator = AutoDateLocator(minticks=4, maxticks=12)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.grid(True, alpha=0.3)


def _usd(value: float, _pos: object = None) -> str:
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if abs(value) >= size:
            return f"${value / size:g}{suffix}"
    return f"${value:g}"


def _no_data(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=12,
            color="0.4", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def rut_vs_total(data: ReportData, path: Path) -> None:
    """The index's close (left axis) against the total crypto market cap (right, log)."""
    config = data.settings.signals
    fig = _new_figure()
    ax = fig.add_subplot()
    index = config.regime_index
    handles: list[Artist] = []
    if data.index:
        t = _dates([s["t_ms"] for s in data.index])
        handles += ax.plot(t, [s["close"] for s in data.index], color="tab:blue", lw=1.2,
                           label=f"{index} close")
        handles += ax.plot(t, [s["ath"] for s in data.index], color="tab:blue", lw=0.8,
                           ls=":", label=f"{index} all-time high so far")
    breakouts = [s for s in data.signals if s.type == "index_ath"]
    if breakouts:
        handles.append(ax.scatter(_dates([s.t_ms for s in breakouts]),
                                  [s.value for s in breakouts], marker="^", s=90,
                                  color="tab:red", edgecolor="black", zorder=5,
                                  label=f"ATH breakout ({len(breakouts)})"))
        last = breakouts[-1]
        ax.annotate(f"last breakout\n{_day(last.t_ms)}: {last.value:,.2f}",
                    (_dates([last.t_ms])[0], last.value), xytext=(-20, -90),
                    textcoords="offset points", fontsize=10, ha="right",
                    bbox={"boxstyle": "round", "fc": "white", "ec": "0.6"},
                    arrowprops={"arrowstyle": "->", "color": "0.3"})
    ax.set_ylabel(f"{index} close (index points)", color="tab:blue")
    ax.tick_params(axis="y", labelcolor="tab:blue")
    right = ax.twinx()
    caps = (("TOTAL", "total crypto market cap (CoinGecko)", "tab:orange", "-"),
            ("TOTAL3", "altcoins ex BTC and ETH (TOTAL3, CoinMarketCap)", "tab:green", "--"))
    for series, label, color, style in caps:
        values = data.series.get(series)
        if values:
            handles += right.plot(_dates([t for t, _ in values]), [v for _, v in values],
                                  color=color, lw=1.0, ls=style, label=label)
    right.set_yscale("log")
    right.yaxis.set_major_formatter(FuncFormatter(_usd))
    right.set_ylabel("crypto market cap, USD (log scale)", color="tab:orange")
    right.tick_params(axis="y", labelcolor="tab:orange")
    _date_axis(ax)
    ax.set_title(f"{index} (Russell 2000) close vs total crypto market cap", fontsize=14)
    ax.legend(handles=handles, loc="upper left", fontsize=10, framealpha=0.9)
    fig.savefig(path)


def correlations(data: ReportData, path: Path) -> None:
    """Rolling correlation of daily log returns per pair and window, with the bands."""
    config = data.settings.signals
    pairs = list(config.correlation_pairs)
    fig = _new_figure()
    cols = 2 if len(pairs) > 1 else 1
    rows = math.ceil(len(pairs) / cols)
    styles = ("-", "-", "--", ":")
    colors = ("tab:blue", "tab:red", "tab:green", "tab:purple")
    for i, pair in enumerate(pairs):
        ax = fig.add_subplot(rows, cols, i + 1)
        anchor, other = pair.split("~")
        by_window = data.correlations.get(pair, {})
        times = [t for values in by_window.values() for t, _ in values]
        span = f": {_day(min(times))} .. {_day(max(times))}" if times else ""
        ax.set_title(f"{anchor} vs {other} ({SERIES_NAMES.get(other, other)}){span}",
                     fontsize=12)
        if not by_window:
            _no_data(ax, f"no aligned {anchor}/{other} points")
            continue
        ax.axhspan(config.correlation_high, 1.0, color="tab:green", alpha=0.08)
        ax.axhspan(-1.0, config.correlation_low, color="tab:red", alpha=0.06)
        ax.axhline(config.correlation_high, color="tab:green", lw=1, ls="--",
                   label=f"coupled >= {config.correlation_high:g}")
        ax.axhline(config.correlation_low, color="tab:red", lw=1, ls="--",
                   label=f"decoupled <= {config.correlation_low:g}")
        ax.axhline(0, color="0.5", lw=0.6)
        for j, window in enumerate(config.correlation_windows):
            values = by_window.get(window, [])
            if values:
                ax.plot(_dates([t for t, _ in values]), [r for _, r in values],
                        color=colors[j % len(colors)], ls=styles[j % len(styles)],
                        lw=1.4 if j else 0.9, alpha=0.75 if j == 0 else 1.0,
                        label=f"{window}d (last {values[-1][1]:+.2f})")
        ax.set_ylim(-1, 1)
        ax.set_ylabel("correlation")
        _date_axis(ax)
        ax.legend(loc="lower left", fontsize=8, ncols=2, framealpha=0.9)
    fig.suptitle("Rolling correlation of daily log returns (as-of aligned to the anchor's "
                 f"close + {config.alignment_lookahead_hours:g} h), hysteresis "
                 f"{config.correlation_hysteresis:g}", fontsize=14)
    fig.savefig(path)


def rank_vs_longshort(data: ReportData, path: Path) -> None:
    """Each coin's latest long/short ratio against its market-cap rank; coins without a rank
    on a strip of their own; each coin's ratio history on the right."""
    config = data.settings.signals
    coins = latest_ratio_by_coin(data)
    ranked = {c: s for c, s in coins.items() if c in data.coin_ranks}
    unranked = {c: s for c, s in coins.items() if c not in data.coin_ranks}
    histories = sorted(coins.items(), key=lambda cs: -cs[1].rows[-1][0])[:4]
    fig = _new_figure()
    grid = fig.add_gridspec(max(1, len(histories)), 3,
                            width_ratios=(3.0 if ranked else 2.2, 1.4, 2.4))
    ax = fig.add_subplot(grid[:, 0])
    strip = fig.add_subplot(grid[:, 1], sharey=ax)
    ratios = [s.rows[-1][1] for s in coins.values()]
    top = max([2.0, *ratios]) * 1.15
    for axis in (ax, strip):
        axis.axhspan(1.0, top, color="tab:green", alpha=0.06)
        axis.axhspan(0, 1.0, color="tab:red", alpha=0.06)
        axis.axhline(1.0, color="black", lw=1.2, ls="--")
        axis.grid(True, alpha=0.3)
    ax.text(0.02, 1.0, "ratio = 1", fontsize=10, transform=ax.get_yaxis_transform(),
            va="bottom")
    ax.text(0.98, 0.98, "more long than short accounts", fontsize=9, ha="right", va="top",
            transform=ax.transAxes, color="tab:green")
    ax.text(0.98, 0.02, "more short than long accounts", fontsize=9, ha="right",
            va="bottom", transform=ax.transAxes, color="tab:red")
    for coin, series in sorted(ranked.items()):
        rank = data.coin_ranks[coin][0]
        _coin_point(ax, rank, series, data, xytext=(6, 4), ha="left")
    max_rank = max([10, *(data.coin_ranks[c][0] for c in ranked)])
    cross = data.longshort_cross.get(config.longshort_variant)
    if cross is not None and cross["ranked_coins"]:
        # the longshort view's cross-section (mean over exchanges of each altcoin's recent
        # ratio), as of its newest ratio
        spearman, slope = cross["spearman_ratio_vs_rank"], cross["slope_log_ratio_per_rank"]
        ax.text(0.02, 0.98, f"longshort-cross view, {_day(cross['t_ms'])}:\n"
                f"{cross['ranked_coins']} ranked altcoins, Spearman "
                f"{'-' if spearman is None else f'{spearman:+.2f}'}\nln(ratio) per rank "
                f"{'-' if slope is None else f'{slope:+.4f}'}", transform=ax.transAxes,
                ha="left", va="top", fontsize=9,
                bbox={"boxstyle": "round", "fc": "white", "ec": "tab:orange"})
    ax.set_xlim(0.5, max_rank + 0.5)
    ax.set_ylim(0, top)
    ax.set_xlabel("market-cap rank (1 = largest)")
    ax.set_ylabel(f"long/short ratio ({config.longshort_variant.replace('_', ' ')}), latest")
    if not ranked:
        ax.text(0.5, 0.3, "no coin has both a long/short ratio\nand a market-cap rank in the "
                "data\n(ranks come from coin market caps,\nnot from the aggregate totals)",
                transform=ax.transAxes, ha="center", va="center", fontsize=11, color="0.35")
    ax.set_title("Rank vs Long/Short ratio (one point per coin)", fontsize=13)
    for i, (_coin, series) in enumerate(sorted(unranked.items())):
        _coin_point(strip, i, series, data, xytext=(0, -12), ha="center")
    strip.set_xlim(-0.6, max(len(unranked), 1) - 0.4)
    strip.set_xticks([])
    strip.tick_params(axis="y", labelleft=False)
    strip.set_title("coins without a rank", fontsize=11)
    for i, (coin, series) in enumerate(histories):
        hx = fig.add_subplot(grid[i, 2])
        hx.plot(_dates([t for t, _, _ in series.rows]), [r for _, r, _ in series.rows],
                color="tab:blue", lw=1)
        hx.axhline(1.0, color="black", lw=0.8, ls="--")
        hx.set_ylim(bottom=0)
        hx.set_ylabel("ratio")
        hx.set_title(f"{coin} on {series.exchange} ({series.period}), "
                     f"{len(series.rows):,} readings", fontsize=10)
        _date_axis(hx)
    if not coins:
        _no_data(ax, "no long/short ratios in the data")
    fig.savefig(path)


def _coin_point(ax: Axes, x: float, series: LongShortSeries, data: ReportData,
                xytext: tuple[float, float], ha: str) -> None:
    """A coin's latest ratio: filled for an altcoin, hollow for one the views leave out."""
    t_ms, ratio, _ = series.rows[-1]
    altcoin = series.coin not in data.settings.signals.non_altcoins
    ax.scatter([x], [ratio], s=80, zorder=5, color="tab:blue" if altcoin else "white",
               edgecolor="tab:blue", lw=1.5)
    label = f"{series.coin} {ratio:.2f}\n{series.exchange}\n{_day(t_ms)}"
    if not altcoin:
        label += "\n(not an altcoin)"
    ax.annotate(label, (x, ratio), xytext=xytext, textcoords="offset points", ha=ha,
                va="top" if xytext[1] < 0 else "bottom", fontsize=9)


def netflows(data: ReportData, path: Path) -> None:
    """Netflow over the signal window per exchange and token (negative: accumulation)."""
    config = data.settings.signals
    window = f"{config.netflow_signal_window_days}d"
    fig = _new_figure()
    ax = fig.add_subplot()
    for key, rows in sorted(data.netflows.items()):
        ax.plot(_dates([t for t, _, _ in rows]), [sums[window] for _, sums, _ in rows],
                lw=1.2, label=key)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel(f"netflow over {window} (tokens; < 0: withdrawn, accumulation)")
    ax.set_title(f"Exchange netflows over {window}", fontsize=14)
    _date_axis(ax)
    ax.legend(loc="upper left", fontsize=9)
    fig.savefig(path)


def altseason_score(data: ReportData, path: Path) -> None:
    """The score over time as the points each component contributes (stacked), its bands,
    and the band-change signals; below, each component's 0..1 value."""
    config = data.settings.signals
    fig = _new_figure()
    grid = fig.add_gridspec(2, 1, height_ratios=(2.2, 1.0))
    ax = fig.add_subplot(grid[0])
    if not data.score:
        _no_data(ax, "no score: fewer than two fresh components")
        fig.savefig(path)
        return
    points = sorted(data.score, key=lambda p: p.t_ms)
    # the last score of each UTC day; it holds over days without one (weekends), up to the
    # components' maximum age, and is a gap (NaN) beyond
    days = [t_ms // 86_400_000 for t_ms in (p.t_ms for p in points)]
    span = list(range(days[0], days[-1] + 1))
    last_of_day = dict(zip(days, points, strict=True))
    held: ScorePoint | None = None
    held_day = days[0]
    for d in span:
        if d in last_of_day:
            held, held_day = last_of_day[d], d
        elif held is not None and d - held_day <= config.score_max_age_days:
            last_of_day[d] = held
    x = _dates([d * 86_400_000 for d in span])
    used = [c for c in COMPONENTS if any(c in p.points for p in points)]
    stacks = [np.array([last_of_day[d].points.get(c, 0.0) if d in last_of_day else np.nan
                        for d in span]) for c in used]
    score = np.array([last_of_day[d].score if d in last_of_day else np.nan for d in span])
    for name, low, high in (("cold", 0, config.score_warming),
                            ("warming", config.score_warming, config.score_altseason),
                            ("altseason", config.score_altseason, 100)):
        ax.axhspan(low, high, color=BAND_COLORS[name], alpha=0.6, lw=0)
        ax.text(1.005, (low + high) / 2, name, transform=ax.get_yaxis_transform(),
                va="center", fontsize=10)
    ax.stackplot(x, *stacks, labels=[f"{c} points" for c in used],
                 colors=[COMPONENT_COLORS[c] for c in used], alpha=0.55, lw=0)
    ax.plot(x, score, color="black", lw=0.8, label="score")
    ax.axhline(config.score_warming, color="tab:orange", ls="--", lw=1)
    ax.axhline(config.score_altseason, color="tab:red", ls="--", lw=1)
    fired = [s for s in data.signals if s.type == "altseason_score"]
    if fired:
        ax.scatter(_dates([s.t_ms for s in fired]), [s.value for s in fired], s=18,
                   color="black", zorder=5, label=f"altseason_score signal ({len(fired)})")
    ax.set_ylim(0, 100)
    ax.set_ylabel("score (0-100), stacked by component")
    ax.set_title(f"Altseason score (last of each day): bands warming >= "
                 f"{config.score_warming:g}, altseason >= {config.score_altseason:g}",
                 fontsize=14)
    ax.legend(loc="upper left", fontsize=9, ncols=3, framealpha=0.9)
    _date_axis(ax)
    bx = fig.add_subplot(grid[1], sharex=ax)
    for c in used:
        values = np.array([last_of_day[d].values.get(c, np.nan) if d in last_of_day else np.nan
                           for d in span])
        bx.plot(x, values, color=COMPONENT_COLORS[c], lw=0.7, alpha=0.85, label=c)
    bx.set_ylim(-0.05, 1.05)
    bx.set_ylabel("component (0..1)")
    bx.legend(loc="upper left", fontsize=8, ncols=len(used), framealpha=0.9)
    _date_axis(bx)
    fig.savefig(path)


def signals(data: ReportData, path: Path) -> None:
    """When each type of signal fired (one row per type) and how many per year."""
    fig = _new_figure()
    grid = fig.add_gridspec(2, 1, height_ratios=(1.0, 1.2))
    ax = fig.add_subplot(grid[0])
    counts = data.signal_counts()
    kinds = sorted(counts, key=lambda k: -counts[k])
    if not kinds:
        _no_data(ax, "no signals")
        fig.savefig(path)
        return
    for row, kind in enumerate(kinds):
        times = [s.t_ms for s in data.signals if s.type == kind]
        ax.scatter(_dates(times), [row] * len(times), marker="|", s=250,
                   color=SIGNAL_COLORS.get(kind, "tab:gray"))
    ax.set_yticks(range(len(kinds)), [f"{k} ({counts[k]})" for k in kinds])
    ax.set_ylim(-0.6, len(kinds) - 0.4)
    ax.invert_yaxis()
    ax.set_title(f"Signals over time: {len(data.signals)} in all, by type", fontsize=14)
    _date_axis(ax)
    bx = fig.add_subplot(grid[1], sharex=ax)
    years = np.array([int(str(d)[:4]) for d in _dates([s.t_ms for s in data.signals])])
    span = np.arange(years.min(), years.max() + 1)
    starts = np.array([f"{y}-01-01" for y in span], dtype="datetime64[ms]")
    width = np.timedelta64(300, "D")
    bottom = np.zeros(len(span))
    for kind in kinds:
        of_kind = years[[s.type == kind for s in data.signals]]
        per_year = np.array([np.count_nonzero(of_kind == y) for y in span], dtype=float)
        bx.bar(starts + np.timedelta64(182, "D"), per_year, width=width, bottom=bottom,
               color=SIGNAL_COLORS.get(kind, "tab:gray"), label=kind)
        bottom += per_year
    bx.set_ylabel("signals per year")
    bx.legend(loc="upper left", fontsize=9, ncols=3)
    _date_axis(bx)
    bx.set_xlim(date2num(starts[0]), date2num(np.datetime64(f"{span[-1] + 1}-01-01", "ms")))
    bx.set_title(f"per calendar year (the last one to {_day(data.signals[-1].t_ms)})",
                 fontsize=10)
    fig.savefig(path)


def _day(t_ms: int) -> str:
    return str(np.datetime64(t_ms, "ms").astype("datetime64[D]"))


#: file name -> drawing function; netflows only when there are any
CHART_FUNCTIONS: dict[str, Callable[[ReportData, Path], None]] = {
    "rut_vs_total.png": rut_vs_total,
    "correlations.png": correlations,
    "rank_vs_longshort.png": rank_vs_longshort,
    "netflows.png": netflows,
    "altseason_score.png": altseason_score,
    "signals.png": signals,
}


def draw_all(data: ReportData, out_dir: Path, progress: bool = True) -> list[str]:
    """Draw every chart the data allows into ``out_dir``; the file names drawn."""
    names = [n for n in CHART_FUNCTIONS if n != "netflows.png" or data.netflows]
    drawn = []
    for name in tqdm(names, desc="report: charts", unit="chart", file=sys.stderr,
                     disable=not progress):
        CHART_FUNCTIONS[name](data, out_dir / name)
        drawn.append(name)
    return drawn
