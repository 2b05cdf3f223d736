// A logged-in user's alerts, shown as a toast on whatever page is open.
(() => {
  "use strict";
  const area = document.getElementById("alerts");
  if (!area) return;
  let attempt = 0;
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
  function connect() {
    const socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/alerts/");
    socket.onopen = () => { attempt = 0; };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "alert") show(message.message);
    };
    socket.onclose = () => {
      attempt += 1;
      setTimeout(connect, Math.random() * Math.min(60000, 1000 * 2 ** attempt));
    };
  }
  connect();
})();
