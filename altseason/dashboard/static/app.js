// The altseason dashboard page: renders GET /api/state and /api/history, then follows /ws.
// Plain browser JavaScript, no build step; charts are Chart.js 4 (static/vendor/).
"use strict";

(function () {
  const VIEWS = ["index", "session", "regime", "correlation", "longshort", "longshort-cross",
    "netflow", "drawdown", "breadth", "score"];
  const COLORS = { index: "#f5a524", crypto: "#4ea8ff", grid: "#223041", text: "#8a97a8",
    line: "#dbe2ea", green: "#34c77b", red: "#ef5d6f", violet: "#b48cff" };
  const PAIR_COLORS = ["#4ea8ff", "#f5a524", "#34c77b", "#ef5d6f", "#b48cff", "#2dd4bf"];
  const MAX_FEED = 200;
  const RENDER_EVERY_MS = 200;
  const RETRY_MIN_MS = 500;
  const RETRY_MAX_MS = 10000;

  // everything shown, kept so that a message can update one piece and a reconnect can
  // reload the rest
  const store = {
    config: null,
    prefix: "",
    views: {},
    rankings: {},
    signals: new Map(), // id -> signal
    feedOrder: [], // ids, newest first
    index: new Map(), // event time ms -> index close
    crypto: new Map(), // event time ms -> total market cap
    corr: new Map(), // pair -> Map(window -> Map(event time ms -> correlation))
    historyNote: "",
    lastUpdate: null,
  };
  const conn = { ws: null, open: false, redis: null, retryMs: RETRY_MIN_MS, loading: false,
    buffer: [], retryAt: null, everOpen: false };
  let corrWindow = null; // the window shown; null: the longest one with values
  let renderTimer = null;
  let feedRendered = new Set();
  let feedNeedsReset = true;

  const charts = {};
  // for the browser tests and for poking at the page from the console
  window.altseasonCharts = charts;
  window.altseasonDashboard = { store, conn, apply: (msg) => applyMessage(msg) };

  // ---------------------------------------------------------------- formatting
  const $ = (id) => document.getElementById(id);
  const isNum = (v) => typeof v === "number" && isFinite(v);
  const fmt = (v, digits = 2) => isNum(v)
    ? v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : "–";
  const pct = (v, digits = 1) => isNum(v) ? `${v >= 0 ? "+" : ""}${(v * 100).toFixed(digits)}%` : "–";
  function usd(v) {
    if (!isNum(v)) return "–";
    const a = Math.abs(v);
    if (a >= 1e12) return `$${(v / 1e12).toFixed(2)}T`;
    if (a >= 1e9) return `$${(v / 1e9).toFixed(1)}B`;
    if (a >= 1e6) return `$${(v / 1e6).toFixed(1)}M`;
    if (a >= 1e3) return `$${(v / 1e3).toFixed(1)}K`;
    return `$${v.toFixed(0)}`;
  }
  function amount(v) {
    if (!isNum(v)) return "–";
    const a = Math.abs(v);
    if (a >= 1e9) return `${(v / 1e9).toFixed(2)}B`;
    if (a >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
    if (a >= 1e3) return `${(v / 1e3).toFixed(1)}K`;
    return v.toFixed(1);
  }
  const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);
  const shortTime = (iso) => typeof iso === "string" ? iso.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, "Z") : "";
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function setKpi(id, value, detail, tone) {
    const box = $(id);
    const valueNode = box.querySelector(".kpi-value");
    valueNode.textContent = value;
    valueNode.className = "kpi-value" + (tone ? ` ${tone}` : "");
    box.querySelector(".kpi-detail").textContent = detail || "";
  }
  const tone = (v) => !isNum(v) ? "" : v > 0 ? "up" : v < 0 ? "down" : "";

  // 16:00 New York on a day, in ms: the event time of an index close (as the replay stamps it)
  const nyHour = new Intl.DateTimeFormat("en-US", { timeZone: "America/New_York", hour: "numeric", hourCycle: "h23" });
  function indexCloseMs(day) {
    const guess = Date.parse(`${day}T20:00:00Z`);
    return guess + (16 - Number(nyHour.format(guess))) * 3600e3;
  }
  // on a log axis Chart.js makes a tick per 1..9 x 10^n: label 1, 2 and 5 only
  function cryptoTick(v, count) {
    if (count < 12) return usd(v);
    const mantissa = Math.round(v / 10 ** Math.floor(Math.log10(v)));
    return [1, 2, 5].includes(mantissa) ? usd(v) : "";
  }
  function timeTick(span) {
    return (value) => {
      const iso = new Date(value).toISOString();
      return span > 3 * 365 * 864e5 ? iso.slice(0, 4) : span > 120 * 864e5 ? iso.slice(0, 7) : iso.slice(0, 10);
    };
  }
  const sortedPoints = (map) => Array.from(map, ([x, y]) => ({ x, y })).sort((a, b) => a.x - b.x);

  // ---------------------------------------------------------------- the store
  function upsertRanking(ranking, name, member, score) {
    if (!isNum(score)) return;
    const byName = store.rankings[ranking] || (store.rankings[ranking] = {});
    const rows = (byName[name] || []).filter((row) => row[0] !== member);
    rows.push([member, score]);
    rows.sort((a, b) => a[1] - b[1]);
    byName[name] = rows;
  }

  function addSignal(signal) {
    if (!signal || typeof signal !== "object" || !signal.id || store.signals.has(signal.id)) return;
    store.signals.set(signal.id, signal);
    store.feedOrder.unshift(signal.id);
    while (store.feedOrder.length > MAX_FEED) store.signals.delete(store.feedOrder.pop());
  }

  function addIndex(fields) {
    if (!store.config || fields.symbol !== store.config.regime_index) return;
    if (typeof fields.day === "string" && isNum(fields.close)) store.index.set(indexCloseMs(fields.day), fields.close);
  }

  function addCorrelation(fields) {
    const t = Date.parse(fields.event_time);
    if (!store.config || !isFinite(t) || typeof fields.pair !== "string") return;
    let byWindow = store.corr.get(fields.pair);
    if (!byWindow) store.corr.set(fields.pair, (byWindow = new Map()));
    for (const w of store.config.correlation_windows) {
      const r = fields[`corr_${w}d`];
      if (!isNum(r)) continue;
      if (!byWindow.has(w)) byWindow.set(w, new Map());
      byWindow.get(w).set(t, r);
    }
    // the index vs total market cap pair carries both aligned levels at the close's time
    if (fields.pair === `${store.config.regime_index}~TOTAL`) {
      if (isNum(fields.anchor)) store.index.set(t, fields.anchor);
      if (isNum(fields.other)) store.crypto.set(t, fields.other);
    }
  }

  function applyState(state) {
    store.config = state.config;
    store.prefix = state.prefix;
    store.views = {};
    for (const view of VIEWS) store.views[view] = state.views[view] || {};
    store.rankings = state.rankings || {};
    for (const signal of (state.signals || []).slice().reverse()) addSignal(signal);
    for (const fields of Object.values(store.views.index)) addIndex(fields);
    for (const fields of Object.values(store.views.correlation)) addCorrelation(fields);
    if (!store.config.correlation_windows.includes(corrWindow)) corrWindow = null;
    feedNeedsReset = true;
  }

  function applyHistory(history) {
    const index = store.config ? store.config.regime_index : "RUT";
    for (const [t, v] of history.series[index] || []) store.index.set(t, v);
    for (const [t, v] of history.series.TOTAL || []) store.crypto.set(t, v);
    store.historyNote = history.source || "";
  }

  function applyMessage(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.channel === "_status") {
      setRedis(Boolean(msg.data && msg.data.redis));
      return;
    }
    if (conn.loading) {
      conn.buffer.push(msg);
      return;
    }
    store.lastUpdate = new Date();
    if (msg.channel === "signals") {
      addSignal(msg.data);
    } else if (msg.data && typeof msg.data === "object" && msg.data.view) {
      const data = msg.data;
      (store.views[data.view] || (store.views[data.view] = {}))[data.name] = data;
      if (data.view === "index") addIndex(data);
      if (data.view === "correlation") addCorrelation(data);
      if (data.view === "longshort") upsertRanking("longshort-ranking", data.variant, `${data.exchange}:${data.symbol}`, data.ratio);
      if (data.view === "netflow" && store.config) {
        for (const w of store.config.netflow_windows_days) {
          upsertRanking("netflow-ranking", `${w}d`, `${data.exchange}:${data.token}`, data[`netflow_${w}d`]);
        }
      }
      if (data.view === "drawdown") upsertRanking("drawdown-ranking", "all", data.coin, data.drawdown);
    }
    scheduleRender();
  }

  // ---------------------------------------------------------------- connection
  function setRedis(up) {
    const wasDown = conn.redis === false;
    conn.redis = up;
    showConnection();
    if (up && wasDown && conn.open) loadState(); // missed messages: reload the views
  }

  function showConnection() {
    const banner = $("banner");
    const pill = $("conn");
    let problem = "";
    if (!conn.open) {
      const secs = conn.retryAt ? Math.max(0, Math.ceil((conn.retryAt - Date.now()) / 1000)) : 0;
      problem = `Disconnected from the dashboard server, retrying${secs ? ` in ${secs} s` : ""}… The figures below are the last ones received.`;
    } else if (conn.redis === false) {
      problem = "Redis is unavailable: the dashboard server is reconnecting, retrying… The figures below are the last ones received.";
    }
    banner.hidden = !problem;
    banner.textContent = problem;
    if (!conn.open) {
      pill.textContent = conn.everOpen ? "disconnected, retrying" : "connecting…";
      pill.className = `pill ${conn.everOpen ? "pill-down" : "pill-wait"}`;
    } else if (conn.redis === false) {
      pill.textContent = "Redis down, retrying";
      pill.className = "pill pill-down";
    } else {
      pill.textContent = "live";
      pill.className = "pill pill-ok";
    }
  }

  async function loadState() {
    conn.loading = true;
    try {
      const [stateResp, historyResp] = await Promise.all([fetch("/api/state"), fetch("/api/history")]);
      if (stateResp.ok) {
        applyState(await stateResp.json());
        if (historyResp.ok) applyHistory(await historyResp.json());
      } else if (stateResp.status === 503) {
        conn.redis = false; // the _status message that brings it back reloads
      }
    } catch (err) {
      console.warn("loading the state failed", err); // the socket's close handler retries
    } finally {
      conn.loading = false;
      const buffered = conn.buffer.splice(0);
      for (const msg of buffered) applyMessage(msg);
      showConnection();
      scheduleRender();
    }
  }

  function connect() {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
    conn.ws = ws;
    conn.loading = true; // hold messages until the state they apply to is loaded
    ws.onopen = () => {
      conn.open = true;
      conn.everOpen = true;
      conn.retryMs = RETRY_MIN_MS;
      conn.retryAt = null;
      showConnection();
      loadState();
    };
    ws.onmessage = (event) => {
      try {
        applyMessage(JSON.parse(event.data));
      } catch (err) {
        console.warn("bad message", err);
      }
    };
    ws.onclose = () => {
      if (conn.ws !== ws) return;
      conn.open = false;
      conn.loading = false;
      conn.buffer = [];
      const delay = conn.retryMs * (0.5 + Math.random() / 2);
      conn.retryMs = Math.min(conn.retryMs * 2, RETRY_MAX_MS);
      conn.retryAt = Date.now() + delay;
      showConnection();
      setTimeout(connect, delay);
    };
  }

  // ---------------------------------------------------------------- charts
  function baseOptions(span) {
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      parsing: false,
      normalized: true,
      interaction: { mode: "nearest", intersect: false, axis: "x" },
      plugins: { legend: { labels: { boxWidth: 12, boxHeight: 2, color: COLORS.line } } },
      scales: {
        x: { type: "linear", bounds: "data", grid: { color: COLORS.grid }, ticks: { maxTicksLimit: 8, callback: timeTick(span) } },
      },
    };
  }
  const fewPoints = (ctx) => (ctx.dataset.data.length > 40 ? 0 : 3);

  function createCharts() {
    Chart.defaults.color = COLORS.text;
    Chart.defaults.borderColor = COLORS.grid;
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.font.size = 11;

    const market = baseOptions(5 * 365 * 864e5);
    market.scales.yIndex = { position: "left", grid: { color: COLORS.grid },
      title: { display: true, text: "Russell 2000", color: COLORS.index },
      ticks: { color: COLORS.index, callback: (v) => fmt(v, 0) } };
    market.scales.yCrypto = { position: "right", grid: { drawOnChartArea: false },
      title: { display: true, text: "total crypto market cap", color: COLORS.crypto },
      ticks: { color: COLORS.crypto, callback: (v, i, ticks) => cryptoTick(v, ticks.length) } };
    market.plugins.tooltip = { callbacks: {
      title: (items) => items.length ? isoDay(items[0].parsed.x) : "",
      label: (item) => item.dataset.yAxisID === "yCrypto" ? ` TOTAL ${usd(item.parsed.y)}` : ` RUT ${fmt(item.parsed.y)}`,
    } };
    charts.market = new Chart($("chart-market"), {
      type: "line",
      data: { datasets: [
        { label: "Russell 2000 (RUT)", yAxisID: "yIndex", data: [], borderColor: COLORS.index,
          backgroundColor: COLORS.index, borderWidth: 1.5, pointRadius: fewPoints, tension: 0 },
        { label: "Total crypto market cap (TOTAL)", yAxisID: "yCrypto", data: [], borderColor: COLORS.crypto,
          backgroundColor: COLORS.crypto, borderWidth: 1.5, pointRadius: fewPoints, tension: 0 },
      ] },
      options: market,
    });

    const corr = baseOptions(365 * 864e5);
    corr.scales.y = { min: -1, max: 1, grid: { color: (ctx) => (ctx.tick.value === 0 ? "#3b4a5e" : COLORS.grid) },
      ticks: { stepSize: 0.5 } };
    corr.plugins.tooltip = { callbacks: {
      title: (items) => items.length ? isoDay(items[0].parsed.x) : "",
      label: (item) => ` ${item.dataset.label} ${item.parsed.y >= 0 ? "+" : ""}${item.parsed.y.toFixed(2)}`,
    } };
    charts.correlation = new Chart($("chart-correlation"), { type: "line", data: { datasets: [] }, options: corr });

    charts.longshort = new Chart($("chart-longshort"), {
      type: "scatter",
      data: { datasets: [
        { label: "coins", data: [], pointRadius: 6, pointHoverRadius: 8, backgroundColor: COLORS.violet,
          borderColor: COLORS.violet },
        { type: "line", label: "ratio 1 (as many long as short)", data: [], borderColor: COLORS.text,
          borderDash: [6, 4], borderWidth: 1, pointRadius: 0, pointHoverRadius: 0 },
      ] },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        layout: { padding: { right: 12 } },
        plugins: {
          legend: { labels: { boxWidth: 12, boxHeight: 2, color: COLORS.line } },
          tooltip: { filter: (item) => item.datasetIndex === 0, callbacks: {
            label: (item) => ` ${item.raw.coin}: ratio ${fmt(item.raw.y)} (${item.raw.detail})`,
          } },
        },
        scales: {
          x: { type: "linear", title: { display: true, text: "market-cap rank" }, ticks: { precision: 0 },
            grid: { color: COLORS.grid } },
          y: { title: { display: true, text: "long/short ratio" }, grid: { color: COLORS.grid } },
        },
      },
      plugins: [{
        id: "coinLabels",
        afterDatasetsDraw(chart) {
          const meta = chart.getDatasetMeta(0);
          const ctx = chart.ctx;
          ctx.save();
          ctx.fillStyle = COLORS.line;
          ctx.font = `600 11px ${Chart.defaults.font.family}`;
          meta.data.forEach((point, i) => {
            const raw = chart.data.datasets[0].data[i];
            if (raw) ctx.fillText(raw.coin, point.x + 8, point.y + 4);
          });
          ctx.restore();
        },
      }],
    });

    charts.score = new Chart($("chart-score"), {
      type: "bar",
      data: { labels: [], datasets: [
        { label: "points", data: [], backgroundColor: COLORS.green, borderRadius: 2, barPercentage: 0.75 },
        { label: "possible", data: [], backgroundColor: "#223041", borderRadius: 2, barPercentage: 0.75 },
      ] },
      options: {
        indexAxis: "y", responsive: true, maintainAspectRatio: false, animation: false,
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: (item) => scoreTooltip(item) } },
        },
        scales: {
          x: { stacked: true, min: 0, grid: { color: COLORS.grid }, title: { display: true, text: "score points" } },
          y: { stacked: true, grid: { display: false }, ticks: { color: COLORS.line, autoSkip: false } },
        },
      },
    });
  }

  function scoreTooltip(item) {
    const fields = item.chart.$components ? item.chart.$components[item.dataIndex] : null;
    if (!fields) return " missing (no fresh value)";
    if (item.datasetIndex === 1) return ` up to ${fmt(fields.normalized_weight * 100, 1)} points`;
    return ` ${fmt(fields.contribution, 1)} points (component ${fmt(fields.component, 2)}, raw ${fmt(fields.raw, 3)})`;
  }

  // ---------------------------------------------------------------- rendering
  function scheduleRender() {
    if (renderTimer === null) renderTimer = setTimeout(render, RENDER_EVERY_MS);
  }

  function render() {
    renderTimer = null;
    if (!store.config) return;
    $("prefix").textContent = `Redis ${store.prefix}*`;
    if (store.lastUpdate) $("updated").textContent = `last update ${store.lastUpdate.toLocaleTimeString()}`;
    renderKpis();
    renderMarket();
    renderCorrelation();
    renderLongShort();
    renderScore();
    renderNetflow();
    renderFeed();
  }

  function renderKpis() {
    const cfg = store.config;
    const index = store.views.index[cfg.regime_index];
    if (index) {
      setKpi("kpi-index", fmt(index.close), `close ${index.day} · YTD ${pct(index.ytd_change)}`);
      setKpi("kpi-ath", pct(index.pct_from_ath, 2), `ATH ${fmt(index.ath)} on ${index.ath_day}`,
        isNum(index.pct_from_ath) && index.pct_from_ath >= 0 ? "up" : "");
    }
    const regime = store.views.regime[`${cfg.regime_index}/${cfg.regime_benchmark}`];
    if (regime) {
      const strengthKey = Object.keys(regime).find((k) => k.startsWith("relative_strength_"));
      const strength = strengthKey ? regime[strengthKey] : null;
      const days = strengthKey ? strengthKey.replace("relative_strength_", "") : "";
      setKpi("kpi-streak", isNum(regime.streak) ? `${regime.streak} day${regime.streak === 1 ? "" : "s"}` : "–",
        `${days} relative ${pct(strength)}${regime.risk_on ? " · risk-on" : ""}`, regime.risk_on ? "up" : "");
    }
    const session = store.views.session[cfg.regime_index];
    if (session) {
      setKpi("kpi-session", fmt(session.price), `${pct(session.change_from_close, 2)} vs close${session.above_ath ? " · above ATH" : ""}`,
        tone(session.change_from_close));
    } else {
      setKpi("kpi-session", "–", "no intraday quotes");
    }
    const breadth = store.views.breadth.altcoins;
    if (breadth) {
      setKpi("kpi-breadth", pct(breadth.share_deep, 0).replace("+", ""),
        `of ${breadth.altcoins} altcoin${breadth.altcoins === 1 ? "" : "s"}, >${fmt(breadth.deep * 100, 0)}% under ATH`);
    }
    const cross = store.views["longshort-cross"][cfg.longshort_variant];
    if (cross) {
      setKpi("kpi-crowd", isNum(cross.share_long) ? pct(cross.share_long, 0).replace("+", "") : "–",
        `${cross.coins} coin${cross.coins === 1 ? "" : "s"} · ${cfg.longshort_variant}`);
    } else {
      setKpi("kpi-crowd", "–", "no altcoin long/short ratios");
    }
  }

  function renderMarket() {
    const chart = charts.market;
    chart.data.datasets[0].data = sortedPoints(store.index);
    chart.data.datasets[1].data = sortedPoints(store.crypto);
    // crypto grew a thousandfold since 2013: a log axis once the range spans > 50x
    const caps = chart.data.datasets[1].data.map((p) => p.y).filter((y) => y > 0);
    const logScale = caps.length > 1 && Math.max(...caps) / Math.min(...caps) > 50;
    chart.options.scales.yCrypto.type = logScale ? "logarithmic" : "linear";
    chart.options.scales.yCrypto.title.text = `total crypto market cap${logScale ? " (log)" : ""}`;
    const xs = chart.data.datasets.flatMap((d) => d.data.length ? [d.data[0].x, d.data[d.data.length - 1].x] : []);
    if (xs.length) chart.options.scales.x.ticks.callback = timeTick(Math.max(...xs) - Math.min(...xs));
    chart.options.scales.x.ticks.display = xs.length > 0;
    chart.update("none");
    $("market-note").textContent = store.historyNote
      ? `History: ${store.historyNote}; newer points from the index and correlation channels.`
      : "Points from the index and correlation channels.";
  }

  function renderCorrelation() {
    const cfg = store.config;
    const box = $("corr-windows");
    if (box.childElementCount !== cfg.correlation_windows.length) {
      box.replaceChildren(...cfg.correlation_windows.map((w) => {
        const button = el("button", "", `${w}d`);
        button.type = "button";
        button.dataset.window = String(w);
        button.onclick = () => { corrWindow = w; scheduleRender(); };
        return button;
      }));
    }
    const withValues = cfg.correlation_windows.filter((w) => [...store.corr.values()].some((byWindow) => byWindow.has(w)));
    const shown = corrWindow !== null ? corrWindow
      : withValues.length ? Math.max(...withValues) : Math.max(...cfg.correlation_windows);
    for (const button of box.children) button.classList.toggle("active", Number(button.dataset.window) === shown);
    const pairs = [...new Set([...cfg.correlation_pairs, ...store.corr.keys()])];
    const datasets = [];
    let minX = Infinity;
    let maxX = -Infinity;
    pairs.forEach((pair, i) => {
      const points = store.corr.has(pair) && store.corr.get(pair).has(shown)
        ? sortedPoints(store.corr.get(pair).get(shown)) : [];
      if (!points.length) return;
      minX = Math.min(minX, points[0].x);
      maxX = Math.max(maxX, points[points.length - 1].x);
      const color = PAIR_COLORS[i % PAIR_COLORS.length];
      datasets.push({ label: pair.replace("~", " vs "), data: points, borderColor: color, backgroundColor: color,
        borderWidth: 1.5, pointRadius: fewPoints, tension: 0 });
    });
    const chart = charts.correlation;
    chart.data.datasets = datasets;
    chart.options.scales.x.ticks.callback = timeTick(isFinite(maxX - minX) ? maxX - minX : 0);
    chart.options.scales.x.ticks.display = datasets.length > 0;
    chart.update("none");
    $("corr-note").textContent = datasets.length
      ? `Pearson correlation of daily log returns over ${shown} aligned days, per pair; points are added as the worker publishes them.`
      : `No ${shown}-day correlation values in Redis yet.`;
  }

  function renderLongShort() {
    const cfg = store.config;
    const variant = cfg.longshort_variant;
    const byCoin = new Map();
    for (const fields of Object.values(store.views.longshort)) {
      if (fields.variant !== variant || !isNum(fields.ratio)) continue;
      const entry = byCoin.get(fields.coin) || { ratios: [], rank: null, members: [] };
      entry.ratios.push(fields.ratio);
      entry.members.push(`${fields.exchange}:${fields.symbol}`);
      if (isNum(fields.rank)) entry.rank = fields.rank;
      byCoin.set(fields.coin, entry);
    }
    const ranking = (store.rankings["longshort-ranking"] || {})[variant] || [];
    const haveRanks = [...byCoin.values()].some((e) => e.rank !== null);
    const points = [];
    for (const [coin, entry] of byCoin) {
      let x = entry.rank;
      if (!haveRanks) {
        const position = ranking.findIndex((row) => entry.members.includes(row[0]));
        x = position >= 0 ? position + 1 : ranking.length + 1;
      }
      if (x === null) continue;
      const y = entry.ratios.reduce((a, b) => a + b, 0) / entry.ratios.length;
      points.push({ x, y, coin, detail: entry.members.join(", ") });
    }
    points.sort((a, b) => a.x - b.x);
    const chart = charts.longshort;
    chart.data.datasets[0].data = points;
    const xs = points.map((p) => p.x);
    chart.data.datasets[1].data = points.length
      ? [{ x: Math.min(...xs) - 0.5, y: 1 }, { x: Math.max(...xs) + 0.5, y: 1 }] : [];
    chart.options.scales.x.title.text = haveRanks ? "market-cap rank"
      : "position in longshort-ranking (lowest ratio first)";
    chart.options.scales.x.min = points.length ? Math.min(...xs) - 0.5 : undefined;
    chart.options.scales.x.max = points.length ? Math.max(...xs) + 0.5 : undefined;
    const ys = points.map((p) => p.y).concat([1]);
    chart.options.scales.y.suggestedMin = Math.max(0, Math.min(...ys) - 0.3);
    chart.options.scales.y.suggestedMax = Math.max(...ys) + 0.3;
    chart.update("none");
    $("ls-note").textContent = !points.length
      ? `No ${variant} long/short ratios in Redis yet.`
      : haveRanks ? `One point per coin (${variant}, mean over exchanges); above the line more accounts are long than short.`
        : `One point per coin (${variant}, mean over exchanges). Market-cap ranks do not reach Redis yet, so x is the coin's place in longshort-ranking; above the line more accounts are long than short.`;
  }

  function renderScore() {
    const cfg = store.config;
    const score = store.views.score.altseason;
    const chart = charts.score;
    for (const [id, level, name] of [["gauge-warming", cfg.score_warming, "warming"], ["gauge-altseason", cfg.score_altseason, "altseason"]]) {
      $(id).style.left = `${level}%`;
      $(`${id}-label`).style.left = `${level}%`;
      $(`${id}-label`).textContent = `${name} ${level}`;
    }
    if (!score || !isNum(score.score)) {
      chart.data.labels = [];
      chart.data.datasets.forEach((d) => { d.data = []; });
      chart.update("none");
      return;
    }
    $("score-value").textContent = score.score.toFixed(0);
    const band = $("score-band");
    band.textContent = score.band || "";
    band.className = `band band-${score.band}`;
    $("score-time").textContent = `as of ${shortTime(score.event_time)}`;
    const fill = $("gauge-fill");
    fill.style.width = `${Math.min(100, Math.max(0, score.score))}%`;
    fill.style.background = score.band === "altseason" ? COLORS.green : score.band === "warming" ? COLORS.index : COLORS.crypto;
    const components = score.components && typeof score.components === "object" ? score.components : {};
    const missing = Array.isArray(score.missing) ? score.missing : [];
    const names = Object.keys(components).sort((a, b) => components[b].contribution - components[a].contribution);
    chart.$components = names.map((n) => components[n]).concat(missing.map(() => null));
    chart.data.labels = names.concat(missing.map((n) => `${n} (missing)`));
    chart.data.datasets[0].data = names.map((n) => components[n].contribution).concat(missing.map(() => 0));
    chart.data.datasets[1].data = names.map((n) => Math.max(0, components[n].normalized_weight * 100 - components[n].contribution))
      .concat(missing.map(() => 0));
    chart.options.scales.x.max = Math.max(10, ...names.map((n) => Math.ceil(components[n].normalized_weight * 10) * 10));
    chart.update("none");
    $("score-missing").textContent = missing.length
      ? `Missing (no fresh value, weights renormalised): ${missing.join(", ")}. Bars: points earned, grey up to the component's weight.`
      : "Bars: points earned, grey up to the component's weight.";
  }

  function renderNetflow() {
    const cfg = store.config;
    const windows = cfg.netflow_windows_days.map((w) => `${w}d`);
    const signalWindow = `${cfg.netflow_signal_window_days}d`;
    const table = $("netflow-table");
    const head = el("tr");
    for (const label of ["exchange:token", "band", "imbalance", ...windows.map((w) => `netflow ${w}`),
      `inflow ${signalWindow}`, `outflow ${signalWindow}`, "as of"]) head.append(el("th", "", label));
    table.tHead.replaceChildren(head);
    const rows = Object.values(store.views.netflow);
    const order = ((store.rankings["netflow-ranking"] || {})[signalWindow] || []).map((row) => row[0]);
    const position = (f) => {
      const i = order.indexOf(`${f.exchange}:${f.token}`);
      return i < 0 ? Infinity : i;
    };
    rows.sort((a, b) => position(a) - position(b));
    const body = rows.map((f) => {
      const tr = el("tr");
      tr.append(el("td", "", `${f.exchange}:${f.token}`));
      const bandCell = el("td");
      bandCell.append(el("span", `tag tag-${f.band}`, f.band));
      tr.append(bandCell, el("td", tone(-f.imbalance), pct(f.imbalance)));
      for (const w of windows) tr.append(el("td", tone(-f[`netflow_${w}`]), amount(f[`netflow_${w}`])));
      tr.append(el("td", "", amount(f[`inflow_${signalWindow}`])), el("td", "", amount(f[`outflow_${signalWindow}`])),
        el("td", "muted", shortTime(f.event_time).slice(0, 10)));
      return tr;
    });
    if (!body.length) {
      const tr = el("tr", "empty");
      const td = el("td", "", "No exchange netflows in Redis yet: they come from a netflow source (cryptoquant or netflow_csv in the live producers); the bundled replay has none.");
      td.colSpan = 6 + windows.length;
      tr.append(td);
      body.push(tr);
    }
    table.tBodies[0].replaceChildren(...body);
    $("netflow-note").textContent = body.length && rows.length
      ? `Ordered by ${signalWindow} netflow, strongest accumulation (outflow from exchanges) first; imbalance = netflow / (inflow + outflow) over ${signalWindow}.`
      : "";
  }

  function signalNode(signal) {
    const item = el("li", `signal sev-${signal.severity || "info"}`);
    item.dataset.id = signal.id;
    item.dataset.type = signal.type;
    const head = el("div", "signal-head");
    head.append(el("span", "signal-type", signal.type), el("span", "signal-subject", signal.subject),
      el("span", "signal-time", shortTime(signal.event_time)));
    item.append(head, el("div", "signal-message", signal.message));
    const evidence = el("div", "evidence");
    for (const [key, value] of Object.entries(signal.evidence || {})) {
      const chip = el("span");
      let text;
      if (isNum(value)) text = Math.abs(value) >= 1000 || Number.isInteger(value) ? fmt(value, Number.isInteger(value) ? 0 : 2) : value.toPrecision(3);
      else if (value && typeof value === "object") text = Array.isArray(value) ? value.join(", ") : Object.keys(value).join(", ");
      else text = String(value);
      chip.append(el("b", "", key), document.createTextNode(` ${text}`));
      chip.title = JSON.stringify(value);
      evidence.append(chip);
    }
    item.append(evidence);
    return item;
  }

  function renderFeed() {
    const feed = $("feed");
    const placeholder = $("feed-empty");
    if (placeholder) placeholder.remove();
    if (feedNeedsReset) {
      feed.replaceChildren();
      feedRendered = new Set();
      feedNeedsReset = false;
    }
    const fresh = [];
    for (const id of store.feedOrder) {
      if (feedRendered.has(id)) break;
      fresh.push(id);
    }
    const initial = feedRendered.size === 0;
    for (const id of fresh.reverse()) {
      const node = signalNode(store.signals.get(id));
      if (!initial) node.classList.add("new");
      feed.prepend(node);
      feedRendered.add(id);
    }
    while (feed.childElementCount > MAX_FEED) {
      feedRendered.delete(feed.lastElementChild.dataset.id);
      feed.lastElementChild.remove();
    }
    $("feed-count").textContent = store.feedOrder.length ? `latest ${store.feedOrder.length}` : "none yet";
    if (!feed.childElementCount) {
      const empty = el("li", "muted small", "No signals yet: they appear here as the worker fires them.");
      empty.id = "feed-empty";
      feed.append(empty);
    }
  }

  // ---------------------------------------------------------------- start
  createCharts();
  showConnection();
  setInterval(showConnection, 1000); // the retry countdown
  connect();
})();
