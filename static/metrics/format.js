// Pure helpers for the board and team pages: value formulas, number formats, threshold levels.
// (The same formulas as metrics/acr/values.py.)
window.BoardFormat = (() => {
  "use strict";
  // Never below 0 (more counting down than up): the rule of metrics.acr.values.duration_ms.
  function durationAt(v, atMs) {
    return Math.max(0, v.finished_ms + (v.up - v.down) * (atMs - v.last_update_ms));
  }
  // The raw number of a value at atMs (upstream clock): a count, or ms; null when there is none.
  function rawValue(v, atMs) {
    if (!v) return null;
    if (v.type === "COUNT") return v.count;
    if (v.type === "DURATION") return durationAt(v, atMs);
    if (v.type === "AVERAGE_DURATION") return v.count === 0 ? null : durationAt(v, atMs) / v.count;
    return null;
  }
  const pad = (n) => String(n).padStart(2, "0");
  function clock(ms, withHours) {
    const total = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    if (withHours || h) return `${h}:${pad(m)}:${pad(s)}`;
    return `${pad(m)}:${pad(s)}`;
  }
  function mmss(ms) {
    const total = Math.max(0, Math.floor(ms / 1000));
    return `${pad(Math.floor(total / 60))}:${pad(total % 60)}`;
  }
  // The text of a raw value in a tile's format ("auto": counts as numbers, durations as clocks).
  function format(raw, type, fmt) {
    if (raw === null || raw === undefined) return "—";
    const isDuration = type === "DURATION" || type === "AVERAGE_DURATION";
    if (fmt === "count" || (fmt === "auto" && !isDuration)) return String(Math.round(raw));
    if (fmt === "percent") return `${Math.round(raw)}%`;
    if (fmt === "mmss") return mmss(raw);
    if (fmt === "hmmss") return clock(raw, true);
    return clock(raw, false);
  }
  // Thresholds are set in display units: counts as they are, durations in seconds.
  function level(raw, type, tile, category) {
    if (raw === null || raw === undefined) return "normal";
    const limits = Object.assign(
      { warning: tile.warning, critical: tile.critical },
      (tile.targets || {})[category] || {}
    );
    const isDuration = type === "DURATION" || type === "AVERAGE_DURATION";
    const value = isDuration ? raw / 1000 : raw;
    const worse = tile.direction === "below" ? (a, b) => a <= b : (a, b) => a >= b;
    if (limits.critical !== null && limits.critical !== undefined && worse(value, limits.critical)) return "critical";
    if (limits.warning !== null && limits.warning !== undefined && worse(value, limits.warning)) return "warning";
    return "normal";
  }
  // --- the site's time zone (pages carry it as <body data-time-zone>: a TV's own may be UTC) ---
  const siteZone = () => document.body.dataset.timeZone || undefined;
  const zoneParts = new Map(); // zone -> Intl.DateTimeFormat
  // The site zone's offset from UTC at epoch ms `ms`, in ms. Offsets change only on whole
  // quarter hours, so each quarter hour is worked out once.
  const offsets = new Map();
  function zoneOffsetMs(ms, zone) {
    const quarter = Math.floor(ms / 900000) * 900000;
    const key = zone + "@" + quarter;
    if (!offsets.has(key)) {
      if (!zoneParts.has(zone)) {
        zoneParts.set(zone, new Intl.DateTimeFormat("en-US", {
          timeZone: zone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
          hour: "numeric", minute: "numeric", second: "numeric",
        }));
      }
      const p = Object.fromEntries(zoneParts.get(zone).formatToParts(new Date(quarter)).map((x) => [x.type, +x.value]));
      if (offsets.size > 10000) offsets.clear();
      offsets.set(key, Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - quarter);
    }
    return offsets.get(key);
  }
  // The site's wall clock at `ms` as a number Plotly draws as is (it reads numbers as UTC).
  function wallClock(ms, zone = siteZone()) {
    return zone ? ms + zoneOffsetMs(ms, zone) : ms - new Date(ms).getTimezoneOffset() * 60000;
  }
  // The epoch ms of a wall-clock time in the site's zone, given as if it were UTC (the inverse of
  // wallClock; the second pass settles the offset on the far side of a change).
  function fromWallClock(wallMs, zone = siteZone()) {
    if (!zone) return wallMs + new Date(wallMs).getTimezoneOffset() * 60000;
    const guess = wallMs - zoneOffsetMs(wallMs, zone);
    return wallMs - zoneOffsetMs(guess, zone);
  }
  // A time of day for people to read ("stale since 14:03:07"), in the site's zone.
  function timeOfDay(ms, zone = siteZone()) {
    return new Date(ms).toLocaleTimeString([], { timeZone: zone });
  }
  return { rawValue, format, level, zoneOffsetMs, wallClock, fromWallClock, timeOfDay };
})();
