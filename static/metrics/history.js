// History: a Plotly chart of one metric over a range, a line per category, and its CSV.
(() => {
  "use strict";
  const form = document.getElementById("history-form");
  const chart = document.getElementById("history-chart");
  const state = document.getElementById("history-state");
  const csv = document.getElementById("history-csv");

  const hours = document.getElementById("history-hours");
  const from = document.getElementById("history-from");
  const to = document.getElementById("history-to");

  // The range as the API takes it: hours back from now, or start and end in epoch ms (the
  // inputs are in the site's time zone, whatever the browser's).
  const F = window.BoardFormat;
  const inputMs = (input) => F.fromWallClock(Date.parse(input.value + "Z"));
  function rangeQuery() {
    const query = new URLSearchParams({ metric: form.elements.metric.value });
    if (hours.value !== "custom") {
      query.set("hours", hours.value);
    } else {
      query.set("start", String(inputMs(from)));
      query.set("end", String(inputMs(to)));
    }
    return query.toString();
  }

  hours.addEventListener("change", () => {
    const custom = hours.value === "custom";
    for (const label of form.querySelectorAll(".history-custom")) label.hidden = !custom;
    if (custom && !from.value) {
      const local = (ms) => new Date(F.wallClock(ms)).toISOString().slice(0, 16);
      const now = Date.now();
      to.value = local(now);
      from.value = local(now - 24 * 3600 * 1000);
    }
  });

  async function show() {
    if (hours.value === "custom" && !(from.value && to.value && inputMs(from) < inputMs(to))) {
      state.textContent = "Choose a start before the end.";
      return;
    }
    const query = rangeQuery();
    csv.href = chart.dataset.csv + "?" + query;
    state.textContent = "Loading…";
    const started = performance.now();
    const [response] = await Promise.all([
      fetch(chart.dataset.url + "?" + query),
      window.Charts.loadPlotly(chart.dataset.plotly),
    ]);
    if (!response.ok) {
      state.textContent = `Cannot show this history (${response.status}).`;
      return;
    }
    const data = await response.json();
    const fetched = performance.now();
    const { Charts, BoardFormat } = window;
    const traces = data.series.map((s) => ({
      // SVG, not WebGL: the server already reduced the data, and WebGL is missing on many TVs.
      // Times on the site's wall clock, values in the metric's unit (durations as clocks).
      type: "scatter", mode: "lines", name: s.category || "Total",
      x: s.t.map((t) => BoardFormat.wallClock(t)), y: s.v, connectgaps: false,
      customdata: s.v.map((v) => Charts.valueText(v, data.unit)),
      hovertemplate: "%{x|%Y-%m-%d %H:%M:%S}: %{customdata}<extra>%{fullData.name}</extra>",
    }));
    const colour = getComputedStyle(document.body).color;
    await window.Plotly.react(chart, traces, {
      margin: { l: 70, r: 20, t: 10, b: 40 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: colour }, xaxis: { type: "date" }, yaxis: Charts.valueAxis(data.series.flatMap((s) => s.v), data.unit),
      legend: { orientation: "h" },
    }, { displaylogo: false, responsive: true });
    const points = data.series.reduce((n, s) => n + s.t.length, 0);
    const drawn = performance.now();
    // Read by bench/history_render.py: request + JSON, then Plotly's drawing, then both.
    chart.dataset.fetchMs = String(Math.round(fetched - started));
    chart.dataset.drawMs = String(Math.round(drawn - fetched));
    chart.dataset.renderMs = String(Math.round(drawn - started));
    chart.dataset.series = String(data.series.length);
    state.textContent = data.series.length ? `${data.metric.name}: ${data.series.length} series, ${points} points.` : "No samples in this range yet.";
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); show(); });
  if (form.querySelector("option")) show();
})();
