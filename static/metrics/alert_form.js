// The alert rule form: its metric, then its queue or agent, chosen from the catalog of the
// signed-in user's scope (static/metrics/picker.js), never typed.
(() => {
  "use strict";
  const form = document.getElementById("alert-form");
  if (!form) return;
  const metric = form.querySelector("#id_metric");
  const category = form.querySelector("#id_category");
  const state = form.querySelector("#catalog-state");
  window.CatalogPicker.load().then(
    (catalog) => {
      window.CatalogPicker.attach(metric, category, {
        catalog,
        metricId: metric.dataset.value,
        categories: [category.dataset.value],
      });
    },
    (error) => { state.textContent = `The catalog could not be read (${error.message}): reload the page.`; },
  );
})();
