"""``altseason report``: the bundled data through the offline pipeline, its charts and its
summary, checked against values computed independently from the CSV files with pandas, and
its signals against the pipeline's own."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from altseason.report import ReportData, replay_offline, summary, write_report
from altseason.report_charts import draw_all
from foundation.config import Settings
from producers.replay import ReplayEvent, load_replay
from schemas.decode import iso_utc
from schemas.records import ExchangeNetflow, LongShortRatio, MarketCap, Signal
from streams.pipeline import OfflinePipeline
from streams.signals import signal_id

HOUR_MS = 3_600_000
CHARTS = ("rut_vs_total.png", "correlations.png", "rank_vs_longshort.png",
          "altseason_score.png", "signals.png")


@pytest.fixture(scope="module")
def data(replay_dir: Path) -> ReportData:
    return replay_offline(load_replay(replay_dir), Settings(), progress=False)


@pytest.fixture(scope="module")
def report(data: ReportData, replay_dir: Path,
           tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The charts and the summary, as ``write_report`` draws and writes them."""
    out = tmp_path_factory.mktemp("report")
    markdown = out / "README.md"
    markdown.write_text(summary(data, replay_dir, draw_all(data, out, progress=False)))
    return markdown, markdown.read_text()


def pipeline_signals(events: list[ReplayEvent]) -> list[Signal]:
    """The signals of ``events`` from the pipeline alone, without the report."""
    pipeline = OfflinePipeline(Settings().signals)
    for event in events:
        pipeline.feed(event.topic, event.key.encode(), event.record.dumps())
    pipeline.finish()
    return pipeline.signals


def test_write_report_writes_the_charts_and_the_summary(tmp_path: Path,
                                                        replay_dir: Path) -> None:
    markdown = write_report(tmp_path, replay_dir, Settings(), progress=False,
                            since=date(2025, 6, 1), until=date(2025, 9, 30))
    text = markdown.read_text()
    assert markdown == tmp_path / "README.md"
    assert "Offline replay of" in text and "not replayed" not in text.lower()
    for name in CHARTS:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def index_closes(replay_dir: Path, name: str) -> pd.DataFrame:
    """Date, Close and the close's time (16:00 New York) in UTC ms."""
    frame = pd.read_csv(replay_dir / name, usecols=["Date", "Close"])
    moment = pd.to_datetime(frame["Date"] + " 16:00").dt.tz_localize("America/New_York")
    frame["t_ms"] = moment.dt.tz_convert("UTC").dt.as_unit("ms").astype("int64")
    return frame


def correlation_from_csv(replay_dir: Path, other: pd.DataFrame, window: int) -> tuple[str, float]:
    """(anchor day, correlation) of the last final RUT close, as the README's Alignment says:
    the other series' last value at or before close + 7 h, skipped when older than 96 h, final
    once the other series has reached that time; log returns of consecutive aligned points."""
    rut = index_closes(replay_dir, "russell2000_rut.csv")
    rut["t_adj"] = rut["t_ms"] + 7 * HOUR_MS
    other = other[["t_ms", "value"]].sort_values("t_ms").rename(
        columns={"t_ms": "other_t", "value": "other"})
    merged = pd.merge_asof(rut, other, left_on="t_adj", right_on="other_t",
                           direction="backward")
    merged = merged[merged["other_t"].notna()
                    & (merged["t_adj"] - merged["other_t"] <= 96 * HOUR_MS)
                    & (merged["t_adj"] <= other["other_t"].max())]
    x = np.log(merged["Close"]).diff()
    y = np.log(merged["other"]).diff()
    r = x.rolling(window).corr(y)
    return merged["Date"].iloc[-1], float(r.iloc[-1])


def correlation_row(text: str, pair: str) -> list[str]:
    [line] = [line for line in text.splitlines() if line.startswith(f"| `{pair}` |")]
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_every_chart_is_a_png_of_the_right_size(report: tuple[Path, str]) -> None:
    markdown, text = report
    for name in CHARTS:
        path = markdown.parent / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        pixels = matplotlib.image.imread(path)
        assert pixels.shape[:2] == (800, 1400), name
        # drawn on, not blank: a good share of the pixels is not white
        assert np.mean(pixels[:, :, :3].min(axis=2) < 0.9) > 0.03, name
        assert path.stat().st_size > 30_000, name
        assert f"]({name})" in text
    # the bundled data has no netflows: no chart, and the summary says so
    assert not (markdown.parent / "netflows.png").exists()
    assert "the replayed data has no exchange netflows" in text


