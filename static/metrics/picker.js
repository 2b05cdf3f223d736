// The catalog picker: fills a metric <select> and a category <select> (single, or multiple)
// from /catalog.json, the metrics and categories the signed-in user may use. Never free text:
// a category the upstream no longer lists (or the user may not use) that was saved before
// stays selected, flagged "not listed by the server", rather than being dropped silently.
//
//   <script src="{% static 'metrics/picker.js' %}" defer></script>
//   const catalog = await CatalogPicker.load();               // fetched once per page
//   const picker = CatalogPicker.attach(metricSelect, categorySelect, {
//     catalog, metricId: "CIQGRP01", categories: ["Sales"],   // the saved choice, if any
//     onChange: (value) => ...,                                // {metricId, categories, metric}
//   });
//   picker.value();  // {metricId, categories: [...], metric: the catalog entry or null}
//
// categorySelect may be null (a metric alone). A <select multiple> takes several categories.
(() => {
  "use strict";
  const UNLISTED = " (not listed by the server)";
  const loads = new Map();

  function load(url = "/catalog.json") {
    if (!loads.has(url)) {
      loads.set(url, fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then((response) => {
        if (!response.ok) throw new Error(`the catalog answered ${response.status}`);
        return response.json();
      }));
    }
    return loads.get(url);
  }

  function option(value, text, unlisted) {
    const node = document.createElement("option");
    node.value = value;
    node.textContent = unlisted ? text + UNLISTED : text;
    if (unlisted) {
      node.dataset.unlisted = "1";
      node.className = "unlisted";
    }
    return node;
  }

  function attach(metricSelect, categorySelect, { catalog, metricId = "", categories = [], onChange } = {}) {
    const metrics = new Map(catalog.metrics.map((m) => [m.metric_id, m]));
    const multiple = Boolean(categorySelect && categorySelect.multiple);

    function fillMetrics(selected) {
      const options = [option("", "Choose a metric…")];
      for (const m of catalog.metrics) options.push(option(m.metric_id, `${m.name} (${m.metric_id})`));
      if (selected && !metrics.has(selected)) options.push(option(selected, selected, true));
      metricSelect.replaceChildren(...options);
      metricSelect.value = selected || "";
    }

    function fillCategories(selected) {
      if (!categorySelect) return;
      const metric = metrics.get(metricSelect.value);
      const options = [];
      if (!multiple) options.push(option("", metric && metric.category_type === "NONE" ? "(no category: the total)" : "Choose a category…"));
      const listed = metric ? metric.categories : [];
      for (const c of listed) options.push(option(c, c));
      for (const c of selected) if (c !== "" && !listed.includes(c)) options.push(option(c, c, true));
      categorySelect.replaceChildren(...options);
      for (const node of categorySelect.options) node.selected = selected.includes(node.value);
      categorySelect.disabled = !metricSelect.value;
      categorySelect.dataset.unlisted = [...categorySelect.selectedOptions].some((o) => o.dataset.unlisted) ? "1" : "";
    }

    function value() {
      let chosen = [];
      if (categorySelect) chosen = multiple ? [...categorySelect.selectedOptions].map((o) => o.value) : [categorySelect.value];
      return { metricId: metricSelect.value, categories: chosen, metric: metrics.get(metricSelect.value) || null };
    }
    const changed = () => { if (onChange) onChange(value()); };

    metricSelect.addEventListener("change", () => { fillCategories([]); changed(); });
    if (categorySelect) {
      categorySelect.addEventListener("change", () => {
        categorySelect.dataset.unlisted = [...categorySelect.selectedOptions].some((o) => o.dataset.unlisted) ? "1" : "";
        changed();
      });
    }
    fillMetrics(metricId);
    fillCategories(categories);
    return {
      value,
      setValue(id, cats = []) { fillMetrics(id); fillCategories(cats); },
    };
  }

  window.CatalogPicker = { load, attach };
})();
