// The TV's pairing page: asks every few seconds whether its code was entered; once it was,
// opens its board (/tv/open/ redirects this browser, and only this one, to its display link).
// An expired code gives way to a fresh one by itself.
(function () {
  "use strict";
  const root = document.getElementById("pairing");
  const left = document.getElementById("pairing-left");
  const note = document.getElementById("pairing-note");
  const pollMs = Number(root.dataset.pollSeconds) * 1000;
  let deadline = Date.now() + Number(root.dataset.secondsLeft) * 1000;

  function showLeft() {
    const seconds = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    left.textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  }
  async function poll() {
    let answer = null;
    try {
      const response = await fetch(root.dataset.status, { cache: "no-store", credentials: "same-origin" });
      if (response.ok) answer = await response.json();
    } catch (error) { /* the server is away: ask again */ }
    if (answer && answer.state === "claimed") {
      root.dataset.state = "claimed";
      note.textContent = "Paired: opening the board…";
      location.replace(root.dataset.open);
      return;
    }
    if (answer && answer.state === "expired") {
      root.dataset.state = "expired";
      note.textContent = "This code expired: getting a new one…";
      location.reload();
      return;
    }
    if (answer) deadline = Date.now() + answer.seconds_left * 1000;
    setTimeout(poll, pollMs);
  }
  showLeft();
  setInterval(showLeft, 1000);
  setTimeout(poll, pollMs);
})();
