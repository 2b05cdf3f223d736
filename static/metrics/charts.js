// Plotly for the board's trend tiles and the history chart: loaded on first use (it is large,
// and a board of plain tiles never needs it), and once per page however many charts ask.
window.Charts = (() => {
  "use strict";
  let loading = null;
  // Resolves when window.Plotly is there; `src` is the vendored script (the data-plotly URL).
  function loadPlotly(src) {
    if (!loading) {
      loading = new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = src;
        script.onload = resolve;
        script.onerror = reject;
        document.head.append(script);
      });
    }
    return loading;
  }
  // Duration ticks fall on steps a person counts in, in ms: 1 s ... 30 s, 1 min ... 1 h ... 1 day.
  const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((s) => s * 1000);
  // Plotly's y axis for `values` (ms when unit is "ms", else counts): durations get ticks at
  // whole steps from 0, as m:ss or, once the axis reaches an hour, h:mm:ss (the tiles' formatter);
  // counts get plain numbers (no "60k").
  function valueAxis(values, unit) {
    const axis = { rangemode: "tozero", exponentformat: "none", separatethousands: true };
    if (unit !== "ms") {
      // Calls are whole: below 5, a tick per call (Plotly would put ticks at 0.5 and draw "1" twice).
      const most = values.reduce((a, v) => (v !== null && v !== undefined && v > a ? v : a), 0);
      return most < 5 ? Object.assign(axis, { tickmode: "linear", tick0: 0, dtick: 1, range: [0, Math.max(most, 1) * 1.1] }) : Object.assign(axis, { tickformat: ",d" });
    }
    const top = values.reduce((a, v) => (v !== null && v !== undefined && v > a ? v : a), 1000);
    const step = STEPS.find((s) => top / s <= 6) || Math.ceil(top / 6 / 86400000) * 86400000;
    const fmt = top >= 3600000 ? "hmmss" : "mmss";
    const tickvals = [];
    for (let v = 0; v < top + step; v += step) tickvals.push(v);
    return Object.assign(axis, {
      tickmode: "array", tickvals, ticktext: tickvals.map((v) => window.BoardFormat.format(v, "DURATION", fmt)),
    });
  }
  // A value as a hover shows it, by the same formatter as the tiles.
  function valueText(v, unit) {
    return window.BoardFormat.format(v, unit === "ms" ? "DURATION" : "COUNT", "auto");
  }
  return { loadPlotly, valueAxis, valueText };
})();
