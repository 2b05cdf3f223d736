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
  style.textContent =
    ":host{all:initial;display:inline-block}" +
    ".w{font:600 1rem/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#14191f;" +
    "background:#fff;border:2px solid #1a7f37;border-radius:.5em;padding:.4em .8em}" +
    ".w[data-state=high_demand]{border-color:#9a6700}.w[data-state=closed],.w[data-state=unknown]{border-color:#6e7781}";
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
  function show(data) {
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
