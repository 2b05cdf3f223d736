// The Copy button of a link shown once.
(function () {
  "use strict";
  const button = document.getElementById("copy-link");
  const field = document.getElementById(button.dataset.copy);
  const done = document.getElementById("copy-done");
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(field.value);
      done.textContent = "Copied.";
    } catch (error) {
      field.select(); // no clipboard (plain http): selected, for Ctrl-C
      done.textContent = "Press Ctrl-C to copy.";
    }
  });
})();
