// The public wait-time widget. Embed with:
//   <script src="https://DASHBOARD/static/widget/widget.js" data-widget="https://DASHBOARD/widget/SLUG.json" async></script>
// It renders into a shadow root right after the script tag (no CSS leaks either way) and keeps
// itself current: polling with revalidation (ETag), backing off on errors, paused when hidden.
(() => {
  "use strict";
  const script = document.currentScript;
  if (!script || !script.dataset.widget) return;
  const url = new URL(script.dataset.widget, script.src || location.href).href;
  const host = document.createElement("div");
  host.className = "acr-wait-widget";
  script.after(host);
  const root = host.attachShadow({ mode: "open" });
  const style = document.createElement("style");
  // Its look comes with each answer (the widget's settings); the embedding page may override any
  // of it with the custom properties --acr-widget-text, -background, -open, -high-demand,
  // -closed, -size and -radius on the script's host element (.acr-wait-widget).
  style.textContent =
    ":host{all:initial;display:inline-block}" +
    ".w{--text:#14191f;--background:#ffffff;--open:#1a7f37;--high-demand:#9a6700;--closed:#6e7781;--size:16px;--radius:8px;" +
    "font:600 var(--acr-widget-size,var(--size))/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;" +
    "color:var(--acr-widget-text,var(--text));background:var(--acr-widget-background,var(--background));" +
    "border:2px solid var(--acr-widget-open,var(--open));border-radius:var(--acr-widget-radius,var(--radius));padding:.4em .8em}" +
    ".w[data-state=high_demand]{border-color:var(--acr-widget-high-demand,var(--high-demand))}" +
    ".w[data-state=closed],.w[data-state=unknown]{border-color:var(--acr-widget-closed,var(--closed))}";
  const box = document.createElement("div");
  box.className = "w";
  box.setAttribute("role", "status");
  box.setAttribute("aria-live", "polite");
  box.dataset.state = "loading";
  box.textContent = "…";
  root.append(style, box);

  const NORMAL_MS = 15000;
  let delay = NORMAL_MS;
  let timer = null;
  const COLORS = { text: "--text", background: "--background", open: "--open", high_demand: "--high-demand", closed: "--closed" };
  const SIZES = { font_size: ["--size", 10, 48], corner_radius: ["--radius", 0, 32] };
  function applyStyle(look) {
    if (!look || typeof look !== "object") return;
    // Checked again here: only #rrggbb and whole pixels ever reach the page's CSS.
    for (const [key, property] of Object.entries(COLORS)) {
      if (/^#[0-9a-fA-F]{6}$/.test(look[key])) box.style.setProperty(property, look[key]);
    }
    for (const [key, [property, low, high]] of Object.entries(SIZES)) {
      const n = look[key];
      if (Number.isInteger(n) && n >= low && n <= high) box.style.setProperty(property, n + "px");
    }
  }
  function show(data) {
    applyStyle(data.style);
    box.dataset.state = data.state;
    if (data.lang) box.lang = data.lang;
    if (box.textContent !== data.text) box.textContent = data.text;
  }
  async function poll() {
    timer = null;
    try {
      const response = await fetch(url, { cache: "no-cache", credentials: "omit", mode: "cors" });
      if (!response.ok) throw new Error(String(response.status));
      show(await response.json());
      delay = NORMAL_MS;
    } catch (error) {
      // Back off (with jitter) while the dashboard is unreachable; the last text stays.
      delay = Math.min(delay * 2, 300000);
    }
    schedule();
  }
  function schedule() {
    if (timer === null && !document.hidden) timer = setTimeout(poll, delay * (0.8 + Math.random() * 0.4));
  }
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) { clearTimeout(timer); timer = null; } else if (timer === null) poll();
  });
  poll();
})();
