"""aiohttp application: the documented REST and websocket routes.

Handlers are thin: authenticate, validate, call :class:`~acr_emulator.engine.Emulator`,
shape the response. Every documented route is served under each prefix in
``config.prefixes`` (the configured one and both ``/rest/api/v1`` and ``/api/v1``).
One middleware counts requests and applies the transport-level faults (refuse, latency,
injected statuses) before a documented handler runs; the control API is in
:mod:`acr_emulator.control`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from email.utils import format_datetime

from aiohttp import web

from acr_emulator import control
from acr_emulator.clock import EmulatorClock
from acr_emulator.config import EmulatorConfig
from acr_emulator.engine import Emulator
from acr_emulator.wire import ENGINE, error_response, json_response

TICKER = web.AppKey("ticker", asyncio.Task)
HEARTBEAT_SECONDS = 30.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(config: EmulatorConfig, *, clock: EmulatorClock | None = None) -> web.Application:
    """Build the emulator; pass a manual ``clock`` to drive time from a test."""
    app = web.Application(middlewares=[upstream_faults])
    app[ENGINE] = Emulator(config, clock)
    for prefix in config.prefixes:
        app.router.add_get(f"{prefix}/realtime/metrics", list_metrics)
        app.router.add_get(f"{prefix}/realtime/metrics/values", metric_values)
        app.router.add_get(f"{prefix}/realtime-metric-subscription", subscribe)
        app.router.add_get(f"{prefix}/agents/mapping", agents_mapping)
    control.add_routes(app.router)
    app.on_response_prepare.append(_set_date_header)
    app.on_startup.append(_start_ticker)
    app.on_shutdown.append(_close_sockets)
    app.on_cleanup.append(_stop_ticker)
    return app


# --- helpers ------------------------------------------------------------------------------


_error = error_response
_json = json_response


def _bearer_ok(request: web.Request) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and request.app[ENGINE].key_matches(token.strip())


def parse_ids(raw: list[str]) -> list[str]:
    """``id=A&id=B``, ``id=A,B`` and mixtures -> ``[A, B]`` (order kept, duplicates and
    empty items dropped)."""
    ids = [part.strip() for item in raw for part in item.split(",")]
    return list(dict.fromkeys(i for i in ids if i))


def request_ids(request: web.Request, *, websocket: bool) -> list[str]:
    """The metric ids a values request or a subscription asks for.

    Lenient (the default) takes every form. Strict answers only as documented: REST reads ONE
    ``id`` parameter holding "a comma-separated list of metric IDs" (4.2), and of a repeated
    ``id`` only the first, as a servlet's ``getParameter("id")`` does; the websocket takes each
    repeated ``id`` as one id (5.0), so a comma-joined ``A,B`` is one literal, unknown id.
    """
    raw = request.query.getall("id", [])
    if not request.app[ENGINE].strict:
        return parse_ids(raw)
    if websocket:
        return list(dict.fromkeys(i for i in raw if i))
    return parse_ids(raw[:1])


async def _set_date_header(request: web.Request, response: web.StreamResponse) -> None:
    # The HTTP Date comes from the emulated server's clock (skew included), not the host's.
    response.headers["Date"] = format_datetime(request.app[ENGINE].clock.now(), usegmt=True)


# --- documented API -------------------------------------------------------------------------


async def list_metrics(request: web.Request) -> web.Response:
    """GET {prefix}/realtime/metrics."""
    if not _bearer_ok(request):
        return _error(401, "the authorization header is not valid")
    return _json(request.app[ENGINE].listing())


async def metric_values(request: web.Request) -> web.Response:
    """GET {prefix}/realtime/metrics/values?id=..."""
    engine = request.app[ENGINE]
    if not _bearer_ok(request):
        return _error(401, "the authorization header is not valid")
    ids = request_ids(request, websocket=False)
    if not ids:
        return _error(400, "missing or empty id query parameter")
    denied = engine.check_access(ids)
    if denied == 404:
        return _error(404, "the requested metrics do not exist")
    if denied == 403:
        return _error(403, "the requested metrics are not assigned to the authenticated user")
    text, initializing = engine.read(ids)
    if engine.faults.malformed_values:
        return web.Response(text=text[: len(text) // 2], content_type="application/json")
    status = engine.config.not_ready_status if initializing else 200
    return web.Response(text=text, status=status, content_type="application/json")


async def agents_mapping(request: web.Request) -> web.Response:
    """GET {prefix}/agents/mapping."""
    if not _bearer_ok(request):
        return _error(401, "the authorization header is not valid")
    return _json(request.app[ENGINE].mapping())


async def subscribe(request: web.Request) -> web.StreamResponse:
    """WS {prefix}/realtime-metric-subscription?id=...&auth_token=...

    Bad handshakes are refused with a plain HTTP status before the upgrade.
    """
    engine = request.app[ENGINE]
    if engine.faults.refuse_websockets is not None:  # a proxy on the way, before the server
        return _error(engine.faults.refuse_websockets, "websocket upgrades are not allowed")
    if not engine.key_matches(request.query.get("auth_token")):
        return _error(401, "the authentication key is not valid")
    ids = request_ids(request, websocket=True)
    if not ids:
        return _error(400, "missing or empty id query parameter")
    if engine.check_access(ids) is not None:
        return _error(403, "one or more metrics do not exist or are not assigned to you")
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS)
    if not ws.can_prepare(request).ok:
        return _error(400, "expected a websocket upgrade")
    await ws.prepare(request)
    sub = engine.subscribe(ws, ids)
    writer = asyncio.create_task(engine.hub.pump(sub))
    try:
        async for _message in ws:
            pass  # the subscription is fixed by the URL; client messages are ignored
    finally:
        engine.hub.remove(sub)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
    return ws


# --- faults and counters -------------------------------------------------------------------

_KINDS: dict[Handler, str] = {
    list_metrics: "catalog",
    metric_values: "values",
    agents_mapping: "mapping",
    subscribe: "subscribe",
}


@web.middleware
async def upstream_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count documented requests, then apply refuse, latency and injected statuses."""
    kind = _KINDS.get(request.match_info.route.handler)
    if kind is None:  # the control API and unknown paths are never faulted
        return await handler(request)
    engine = request.app[ENGINE]
    if kind != "subscribe":
        engine.requests[kind] += 1
    if kind == "values":
        engine.values_ids_total += len(request_ids(request, websocket=False))
    if engine.faults.refuse:
        raise _hang_up(request)
    if engine.faults.latency_ms:
        await asyncio.sleep(engine.faults.latency_ms / 1000)
        if engine.faults.refuse:  # switched on while this request waited
            raise _hang_up(request)
    if kind != "subscribe":
        status = engine.take_status_fault()
        if status is not None:
            return _error(status, f"injected fault: HTTP {status}")
    return await handler(request)


def _hang_up(request: web.Request) -> web.HTTPException:
    """Close the TCP connection without an HTTP answer (the refuse fault).

    Returns the exception for the caller to raise; it never reaches the client.
    """
    if request.transport is not None:
        request.transport.abort()
    return web.HTTPServiceUnavailable()


# --- lifecycle ----------------------------------------------------------------------------


async def _start_ticker(app: web.Application) -> None:
    app[TICKER] = asyncio.create_task(app[ENGINE].run())


async def _close_sockets(app: web.Application) -> None:
    await app[ENGINE].hub.close_all()


async def _stop_ticker(app: web.Application) -> None:
    app[TICKER].cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await app[TICKER]
