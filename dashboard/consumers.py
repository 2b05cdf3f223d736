"""Browser websockets: authorize, join the live groups, send a snapshot, then forward events.

Every message carries `server_time_ms` so the browser can correct for its own clock, and
records carry their (metric, category)'s sequence number (`rseq`) so it can detect a gap and ask
for a fresh snapshot.
A board or display socket only ever receives the records its board(s)' tiles show
(boards.Shown), a supervisor's All-metrics socket its teams' categories (access.Scope). Access
is checked again whenever something it rests on changes (dashboard.signals).
"""

import asyncio
import collections
import json
import logging
import time
import weakref
from importlib import import_module

from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from dashboard import access, boards
from dashboard.wire import Wire
from metrics import fanout, health, live, observability
from metrics.acr.clock import now_ms

MAX_INCOMING_BYTES = 1024
# A browser only asks for a snapshot after a gap: more than this many messages in
# RATE_WINDOW_SECONDS is abuse, and the socket is closed.
MAX_INCOMING_MESSAGES = 10
RATE_WINDOW_SECONDS = 10.0
CLOSE_TOO_MANY = 4429
CLOSE_UNAUTHORIZED = 4401
CLOSE_REVOKED = 4403
# The screen did not read its frames (RFC 6455: try again later); it reconnects for a snapshot.
CLOSE_TOO_SLOW = 1013
CLOSE_ERROR = 1011
# Access changed but not gone (a display link re-pointed, a board's tiles): the page is told to
# reload, and reconnects under its new access.
CLOSE_CHANGED = 4205
# Record frames a socket without a Wire may have waiting (under Daphne): past this, the screen is
# taken for gone, as dashboard.wire does past its byte limit.
MAX_WAITING_FRAMES = 1000

log = logging.getLogger(__name__)

observability.init_web_labels()


class Counted:
    """Counts the socket in acrdash_sockets{kind} from its accept to its end."""

    kind = ""
    counted = False

    def count_open(self) -> None:
        observability.SOCKETS.labels(self.kind).inc()
        self.counted = True

    def count_closed(self) -> None:
        if self.counted:
            observability.SOCKETS.labels(self.kind).dec()
            self.counted = False


# The channel layer's Redis pool has 100 connections and fails, rather than waits, past them:
# many alert sockets connecting or closing at once (a web restart) take turns here instead.
# (Live sockets, a TV wall's included, use no channel layer: metrics.fanout.)
LAYER_CALLS_AT_ONCE = 50
_layer_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


async def group_add(layer, group: str, channel: str) -> None:
    async with _layer_turn():
        await layer.group_add(group, channel)


async def group_discard(layer, group: str, channel: str) -> None:
    async with _layer_turn():
        await layer.group_discard(group, channel)


def _layer_turn() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    if loop not in _layer_turns:
        _layer_turns[loop] = asyncio.Semaphore(LAYER_CALLS_AT_ONCE)
    return _layer_turns[loop]


async def current_user(scope: dict):
    """The socket's user as things stand now: its session read again, so that a logout, an
    expired session, a deactivated user or a changed password make it anonymous (the same
    reading as the handshake's, channels.auth.get_user)."""
    session = scope.get("session")
    key = session.session_key if session is not None else None
    if key is None:
        return AnonymousUser()
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)
    return await get_user({"session": store})


