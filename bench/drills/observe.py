"""What a user sees, read from a real client: a websocket client of a display link (a TV) that
keeps exactly what static/metrics/board.js keeps and shows, and reconnects with the policy of
static/metrics/live.js (the connection module board.js uses).

`BoardView` mirrors board.js's state and rules (keep it in step with board.js and live.js):
- snapshot: records replaced, each (metric, category)'s sequence (`rseq`) taken from it;
- records: sorted by `rseq`; a record whose `seq` is not above the known one is ignored; a
  jump in a (metric, category)'s `rseq` is a gap and asks for a snapshot;
- a tile is `stale` when server time minus max(poll_ok_ms, ws_ok_ms) exceeds `stale_ms`
  (an `error` tile stays `error`); the banner says the connection is lost, the data is stale,
  and the upstream's problem (`poll_error`, or `ws_error` unless websockets are blocked on the
  way: polling then carries every tile).

`BoardClient` reconnects as live.js does for board.js: after a close, wait random() * min(8 s,
0.5 s * 2^attempt), attempt += 1, reset to 0 on open; a TV (kiosk) also sends a HEAD for its
page from the second attempt on, and stops on close code 4403 or a 404.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx

from metrics.acr.values import value_at, value_from_wire

Key = tuple[str, str]

# board.js: connect()/socket.onclose
BACKOFF_BASE_MS = 500
BACKOFF_CAP_MS = 8_000
CLOSE_REVOKED = 4403


def now_ms() -> float:
    return time.time() * 1000


def backoff_ms(attempt: int) -> float:
    """live.js reconnectDelay (board.js, team.js): random() * min(8000, 500 * 2 ** attempt)."""
    return random.random() * min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2**attempt)  # noqa: S311


DURATION_TYPES = ("DURATION", "AVERAGE_DURATION")


def raw_value(value: dict[str, Any] | None, at_ms: float) -> float | None:
    """format.js rawValue (the formulas of metrics.acr.values): a count, or milliseconds; None
    when there is no number."""
    if not value or value.get("type") not in ("COUNT", "DURATION", "AVERAGE_DURATION"):
        return None
    return value_at(value_from_wire(value), at_ms=int(at_ms))


def format_auto(raw: float | None, value_type: str) -> str:
    """format.js format(raw, type, "auto") (the drill board's tiles keep the default format):
    counts as numbers, durations as mm:ss or h:mm:ss, "—" when there is no number."""
    if raw is None:
        return "—"
    if value_type not in DURATION_TYPES:
        return str(round(raw))
    total = max(0, int(raw // 1000))
    hours, minutes, seconds = total // 3600, total % 3600 // 60, total % 60
    return f"{hours}:{minutes:02}:{seconds:02}" if hours else f"{minutes:02}:{seconds:02}"


class BoardView:
    """board.js's state: records, per-record sequences (live.js), status, clock offset."""

    def __init__(self) -> None:
        self.records: dict[Key, dict[str, Any]] = {}
        self.record_seq: dict[Key, int] = {}
        self.status: dict[str, Any] = {}
        self.stale_ms = 20_000
        self.offsets: deque[float] = deque(maxlen=30)
        self.clock_offset = 0.0
        self.snapshots = 0

    def receive(self, message: dict[str, Any], at_ms: float) -> bool:
        """Applies one message; True when board.js would now ask for a snapshot."""
        if isinstance(message.get("server_time_ms"), int | float):
            self.offsets.append(message["server_time_ms"] - at_ms)
            self.clock_offset = max(self.offsets)
        kind = message.get("type")
        if kind == "snapshot":
            self.snapshots += 1
            self.stale_ms = message["stale_ms"]
            self.status = message["status"]
            self.records.clear()
            self.record_seq.clear()
            for record in message["records"]:
                self._apply(record)
                self.record_seq[(record["metric_id"], record["category"])] = record["rseq"]
        elif kind == "records":
            gap = False
            for record in sorted(message["records"], key=lambda r: r["rseq"]):
                key = (record["metric_id"], record["category"])
                last = self.record_seq.get(key, 0)
                if record["rseq"] > last + 1:
                    gap = True
                self.record_seq[key] = max(last, record["rseq"])
                self._apply(record)
            return gap
        elif kind == "status":
            self.status = message["status"]
        elif kind == "catalog":
            return True
        return False

    def _apply(self, record: dict[str, Any]) -> None:
        key = (record["metric_id"], record["category"])
        known = self.records.get(key)
        if known is not None and known["seq"] >= record["seq"]:
            return  # board.js: an older message, already covered
        self.records[key] = record

    def server_now(self, at_ms: float) -> float:
        return at_ms + self.clock_offset

    def last_confirmed(self) -> int:
        return max(self.status.get("poll_ok_ms") or 0, self.status.get("ws_ok_ms") or 0)

    def stale(self, at_ms: float) -> bool:
        return self.server_now(at_ms) - self.last_confirmed() > self.stale_ms

    def tile(self, key: Key, at_ms: float) -> tuple[str, float | None]:
        """(data-state, data-value) of a tile, as board.js's showValue sets them."""
        record = self.records.get(key)
        state = record["state"] if record else "initializing"
        if self.stale(at_ms) and state != "error":
            state = "stale"
        upstream_now = self.server_now(at_ms) + (self.status.get("upstream_offset_ms") or 0)
        raw = raw_value(record and record.get("value"), upstream_now)
        return state, None if raw is None else round(raw)

    def shown(self, key: Key, at_ms: float) -> tuple[str, float | None, str, bool]:
        """(data-state, data-value, the tile's text, whether it ticks) as board.js's showValue
        shows a value tile: "…" until there is a value, "—" for a value with no number."""
        state, raw = self.tile(key, at_ms)
        record = self.records.get(key) or {}
        value = record.get("value") or {}
        text = "…"
        if value and value.get("type") != "UNSUPPORTED":
            text = format_auto(raw, value["type"])
        elif state == "error":
            text = "—"
        ticks = value.get("type") in DURATION_TYPES and value.get("up") != value.get("down")
        return state, raw, text, bool(ticks and raw is not None)

    def banner(self, at_ms: float, broken_since: float | None) -> str:
        """The upstream banner's text (board.js refresh()); "" when it is hidden."""
        stale = self.stale(at_ms)
        # live.js upstreamProblem: a push channel blocked on the way is no problem on a screen
        blocked = self.status.get("ws_blocked")
        problem = self.status.get("poll_error") or ("" if blocked else self.status.get("ws_error"))
        parts = []
        if broken_since:
            parts.append("Connection to the dashboard server lost: reconnecting.")
        if stale:
            parts.append("Data is stale.")
        if problem:
            parts.append(f"Upstream: {problem}")
        elif stale and not broken_since:
            parts.append("No word from the upstream.")
        return " ".join(parts)


class BoardClient:
    """One TV: a websocket to a display link, reconnecting with board.js's policy."""

    def __init__(
        self,
        ws_url: str,
        page_url: str,
        http: httpx.AsyncClient,
        *,
        kiosk: bool = True,
        on_message: Callable[[BoardClient, dict[str, Any]], None] | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.ws_url = ws_url
        self.page_url = page_url
        self.origin = page_url.split("/display/")[0].split("/boards/")[0]
        self.http = http
        self.kiosk = kiosk
        self.on_message = on_message
        self.on_event = on_event or (lambda kind: None)
        self.view = BoardView()
        self.attempt = 0
        self.attempts = 0  # connection attempts in all
        self.broken_since: float | None = None
        self.connected = False
        self.stopped = False
        self.ws: Any = None
        self.opened_at: list[float] = []
        self.closed_at: list[float] = []
        self.snapshot_at: list[float] = []
        self.checks: set[asyncio.Task] = set()
        self.errors: list[str] = []  # why connections failed or ended, for the report

    async def run(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidStatus

        while not self.stopped:
            code = None
            self.attempts += 1
            self.on_event("attempt")
            try:
                async with connect(
                    self.ws_url,
                    origin=self.origin,
                    compression=None,  # the web process (uvicorn) does not negotiate it
                    open_timeout=60,
                    ping_interval=None,  # browsers answer pings, they do not send them
                    close_timeout=2,
                    max_queue=None,
                ) as ws:
                    self.ws = ws
                    self.attempt = 0
                    self.broken_since = None
                    self.connected = True
                    self.opened_at.append(time.monotonic())
                    self.on_event("open")
                    async for text in ws:
                        await self._handle(json.loads(text))
                    code = ws.close_code
            except asyncio.CancelledError:
                raise
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
            except (InvalidStatus, OSError, TimeoutError, ValueError) as exc:
                self.errors.append(repr(exc)[:200])
            except Exception as exc:  # noqa: BLE001 - any failure is a closed socket to board.js
                self.errors.append(repr(exc)[:200])
            self.ws = None
            if self.connected:
                self.closed_at.append(time.monotonic())
                self.on_event("close")
            self.connected = False
            if code == CLOSE_REVOKED:
                self.stopped = True
            if self.stopped:
                return
            self.broken_since = self.broken_since or now_ms()
            delay = backoff_ms(self.attempt)
            self.attempt += 1
            if self.kiosk and self.attempt >= 2:
                task = asyncio.create_task(self._check_still_valid())
                self.checks.add(task)
                task.add_done_callback(self.checks.discard)
            await asyncio.sleep(delay / 1000)

    async def _handle(self, message: dict[str, Any]) -> None:
        if message.get("type") == "snapshot":
            self.snapshot_at.append(time.monotonic())
            self.on_event("snapshot")
        if self.view.receive(message, now_ms()):
            await self.request_snapshot()
        if message.get("type") == "revoked":
            self.stopped = True
        if self.on_message is not None:
            self.on_message(self, message)

    async def request_snapshot(self) -> None:
        if self.ws is not None:
            try:
                await self.ws.send(json.dumps({"type": "snapshot"}))
            except Exception:  # noqa: BLE001, S110 - the socket just closed: onclose follows
                pass

    async def _check_still_valid(self) -> None:
        """board.js checkStillValid(): a refused handshake looks like any lost connection."""
        try:
            response = await self.http.head(self.page_url, timeout=30)
            if response.status_code == 404:
                self.stopped = True
        except httpx.HTTPError:
            pass  # the server is down: keep trying


class Truth:
    """What the upstream holds for each count tile, and since when (monotonic seconds)."""

    def __init__(self, initial: dict[Key, int | None]) -> None:
        start = time.monotonic()
        self.history: dict[Key, list[tuple[float, int]]] = {
            key: [(start, value)] for key, value in initial.items() if value is not None
        }

    def set(self, key: Key, value: int) -> None:
        self.history.setdefault(key, []).append((time.monotonic(), value))

    def reset(self, key: Key, value: int) -> None:
        """The upstream restarted: what it held before is no longer held at all."""
        self.history[key] = [(time.monotonic(), value)]

    def current(self, key: Key) -> int | None:
        return self.history[key][-1][1] if key in self.history else None

    def values_since(self, key: Key, since: float) -> set[int]:
        """Every value the upstream held at some moment from `since` until now."""
        changes = self.history.get(key, [])
        held = {v for t, v in changes if t >= since}
        before = [v for t, v in changes if t < since]
        if before:
            held.add(before[-1])
        return held


class Watch:
    """Samples what one client shows (4 times a second) and /health/ (once a second); keeps
    the transitions, and every number shown as live that the upstream no longer held (a wrong
    number: older than the staleness window, which is what `stale` promises). With `texts`,
    the timeline keeps each tile's text as board.js shows it ("(ticking)" for a running
    duration) rather than its count."""

    def __init__(
        self, client: BoardClient, truth: Truth, tiles: list[Key], stack: Any, texts: bool = False
    ) -> None:
        self.client = client
        self.texts = texts
        self.truth = truth
        self.tiles = tiles
        self.stack = stack
        self.timeline: list[tuple[float, str]] = []
        self.wrong: list[tuple[float, str]] = []
        self.shown: dict[str, str] = {}
        self.health = ""
        self.tasks: list[asyncio.Task] = []

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._sample()), asyncio.create_task(self._health())]

    def stop(self) -> None:
        for task in self.tasks:
            task.cancel()

    def mark(self, text: str) -> None:
        """A drill event on the same timeline (the drill's own actions)."""
        self.timeline.append((time.monotonic(), "** " + text))

    def state(self, key: Key) -> tuple[str, float | None]:
        return self.client.view.tile(key, now_ms())

    def banner(self) -> str:
        return self.client.view.banner(now_ms(), self.client.broken_since)

    def tile(self, key: Key) -> tuple[str, float | None, str, bool]:
        """(data-state, data-value, text, ticking) of a value tile now (BoardView.shown)."""
        return self.client.view.shown(key, now_ms())

    def all_live_and_true(self, banner_ok: Callable[[str], bool] = lambda text: not text) -> bool:
        """Every tile live, every count equal to the upstream's, no banner (or one `banner_ok`
        accepts): all is well."""
        if not self.client.connected or not banner_ok(self.banner()):
            return False
        for key in self.tiles:
            state, value = self.state(key)
            truth = self.truth.current(key)
            if state != "live" or (truth is not None and value != truth):
                return False
        return True

    def _note(self, what: str, text: str) -> None:
        if self.shown.get(what) != text:
            self.shown[what] = text
            self.timeline.append((time.monotonic(), f"{what}: {text}"))

    async def _sample(self) -> None:
        while True:
            now = time.monotonic()
            window = now - self.client.view.stale_ms / 1000 - 2.0  # 2 s to travel
            self._note("connection", "open" if self.client.connected else "reconnecting")
            self._note("banner", self.banner() or "(none)")
            for key in self.tiles:
                state, value = self.state(key)
                counted = key in self.truth.history  # a duration ticks: its state only
                self._note(f"tile {key[0]}/{key[1] or '-'}", self._tile_note(key, counted))
                if state == "live" and counted and self.client.connected:
                    if value not in self.truth.values_since(key, window):
                        upstream = self.truth.current(key)
                        self.wrong.append((now, f"{key} showed {value} live; upstream {upstream}"))
            await asyncio.sleep(0.25)

    def _tile_note(self, key: Key, counted: bool) -> str:
        if self.texts:
            state, _, text, ticks = self.tile(key)
            return f"{state} {'(ticking)' if ticks else text}"
        state, value = self.state(key)
        return f"{state} {value}" if counted else state

    async def _health(self) -> None:
        while True:
            code, status = await self.stack.health()
            self.health = f"{code} {status}"
            self._note("/health/", self.health)
            await asyncio.sleep(1.0)

    def first(self, after: float, what: str, predicate: Callable[[str], bool]) -> float | None:
        """When (seconds after `after`) an entry `what: text` first satisfied `predicate`."""
        for t, entry in self.timeline:
            if t >= after and entry.startswith(what + ": ") and predicate(entry[len(what) + 2 :]):
                return t - after
        return None

    def transcript(self, since: float, until: float | None = None, skip: str = "\0") -> str:
        """The timeline from `since`, without entries starting with `skip`."""
        until = until or time.monotonic()
        return "\n".join(
            f"  {t - since:+7.2f} s  {entry}"
            for t, entry in self.timeline
            if since <= t <= until and not entry.startswith(skip)
        )


class Requests:
    """Arrival times (monotonic) of upstream values requests, from the emulator's counter
    (sampled every 50 ms)."""

    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self.times: list[float] = []
        self.task: asyncio.Task | None = None

    async def _run(self) -> None:
        last = None
        while True:
            try:
                count = (await self.stack.emulator.stats())["requests"]["values"]
            except httpx.HTTPError:
                count = None  # the emulator is down: its counter starts again with it
            if count is not None and last is not None and count >= last:
                self.times += [time.monotonic()] * (count - last)
            last = count
            await asyncio.sleep(0.05)

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    def between(self, start: float, end: float) -> list[float]:
        return [t for t in self.times if start <= t < end]


async def watch_board(
    stack: Any, truth: Truth, tiles: list[Key], texts: bool = False
) -> tuple[BoardClient, Watch, asyncio.Task]:
    """A TV on the drill board, and a Watch over it; stop both with `stop_watching`."""
    client = BoardClient(stack.display_ws, stack.display_url, stack.http)
    watch = Watch(client, truth, tiles, stack, texts)
    task = asyncio.create_task(client.run())
    watch.start()
    return client, watch, task


async def stop_watching(client: BoardClient, watch: Watch, task: asyncio.Task) -> None:
    watch.stop()
    client.stopped = True
    task.cancel()
    await asyncio.gather(task, *watch.tasks, return_exceptions=True)


async def until_board_live(stack, watch: Watch, truth: Truth, marker_count: int = 11) -> None:
    """Sets the marker upstream and waits until the TV shows every tile live and true."""
    from bench.drills.stack import MARKER, wait_for

    await stack.emulator.set_count(MARKER, marker_count)
    truth.set(MARKER, marker_count)
    if await wait_for(watch.all_live_and_true, 90) is None:
        raise SystemExit(f"the board never became live: see {stack.dir}")
