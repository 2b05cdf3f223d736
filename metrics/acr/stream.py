"""The upstream websocket subscription: connect, read frames, reconnect with backoff and jitter.

The auth key is part of the subscription URL (the API documents no other way), so the URL is
never logged or raised as is: `redact_url` first.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import urlencode

import websockets
from tenacity import AsyncRetrying, retry_if_exception_type, wait_random_exponential
from websockets.asyncio.client import ClientConnection, connect

from metrics import observability

log = logging.getLogger(__name__)

# One subscriber per site, so no herd to spread: a short cap keeps recovery within seconds of
# the upstream's return.
MAX_BACKOFF_SECONDS = 8.0
# A session that lasted this long counts as healthy: the next failure starts backoff afresh.
HEALTHY_SESSION_SECONDS = 30.0


class SubscriptionLost(Exception):
    """The websocket could not be opened or dropped; the message is safe to show."""


class SubscriptionRefused(SubscriptionLost):
    """The upstream (or something on the way) answered the handshake with an HTTP status: 401
    (the key), 403 (a metric id not assigned to this service user, 5.0), or another."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class SubscriptionChanged(Exception):
    """The set of metric ids changed: reconnect at once with the new set."""


def subscription_url(base_url: str, prefix: str, ids: list[str], auth_key: str) -> str:
    """ws(s)://host{prefix}/realtime-metric-subscription?id=A&id=B&auth_token=KEY."""
    ws_base = "ws" + base_url[len("http") :] if base_url.startswith("http") else base_url
    query = urlencode([("id", metric_id) for metric_id in ids] + [("auth_token", auth_key)])
    return f"{ws_base}{prefix}/realtime-metric-subscription?{query}"


def redact_url(url: str) -> str:
    head, _, _ = url.partition("auth_token=")
    return head + "auth_token=***" if "auth_token=" in url else url


_KEY_IN_QUERY = re.compile(r"(auth_token=)[^&\s]+")


