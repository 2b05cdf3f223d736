// The live board: one websocket to our server, a snapshot then deltas, durations ticking locally.
// Every tile is an element with data-metric-id, data-category, data-state and data-value.
(() => {
  "use strict";
  const board = document.getElementById("board");
  const connection = document.getElementById("connection");
  const upstream = document.getElementById("upstream");
  const wsUrl = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + board.dataset.ws;

  let socket = null;
  let attempt = 0;
  let lastSeq = 0;
  let clockOffset = 0; // server time minus this browser's time, in ms
  const offsetSamples = [];
  let staleMs = 20000;
  let status = {};
  const tiles = new Map(); // "metricId\u001fcategory" -> {el, valueEl, noteEl, record}

  const keyOf = (metricId, category) => metricId + "\u001f" + category;
  const serverNow = () => Date.now() + clockOffset;
  // Durations are extrapolated on the upstream's clock, which the server estimates for us.
  const upstreamNow = () => serverNow() + (status.upstream_offset_ms || 0);

  // --- value formulas (the same as metrics/acr/values.py) ---------------------------------
  function durationAt(v, atMs) {
    return v.finished_ms + (v.up - v.down) * (atMs - v.last_update_ms);
  }
  function rawValue(v, atMs) {
    if (!v) return null;
    if (v.type === "COUNT") return v.count;
    if (v.type === "DURATION") return durationAt(v, atMs);
    if (v.type === "AVERAGE_DURATION") return v.count === 0 ? null : durationAt(v, atMs) / v.count;
    return null;
  }
  function formatDuration(ms) {
    const total = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    const pad = (n) => String(n).padStart(2, "0");
    return h ? `${h}:${pad(m)}:${pad(s)}` : `${pad(m)}:${pad(s)}`;
  }
  function formatValue(v, raw) {
    if (raw === null) return "—";
    return v.type === "COUNT" ? String(raw) : formatDuration(raw);
  }

  // --- rendering --------------------------------------------------------------------------
  function tileCategories(metric) {
    return metric.category_type === "NONE" || metric.categories.length === 0 ? [""] : metric.categories;
  }
  function makeTile(metricId, category) {
    const el = document.createElement("div");
    el.className = "tile";
    el.dataset.metricId = metricId;
    el.dataset.category = category;
    el.dataset.state = "initializing";
    el.dataset.value = "";
    const label = document.createElement("div");
    label.className = "tile-category";
    label.textContent = category || "Total";
    const valueEl = document.createElement("div");
    valueEl.className = "tile-value";
    valueEl.textContent = "…";
    const noteEl = document.createElement("div");
    noteEl.className = "tile-note";
    el.append(label, valueEl, noteEl);
    return { el, valueEl, noteEl, record: null };
  }
  function renderSnapshot(message) {
    board.replaceChildren();
    tiles.clear();
    for (const metric of message.metrics) {
      const section = document.createElement("section");
      section.className = "metric";
      section.dataset.metricId = metric.metric_id;
      const title = document.createElement("h2");
      title.textContent = metric.name || metric.metric_id;
      const grid = document.createElement("div");
      grid.className = "tiles";
      section.append(title, grid);
      board.append(section);
      for (const category of tileCategories(metric)) addTile(metric.metric_id, category, grid);
    }
    for (const record of message.tiles) applyRecord(record, true);
    lastSeq = message.seq;
    refresh();
  }
  function addTile(metricId, category, grid) {
    const tile = makeTile(metricId, category);
    grid.append(tile.el);
    tiles.set(keyOf(metricId, category), tile);
    return tile;
  }
  function applyRecord(record, fromSnapshot) {
    let tile = tiles.get(keyOf(record.metric_id, record.category));
    if (!tile) {
      // A value for a category the catalog did not list: show it rather than drop it.
      const section = board.querySelector(`section[data-metric-id="${CSS.escape(record.metric_id)}"]`);
      if (!section) return;
      tile = addTile(record.metric_id, record.category, section.querySelector(".tiles"));
    }
    if (tile.record && tile.record.seq >= record.seq) return; // an older message, already covered
    tile.record = record;
    if (!fromSnapshot) flash(tile.el);
  }
  function flash(el) {
    el.classList.remove("flash");
    void el.offsetWidth; // restart the CSS animation
    el.classList.add("flash");
  }

  function isStale() {
    const confirmed = Math.max(status.poll_ok_ms || 0, status.ws_ok_ms || 0);
    return serverNow() - confirmed > staleMs;
  }
  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }
  function refresh() {
    const stale = isStale();
    const atMs = upstreamNow();
    for (const tile of tiles.values()) {
      const record = tile.record;
      let state = record ? record.state : "initializing";
      if (stale && state !== "error") state = "stale";
      const raw = record && record.value ? rawValue(record.value, atMs) : null;
      tile.el.dataset.state = state;
      tile.el.dataset.value = raw === null ? "" : String(Math.round(raw));
      if (record && record.value && record.value.type !== "UNSUPPORTED") {
        setText(tile.valueEl, formatValue(record.value, raw));
      } else {
        setText(tile.valueEl, state === "error" ? "—" : "…");
      }
      let note = "";
      if (state === "initializing") note = "initializing";
      else if (state === "error") note = record.error || "error";
      else if (state === "stale") note = "stale since " + new Date(Math.max(status.poll_ok_ms || 0, status.ws_ok_ms || 0) - clockOffset).toLocaleTimeString();
      setText(tile.noteEl, note);
    }
    const problem = status.poll_error || status.ws_error;
    upstream.hidden = !problem && !stale;
    setText(upstream, stale ? `Data is stale. ${problem || "No word from the upstream."}` : problem ? `Upstream: ${problem}` : "");
  }

  // --- connection -------------------------------------------------------------------------
  function onMessage(event) {
    const message = JSON.parse(event.data);
    if (typeof message.server_time_ms === "number") learnClockOffset(message.server_time_ms);
    if (message.type === "snapshot") {
      staleMs = message.stale_ms;
      status = message.status;
      renderSnapshot(message);
    } else if (message.type === "tiles") {
      const sorted = message.tiles.slice().sort((a, b) => a.seq - b.seq);
      let gap = false;
      for (const record of sorted) {
        if (record.seq > lastSeq + 1) gap = true;
        lastSeq = Math.max(lastSeq, record.seq);
        applyRecord(record);
      }
      if (gap) requestSnapshot();
      refresh();
    } else if (message.type === "status") {
      status = message.status;
      refresh();
    } else if (message.type === "catalog") {
      requestSnapshot();
    }
  }
  function learnClockOffset(serverTimeMs) {
    // Each sample is the true offset minus the message's delivery delay, so the largest of the
    // recent samples is the best estimate; a window lets a corrected local clock be learnt.
    offsetSamples.push(serverTimeMs - Date.now());
    if (offsetSamples.length > 30) offsetSamples.shift();
    clockOffset = Math.max(...offsetSamples);
  }
  function requestSnapshot() {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "snapshot" }));
  }
  function setConnection(state, text) {
    connection.dataset.state = state;
    setText(connection, text);
  }
  function connect() {
    socket = new WebSocket(wsUrl);
    socket.onopen = () => {
      attempt = 0;
      setConnection("connected", "Live");
    };
    socket.onmessage = onMessage;
    socket.onclose = () => {
      // Exponential backoff with full jitter, so a restarted server is not hit by every TV at once.
      const delay = Math.random() * Math.min(30000, 500 * 2 ** attempt);
      attempt += 1;
      setConnection("reconnecting", "Connection lost: reconnecting…");
      setTimeout(connect, delay);
    };
  }

  connect();
  setInterval(refresh, 1000);
})();
