// Team drill-down: one live table for the agents and one for the queues the user may see,
// a column per metric, sortable by any column, searchable; a click on an agent opens its detail.
// Each cell carries data-metric-id, data-category, data-state and data-value like a tile.
(() => {
  "use strict";
  const F = window.BoardFormat;
  const page = JSON.parse(document.getElementById("team-page").textContent);
  const live = window.BoardLive.connection(page.ws);
  const root = document.getElementById("team");
  const detail = document.getElementById("agent-detail");
  const search = document.getElementById("team-search");
  const connection = document.getElementById("connection");
  const upstream = document.getElementById("upstream");
  const KINDS = [["AGENT", "Agents"], ["GROUP", "Queues"]];

  let catalog = [];
  let agents = {};
  const records = new Map();
  const sortBy = {}; // kind -> {metricId, descending}
  let openAgent = null;

  const keyOf = (m, c) => m + "\u001f" + c;
  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  function cellValue(metricId, category, atMs) {
    const record = records.get(keyOf(metricId, category));
    const value = record && record.value;
    const raw = value ? F.rawValue(value, atMs) : null;
    let state = record ? record.state : "initializing";
    if (live.isStale() && state !== "error") state = "stale";
    return { raw, state, text: value && value.type !== "UNSUPPORTED" ? F.format(raw, value.type, "auto") : state === "error" ? "—" : "…" };
  }

  function label(kind, category) {
    // Agent categories read "Name(ext)"; the upstream's mapping adds the AgentId.
    if (kind !== "AGENT" || !agents[category]) return category;
    return `${category} · ${agents[category]}`;
  }

  function renderTable(kind, title) {
    const metrics = catalog.filter((m) => m.category_type === kind);
    if (!metrics.length) return null;
    const categories = [...new Set(metrics.flatMap((m) => m.categories))];
    const atMs = live.upstreamNow();
    const sort = sortBy[kind];
    if (sort) {
      const sign = sort.descending ? -1 : 1;
      categories.sort((a, b) => sign * ((cellValue(sort.metricId, a, atMs).raw ?? -Infinity) - (cellValue(sort.metricId, b, atMs).raw ?? -Infinity)) || a.localeCompare(b));
    } else categories.sort((a, b) => a.localeCompare(b));
    const query = search.value.trim().toLowerCase();
    const table = el("table", "team-table");
    table.dataset.kind = kind;
    const head = el("tr");
    head.append(el("th", "", title));
    for (const metric of metrics) {
      const th = el("th");
      const button = el("button", "sort", metric.name || metric.metric_id);
      button.type = "button";
      button.dataset.metricId = metric.metric_id;
      if (sort && sort.metricId === metric.metric_id) th.setAttribute("aria-sort", sort.descending ? "descending" : "ascending");
      button.addEventListener("click", () => {
        const same = sortBy[kind] && sortBy[kind].metricId === metric.metric_id;
        sortBy[kind] = { metricId: metric.metric_id, descending: same ? !sortBy[kind].descending : true };
        render();
      });
      th.append(button);
      head.append(th);
    }
    const body = el("tbody");
    for (const category of categories) {
      const name = label(kind, category);
      if (query && !name.toLowerCase().includes(query)) continue;
      const row = el("tr");
      row.dataset.category = category;
      const th = el("th", "row-name");
      if (kind === "AGENT") {
        const open = el("button", "agent-link", name);
        open.type = "button";
        open.addEventListener("click", () => { openAgent = category; renderDetail(); });
        th.append(open);
      } else th.textContent = name;
      row.append(th);
      for (const metric of metrics) {
        const td = el("td", "cell");
        Object.assign(td.dataset, { metricId: metric.metric_id, category });
        row.append(td);
      }
      body.append(row);
    }
    table.append(el("thead"), body);
    table.tHead.append(head);
    return table;
  }

  function render() {
    root.replaceChildren(...KINDS.map(([kind, title]) => renderTable(kind, title)).filter(Boolean));
    if (!root.children.length) root.textContent = "None of your team's queues or agents is in the catalog yet.";
    tick();
  }

  function renderDetail() {
    if (openAgent === null) { detail.hidden = true; return; }
    const metrics = catalog.filter((m) => m.category_type === "AGENT" && m.categories.includes(openAgent));
    const list = el("dl");
    for (const metric of metrics) {
      const dd = el("dd", "cell");
      Object.assign(dd.dataset, { metricId: metric.metric_id, category: openAgent });
      const link = el("a", "", "history");
      link.href = `${page.history}?metric=${encodeURIComponent(metric.metric_id)}`;
      list.append(el("dt", "", metric.name || metric.metric_id), dd, el("dd", "history-link"));
      list.lastChild.append(link);
    }
    const close = el("button", "", "Close");
    close.type = "button";
    close.addEventListener("click", () => { openAgent = null; renderDetail(); });
    detail.replaceChildren(el("h2", "", label("AGENT", openAgent)), list, close);
    detail.dataset.agent = openAgent;
    detail.hidden = false;
    tick();
  }

  function tick() {
    const atMs = live.upstreamNow();
    for (const cell of document.querySelectorAll(".cell")) {
      const { raw, state, text } = cellValue(cell.dataset.metricId, cell.dataset.category, atMs);
      if (cell.textContent !== text) cell.textContent = text;
      cell.dataset.state = state;
      cell.dataset.value = raw === null ? "" : String(Math.round(raw));
    }
    const stale = live.isStale();
    const problem = live.upstreamProblem();
    upstream.hidden = !problem && !stale;
    upstream.textContent = stale ? `Data is stale. ${problem || ""}` : problem ? `Upstream: ${problem}` : "";
  }

  function onMessage(message) {
    if (message.type === "snapshot") {
      catalog = message.metrics;
      agents = message.agents || {};
      records.clear();
      for (const record of message.records) records.set(keyOf(record.metric_id, record.category), record);
      render();
      renderDetail();
    } else if (message.type === "records") {
      // (live.js has checked them for a missed update, and asked for a fresh snapshot if so.)
      for (const record of message.records) {
        const key = keyOf(record.metric_id, record.category);
        const known = records.get(key);
        if (!known || known.seq < record.seq) records.set(key, record);
      }
    } else if (message.type === "catalog") live.requestSnapshot();
  }
  function setConnection(state, text) {
    connection.dataset.state = state;
    connection.textContent = text;
  }

  search.addEventListener("input", render);
  live.open({
    onOpen: () => setConnection("connected", "Live"),
    onMessage,
    // Access gone (logged out, no longer in the team): the server says why on a fresh load.
    onClose: (event) => { if (event.code === 4403) location.reload(); },
    onReconnecting: () => setConnection("reconnecting", "Connection lost: reconnecting…"),
  });
  setInterval(tick, 1000);
})();
