// A logged-in user's alerts, shown as a toast on whatever page is open. The socket is a live.js
// connection like the board's (the same backoff), without snapshots: it only ever gets
// {"type": "alert", "message": ...}.
(() => {
  "use strict";
  const area = document.getElementById("alerts");
  if (!area) return;
  function show(message) {
    const toast = document.createElement("div");
    toast.className = "alert-toast";
    toast.setAttribute("role", "alert");
    toast.textContent = "⚠ " + message;
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "Dismiss";
    close.addEventListener("click", () => toast.remove());
    toast.append(close);
    area.append(toast);
    while (area.children.length > 5) area.firstElementChild.remove();
  }
  const live = window.BoardLive.connection("/ws/alerts/", { snapshots: false });
  live.open({
    onMessage: (message) => { if (message.type === "alert") show(message.message); },
    onClose: (event) => { if (event.code === 4403) live.stop(); }, // logged out: no more alerts
  });
})();
