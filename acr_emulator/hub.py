"""Websocket subscribers and the fan-out to them.

Each subscriber has a bounded queue drained by its own writer task, so one slow or dead
socket never blocks the others: publishing only enqueues, and a subscriber whose queue
overflows, or whose send times out, is dropped (closed) without waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Protocol

log = logging.getLogger(__name__)

TOO_SLOW = 1013  # "try again later"
GOING_AWAY = 1001
ABNORMAL = 1011  # "internal error": the drop_websockets fault


class Socket(Protocol):
    async def send_str(self, data: str) -> None: ...
    async def close(self, *, code: int = ..., message: bytes = ...) -> bool: ...


class Subscriber:
    def __init__(self, ws: Socket, metric_ids: Iterable[str], *, max_queue: int) -> None:
        self.ws = ws
        self.metric_ids = tuple(dict.fromkeys(metric_ids))
        # Metrics whose snapshot has not been sent yet (still warming): no updates either.
        self.pending: set[str] = set(self.metric_ids)
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=max_queue)
        self.dropped = False


class Hub:
    def __init__(self, *, max_queue: int = 5000, send_timeout: float = 10.0) -> None:
        self.max_queue = max_queue
        self.send_timeout = send_timeout
        self.subscribers: set[Subscriber] = set()
        self._by_metric: dict[str, set[Subscriber]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        # Cleared while the stall_websockets fault is on: writers wait, sockets stay open.
        self._flowing = asyncio.Event()
        self._flowing.set()

    def add(self, ws: Socket, metric_ids: Iterable[str]) -> Subscriber:
        sub = Subscriber(ws, metric_ids, max_queue=self.max_queue)
        self.subscribers.add(sub)
        for metric_id in sub.metric_ids:
            self._by_metric.setdefault(metric_id, set()).add(sub)
        return sub

    def remove(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        for metric_id in sub.metric_ids:
            subs = self._by_metric.get(metric_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_metric[metric_id]

    def metric_ids(self) -> set[str]:
        """Metrics someone is subscribed to (they stay warm)."""
        return set(self._by_metric)

    def publish(self, metric_id: str, frames: list[str]) -> None:
        """Queue frames for every subscriber of the metric whose snapshot has gone out."""
        for sub in list(self._by_metric.get(metric_id, ())):
            if metric_id not in sub.pending:
                self.offer(sub, frames)

    def publish_many(self, by_metric: dict[str, list[str]], *, as_array: bool = False) -> None:
        """Publish several metrics' frames; ``as_array`` batches each subscriber's share
        into one JSON array frame (the array_frames fault)."""
        if not as_array:
            for metric_id, frames in by_metric.items():
                self.publish(metric_id, frames)
            return
        batches: dict[Subscriber, list[str]] = {}
        for metric_id, frames in by_metric.items():
            for sub in self._by_metric.get(metric_id, ()):
                if metric_id not in sub.pending:
                    batches.setdefault(sub, []).extend(frames)
        for sub, frames in batches.items():
            self.offer(sub, ["[" + ",".join(frames) + "]"])

    def broadcast(self, frame: str) -> None:
        """One frame to every subscriber, warming or not (the malformed_frame fault)."""
        for sub in list(self.subscribers):
            self.offer(sub, [frame])

    def set_stalled(self, stalled: bool) -> None:
        if stalled:
            self._flowing.clear()
        else:
            self._flowing.set()

    def offer(self, sub: Subscriber, frames: list[str]) -> None:
        for frame in frames:
            try:
                sub.queue.put_nowait(frame)
            except asyncio.QueueFull:
                log.warning("dropping a websocket subscriber that cannot keep up")
                self.drop(sub, TOO_SLOW)
                return

    def mark_all_pending(self) -> None:
        for sub in self.subscribers:
            sub.pending = set(sub.metric_ids)

    async def pump(self, sub: Subscriber) -> None:
        """Writer loop for one subscriber; returns when it is dropped or the socket fails."""
        while not sub.dropped:
            frame = await sub.queue.get()
            if not self._flowing.is_set():
                await self._flowing.wait()
            if sub.dropped:
                return
            try:
                # asyncio.timeout, not wait_for: no extra task per frame (a send only waits
                # when the socket's buffer is full).
                async with asyncio.timeout(self.send_timeout):
                    await sub.ws.send_str(frame)
            except (TimeoutError, ConnectionError, RuntimeError):
                self.drop(sub, TOO_SLOW)

    def drop(self, sub: Subscriber, code: int) -> None:
        if sub.dropped:
            return
        sub.dropped = True
        self.remove(sub)
        task = asyncio.ensure_future(self._close(sub.ws, code))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close_all(self, code: int = GOING_AWAY) -> None:
        subs = list(self.subscribers)
        for sub in subs:
            self.drop(sub, code)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    @staticmethod
    async def _close(ws: Socket, code: int) -> None:
        with contextlib.suppress(Exception):
            await ws.close(code=code, message=b"")
