// The live connection of the board and team pages: one websocket to our server, reconnected
// with backoff, and what its messages tell about time: the server's clock and the data's
// freshness.
window.BoardLive = (() => {
  "use strict";
  const OFFSET_SAMPLES = 30;
  // Reconnect delay after a lost socket: exponential backoff with full jitter, so a restarted
  // server is not hit by every screen at once, capped at 8 s so that every screen is back within
  // ~10 s of a restart (bench/drills/web_restart.py: a 30 s cap left a quarter out for 20 s).
  const reconnectDelay = (attempt) => Math.random() * Math.min(8000, 500 * 2 ** attempt);

  // The connection to `path` on this server; live.open(handlers) opens it and keeps it open.
  // handlers: onOpen(), onMessage(message), onClose(event) (optional: it runs before any
  // reconnect, and may call live.stop()), onReconnecting(attempt).
  function connection(path) {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
    const offsetSamples = [];
    let socket = null;
    let attempt = 0;
    let handlers = null;
    const live = {
      clockOffset: 0, // server time minus this browser's time
      status: {}, // the server's word on the upstream: *_ok_ms, *_error, upstream_offset_ms
      staleMs: 20000,
      brokenSince: null, // when the socket was lost (this browser's clock); null while it is open
      stopped: false,
      serverNow: () => Date.now() + live.clockOffset,
      // Durations are extrapolated on the upstream's clock, which the server estimates for us.
      upstreamNow: () => live.serverNow() + (live.status.upstream_offset_ms || 0),
      // The server's time of the last word from the upstream, by either path.
      lastConfirmed: () => Math.max(live.status.poll_ok_ms || 0, live.status.ws_ok_ms || 0),
      isStale: () => live.serverNow() - live.lastConfirmed() > live.staleMs,
      requestSnapshot() {
        if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "snapshot" }));
      },
      stop() { live.stopped = true; },
      open(pageHandlers) {
        handlers = pageHandlers;
        openSocket();
      },
    };

    function learnClockOffset(serverTimeMs) {
      // Each sample is the true offset minus the message's delivery delay, so the largest of the
      // recent samples is the best estimate; a window lets a corrected local clock be learnt.
      offsetSamples.push(serverTimeMs - Date.now());
      if (offsetSamples.length > OFFSET_SAMPLES) offsetSamples.shift();
      live.clockOffset = Math.max(...offsetSamples);
    }
    function openSocket() {
      socket = new WebSocket(url);
      socket.onopen = () => {
        attempt = 0;
        live.brokenSince = null;
        handlers.onOpen();
      };
      socket.onmessage = (event) => {
        const message = JSON.parse(event.data);
        if (typeof message.server_time_ms === "number") learnClockOffset(message.server_time_ms);
        if (message.type === "snapshot") {
          live.status = message.status;
          live.staleMs = message.stale_ms;
        } else if (message.type === "status") live.status = message.status;
        handlers.onMessage(message);
      };
      socket.onclose = (event) => {
        if (handlers.onClose) handlers.onClose(event);
        if (live.stopped) return;
        live.brokenSince = live.brokenSince || Date.now();
        const delay = reconnectDelay(attempt);
        attempt += 1;
        handlers.onReconnecting(attempt);
        setTimeout(() => { if (!live.stopped) openSocket(); }, delay);
      };
    }
    return live;
  }

  return { connection };
})();
