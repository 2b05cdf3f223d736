"""Record updates from the writer to every browser socket of a web process, the short way.

The writer PUBLISHes each batch once per record group (a metric's group and the All group) on
Redis. Each web process holds one subscription (a Hub per event loop). It reads messages in
bursts: everything that has arrived by the time the last burst is out. Each message is decoded
once; each socket then gets ONE frame with all of its records from the burst (sockets that want
the same messages, such as TVs showing the same board, share that frame, down to its bytes on
the wire), pushed to it without waiting (dashboard/wire.py writes it to the socket). Through
the channel layer every socket instead got its own copy of each message, queue, task wake-up
and dispatch; and one frame per message meant a board whose metrics change together got a
frame per metric. bench/RESULTS.md has the figures that decided both.

The status and catalog events (for every socket) and the events of a socket's other groups (its
user's, board's, display link's: access or the board changed) come the same way, on topics of
their own: a live socket needs no channel-layer channel.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import redis.asyncio as aioredis
from django.conf import settings
from redis.connection import parse_url
from redis.exceptions import RedisError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_random_exponential
from websockets.frames import Frame, Opcode

from metrics import observability
from metrics.acr import clock

log = logging.getLogger(__name__)

# The topic of events for every socket: the upstream's status changed, the catalog changed.
STATUS = "status"

# Messages taken in one burst at most: bounds one burst's frame size and the time before the
# next read.
MAX_BURST = 200


def topic(group: str, redis_url: str = "") -> str:
    """The pub/sub channel of a record group. Channels are shared by every database of a Redis
    server, so the name carries the database: sites (or test runs) that share a server on
    different databases never see each other's records."""
    return f"acr:db{_database(redis_url or settings.REDIS_URL)}:records:{group}"


@functools.cache
def _database(redis_url: str) -> int:
    return int(parse_url(redis_url).get("db", 0))


async def publish_event(redis: aioredis.Redis, group: str, event: dict[str, Any]) -> None:
    """PUBLISHes an event ({"type": ...}) for the sockets of a group (STATUS: every socket):
    once per web process, as the records are, rather than a channel-layer message per socket."""
    await redis.publish(topic(group), _dumps(event))


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _join(chosen: list[int], parts: list[tuple[str, Any]]) -> str:
    """Record arrays, already encoded as JSON, as one array."""
    return "[" + ",".join(parts[i][0][1:-1] for i in chosen if parts[i][0] != "[]") + "]"


def frame(encoded_records: str, server_time_ms: int) -> str:
    """The browser's "records" message, built around records already encoded as JSON."""
    return f'{{"type":"records","records":{encoded_records},"server_time_ms":{server_time_ms}}}'


class Narrowing(Protocol):
    """A socket's filter on the records of its topics. Hashable and compared by value: the
    sockets with equal ones (a board's TVs) share their frames."""

    def keeps(self, record: dict[str, Any]) -> bool: ...

    def __hash__(self) -> int: ...


class Update:
    """One burst's frame for an audience: its records, the browser message, and that message
    as a websocket frame on the wire (built once, on first use: server frames are not masked,
    and no extension is negotiated, so every socket is sent the same bytes)."""

    __slots__ = ("records", "text", "_wire")

    def __init__(self, records: list[dict[str, Any]], text: str) -> None:
        self.records, self.text, self._wire = records, text, b""

    @property
    def wire(self) -> bytes:
        if not self._wire:
            self._wire = Frame(Opcode.TEXT, self.text.encode()).serialize(mask=False, extensions=[])
        return self._wire


class Listener(Protocol):
    # None: every record of its topics (the shared frame as it is).
    narrowing: Narrowing | None

    def shown_status(self, status: dict[str, Any]) -> dict[str, Any]:
        """The status as this socket's viewer may read it: depends on the socket's class only
        (a TV's hides the upstream's error detail), so its frame is built once per class."""

    def push(self, update: Update) -> None:
        """Sends the update or queues it for the socket; never waits (one slow socket must not
        hold up the others)."""

    async def handle(self, event: dict[str, Any]) -> None:
        """An event of one of its event groups (access or its board changed)."""

    async def resync(self) -> None: ...


Audience = tuple[frozenset[str], "Narrowing | None"]


