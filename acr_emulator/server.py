"""aiohttp application: the documented REST and websocket routes plus a loopback control API.

Handlers are thin: authenticate, validate, call :class:`~acr_emulator.engine.Emulator`,
shape the response. Every documented route is served under each prefix in
``config.prefixes`` (the configured one and both ``/rest/api/v1`` and ``/api/v1``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import json
from email.utils import format_datetime
from typing import Any

from aiohttp import web

from acr_emulator.catalog import agent_mapping
from acr_emulator.clock import EmulatorClock
from acr_emulator.config import EmulatorConfig
from acr_emulator.engine import Emulator

ENGINE = web.AppKey("engine", Emulator)
TICKER = web.AppKey("ticker", asyncio.Task)
HEARTBEAT_SECONDS = 30.0

_dumps = functools.partial(json.dumps, ensure_ascii=False)


def create_app(config: EmulatorConfig, *, clock: EmulatorClock | None = None) -> web.Application:
    """Build the emulator; pass a manual ``clock`` to drive time from a test."""
    app = web.Application()
    app[ENGINE] = Emulator(config, clock)
    for prefix in config.prefixes:
        app.router.add_get(f"{prefix}/realtime/metrics", list_metrics)
        app.router.add_get(f"{prefix}/realtime/metrics/values", metric_values)
        app.router.add_get(f"{prefix}/realtime-metric-subscription", subscribe)
        app.router.add_get(f"{prefix}/agents/mapping", agents_mapping)
    app.router.add_post("/_emulator/values", control_values)
    app.router.add_post("/_emulator/auth-key", control_auth_key)
    app.router.add_post("/_emulator/cold", control_cold)
    app.router.add_post("/_emulator/clock", control_clock)
    app.router.add_get("/_emulator/stats", control_stats)
    app.on_response_prepare.append(_set_date_header)
    app.on_startup.append(_start_ticker)
    app.on_shutdown.append(_close_sockets)
    app.on_cleanup.append(_stop_ticker)
    return app


# --- helpers ------------------------------------------------------------------------------


def _error(status: int, message: str) -> web.Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return web.json_response({"error": message}, status=status, headers=headers, dumps=_dumps)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _bearer_ok(request: web.Request) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and request.app[ENGINE].key_matches(token.strip())


def parse_ids(raw: list[str]) -> list[str]:
    """``id=A&id=B``, ``id=A,B`` and mixtures -> ``[A, B]`` (order kept, duplicates and
    empty items dropped)."""
    ids = [part.strip() for item in raw for part in item.split(",")]
    return list(dict.fromkeys(i for i in ids if i))


def is_loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


async def _set_date_header(request: web.Request, response: web.StreamResponse) -> None:
    # The HTTP Date comes from the emulated server's clock (skew included), not the host's.
    response.headers["Date"] = format_datetime(request.app[ENGINE].clock.now(), usegmt=True)


# --- documented API -------------------------------------------------------------------------


async def list_metrics(request: web.Request) -> web.Response:
    """GET {prefix}/realtime/metrics."""
    engine = request.app[ENGINE]
    engine.requests["catalog"] += 1
    if not _bearer_ok(request):
        return _error(401, "the authorization header is not valid")
    return _json([metric.listing() for metric in engine.catalog.visible()])


async def metric_values(request: web.Request) -> web.Response:
    """GET {prefix}/realtime/metrics/values?id=..."""
    engine = request.app[ENGINE]
    engine.requests["values"] += 1
    if not _bearer_ok(request):
        return _error(401, "the authorization header is not valid")
    ids = parse_ids(request.query.getall("id", []))
    if not ids:
        return _error(400, "missing or empty id query parameter")
    denied = engine.catalog.check_access(ids)
    if denied == 404:
        return _error(404, "the requested metrics do not exist")
    if denied == 403:
        return _error(403, "the requested metrics are not assigned to the authenticated user")
    results, initializing = engine.read(ids)
    status = engine.config.not_ready_status if initializing else 200
    return _json({"results": results, "initializing": initializing}, status=status)


async def agents_mapping(request: web.Request) -> web.Response:
    """GET {prefix}/agents/mapping."""
    request.app[ENGINE].requests["mapping"] += 1
    if not _bearer_ok(request):
        return _error(401, "the authorization header is not valid")
    return _json(agent_mapping())


async def subscribe(request: web.Request) -> web.StreamResponse:
    """WS {prefix}/realtime-metric-subscription?id=...&auth_token=...

    Bad handshakes are refused with a plain HTTP status before the upgrade.
    """
    engine = request.app[ENGINE]
    if not engine.key_matches(request.query.get("auth_token")):
        return _error(401, "the authentication key is not valid")
    ids = parse_ids(request.query.getall("id", []))
    if not ids:
        return _error(400, "missing or empty id query parameter")
    if engine.catalog.check_access(ids) is not None:
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


# --- control API (loopback only) ----------------------------------------------------------


def _control(handler):  # type: ignore[no-untyped-def]
    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        if not is_loopback(request.remote):
            return _error(403, "the control API only answers loopback clients")
        body: Any = {}
        if request.method == "POST" and request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                return _error(400, "body must be JSON")
        if not isinstance(body, dict):
            return _error(400, "body must be a JSON object")
        return await handler(request, body)

    return guarded


@_control
async def control_values(request: web.Request, body: dict[str, Any]) -> web.Response:
    engine = request.app[ENGINE]
    if not isinstance(body.get("pin", True), bool):
        return _error(400, "pin must be true or false")
    try:
        result = engine.set_value(
            body.get("metricId"),
            body.get("categoryValue"),
            body.get("value"),
            pin=body.get("pin", True),
        )
    except LookupError as exc:
        return _error(404, str(exc))
    except ValueError as exc:
        return _error(400, str(exc))
    return _json(result)


@_control
async def control_auth_key(request: web.Request, body: dict[str, Any]) -> web.Response:
    key = body.get("key")
    if not isinstance(key, str) or not key:
        return _error(400, "key must be a non-empty string")
    engine = request.app[ENGINE]
    engine.rotate_key(key)
    if body.get("disconnect"):
        await engine.hub.close_all(code=1008)
    return _json({"rotated": True})


@_control
async def control_cold(request: web.Request, body: dict[str, Any]) -> web.Response:
    request.app[ENGINE].chill()
    return _json({"cold": True})


@_control
async def control_clock(request: web.Request, body: dict[str, Any]) -> web.Response:
    engine = request.app[ENGINE]
    advance, skew = body.get("advance_ms"), body.get("skew_ms")
    for name, raw in (("advance_ms", advance), ("skew_ms", skew)):
        if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int)):
            return _error(400, f"{name} must be an integer")
    if advance is None and skew is None:
        return _error(400, "give advance_ms or skew_ms")
    if advance is not None and advance < 0:
        return _error(400, "advance_ms must be >= 0")
    if skew is not None:
        engine.clock.set_skew(skew)
    if advance is not None:
        engine.clock.advance(advance)
    engine.tick()
    now = engine.clock.now_ms()
    return _json({"now_ms": now, "skew_ms": engine.clock.skew_ms})


@_control
async def control_stats(request: web.Request, body: dict[str, Any]) -> web.Response:
    return _json(request.app[ENGINE].stats())


# --- lifecycle ----------------------------------------------------------------------------


async def _start_ticker(app: web.Application) -> None:
    app[TICKER] = asyncio.create_task(app[ENGINE].run())


async def _close_sockets(app: web.Application) -> None:
    await app[ENGINE].hub.close_all()


async def _stop_ticker(app: web.Application) -> None:
    app[TICKER].cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await app[TICKER]