def test_rut_all_time_high_matches_the_csv(report: tuple[Path, str], replay_dir: Path) -> None:
    _, text = report
    rut = pd.read_csv(replay_dir / "russell2000_rut.csv")
    best = rut["Close"].idxmax()
    ath, ath_day = rut["Close"][best], rut["Date"][best]
    last, last_day = rut["Close"].iloc[-1], rut["Date"].iloc[-1]
    assert f"- Close {last_day}: **{last:,.2f}**" in text
    assert f"- All-time high: **{ath:,.2f}** on {ath_day}" in text
    assert f"- From the high: **{100 * (last / ath - 1):+.1f} %**" in text
    # the score's index_ath component is that same distance (as of the last RUT close)
    [raw] = re.findall(r"^\| `index_ath` \| ([-+][.\d]+) \|", section(text, "Altseason score"),
                       re.M)
    assert float(raw) == pytest.approx(last / ath - 1, abs=5e-5)


def section(text: str, title: str) -> str:
    """The Markdown under a heading, up to the next heading."""
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#)", text, re.M | re.S)
    assert match, title
    return match.group(1)


def signal_counts(text: str) -> Counter[str]:
    return Counter({kind: int(n) for kind, n in re.findall(r"^\| `(\w+)` \| (\d+) \|",
                                                           section(text, "Signals"), re.M)})


def test_signal_counts_match_the_replay(report: tuple[Path, str], data: ReportData) -> None:
    _, text = report
    counts = signal_counts(text)
    assert counts == data.signal_counts()
    [total] = re.findall(r"^\| \*\*total\*\* \| (\d+) \|", text, re.M)
    assert int(total) == sum(counts.values()) == len(data.signals)
    assert f"**{sum(counts.values()):,} signals**" in text


def test_every_signal_type_is_replayed_with_the_workers_ids(data: ReportData) -> None:
    """Every type the bundled data fires is in the report: long_crowding too (it has
    long/short ratios), no netflow_* (it has no netflows); with the worker's ids."""
    assert set(data.signal_counts()) == {
        "index_ath", "outperformance_streak", "risk_on_rotation", "correlation_regime",
        "long_crowding", "altseason_score"}
    assert len({s.id for s in data.signals}) == len(data.signals)
    for s in data.signals:
        assert s.id == signal_id(s.type, s.subject, s.event_time)
    assert [s.t_ms for s in data.signals] == sorted(s.t_ms for s in data.signals)


def test_the_reports_signals_are_the_pipelines(replay_dir: Path) -> None:
    """The report only collects: its signals are the pipeline's own, id for id (on the
    data since the long/short ratios begin, to keep the test short)."""
    events = load_replay(replay_dir, since=date(2024, 8, 1))
    data = replay_offline(events, Settings(), progress=False)
    expected = pipeline_signals(events)
    assert "long_crowding" in data.signal_counts()
    assert sorted(s.id for s in data.signals) == sorted(s.id for s in expected)
    assert Counter(s.type for s in expected) == data.signal_counts()


def test_breakouts_and_streaks_match_pandas(report: tuple[Path, str], replay_dir: Path) -> None:
    """index_ath and outperformance_streak counted from the CSV files by the README's rules."""
    _, text = report
    counts = signal_counts(text)
    rut = pd.read_csv(replay_dir / "russell2000_rut.csv", parse_dates=["Date"])
    breakouts = 0
    ath = ath_day = None
    first = rut["Date"].iloc[0]
    for day, close in zip(rut["Date"], rut["Close"], strict=True):
        if ath is None or close > ath:
            if ath is not None and (day - ath_day).days >= 30 and (day - first).days >= 730:
                breakouts += 1
            ath, ath_day = close, day
    assert counts["index_ath"] == breakouts
    assert breakouts > 10

    spx = pd.read_csv(replay_dir / "sp500_gspc.csv", parse_dates=["Date"])
    both = rut.merge(spx, on="Date", suffixes=("_rut", "_spx"))
    beat = (both["Close_rut"].pct_change() > both["Close_spx"].pct_change()).to_numpy()
    run = np.zeros(len(beat), dtype=int)
    for i in range(1, len(beat)):
        run[i] = run[i - 1] + 1 if beat[i] else 0
    assert counts["outperformance_streak"] == int(np.count_nonzero(run >= 5))
    assert f"longest in the data: {run.max()} " in text


