// The live board: one websocket to our server, a snapshot then deltas, durations ticking locally.
// Every tile (and every row of a breakdown) is an element with data-metric-id, data-category,
// data-state (live | initializing | stale | error), data-value (raw number) and data-level.
(() => {
  "use strict";
  const F = window.BoardFormat;
  const page = JSON.parse(document.getElementById("board-page").textContent);
  const live = window.BoardLive.connection(page.ws);
  const root = document.getElementById("board");
  const connection = document.getElementById("connection");
  const upstream = document.getElementById("upstream");
  const soundButton = document.getElementById("sound");
  const WATCHDOG_MS = 5 * 60 * 1000; // reload a page whose connection has been broken this long

  let catalog = [];
  const records = new Map(); // "metricId\u001fcategory" -> record
  let views = []; // what refresh() updates every second
  const displayed = new Set(); // the keys the All-metrics view has a tile for

  const keyOf = (metricId, category) => metricId + "\u001f" + category;
  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const setText = (node, text) => { if (node.textContent !== text) node.textContent = text; };
  const setData = (node, name, value) => { if (node.dataset[name] !== value) node.dataset[name] = value; };

  // --- one value: shared by value tiles, breakdown rows and trend tiles ---------------------
  const LEVEL_LABELS = { warning: "▲ Warning", critical: "■ Critical", normal: "" };
  const levelRank = { normal: 0, warning: 1, critical: 2 };
  function tileState(record, stale) {
    let state = record ? record.state : "initializing";
    if (stale && state !== "error") state = "stale";
    return state;
  }
  function showValue(node, parts, record, tile, category, atMs, stale) {
    const state = tileState(record, stale);
    const value = record && record.value;
    const raw = value ? F.rawValue(value, atMs) : null;
    // No level until there is a live value: a stale number raises no alarm.
    const level = state === "live" ? F.level(raw, value && value.type, tile, category) : "";
    setData(node, "state", state);
    setData(node, "value", raw === null ? "" : String(Math.round(raw)));
    if (node.dataset.level !== level) {
      // Only a crossing while watching alerts; the first value shown does not.
      if (node.dataset.level && levelRank[level] > levelRank[node.dataset.level]) alertCrossing(node);
      node.dataset.level = level;
    }
    let text = "…";
    if (value && value.type !== "UNSUPPORTED") text = F.format(raw, value.type, tile.format);
    else if (state === "error") text = "—";
    setText(parts.value, text);
    if (parts.level) setText(parts.level, LEVEL_LABELS[level]);
    let note = "";
    if (state === "initializing") note = "initializing";
    else if (state === "error") note = (record && record.error) || "error";
    else if (state === "stale") note = "stale since " + F.timeOfDay(live.lastConfirmed() - live.clockOffset);
    if (parts.note) setText(parts.note, note);
    return raw;
  }

  // --- tile views -------------------------------------------------------------------------
  function valueTile(tile) {
    const node = el("div", "tile tile-value-kind");
    Object.assign(node.dataset, { metricId: tile.metric_id, category: tile.category, state: "initializing", value: "", level: "", tileId: tile.id || "" });
    const parts = { value: el("div", "tile-value", "…"), level: el("div", "tile-level"), note: el("div", "tile-note") };
    node.append(el("div", "tile-title", tile.title), el("div", "tile-category", tile.category || ""), parts.value, parts.level, parts.note);
    span(node, tile);
    return { node, update: (atMs, stale) => showValue(node, parts, records.get(keyOf(tile.metric_id, tile.category)), tile, tile.category, atMs, stale) };
  }

  function breakdownTile(tile) {
    const node = el("div", "tile breakdown");
    Object.assign(node.dataset, { metricId: tile.metric_id, kind: "breakdown" });
    const body = el("tbody");
    const table = el("table", "breakdown-table");
    table.append(body);
    node.append(el("div", "tile-title", tile.title), table);
    span(node, tile);
    const rows = new Map(); // category -> {row, parts}
    // Chosen categories only (the server sends no others to a board; a preview gets more).
    const only = tile.categories && tile.categories.length ? new Set(tile.categories) : null;
    function rowFor(category) {
      let entry = rows.get(category);
      if (!entry) {
        const row = el("tr", "tile-row");
        Object.assign(row.dataset, { metricId: tile.metric_id, category, state: "initializing", value: "", level: "" });
        const parts = { value: el("td", "row-value", "…"), level: el("td", "row-level") };
        row.append(el("th", "row-category", category || "Total"), parts.value, parts.level);
        entry = { row, parts, raw: null };
        rows.set(category, entry);
        body.append(row);
      }
      return entry;
    }
    return {
      node,
      update(atMs, stale) {
        for (const [key, record] of records) {
          if (key.startsWith(tile.metric_id + "\u001f") && (!only || only.has(record.category))) rowFor(record.category);
        }
        for (const [category, entry] of rows) {
          entry.raw = showValue(entry.row, entry.parts, records.get(keyOf(tile.metric_id, category)), tile, category, atMs, stale);
        }
        // Sorted, worst first; rows are moved only when the order changes.
        const sign = tile.direction === "below" ? 1 : -1;
        const order = [...rows.values()].sort((a, b) => sign * ((a.raw ?? -Infinity) - (b.raw ?? -Infinity)) || a.row.dataset.category.localeCompare(b.row.dataset.category));
        if (order.some((entry, i) => body.children[i] !== entry.row)) body.append(...order.map((e) => e.row));
      },
    };
  }

  function trendTile(tile) {
    const view = valueTile(tile);
    view.node.classList.add("trend");
    const plot = el("div", "trend-plot");
    view.node.insertBefore(plot, view.node.querySelector(".tile-note"));
    const maxPoints = Math.ceil((tile.trend_hours * 3600) / 10);
    let drawn = false;
    let disposed = false;
    let lastPoint = 0;
    let unit = "count";
    let ticks = "";
    const trendAxis = (values) => Object.assign(window.Charts.valueAxis(values, unit), { gridcolor: "rgba(128,128,128,.3)" });
    // The tile's whole window, ending now, on the site's wall clock: with few or no samples yet
    // Plotly would otherwise pick a range of its own (one repeated "00:00" per tick).
    const timeRange = () => {
      const now = live.serverNow();
      return [F.wallClock(now - tile.trend_hours * 3600000), F.wallClock(now)];
    };
    window.Charts.loadPlotly(root.dataset.plotly).then(async () => {
      if (disposed) return;
      const response = await fetch(trendUrl(tile), { credentials: "same-origin" });
      const data = response.ok ? await response.json() : { unit: "count", t: [], v: [] };
      if (disposed) return; // redrawn meanwhile: this tile is no longer on the page
      unit = data.unit;
      ticks = JSON.stringify(trendAxis(data.v));
      const colour = getComputedStyle(document.body).color;
      // Times on the site's wall clock (the TV's own zone may be anything).
      window.Plotly.newPlot(plot, [{ x: data.t.map((t) => F.wallClock(t)), y: data.v, mode: "lines", line: { width: 3 } }], {
        margin: { l: 55, r: 10, t: 5, b: 25 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
        font: { color: colour, size: 14 },
        xaxis: { type: "date", tickformat: "%H:%M", range: timeRange(), nticks: 7, gridcolor: "rgba(128,128,128,.3)" },
        yaxis: trendAxis(data.v), showlegend: false,
      }, { staticPlot: true, displayModeBar: false, responsive: true });
      drawn = true;
    }).catch(() => setText(plot, "chart unavailable"));
    const update = view.update;
    view.update = (atMs, stale) => {
      const raw = update(atMs, stale);
      // Extend the chart every 10 s with the live value; maxPoints keeps its size bounded.
      if (drawn && !stale && raw !== null && atMs - lastPoint >= 10000) {
        lastPoint = atMs;
        window.Plotly.extendTraces(plot, { x: [[F.wallClock(live.serverNow())]], y: [[raw]] }, [0], maxPoints);
        // The window moves on; a value that outgrew its ticks (or fell well below them) gets new ones.
        const layout = { "xaxis.range": timeRange() };
        const axis = trendAxis(plot.data[0].y);
        if (JSON.stringify(axis) !== ticks) {
          ticks = JSON.stringify(axis);
          layout.yaxis = axis;
        }
        window.Plotly.relayout(plot, layout);
      }
      return raw;
    };
    // Plotly keeps a drawn chart alive (a window "resize" listener holds it) until it is purged.
    view.dispose = () => {
      disposed = true;
      if (drawn) window.Plotly.purge(plot);
    };
    return view;
  }

  function trendUrl(tile) {
    if (!page.preview) return page.trend + tile.id + "/trend.json";
    // An unsaved tile has no id: the designer's preview asks by metric and category.
    const query = new URLSearchParams({ metric: tile.metric_id, category: tile.category, hours: tile.trend_hours });
    return page.trend + "?" + query;
  }

  function span(node, tile) {
    node.style.gridColumn = `span ${tile.width || 1}`;
    node.style.gridRow = `span ${tile.height || 1}`;
  }

  // --- pages --------------------------------------------------------------------------------
  const KINDS = { value: valueTile, breakdown: breakdownTile, trend: trendTile };
  function renderConfigured() {
    const sections = page.boards.map((board, index) => {
      const section = el("section", "board-page theme-" + board.theme);
      section.dataset.boardId = board.id;
      section.hidden = index !== 0;
      const grid = el("div", "grid");
      grid.style.gridTemplateColumns = `repeat(${board.columns}, minmax(0, 1fr))`;
      for (const tile of board.tiles) {
        const view = KINDS[tile.kind](tile);
        grid.append(view.node);
        views.push(view);
      }
      section.append(el("h2", "board-page-title", board.title), grid);
      return section;
    });
    root.replaceChildren(...sections);
    document.body.classList.toggle("theme-light", page.boards[0].theme === "light");
  }

  function renderAllMetrics() {
    const sections = [];
    for (const metric of catalog) {
      const section = el("section", "metric");
      section.dataset.metricId = metric.metric_id;
      const grid = el("div", "tiles");
      section.append(el("h2", "", metric.name || metric.metric_id), grid);
      const categories = metric.category_type === "NONE" || metric.categories.length === 0 ? [""] : metric.categories;
      const known = new Set(categories);
      // Values for categories the catalog did not list are shown too, rather than dropped.
      for (const record of records.values()) {
        if (record.metric_id === metric.metric_id && !known.has(record.category)) known.add(record.category);
      }
      for (const category of known) {
        displayed.add(keyOf(metric.metric_id, category));
        const view = valueTile({ metric_id: metric.metric_id, category, title: "", format: "auto" });
        view.node.querySelector(".tile-title").remove();
        const label = view.node.querySelector(".tile-category");
        label.textContent = category || "Total";
        grid.append(view.node);
        views.push(view);
      }
      sections.push(section);
    }
    root.replaceChildren(...sections);
  }

  function dropViews() {
    for (const view of views) if (view.dispose) view.dispose();
    views = [];
  }
  function render() {
    dropViews();
    displayed.clear();
    if (page.boards) renderConfigured();
    else renderAllMetrics();
    refresh();
  }

  let rotation = 0;
  function rotate() {
    const sections = root.querySelectorAll(".board-page");
    if (sections.length < 2) return;
    sections[rotation].hidden = true;
    rotation = (rotation + 1) % sections.length;
    sections[rotation].hidden = false;
    root.dataset.currentBoard = sections[rotation].dataset.boardId;
    document.body.classList.toggle("theme-light", page.boards[rotation].theme === "light");
    setText(document.getElementById("board-title"), page.boards[rotation].title);
    setTimeout(rotate, (page.boards[rotation].seconds || 30) * 1000);
  }

  // --- freshness ------------------------------------------------------------------------------
  function refresh() {
    if (connection.dataset.state === "revoked") { upstream.hidden = true; return; } // dark: nothing is stale
    const stale = live.isStale();
    const atMs = live.upstreamNow();
    for (const view of views) view.update(atMs, stale);
    const { brokenSince } = live;
    const problem = live.upstreamProblem();
    const banner = [];
    if (brokenSince) banner.push(`Connection to the dashboard server lost at ${F.timeOfDay(brokenSince)}: reconnecting.`);
    if (stale) banner.push("Data is stale.");
    if (problem) banner.push(`Upstream: ${problem}`);
    else if (stale && !brokenSince) banner.push("No word from the upstream.");
    upstream.hidden = banner.length === 0;
    setText(upstream, banner.join(" "));
    if (brokenSince && Date.now() - brokenSince > WATCHDOG_MS) location.reload();
  }

  // --- alerts -----------------------------------------------------------------------------------
  let audio = null;
  function alertCrossing(node) {
    node.classList.remove("flash");
    void node.offsetWidth; // restart the CSS animation
    node.classList.add("flash");
    setTimeout(() => node.classList.remove("flash"), 3000);
    if (audio && audio.state === "running") {
      const tone = audio.createOscillator();
      tone.connect(audio.destination);
      tone.frequency.value = 880;
      tone.start();
      tone.stop(audio.currentTime + 0.3);
    }
  }
  function showSound() {
    const armed = localStorage.getItem("alertSound") === "on";
    let state = "off";
    if (armed) state = audio && audio.state === "running" ? "on" : "blocked";
    soundButton.dataset.state = state;
    soundButton.setAttribute("aria-pressed", String(state === "on"));
    setText(soundButton, { off: "Alert sound: off", on: "Alert sound: on", blocked: "Alert sound: blocked — tap to allow" }[state]);
  }
  function armSound() {
    if (localStorage.getItem("alertSound") === "on" && audio && audio.state === "running") {
      localStorage.setItem("alertSound", "off");
    } else {
      localStorage.setItem("alertSound", "on");
      audio = audio || new AudioContext();
      audio.resume().then(showSound);
    }
    showSound();
  }
  soundButton.addEventListener("click", armSound);
  if (localStorage.getItem("alertSound") === "on" && window.AudioContext) {
    audio = new AudioContext(); // "blocked" until the browser lets it play (kiosk flags or a tap)
    audio.resume().then(showSound);
  }
  showSound();

  // --- connection -------------------------------------------------------------------------------
  function applyRecord(record) {
    const key = keyOf(record.metric_id, record.category);
    const known = records.get(key);
    if (known && known.seq >= record.seq) return false; // an older message, already covered
    records.set(key, record);
    return !page.boards && !displayed.has(key);
  }
  function onSnapshot(message) {
    catalog = message.metrics;
    records.clear();
    for (const record of message.records) applyRecord(record);
    // A configured board is drawn once (a change to it reloads the page); re-drawing it on every
    // snapshot would leave its charts' listeners behind. All metrics follows the catalog.
    if (page.boards) refresh();
    else render();
  }
  function onRecords(message) {
    // (live.js has checked them for a missed update, and asked for a fresh snapshot if so.)
    let newTile = false;
    for (const record of message.records) newTile = applyRecord(record) || newTile;
    // A category the catalog did not list; a snapshot on its way redraws the board anyway.
    if (newTile && !live.resyncing) render();
    refresh();
  }
  function onMessage(message) {
    if (message.type === "snapshot") onSnapshot(message);
    else if (message.type === "records") onRecords(message);
    else if (message.type === "status") refresh();
    else if (message.type === "catalog") live.requestSnapshot();
    else if (message.type === "reload") location.reload();
    else if (message.type === "revoked") showInvalid();
  }
  function setConnection(state, text) {
    connection.dataset.state = state;
    setText(connection, text);
  }
  function showInvalid() {
    live.stop();
    const message = el("div", "kiosk-message");
    message.setAttribute("role", "alert");
    message.append(el("h1", "", "This display link was revoked"), el("p", "", "To show a board here again, open /tv/ on this screen and enter its code at /screens/send/, or ask an administrator for a new display link."));
    root.replaceChildren(message);
    dropViews();
    setConnection("revoked", "Revoked");
  }
  async function checkStillValid() {
    // A refused handshake looks like any lost connection; ask the page itself.
    try {
      const response = await fetch(location.href, { method: "HEAD", cache: "no-store" });
      if (response.status === 404) showInvalid();
    } catch (error) { /* the server is down: keep trying */ }
  }

  if (page.boards && page.boards.length) render();
  if (page.preview) {
    // The designer's preview: it posts the unsaved board here on every change, and the tiles
    // are drawn from the All-metrics socket (only what this user may see live anyway).
    window.addEventListener("message", (event) => {
      if (event.origin !== location.origin || !event.data || event.data.type !== "preview") return;
      page.boards = [event.data.board];
      render();
    });
    window.parent.postMessage({ type: "preview-ready" }, location.origin);
  }
  if (page.boards && page.boards.length > 1) setTimeout(rotate, (page.boards[0].seconds || 30) * 1000);
  live.open({
    onOpen: () => setConnection("connected", "Live"),
    onMessage,
    onClose(event) {
      if (event.code !== 4403) return;
      // Access gone: a TV says its link is no longer valid; a person's page reloads, and the
      // server says why (the login page, or not found).
      if (page.ws.startsWith("/ws/display/")) showInvalid();
      else location.reload();
    },
    onReconnecting(attempt) {
      refresh();
      if (page.kiosk && attempt >= 2) checkStillValid();
      setConnection("reconnecting", "Connection lost: reconnecting…");
    },
  });
  setInterval(refresh, 1000);
})();
