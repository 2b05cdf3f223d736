"""Tile updates from the writer to every browser socket of a web process, the short way.

The writer PUBLISHes each batch once per tile group (a metric's group and the All group) on
Redis. Each web process holds one subscription (a Hub per event loop); for each message it
decodes the JSON once, encodes one frame, and writes it to each of its sockets in that group
directly. Through the channel layer every socket instead got its own copy of the message,
queue, task wake-up and dispatch: bench/RESULTS.md has the figures that decided this.

Status, catalog, board and display events are rare and stay on the channel layer.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis
from django.conf import settings
from redis.connection import parse_url
from redis.exceptions import RedisError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_random_exponential

log = logging.getLogger(__name__)


def topic(group: str, redis_url: str = "") -> str:
    """The pub/sub channel of a tile group. Channels are shared by every database of a Redis
    server, so the name carries the database: sites (or test runs) that share a server on
    different databases never see each other's tiles."""
    return f"acr:db{_database(redis_url or settings.REDIS_URL)}:tiles:{group}"


@functools.cache
def _database(redis_url: str) -> int:
    return int(parse_url(redis_url).get("db", 0))


async def publish(redis: aioredis.Redis, batches: dict[str, list[dict[str, Any]]]) -> None:
    """PUBLISHes each group's tiles (writer side), in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for group, tiles in batches.items():
            pipe.publish(topic(group), json.dumps(tiles, separators=(",", ":")))
        await pipe.execute()


def frame(encoded_tiles: str, server_time_ms: int) -> str:
    """The browser's "tiles" message, built around tiles already encoded as JSON."""
    return f'{{"type":"tiles","tiles":{encoded_tiles},"server_time_ms":{server_time_ms}}}'


class Listener(Protocol):
    async def deliver(self, tiles: list[dict[str, Any]], frame: str) -> None: ...

    async def resync(self) -> None: ...


class Hub:
    """This process's one subscription to the tile topics, shared by all its sockets."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.members: dict[str, set[Listener]] = {}
        self.pubsub: aioredis.client.PubSub | None = None
        self.reader: asyncio.Task | None = None
        self.subscribed = asyncio.Event()

    async def join(self, listener: Listener, groups: list[str]) -> None:
        new = [topic(g) for g in groups if not self.members.get(topic(g))]
        for group in groups:
            self.members.setdefault(topic(group), set()).add(listener)
        if self.reader is None or self.reader.done():
            self.reader = asyncio.get_running_loop().create_task(self._read())
        await self.subscribed.wait()
        if new and self.pubsub is not None:
            await self.pubsub.subscribe(*new)

    async def leave(self, listener: Listener) -> None:
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
            before_sleep=lambda state: log.warning("tile subscription lost, reconnecting"),
        )
        first = True
        async for attempt in retrying:
            with attempt:
                self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                try:
                    # listen() ends when nothing is subscribed: a topic nobody publishes on
                    # keeps it open while no socket is connected.
                    await self.pubsub.subscribe(topic("idle"), *self.members)
                    self.subscribed.set()
                    if not first:
                        await self._each(lambda listener: listener.resync())
                    first = False
                    async for message in self.pubsub.listen():
                        await self._fan_out(message)
                finally:
                    self.subscribed.clear()
                    await self.pubsub.aclose()

    async def _fan_out(self, message: dict[str, Any]) -> None:
        members = self.members.get(message["channel"])
        if not members:
            return
        encoded = message["data"]  # the tiles' JSON, as the writer encoded it
        try:
            tiles = json.loads(encoded)
        except ValueError:
            log.error("unreadable tile message on %s", message["channel"])
            return
        shared = frame(encoded, time.time_ns() // 1_000_000)  # one frame for every socket
        await self._each(lambda listener: listener.deliver(tiles, shared), members)

    async def _each(
        self, call: Callable[[Listener], Awaitable[None]], members: set[Listener] | None = None
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
    return f"acr-tiles-{os.getpid()}"


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