def test_correlations_match_pandas(report: tuple[Path, str], replay_dir: Path) -> None:
    _, text = report
    btc = pd.read_csv(replay_dir / "btc_usd.csv", usecols=["Date", "Close"])
    btc["t_ms"] = (pd.to_datetime(btc["Date"]).dt.tz_localize("UTC") + timedelta(days=1)
                   ).dt.as_unit("ms").astype("int64") - 1
    day, r = correlation_from_csv(replay_dir, btc.rename(columns={"Close": "value"}), 30)
    row = correlation_row(text, "RUT~BTC")
    assert row[1] == day == "2026-02-23"
    assert float(row[2]) == pytest.approx(r, abs=6e-5)

    total = pd.read_csv(replay_dir / "crypto_total_mcap_coingecko.csv")
    total = total.rename(columns={"snapped_at": "t_ms", "market_cap": "value"})
    day, r = correlation_from_csv(replay_dir, total[["t_ms", "value"]], 90)
    row = correlation_row(text, "RUT~TOTAL")
    assert row[1] == day
    assert float(row[3]) == pytest.approx(r, abs=6e-5)


def test_score_points_add_up(report: tuple[Path, str]) -> None:
    _, text = report
    score_text = section(text, "Altseason score")
    [score] = re.findall(r"Score \*\*([\d.]+)\*\*/100", score_text)
    points = [float(p) for p in re.findall(r"^\| `\w+` \| [-+.\d]+ \| [.\d]+ \| [.\d]+ \| "
                                           r"([.\d]+) \|$", score_text, re.M)]
    assert len(points) >= 2
    assert sum(points) == pytest.approx(float(score), abs=0.051 * len(points))


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def synthetic_events() -> list[ReplayEvent]:
    """Four altcoins with ranks and long/short ratios, and two netflow series."""
    start = datetime(2025, 3, 1, tzinfo=UTC)
    events = []
    for rank, (coin, ratio) in enumerate((("ETH", 1.1), ("SOL", 1.6), ("XRP", 2.2),
                                          ("DOGE", 2.9)), start=2):
        cap = MarketCap(asset=coin, event_time=iso_utc(start), market_cap=1e9 / rank,
                        source="test", rank=rank)
        events.append(ReplayEvent(ms(start), "market-caps", coin, cap))
        for hour in range(1, 4):
            moment = start + timedelta(hours=hour)
            value = ratio + 0.01 * hour
            events.append(ReplayEvent(ms(moment), "long-short-ratios", f"okx:{coin}/USDT:USDT",
                                      LongShortRatio(
                exchange="okx", symbol=f"{coin}/USDT:USDT", event_time=iso_utc(moment),
                period="1h", variant="global_account", long_share=value / (1 + value),
                short_share=1 / (1 + value), ratio=value)))
    rng = np.random.default_rng(1)
    for token in ("BTC", "ETH"):
        for day in range(20):
            moment = start + timedelta(days=day)
            inflow, outflow = (float(v) for v in rng.uniform(0, 100, 2))
            events.append(ReplayEvent(ms(moment), "netflows", f"binance:{token}", ExchangeNetflow(
                exchange="binance", token=token, event_time=iso_utc(moment), window="1d",
                inflow=inflow, outflow=outflow, netflow=inflow - outflow)))
    return sorted(events, key=lambda e: (e.t_ms, e.topic, e.key))


def test_ranks_and_netflows_are_drawn_when_the_data_has_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = synthetic_events()
    data = replay_offline(events, Settings(), progress=True)
    assert "report: replay" in capsys.readouterr().err
    drawn = draw_all(data, tmp_path, progress=False)
    assert capsys.readouterr().err == ""
    assert "netflows.png" in drawn and "rank_vs_longshort.png" in drawn
    assert matplotlib.image.imread(tmp_path / "netflows.png").shape[:2] == (800, 1400)
    text = summary(data, tmp_path, drawn)
    assert "4 coin(s) have ratios, 4 of them a market-cap rank." in text
    # the netflow bands' signals come from the pipeline's netflow step, as the worker's
    assert {"netflow_accumulation", "netflow_distribution"} <= set(data.signal_counts())
    assert all(s.id == signal_id(s.type, s.subject, s.event_time) for s in data.signals)
    # the cross-section is the longshort view's: the altcoin ratios rise with the rank
    assert "4 ranked, Spearman of ratio vs rank +1.00" in text
    assert "](netflows.png)" in text
    # the 7-day netflow of the last day against pandas' time-based rolling window
    flows = pd.DataFrame([(e.t_ms, e.record.inflow - e.record.outflow) for e in events
                          if e.key == "binance:BTC"], columns=["t", "net"])
    flows.index = pd.to_datetime(flows["t"], unit="ms")
    expected = flows["net"].rolling("7D").sum().iloc[-1]
    row = next(line for line in text.splitlines() if line.startswith("| `binance:BTC` |"))
    assert float(row.split("|")[4].replace(",", "")) == pytest.approx(expected, abs=0.006)