class LiveConsumer(Counted, AsyncWebsocketConsumer):
    """Base: `authorize` returns the records this socket may see (a filter, None: all of them)
    and the groups to join, or None to refuse the handshake.

    No channel-layer channel: metrics.fanout brings the records, the status and the events of
    the socket's other groups (a channel per socket was memory and a receive loop per screen)."""

    channel_layer_alias = "none: metrics.fanout"  # names no layer

    # The filter of every snapshot and frame (metrics.fanout applies it to the frames).
    narrowing: access.Scope | boards.Shown | None = None
    # Record updates held while a snapshot is read and sent (they are as new or newer): None when
    # they go straight out.
    held: list[fanout.Update] | None = None
    snapshotting = False
    # Record frames go straight to the socket (dashboard.wire), or else (no Wire: Daphne, the
    # test communicator) through ASGI from a task of the socket's own, in order.
    wire: Wire | None = None
    waiting: collections.deque[str] | None = None
    sender: asyncio.Task | None = None
    # Events come in tasks of their own: one arriving while the socket connects is checked
    # once it is open; one that closes it makes the others (and the handshake) stop.
    connected = False
    recheck_when_connected = False
    closing = False

    async def authorize(self) -> tuple[access.Scope | boards.Shown | None, list[str]] | None:
        raise NotImplementedError

    async def connect(self) -> None:
        self.received: list[float] = []
        access = await self.authorize()
        if access is None:
            await self.close(code=CLOSE_UNAUTHORIZED)  # before accept: the handshake is refused
            return
        self.narrowing, groups = access
        self.granted = (self.narrowing, frozenset(groups))
        self.held = []  # from now on, until the first snapshot is out
        await fanout.hub().join(
            self,
            [g for g in groups if live.is_record_group(g)],
            [g for g in groups if not live.is_record_group(g)],
        )
        # A change committed between that check and joining the groups (a TV's link revoked as
        # it connects) was told to groups this socket was not in yet: check once more, now that
        # it hears of the next one.
        again = await self.authorize()
        if again is None or (again[0], frozenset(again[1])) != self.granted:
            await fanout.hub().leave(self)
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        await self.accept()
        self.count_open()
        self.wire = Wire.of(self.scope)
        await self.send_snapshot("connect")
        self.connected = True
        if self.recheck_when_connected:
            await self.recheck()

    async def disconnect(self, code: int) -> None:
        self.count_closed()
        await fanout.hub().leave(self)
        if self.sender is not None:
            self.sender.cancel()

    async def handle(self, event: dict) -> None:
        """An event of one of the socket's groups, from metrics.fanout."""
        if self.closing:
            return
        if not self.connected:
            self.recheck_when_connected = True
            return
        try:
            if event.get("type") == "board.changed":
                await self.board_changed(event)
            elif event.get("type") == "access.changed":
                await self.access_changed(event)
        except Exception:  # access could not be checked again: fail closed (1011)
            log.warning("closing a socket whose access could not be checked", exc_info=True)
            await self.close_now(CLOSE_ERROR)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # The only thing a browser may ask for is a fresh snapshot.
        if bytes_data is not None or text_data is None or len(text_data) > MAX_INCOMING_BYTES:
            await self.close(code=1009)
            return
        now = time.monotonic()
        self.received = [t for t in self.received if now - t < RATE_WINDOW_SECONDS] + [now]
        if len(self.received) > MAX_INCOMING_MESSAGES:
            await self.close(code=CLOSE_TOO_MANY)
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            message = None
        if isinstance(message, dict) and message.get("type") == "snapshot":
            await self.send_snapshot("asked")

    async def send_json(self, message: dict) -> None:
        message["server_time_ms"] = now_ms()
        text = json.dumps(message, separators=(",", ":"))
        await self.send(text_data=text)
        observability.FRAMES_SENT.labels(message["type"]).inc()
        observability.BYTES_SENT.labels(message["type"]).inc(len(text.encode()))

    async def send_snapshot(self, reason: str) -> None:
        """The live state this socket may see; record updates arriving meanwhile follow it.
        `reason` (connect, asked, resync) is counted."""
        if self.snapshotting:  # one is on its way out, and will send what is held after it
            return
        observability.SNAPSHOTS.labels(reason).inc()
        self.snapshotting = True
        if self.held is None:
            self.held = []
        try:
            if self.sender is not None:  # frames older than the snapshot go out first
                await self.sender
            snapshot = await live.read_snapshot()
            if self.narrowing is not None:
                snapshot = self.narrowing.within(snapshot)
            snapshot["status"] = self.shown_status(snapshot["status"])
            stale_ms = health.stale_after_ms()
            await self.send_json({"type": "snapshot", "stale_ms": stale_ms, **snapshot})
            while self.held:
                update = self.held.pop(0)
                await self.base_send({"type": "websocket.send", "text": update.text})
        finally:
            self.held, self.snapshotting = None, False

    def push(self, update: fanout.Update) -> None:
        """A record update from metrics.fanout, already narrowed to what this socket may see.
        Never waits: the fan-out pushes to every socket in turn."""
        if self.held is not None:
            self.held.append(update)
        elif self.wire is not None:
            self.wire.write(update.wire)
        else:
            self.send_later(update.text)

    def send_later(self, text: str) -> None:
        if self.waiting is None:
            self.waiting = collections.deque()
        if len(self.waiting) >= MAX_WAITING_FRAMES:
            log.info(
                "closing a screen's socket that stopped reading (%d frames waiting)",
                len(self.waiting),
            )
            self.waiting.clear()
            asyncio.get_running_loop().create_task(self.close_now(CLOSE_TOO_SLOW))
            return
        self.waiting.append(text)
        if self.sender is None:
            self.sender = asyncio.get_running_loop().create_task(self.send_waiting())

    async def send_waiting(self) -> None:
        try:
            while self.waiting:
                text = self.waiting.popleft()
                await self.base_send({"type": "websocket.send", "text": text})
        finally:
            self.sender = None

    async def resync(self) -> None:
        """Updates may have been lost (the fan-out's Redis connection dropped)."""
        await self.send_snapshot("resync")

    def shown_status(self, status: live.Status) -> live.Status:
        """The upstream status as this socket's viewer may read it."""
        return status

    async def board_changed(self, event: dict) -> None:
        if await self.recheck():
            await self.send_json({"type": "reload"})

    async def access_changed(self, event: dict) -> None:
        await self.recheck()

    async def recheck(self) -> bool:
        """Authorizes the socket again, as at the handshake, with its user as things stand now
        (dashboard.signals says when). One that lost its access is closed (4403: refused from
        now on); one whose access changed is told to reload and closed, and reconnects under
        the new one. True when it goes on as it was."""
        self.scope["user"] = await current_user(self.scope)
        granted = await self.authorize()
        if self.closing:  # another event's check closed it meanwhile
            return False
        if granted is None:
            await self.refused()
            return False
        if (granted[0], frozenset(granted[1])) != self.granted:
            await self.send_json({"type": "reload"})
            await self.close_now(CLOSE_CHANGED)
            return False
        return True

    async def refused(self) -> None:
        """Access is gone: closed, and refused from now on."""
        await self.close_now(CLOSE_REVOKED)

    async def close_now(self, code: int) -> None:
        """Closes the socket, with no record sent after the decision (disconnect comes later)."""
        if self.closing:
            return
        self.closing = True
        await fanout.hub().leave(self)
        await self.close(code=code)


