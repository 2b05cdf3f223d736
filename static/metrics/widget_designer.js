// The widget designer: catalog pickers for the widget's metrics, a live preview of its look
// while editing, copy buttons for its embeds, its JSON's current answer, and a warning before
// leaving with unsaved changes. Also the "are you sure" of delete buttons on the widget list.
(() => {
  "use strict";

  for (const form of document.querySelectorAll("form.confirm")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }

  const form = document.getElementById("widget-form");
  if (!form) return;

  // Metric, then its category, from the public catalog (never free text).
  const catalog = JSON.parse(document.getElementById("widget-catalog").textContent);
  for (const source of form.querySelectorAll(".source")) {
    const [metric, category] = source.querySelectorAll("select");
    window.CatalogPicker.attach(metric, category, {
      catalog,
      metricId: metric.dataset.value,
      categories: [category.dataset.value],
    });
  }

  // A new widget's address follows its name until someone types one.
  const name = form.querySelector("#id_name");
  const slug = form.querySelector("#id_slug");
  let slugTyped = slug.value !== "";
  slug.addEventListener("input", () => { slugTyped = true; });
  name.addEventListener("input", () => {
    if (!slugTyped) slug.value = name.value.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 50);
  });

  // The look as edited, on the script preview (the custom properties a site may set too).
  const LOOK = {
    color_text: ["--acr-widget-text", ""], color_background: ["--acr-widget-background", ""],
    color_open: ["--acr-widget-open", ""], color_high_demand: ["--acr-widget-high-demand", ""],
    color_closed: ["--acr-widget-closed", ""], font_size: ["--acr-widget-size", "px"],
    corner_radius: ["--acr-widget-radius", "px"],
  };
  const preview = document.getElementById("preview-script");
  function showLook() {
    if (!preview) return;
    for (const [field, [property, unit]] of Object.entries(LOOK)) {
      const input = form.elements[field];
      if (input && input.value !== "" && input.checkValidity()) preview.style.setProperty(property, input.value + unit);
    }
  }

  // Unsaved changes: marked on the page, and asked about before leaving it.
  const unsaved = document.getElementById("unsaved");
  let dirty = form.querySelector(".invalid") !== null; // a refused save is not saved either
  unsaved.hidden = !dirty;
  function changed() { dirty = true; unsaved.hidden = false; showLook(); }
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  form.addEventListener("submit", () => { dirty = false; });
  window.addEventListener("beforeunload", (event) => {
    if (dirty) { event.preventDefault(); event.returnValue = ""; }
  });

  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", async () => {
      const code = document.getElementById(button.dataset.copy);
      const said = button.nextElementSibling;
      try {
        await navigator.clipboard.writeText(code.value);
      } catch (error) { // no clipboard API (plain http): select it and copy the old way
        code.select();
        if (!document.execCommand("copy")) { said.textContent = "Select and copy it by hand"; return; }
      }
      said.textContent = "Copied";
      setTimeout(() => { said.textContent = ""; }, 2000);
    });
  }

  // The JSON embed's preview: what the URL answers now, every few seconds.
  const answer = document.getElementById("json-answer");
  async function refresh() {
    try {
      const response = await fetch(answer.dataset.url, { cache: "no-cache", credentials: "omit" });
      const body = await response.text();
      answer.textContent = response.ok ? JSON.stringify(JSON.parse(body), null, 2) : `${response.status}: ${body}`;
    } catch (error) {
      answer.textContent = `Unreachable: ${error.message}`;
    }
  }
  if (answer) { refresh(); setInterval(refresh, 5000); }
})();