class Hub:
    """This process's one subscription to the record topics, shared by all its sockets.

    Sockets with the same topics and filter (a board's TVs) form an audience, found once as
    they join: a burst's frame is built once per audience, then pushed to each member. The
    events of a socket's other groups (its user's, its board's, its display link's) are handed
    to it, each in a task of its own (they read the database); the status and catalog events go
    to every socket."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.audiences: dict[Audience, set[Listener]] = {}
        self.audience_of: dict[Listener, Audience] = {}
        self.hearing: dict[str, set[Listener]] = {}  # event topic: its sockets
        self.heard_by: dict[Listener, set[str]] = {}  # a socket: its event topics
        self.tasks: set[asyncio.Task] = set()
        self.pubsub: aioredis.client.PubSub | None = None
        self.reader: asyncio.Task | None = None
        self.subscribed = asyncio.Event()

    def topics(self) -> set[str]:
        return {name for topics, _ in self.audiences for name in topics} | set(self.hearing)

    async def join(
        self, listener: Listener, groups: list[str], event_groups: Iterable[str] = ()
    ) -> None:
        """From now on, the records of `groups` and the events of `event_groups` reach the
        listener (once this returns, the subscription is asked for)."""
        old = self.topics()
        topics = frozenset(topic(g) for g in groups)
        if listener in self.audience_of:  # joining more groups: one audience per socket
            topics |= self.audience_of[listener][0]
            self._leave_audience(listener)
        audience = (topics, listener.narrowing)
        self.audiences.setdefault(audience, set()).add(listener)
        self.audience_of[listener] = audience
        for group in event_groups:
            self.hearing.setdefault(topic(group), set()).add(listener)
            self.heard_by.setdefault(listener, set()).add(topic(group))
        if self.reader is None or self.reader.done():
            self.reader = asyncio.get_running_loop().create_task(self._read())
        await self.subscribed.wait()
        new = self.topics() - old
        if new and self.pubsub is not None:
            await self.pubsub.subscribe(*new)

    async def leave(self, listener: Listener) -> None:
        old = self.topics()
        self._forget(listener)
        gone = old - self.topics()
        if gone and self.pubsub is not None:
            try:
                await self.pubsub.unsubscribe(*gone)
            except RedisError:
                pass  # the next (re)subscription only asks for the topics still wanted

    def _forget(self, listener: Listener) -> None:
        self._leave_audience(listener)
        for name in self.heard_by.pop(listener, ()):
            self.hearing[name].discard(listener)
            if not self.hearing[name]:
                del self.hearing[name]

    def _leave_audience(self, listener: Listener) -> None:
        audience = self.audience_of.pop(listener, None)
        if audience is not None:
            members = self.audiences[audience]
            members.discard(listener)
            if not members:
                del self.audiences[audience]

    async def _read(self) -> None:
        """Reads for ever; after a lost connection, resubscribes and has every socket resync
        (messages published meanwhile are gone)."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type((RedisError, OSError)),
            wait=wait_random_exponential(multiplier=0.2, max=5),
            before_sleep=lambda state: log.warning("record subscription lost, reconnecting"),
        )
        first = True
        async for attempt in retrying:
            with attempt:
                self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                try:
                    # A topic nobody publishes on keeps the subscription open while no
                    # socket is connected.
                    await self.pubsub.subscribe(topic("idle"), topic(STATUS), *self.topics())
                    self.subscribed.set()
                    if not first:
                        await self._each(lambda listener: listener.resync())
                    first = False
                    while True:
                        await self._fan_out(await self._burst())
                finally:
                    self.subscribed.clear()
                    await self.pubsub.aclose()

    async def _burst(self) -> list[dict[str, Any]]:
        """Waits for a message, then takes every one already read off the connection (at most
        MAX_BURST): what arrived while the last burst was being written out. Under load, bursts
        grow and the cost per message falls; when idle, a message goes out alone, at once."""
        assert self.pubsub is not None
        burst = []
        while not burst:
            message = await self.pubsub.get_message(timeout=None)
            if message is not None:  # None: a subscribe confirmation
                burst.append(message)
        connection = self.pubsub.connection
        # can_read: bytes already read are waiting (asking with timeout=0 when none are costs
        # the update a turn of the event loop, a tenth of a millisecond, before its first write).
        while len(burst) < MAX_BURST and connection is not None and await connection.can_read():
            message = await self.pubsub.get_message(timeout=0)
            if message is None:  # a subscribe confirmation, or the rest of a message to come
                break
            burst.append(message)
        return burst

    async def _fan_out(self, burst: list[dict[str, Any]]) -> None:
        """Each socket gets one frame holding its records from every message of the burst, in
        the order they were published."""
        parts: list[tuple[str, list[dict[str, Any]]]] = []  # (encoded records, records)
        parts_on: dict[str, list[int]] = {}  # topic: its messages' places in parts
        status_topic, status, catalog = topic(STATUS), None, None
        for message in burst:
            if message["channel"] == status_topic:
                status, catalog = self._everyone_event(message["data"], status, catalog)
                continue
            if message["channel"] in self.hearing:
                self._hand_event(message["channel"], message["data"])
                continue
            encoded = message["data"]  # the records' JSON, as the writer encoded it
            try:
                parts.append((encoded, json.loads(encoded)))
            except ValueError:
                log.error("unreadable record message on %s", message["channel"])
                continue
            parts_on.setdefault(message["channel"], []).append(len(parts) - 1)
        if status is not None:
            await self._tell_status(status)
        if catalog is not None:
            await self._drop(_push(self.audience_of, catalog))
        if not parts:
            return
        now_ms = clock.now_ms()
        frames: dict[frozenset[str], Update] = {}

        def frame_for(topics: frozenset[str]) -> Update:
            # One per set of topics (per board, in effect), shared by its filters.
            if topics not in frames:
                chosen = sorted(i for t in topics for i in parts_on.get(t, ()))
                records = [record for i in chosen for record in parts[i][1]]
                joined = parts[chosen[0]][0] if len(chosen) == 1 else _join(chosen, parts)
                frames[topics] = Update(records, frame(joined, now_ms))
            return frames[topics]

        sent_frames = sent_bytes = 0
        failed: list[Listener] = []
        for (topics, narrowing), members in list(self.audiences.items()):
            if topics.isdisjoint(parts_on):
                continue
            update = frame_for(topics)
            if narrowing is not None:
                # A socket that may see only some of its topics' records (a board's tiles, a
                # team's queues) gets those, or nothing.
                kept = [record for record in update.records if narrowing.keeps(record)]
                if not kept:
                    continue
                if len(kept) < len(update.records):
                    update = Update(kept, frame(_dumps(kept), now_ms))
            lost = _push(members, update)
            failed += lost
            sent_frames += len(members) - len(lost)
            # ASCII JSON: characters are bytes
            sent_bytes += (len(members) - len(lost)) * len(update.text)
        await self._drop(failed)
        observability.observe_fanout(
            (record for _, records in parts for record in records),
            written_ms=clock.now_ms(),
            frames=sent_frames,
            sent_bytes=sent_bytes,
        )

    def _everyone_event(
        self, encoded: str, status: Any, catalog: Update | None
    ) -> tuple[Any, Update | None]:
        """An event for every socket, told once the burst is read: the status changed (the
        newest of the burst: each is the whole status), or the catalog changed."""
        try:
            event = json.loads(encoded)
            kind = event["type"]
        except (ValueError, TypeError, KeyError):
            log.error("unreadable event for every socket")
            return status, catalog
        if kind == "status.update":
            return event["status"], catalog
        if kind == "catalog.update":
            catalog = Update([], _dumps({"type": "catalog", "server_time_ms": clock.now_ms()}))
        return status, catalog

    def _hand_event(self, channel: str, encoded: str) -> None:
        try:
            event = json.loads(encoded)
        except ValueError:
            log.error("unreadable event on %s", channel)
            return
        for listener in list(self.hearing.get(channel, ())):
            task = asyncio.get_running_loop().create_task(listener.handle(event))
            self.tasks.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self.tasks.discard)

    async def _tell_status(self, status: dict[str, Any]) -> None:
        """The status as each socket's class shows it (a frame per class)."""
        now_ms = clock.now_ms()
        by_view: dict[Any, list[Listener]] = {}
        for listener in self.audience_of:
            by_view.setdefault(type(listener).shown_status, []).append(listener)
        failed, sent_bytes = [], 0
        for view, members in by_view.items():
            message = {"type": "status", "status": view(members[0], status)}
            update = Update([], _dumps({**message, "server_time_ms": now_ms}))
            lost = _push(members, update)
            failed += lost
            sent_bytes += (len(members) - len(lost)) * len(update.text)
        observability.FRAMES_SENT.labels("status").inc(len(self.audience_of) - len(failed))
        await self._drop(failed)
        observability.BYTES_SENT.labels("status").inc(sent_bytes)

    async def _drop(self, failed: list[Listener]) -> None:
        for listener in failed:
            await self.leave(listener)

    async def _each(
        self, call: Callable[[Listener], Awaitable[None]], members: Iterable[Listener] | None = None
    ) -> None:
        for listener in list(members if members is not None else self._everyone()):
            try:
                await call(listener)
            except Exception:  # one closed or broken socket must not stop the others
                log.debug("dropping a listener that failed", exc_info=True)
                await self.leave(listener)

    def _everyone(self) -> set[Listener]:
        return set(self.audience_of)


def _push(listeners: Iterable[Listener], update: Update) -> list[Listener]:
    """Pushes the update to each listener; returns those that raised (one closed or broken
    socket must not stop the others)."""
    failed = []
    for listener in list(listeners):
        try:
            listener.push(update)
        except Exception:
            log.debug("dropping a listener that failed", exc_info=True)
            failed.append(listener)
    return failed


def client_name() -> str:
    """The hub's name in Redis's CLIENT LIST: which web process holds which subscription."""
    return f"acr-records-{os.getpid()}"


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def hub() -> Hub:
    """This event loop's hub (one per web process; tests run several loops)."""
    loop = asyncio.get_running_loop()
    if loop not in _hubs:
        redis = aioredis.from_url(
            settings.REDIS_URL, decode_responses=True, client_name=client_name()
        )
        _hubs[loop] = Hub(redis)
    return _hubs[loop]