class AllMetricsConsumer(LiveConsumer):
    """Every metric for staff; a supervisor's own queues and agents only."""

    kind = "all"  # the All-metrics board and the team page

    async def authorize(self):
        user = self.scope.get("user")
        scope = await database_sync_to_async(access.live_scope)(user)
        if scope is None:
            return None
        narrowing = None if scope.categories is None else scope
        return narrowing, [live.ALL_GROUP, access.user_group(user.pk)]


class BoardConsumer(LiveConsumer):
    kind = "board"

    async def authorize(self):
        user = self.scope.get("user")
        granted = await database_sync_to_async(boards.board_access)(
            user, self.scope["url_route"]["kwargs"]["slug"]
        )
        if granted is None:
            return None
        shown, groups = granted
        return shown, [*groups, access.user_group(user.pk)]


class DisplayConsumer(LiveConsumer):
    """A TV opened with a display link: no user, only the link's board(s)."""

    kind = "display"
    seen = False

    async def authorize(self):
        token = self.scope["url_route"]["kwargs"]["token"]
        found = await database_sync_to_async(boards.display_access)(token)
        if found is None:
            return None
        link, granted = found
        if not self.seen:  # at the handshake, not on every re-check (a TV wall writes at once)
            await database_sync_to_async(boards.mark_seen)(link)
            self.seen = True
        return granted

    def shown_status(self, status: live.Status) -> live.Status:
        return health.without_detail(status)  # anyone in front of the TV reads it

    async def refused(self) -> None:
        # The link was revoked, deleted or given a new token: the TV says so, and goes dark.
        await self.send_json({"type": "revoked"})
        await self.close_now(CLOSE_REVOKED)


class AlertConsumer(Counted, AsyncWebsocketConsumer):
    """A logged-in user's alerts, pushed to whichever page they have open."""

    kind = "alerts"

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        self.user_id = user.pk
        self.groups_joined = [f"user.{user.pk}", access.user_group(user.pk)]
        for group in self.groups_joined:
            await group_add(self.channel_layer, group, self.channel_name)
        await self.accept()
        self.count_open()

    async def disconnect(self, code: int) -> None:
        self.count_closed()
        for group in getattr(self, "groups_joined", []):
            await group_discard(self.channel_layer, group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        await self.close(code=1008)  # nothing is accepted from the browser here

    async def access_changed(self, event: dict) -> None:
        """Logged out, deactivated, a new password: no more alerts on this socket."""
        if (await current_user(self.scope)).pk != self.user_id:
            await self.close(code=CLOSE_REVOKED)

    async def alert_fired(self, event: dict) -> None:
        text = json.dumps({"type": "alert", "message": event["message"]})
        await self.send(text_data=text)
        observability.FRAMES_SENT.labels("alert").inc()
        observability.BYTES_SENT.labels("alert").inc(len(text.encode()))
