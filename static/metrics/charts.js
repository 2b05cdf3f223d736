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
  return { loadPlotly };
})();
