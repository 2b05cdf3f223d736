"""Record updates from the writer to every browser socket of a web process, the short way.

The writer PUBLISHes each batch once per record group (a metric's group and the All group) on
Redis. Each web process holds one subscription (a Hub per event loop). It reads messages in
bursts: everything that has arrived by the time the last burst is out. Each message is decoded
once; each socket then gets ONE frame with all of its records from the burst (sockets that want
the same messages, such as TVs showing the same board, share that frame), written to it
directly. Through the channel layer every socket instead got its own copy of each message,
queue, task wake-up and dispatch; and one frame per message meant a board whose metrics
change together got a frame per metric. bench/RESULTS.md has the figures that decided both.

Status, catalog, board and display events are rare and stay on the channel layer.
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

from metrics import observability
from metrics.acr import clock

log = logging.getLogger(__name__)

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


async def publish(redis: aioredis.Redis, batches: dict[str, list[dict[str, Any]]]) -> None:
    """PUBLISHes each group's records (writer side), in one round trip. A record is in several
    groups (its metric's and All): it is encoded once."""
    encoded = {id(t): _dumps(t) for records in batches.values() for t in records}
    async with redis.pipeline(transaction=False) as pipe:
        for group, records in batches.items():
            pipe.publish(topic(group), "[" + ",".join(encoded[id(t)] for t in records) + "]")
        await pipe.execute()


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


class Listener(Protocol):
    # None: every record of its topics (the shared frame as it is).
    narrowing: Narrowing | None

    async def deliver(self, records: list[dict[str, Any]], frame: str) -> None: ...

    async def resync(self) -> None: ...


class Hub:
    """This process's one subscription to the record topics, shared by all its sockets."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.members: dict[str, set[Listener]] = {}
        self.topics_of: dict[Listener, frozenset[str]] = {}
        self.pubsub: aioredis.client.PubSub | None = None
        self.reader: asyncio.Task | None = None
        self.subscribed = asyncio.Event()

    async def join(self, listener: Listener, groups: list[str]) -> None:
        topics = frozenset(topic(g) for g in groups)
        new = [t for t in topics if not self.members.get(t)]
        for name in topics:
            self.members.setdefault(name, set()).add(listener)
        self.topics_of[listener] = self.topics_of.get(listener, frozenset()) | topics
        if self.reader is None or self.reader.done():
            self.reader = asyncio.get_running_loop().create_task(self._read())
        await self.subscribed.wait()
        if new and self.pubsub is not None:
            await self.pubsub.subscribe(*new)

    async def leave(self, listener: Listener) -> None:
        self.topics_of.pop(listener, None)
        gone = []
        for name, members in self.members.items():
            members.discard(listener)
            if not members:
                gone.append(name)
        for name in gone:
            del self.members[name]
        if gone and self.pubsub is not None:
            try:
                await self.pubsub.unsubscribe(*gone)
            except RedisError:
                pass  # the next (re)subscription only asks for the topics still wanted

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
                    await self.pubsub.subscribe(topic("idle"), *self.members)
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
        while len(burst) < MAX_BURST:
            message = await self.pubsub.get_message(timeout=0)  # never waits
            if message is None:
                break
            burst.append(message)
        return burst

    async def _fan_out(self, burst: list[dict[str, Any]]) -> None:
        """Each socket gets one frame holding its records from every message of the burst, in
        the order they were published."""
        parts: list[tuple[str, list[dict[str, Any]]]] = []  # (encoded records, records)
        parts_on: dict[str, list[int]] = {}  # topic: its messages' places in parts
        for message in burst:
            if not self.members.get(message["channel"]):
                continue
            encoded = message["data"]  # the records' JSON, as the writer encoded it
            try:
                parts.append((encoded, json.loads(encoded)))
            except ValueError:
                log.error("unreadable record message on %s", message["channel"])
                continue
            parts_on.setdefault(message["channel"], []).append(len(parts) - 1)
        if not parts:
            return
        now_ms = clock.now_ms()
        frames: dict[frozenset[str], tuple[list[dict[str, Any]], str]] = {}
        narrowed: dict[tuple[frozenset[str], Narrowing], tuple[list[dict[str, Any]], str] | None]
        narrowed = {}

        def frame_for(topics: frozenset[str]) -> tuple[list[dict[str, Any]], str]:
            # One per set of topics (per board, in effect), shared by its sockets.
            if topics not in frames:
                chosen = sorted(i for t in topics for i in parts_on.get(t, ()))
                records = [record for i in chosen for record in parts[i][1]]
                joined = parts[chosen[0]][0] if len(chosen) == 1 else _join(chosen, parts)
                frames[topics] = (records, frame(joined, now_ms))
            return frames[topics]

        def narrowed_for(listener: Listener) -> tuple[list[dict[str, Any]], str] | None:
            # A socket that may see only some of its topics' records (a board's tiles, a team's
            # queues) gets those, or nothing: one frame per set of topics and filter.
            topics, narrowing = self.topics_of[listener], listener.narrowing
            if narrowing is None:
                return frame_for(topics)
            if (topics, narrowing) not in narrowed:
                records, text = frame_for(topics)
                kept = [record for record in records if narrowing.keeps(record)]
                if len(kept) < len(records):
                    text = frame(_dumps(kept), now_ms)
                narrowed[topics, narrowing] = (kept, text) if kept else None
            return narrowed[topics, narrowing]

        sent = [0, 0]  # frames, bytes: counted here, added to the metrics once per burst

        async def deliver(listener: Listener) -> None:
            shared = narrowed_for(listener)
            if shared is not None:
                await listener.deliver(*shared)
                sent[0] += 1
                sent[1] += len(shared[1])  # the frames are ASCII JSON: characters are bytes

        receivers = set().union(*(self.members.get(t, ()) for t in parts_on))
        await self._each(deliver, receivers)
        observability.observe_fanout(
            (record for _, records in parts for record in records),
            written_ms=clock.now_ms(),
            frames=sent[0],
            sent_bytes=sent[1],
        )

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
        return set().union(*self.members.values()) if self.members else set()


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
