// The board designer: edits a board's settings and tiles in the browser, shows them live in
// the preview frame (board.js drawing the unsaved tiles), and saves the whole board as JSON;
// the server checks everything again (dashboard/designer.py) and says what is wrong where.
(() => {
  "use strict";
  const page = JSON.parse(document.getElementById("designer-page").textContent);
  const $ = (id) => document.getElementById(id);
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const board = page.board;
  const layout = $("layout");
  const preview = $("preview");
  let catalog = { metrics: [] };
  let selected = -1;
  let dirty = false;
  let tileErrors = {};
  const TILE_FIELDS = ["kind", "metric_id", "category", "categories", "title", "format", "width", "height", "direction", "warning", "critical", "targets", "trend_hours"];

  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const metricOf = (id) => catalog.metrics.find((m) => m.metric_id === id);
  const nameOf = (tile) => tile.title || (metricOf(tile.metric_id) || {}).name || tile.metric_id || "New tile";
  const announce = (text) => { $("status").textContent = text; };

  // --- unsaved changes ------------------------------------------------------------------------
  function changed() {
    dirty = true;
    $("unsaved").hidden = false;
    schedulePreview();
  }
  window.addEventListener("beforeunload", (event) => {
    if (!dirty) return;
    event.preventDefault();
    event.returnValue = ""; // the browser asks "Leave site? Changes you made may not be saved."
  });

  // --- board settings -------------------------------------------------------------------------
  function fillBoard() {
    $("board-name").value = board.name;
    $("board-title-input").value = board.title === board.name ? "" : board.title;
    $("board-theme").value = board.theme;
    $("board-columns").value = board.columns;
    const teams = $("board-teams");
    teams.querySelectorAll("label").forEach((n) => n.remove());
    for (const team of page.teams) {
      const box = el("input");
      Object.assign(box, { type: "checkbox", value: team.id, checked: board.teams.includes(team.id) });
      box.addEventListener("change", () => {
        board.teams = [...teams.querySelectorAll("input:checked")].map((b) => Number(b.value));
        changed();
      });
      const label = el("label", "check");
      label.append(box, " " + team.name);
      teams.append(label);
    }
  }
  for (const input of $("board-settings").querySelectorAll("[data-field]")) {
    input.addEventListener("input", () => {
      const field = input.dataset.field;
      board[field] = field === "columns" ? Number(input.value) : input.value;
      if (field === "columns") renderLayout();
      changed();
    });
  }

  // --- the layout: tiles in order, moved and resized by drag or keyboard ----------------------
  function renderLayout(focusIndex) {
    // A redraw keeps the keyboard where it was (a tile being moved stays focused).
    if (focusIndex === undefined && layout.contains(document.activeElement)) focusIndex = Number(document.activeElement.dataset.index);
    layout.style.gridTemplateColumns = `repeat(${Math.max(1, board.columns || 1)}, minmax(0, 1fr))`;
    const cards = board.tiles.map((tile, index) => {
      const card = el("div", "designer-tile");
      Object.assign(card, { tabIndex: 0, draggable: true });
      card.setAttribute("role", "listitem");
      card.dataset.index = index;
      card.classList.toggle("selected", index === selected);
      card.classList.toggle("has-error", Boolean(tileErrors[index]));
      card.style.gridColumn = `span ${Math.min(tile.width, board.columns || 1)}`;
      card.style.gridRow = `span ${tile.height}`;
      const where = tile.kind === "breakdown" ? (tile.categories.length ? tile.categories.join(", ") : "every category") : tile.category || "total";
      card.append(el("strong", "", nameOf(tile)), el("span", "designer-tile-kind", `${tile.kind} · ${where}`),
        el("span", "designer-tile-size", `${tile.width}×${tile.height}`));
      const handle = el("span", "resize-handle");
      handle.title = "Drag to resize";
      card.append(handle);
      card.setAttribute("aria-label", `${nameOf(tile)}, ${tile.kind}, position ${index + 1} of ${board.tiles.length}, ${tile.width} wide, ${tile.height} high`);
      card.addEventListener("click", () => select(index));
      card.addEventListener("keydown", (event) => onKey(event, index));
      card.addEventListener("dragstart", (event) => event.dataTransfer.setData("text/plain", String(index)));
      card.addEventListener("dragover", (event) => event.preventDefault());
      card.addEventListener("drop", (event) => {
        event.preventDefault();
        const from = Number(event.dataTransfer.getData("text/plain"));
        if (!Number.isNaN(from) && from !== index) move(from, index);
      });
      handle.addEventListener("pointerdown", (event) => startResize(event, index, card));
      return card;
    });
    layout.replaceChildren(...cards);
    if (focusIndex !== undefined && cards[focusIndex]) cards[focusIndex].focus();
  }

  function move(from, to) {
    const [tile] = board.tiles.splice(from, 1);
    board.tiles.splice(to, 0, tile);
    tileErrors = {};
    selected = to;
    renderLayout(to);
    fillTile();
    announce(`${nameOf(tile)} moved to position ${to + 1} of ${board.tiles.length}.`);
    changed();
  }
  function resize(index, width, height) {
    const tile = board.tiles[index];
    width = Math.max(1, Math.min(width, board.columns || 12, 12));
    height = Math.max(1, Math.min(height, 6));
    if (width === tile.width && height === tile.height) return;
    Object.assign(tile, { width, height });
    renderLayout(index);
    if (index === selected) fillTile();
    announce(`${nameOf(tile)}: ${width} ${width === 1 ? "column" : "columns"} wide, ${height} ${height === 1 ? "row" : "rows"} high.`);
    changed();
  }
  function onKey(event, index) {
    const tile = board.tiles[index];
    const keys = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (!(event.key in keys)) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); select(index); }
      return;
    }
    event.preventDefault();
    const [dx, dy] = keys[event.key];
    if (event.shiftKey) return resize(index, tile.width + dx, tile.height + dy);
    const to = index + dx + dy;
    if (to >= 0 && to < board.tiles.length) move(index, to);
  }
  function startResize(event, index, card) {
    event.preventDefault();
    event.stopPropagation();
    const box = card.getBoundingClientRect();
    const tile = board.tiles[index];
    const cellWidth = box.width / tile.width;
    const cellHeight = box.height / tile.height;
    const handle = event.target;
    handle.setPointerCapture(event.pointerId);
    const onMove = (e) => {
      card.style.gridColumn = `span ${Math.max(1, Math.round((e.clientX - box.left) / cellWidth))}`;
      card.style.gridRow = `span ${Math.max(1, Math.round((e.clientY - box.top) / cellHeight))}`;
    };
    const onUp = (e) => {
      handle.removeEventListener("pointermove", onMove);
      handle.removeEventListener("pointerup", onUp);
      resize(index, Math.round((e.clientX - box.left) / cellWidth), Math.round((e.clientY - box.top) / cellHeight));
    };
    handle.addEventListener("pointermove", onMove);
    handle.addEventListener("pointerup", onUp);
  }

  // --- one tile's settings ----------------------------------------------------------------------
  function select(index) {
    selected = index;
    for (const card of layout.children) card.classList.toggle("selected", Number(card.dataset.index) === index);
    fillTile();
  }
  function mountPicker(tile) {
    // Fresh selects each time: the picker's listeners belong to the tile they were made for.
    const metric = $("tile-metric").cloneNode(false);
    const category = $("tile-category").cloneNode(false);
    category.multiple = tile.kind === "breakdown";
    category.size = category.multiple ? 6 : 0;
    $("tile-metric").replaceWith(metric);
    $("tile-category").replaceWith(category);
    $("tile-category-label").textContent = category.multiple ? "Categories (several: Ctrl or Shift)" : "Category";
    const saved = tile.kind === "breakdown" ? tile.categories : [tile.category];
    window.CatalogPicker.attach(metric, category, {
      catalog, metricId: tile.metric_id, categories: saved,
      onChange(value) {
        tile.metric_id = value.metricId;
        if (tile.kind === "breakdown") { tile.categories = value.categories; tile.category = ""; }
        else { tile.category = value.categories[0] || ""; tile.categories = []; }
        $("unlisted-note").hidden = !category.dataset.unlisted;
        fillTargets(tile);
        renderLayout();
        changed();
      },
    });
    $("unlisted-note").hidden = !category.dataset.unlisted;
  }
  function fillTile() {
    const tile = board.tiles[selected];
    $("tile-settings").hidden = !tile;
    if (!tile) return;
    $("tile-number").textContent = `${selected + 1} of ${board.tiles.length}`;
    for (const input of $("tile-settings").querySelectorAll("[data-field]")) {
      const value = tile[input.dataset.field];
      input.value = value === null || value === undefined ? "" : value;
    }
    $("tile-hours-label").hidden = tile.kind !== "trend";
    mountPicker(tile);
    fillTargets(tile);
    showTileErrors(tileErrors[selected] || {});
  }
  for (const input of $("tile-settings").querySelectorAll("[data-field]")) {
    const event = input.tagName === "SELECT" ? "change" : "input";
    input.addEventListener(event, () => {
      const tile = board.tiles[selected];
      const field = input.dataset.field;
      if (["warning", "critical"].includes(field)) tile[field] = input.value === "" ? null : Number(input.value);
      else if (["width", "height", "trend_hours"].includes(field)) tile[field] = Number(input.value);
      else tile[field] = input.value;
      if (field === "kind") fillTile();
      renderLayout();
      changed();
    });
  }

  // Per-queue targets, as rows: a queue from the catalog, its warning and critical.
  function fillTargets(tile) {
    const rows = $("targets-rows");
    const metric = metricOf(tile.metric_id);
    const queues = metric ? metric.categories : [];
    rows.replaceChildren(...Object.entries(tile.targets).map(([queue, limits]) => {
      const row = el("tr");
      const pick = el("select");
      pick.setAttribute("aria-label", "Target queue");
      for (const q of new Set([queue, ...queues])) {
        const option = el("option", "", queues.includes(q) ? q : `${q} (not listed by the server)`);
        option.value = q;
        pick.append(option);
      }
      pick.value = queue;
      const numbers = ["warning", "critical"].map((name) => {
        const input = el("input");
        Object.assign(input, { type: "number", step: "any", value: limits[name] ?? "" });
        input.setAttribute("aria-label", `Target ${name} for ${queue}`);
        input.dataset.limit = name;
        return input;
      });
      const remove = el("button", "", "Remove");
      remove.type = "button";
      remove.addEventListener("click", () => { row.remove(); readTargets(tile); });
      pick.addEventListener("change", () => readTargets(tile));
      numbers.forEach((n) => n.addEventListener("input", () => readTargets(tile)));
      const cells = [pick, ...numbers, remove].map((node) => { const cell = el("td"); cell.append(node); return cell; });
      row.append(...cells);
      return row;
    }));
  }
  function readTargets(tile) {
    const targets = {};
    for (const row of $("targets-rows").children) {
      const queue = row.querySelector("select").value;
      const limits = {};
      for (const input of row.querySelectorAll("input")) if (input.value !== "") limits[input.dataset.limit] = Number(input.value);
      targets[queue] = limits;
    }
    tile.targets = targets;
    changed();
  }
  $("add-target").addEventListener("click", () => {
    const tile = board.tiles[selected];
    const metric = metricOf(tile.metric_id);
    const free = (metric ? metric.categories : []).find((q) => !(q in tile.targets));
    if (free === undefined) return announce("Every category of this metric has a target already.");
    tile.targets = { ...tile.targets, [free]: {} };
    fillTargets(tile);
    changed();
  });

  $("add-tile").addEventListener("click", () => {
    board.tiles.push({ kind: "value", metric_id: "", category: "", categories: [], title: "", format: "auto",
      width: 1, height: 1, direction: "above", warning: null, critical: null, targets: {}, trend_hours: 4 });
    select(board.tiles.length - 1);
    renderLayout(board.tiles.length - 1);
    announce(`Tile ${board.tiles.length} added.`);
    changed();
    $("tile-metric").focus();
  });
  $("remove-tile").addEventListener("click", () => {
    const [tile] = board.tiles.splice(selected, 1);
    tileErrors = {};
    selected = Math.min(selected, board.tiles.length - 1);
    renderLayout();
    fillTile();
    announce(`${nameOf(tile)} removed.`);
    changed();
  });

  // --- errors next to their fields ----------------------------------------------------------------
  function showError(id, text) {
    const node = $(id);
    if (!node) return false;
    node.textContent = text || "";
    node.hidden = !text;
    return true;
  }
  function showTileErrors(errors) {
    for (const node of $("tile-settings").querySelectorAll(".error")) showError(node.id, "");
    const other = [];
    for (const [field, text] of Object.entries(errors)) {
      const id = "error-tile-" + (field === "categories" ? "category" : field);
      if (!showError(id, text)) other.push(text);
    }
    showError("error-tile-other", other.join(" "));
  }
  function showErrors(errors) {
    for (const field of ["form", "name", "title", "columns", "teams"]) showError("error-" + field, errors[field]);
    const other = Object.entries(errors).filter(([f]) => !["form", "name", "title", "columns", "teams", "tiles", "theme"].includes(f));
    if (other.length || errors.theme) showError("error-form", [errors.form, errors.theme, ...other.map(([, t]) => t)].filter(Boolean).join(" "));
    tileErrors = errors.tiles || {};
    const first = Object.keys(tileErrors)[0];
    renderLayout();
    if (first !== undefined) select(Number(first));
    else fillTile();
  }

  // --- save ---------------------------------------------------------------------------------------
  function payload() {
    const tiles = board.tiles.map((tile) => Object.fromEntries(TILE_FIELDS.map((f) => [f, tile[f]])));
    return { name: board.name, title: board.title, theme: board.theme, columns: board.columns, teams: board.teams, tiles };
  }
  async function save() {
    announce("Saving…");
    let response;
    try {
      response = await fetch(page.save, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify(payload()),
      });
    } catch (error) {
      return announce("Not saved: the server did not answer. Try again.");
    }
    const answer = await response.json().catch(() => ({ errors: { form: `The server answered ${response.status}.` } }));
    if (!response.ok) {
      showErrors(answer.errors || { form: `The server answered ${response.status}.` });
      const count = Object.keys(answer.errors || {}).length;
      return announce(`Not saved: ${count === 1 ? "a problem" : count + " problems"}, shown next to the fields.`);
    }
    Object.assign(board, normalize(answer.board));
    dirty = false;
    $("unsaved").hidden = true;
    $("designer-name").textContent = board.name;
    showErrors({});
    fillBoard();
    announce("Saved.");
  }
  $("save").addEventListener("click", save);

  // --- the live preview ------------------------------------------------------------------------------
  let previewTimer = null;
  function previewConfig() {
    const tiles = board.tiles.filter((t) => t.metric_id).map((tile, index) => ({ ...tile, id: index + 1, title: nameOf(tile) }));
    return { id: board.id, name: board.name, title: board.title || board.name, theme: board.theme, columns: Math.max(1, board.columns || 1), seconds: null, tiles };
  }
  function sendPreview() {
    if (preview.contentWindow) preview.contentWindow.postMessage({ type: "preview", board: previewConfig() }, location.origin);
  }
  function schedulePreview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(sendPreview, 300);
  }
  window.addEventListener("message", (event) => {
    if (event.origin === location.origin && event.data && event.data.type === "preview-ready") sendPreview();
  });

  function normalize(config) {
    config.tiles = config.tiles.map((t) => ({ ...t, categories: t.categories || [], targets: t.targets || {} }));
    return config;
  }

  normalize(board);
  fillBoard();
  renderLayout();
  window.CatalogPicker.load().then((loaded) => {
    catalog = loaded;
    renderLayout();
    if (board.tiles.length) select(0);
    sendPreview();
  }).catch((error) => showError("error-form", `The catalog could not be loaded (${error.message}): reload the page.`));
})();
