// The live connection of every page that holds a websocket to our server (the board, the team
// page, and the alerts of any page): one socket, reconnected with backoff, and what its messages
// tell about time (the server's clock), the data's freshness and missed updates.
window.BoardLive = (() => {
  "use strict";
  const OFFSET_SAMPLES = 30;
  // Reconnect delay after a lost socket: exponential backoff with full jitter, so a restarted
  // server is not hit by every screen at once, capped at 8 s so that every screen is back within
  // ~10 s of a restart (bench/drills/web_restart.py: a 30 s cap left a quarter out for 20 s).
  const reconnectDelay = (attempt) => Math.random() * Math.min(8000, 500 * 2 ** attempt);

  // The connection to `path` on this server; live.open(handlers) opens it and keeps it open.
  // handlers: onMessage(message); optional: onOpen(), onClose(event) (it runs before any
  // reconnect, and may call live.stop()), onReconnecting(attempt).
  // A socket with snapshots (the default) gets a snapshot first, then record updates that carry
  // per-record sequence numbers (rseq): live keeps the upstream's status and the staleness limit
  // from them, and asks for a fresh snapshot when an update shows that one was missed.
  // { snapshots: false } is a socket without them (the alerts): the connection and clock only.
  function connection(path, { snapshots = true } = {}) {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
    const offsetSamples = [];
    const recordSeq = new Map(); // metric and category -> the last sequence number seen
    let socket = null;
    let attempt = 0;
    let handlers = null;
    const live = {
      clockOffset: 0, // server time minus this browser's time
      status: {}, // the server's word on the upstream: *_ok_ms, *_error, upstream_offset_ms
      staleMs: 20000,
      brokenSince: null, // when the socket was lost (this browser's clock); null while it is open
      resyncing: false, // a snapshot was asked for and has not arrived yet
      stopped: false,
      serverNow: () => Date.now() + live.clockOffset,
      // Durations are extrapolated on the upstream's clock, which the server estimates for us.
      upstreamNow: () => live.serverNow() + (live.status.upstream_offset_ms || 0),
      // The server's time of the last word from the upstream, by either path.
      lastConfirmed: () => Math.max(live.status.poll_ok_ms || 0, live.status.ws_ok_ms || 0),
      isStale: () => snapshots && live.serverNow() - live.lastConfirmed() > live.staleMs,
      // What is wrong upstream, in words, for a banner; not a push channel blocked on the way
      // (a proxy): polling then keeps every tile right, and the status page says so.
      upstreamProblem: () => live.status.poll_error || (live.status.ws_blocked ? "" : live.status.ws_error),
      requestSnapshot() {
        // (A socket without snapshots takes nothing from the browser: the alerts one closes.)
        if (!snapshots || !socket || socket.readyState !== WebSocket.OPEN) return;
        socket.send(JSON.stringify({ type: "snapshot" }));
        live.resyncing = true;
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
    // Whether `records` skip a number in their (metric, category)'s sequence: an update was
    // missed. Per (metric, category), so a page sent only some categories (a team's queues)
    // sees no gap in what it is not sent; in rseq order, for updates that arrive together.
    const keyOf = (record) => record.metric_id + "\u001f" + record.category;
    function missedUpdate(records) {
      let gap = false;
      for (const record of records.slice().sort((a, b) => a.rseq - b.rseq)) {
        const last = recordSeq.get(keyOf(record)) || 0;
        if (record.rseq > last + 1) gap = true;
        recordSeq.set(keyOf(record), Math.max(last, record.rseq));
      }
      return gap;
    }
    function learn(message) {
      if (message.type === "snapshot") {
        live.status = message.status;
        live.staleMs = message.stale_ms;
        live.resyncing = false;
        recordSeq.clear();
        for (const record of message.records) recordSeq.set(keyOf(record), record.rseq);
      } else if (message.type === "status") live.status = message.status;
      else if (message.type === "records" && missedUpdate(message.records)) live.requestSnapshot();
    }
    function openSocket() {
      socket = new WebSocket(url);
      socket.onopen = () => {
        attempt = 0;
        live.brokenSince = null;
        if (handlers.onOpen) handlers.onOpen();
      };
      socket.onmessage = (event) => {
        const message = JSON.parse(event.data);
        if (typeof message.server_time_ms === "number") learnClockOffset(message.server_time_ms);
        if (snapshots) learn(message);
        handlers.onMessage(message);
      };
      socket.onclose = (event) => {
        live.resyncing = false; // the next socket starts with a snapshot of its own
        if (handlers.onClose) handlers.onClose(event);
        if (live.stopped) return;
        live.brokenSince = live.brokenSince || Date.now();
        const delay = reconnectDelay(attempt);
        attempt += 1;
        if (handlers.onReconnecting) handlers.onReconnecting(attempt);
        setTimeout(() => { if (!live.stopped) openSocket(); }, delay);
      };
    }
    return live;
  }

  return { connection };
})();