class RedactKey(logging.Filter):
    """At DEBUG the websockets library logs its request line, whose query holds the key."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _KEY_IN_QUERY.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _KEY_IN_QUERY.sub(r"\1***", record.msg)
        return True


# The client's logger (a filter on a logger applies to its own records, not its children's).
logging.getLogger("websockets.client").addFilter(RedactKey())


def raise_if_cancelled() -> None:
    """On Python 3.11 a cancellation that lands inside httpx's anyio cancel scopes, or inside
    asyncio.wait_for (redis-py's socket timeouts) just as the awaited work completes, can be
    swallowed; a looping task that was asked to stop stops here instead of serving on."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError()


async def _close_when_changed(ws: ClientConnection, ids_changed: Callable[[], bool]) -> None:
    """Closes the socket once the wanted metric ids differ from the subscribed ones."""
    while not ids_changed():
        await asyncio.sleep(1.0)
    await ws.close()


# Frames handled together at most (see _already_received).
MAX_FRAMES_AT_ONCE = 500

FramesHandler = Callable[[list[str | bytes]], Awaitable[None]]
StatusHandler = Callable[[bool, str], Awaitable[None]]


async def _already_received(ws: ClientConnection) -> list[str | bytes]:
    """The messages that arrived with the one just read, without waiting for more: a tick that
    changes many values sends them back to back, and they are stored and sent on together.
    (Cancelling recv() is safe: websockets keeps the message for the next call.)"""
    more: list[str | bytes] = []
    while len(more) < MAX_FRAMES_AT_ONCE and _frames_waiting(ws) != 0:
        try:
            async with asyncio.timeout(0):  # only what is here already
                more.append(await ws.recv())
        except (TimeoutError, websockets.ConnectionClosed):
            break  # a closed socket ends the session at the next read, after these are stored
    return more


def _frames_waiting(ws: ClientConnection) -> int | None:
    """Frames websockets has read and not yet handed out (its assembler's queue; None if a
    later version keeps them elsewhere). When none are, asking recv() with a zero timeout would
    only cost the frame just read a turn of the event loop (a tenth of a millisecond) before
    it is stored."""
    frames = getattr(getattr(ws, "recv_messages", None), "frames", None)
    try:
        return len(frames)  # type: ignore[arg-type]
    except TypeError:
        return None


async def hold_session(
    url: str,
    on_frames: FramesHandler,
    on_status: StatusHandler,
    ids_changed: Callable[[], bool],
) -> None:
    """One websocket session, until it drops (SubscriptionLost) or the ids change."""
    started = time.monotonic()
    opened = False
    try:
        async with connect(url, open_timeout=10, ping_interval=20, ping_timeout=20) as ws:
            opened = True
            observability.UPSTREAM_WS_CONNECTS.labels("ok").inc()
            await on_status(True, "")
            watcher = asyncio.create_task(_close_when_changed(ws, ids_changed))
            try:
                async for message in ws:
                    frames = [message, *await _already_received(ws)]
                    observability.UPSTREAM_FRAMES.inc(len(frames))
                    await on_frames(frames)
                    # Checked before waiting for the next message, which may never come: a
                    # cancellation that landed in on_frames may have been swallowed there.
                    raise_if_cancelled()
            finally:
                watcher.cancel()
            # Not watcher.done(): the socket's end may wake this loop before the watcher's
            # close() returns, and a change would be taken for a lost connection.
            if ids_changed():
                raise SubscriptionChanged()
            raise SubscriptionLost("upstream closed the websocket")
    except websockets.InvalidStatus as exc:
        status = exc.response.status_code
        observability.UPSTREAM_WS_CONNECTS.labels(observability.status_label(status)).inc()
        reason = {
            401: "upstream refused the auth key (401): check ACR_AUTH_KEY",
            403: "upstream refused the metric ids (403)",
        }.get(status, f"upstream refused the websocket ({status})")
        raise SubscriptionRefused(reason, status) from None
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        if not opened:  # a handshake that failed (a session that dropped was counted ok)
            observability.UPSTREAM_WS_CONNECTS.labels("failed").inc()
        lasted = time.monotonic() - started
        raise SubscriptionLost(
            f"websocket lost after {lasted:.0f}s: {type(exc).__name__}"
        ) from None


class Subscriber(Protocol):
    """What run_forever asks of its owner."""

    def make_url(self) -> str | None:
        """The URL for the metrics wanted now; None while there are none."""

    def ids_changed(self) -> bool:
        """True once the wanted metrics differ from those of the open session."""

    async def wait_for_ids(self) -> None: ...

    async def on_frames(self, raws: list[str | bytes]) -> None: ...

    async def on_status(self, connected: bool, error: str) -> None: ...

    async def on_refused(self, status: int) -> None:
        """Called after a refused handshake, before the next try (which waits for it)."""


async def run_forever(subscriber: Subscriber) -> None:
    """Hold the subscription for ever: reconnect with exponential backoff and full jitter.

    A failure is logged as a warning when it differs from the one before (a retry that fails
    the same way, every few seconds for as long as the upstream is away, is a debug line)."""
    last_failure = ""
    while True:
        retrying = AsyncRetrying(
            wait=wait_random_exponential(multiplier=0.5, max=MAX_BACKOFF_SECONDS),
            retry=retry_if_exception_type(SubscriptionLost),
            reraise=True,
        )
        async for attempt in retrying:
            raise_if_cancelled()
            with attempt:
                url = subscriber.make_url()
                if url is None:
                    await subscriber.wait_for_ids()
                    break
                started = time.monotonic()
                try:
                    await hold_session(
                        url, subscriber.on_frames, subscriber.on_status, subscriber.ids_changed
                    )
                except SubscriptionChanged:
                    log.info("metric ids changed: resubscribing")
                    last_failure = ""
                except SubscriptionLost as exc:
                    healthy = time.monotonic() - started >= HEALTHY_SESSION_SECONDS
                    repeated = str(exc) == last_failure and not healthy
                    log.log(logging.DEBUG if repeated else logging.WARNING, "%s", exc)
                    last_failure = str(exc)
                    await subscriber.on_status(False, str(exc))
                    if isinstance(exc, SubscriptionRefused):
                        await subscriber.on_refused(exc.status)
                    if not healthy:
                        raise
