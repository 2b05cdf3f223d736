"""The loopback-only control API that tests and demos use to steer the emulator.

``/_emulator/values`` (set a value), ``auth-key`` (rotate), ``cold``, ``clock``, ``faults``,
``strict`` and ``stats``. Refused with 403 for any client that is not on a loopback address.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
from typing import Any

from aiohttp import web

from acr_emulator.wire import ENGINE, error_response, json_response


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/_emulator/values", control_values)
    router.add_post("/_emulator/auth-key", control_auth_key)
    router.add_post("/_emulator/cold", control_cold)
    router.add_post("/_emulator/clock", control_clock)
    router.add_get("/_emulator/faults", control_faults)
    router.add_post("/_emulator/faults", control_faults)
    router.add_get("/_emulator/strict", control_strict)
    router.add_post("/_emulator/strict", control_strict)
    router.add_get("/_emulator/stats", control_stats)


def is_loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def _control(handler):  # type: ignore[no-untyped-def]
    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        if not is_loopback(request.remote):
            return error_response(403, "the control API only answers loopback clients")
        body: Any = {}
        if request.method == "POST" and request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                return error_response(400, "body must be JSON")
        if not isinstance(body, dict):
            return error_response(400, "body must be a JSON object")
        return await handler(request, body)

    return guarded


@_control
async def control_values(request: web.Request, body: dict[str, Any]) -> web.Response:
    """One value (metricId, categoryValue, value), or several pushed together: {"values":
    [{metricId, categoryValue, value}, ...]} answers with a list of results."""
    engine = request.app[ENGINE]
    if not isinstance(body.get("pin", True), bool):
        return error_response(400, "pin must be true or false")
    many = "values" in body
    items = body["values"] if many else [body]
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        return error_response(400, "values must be a non-empty list of objects")
    try:
        results = engine.set_values(
            [(i.get("metricId"), i.get("categoryValue"), i.get("value")) for i in items],
            pin=body.get("pin", True),
        )
    except LookupError as exc:
        return error_response(404, str(exc))
    except ValueError as exc:
        return error_response(400, str(exc))
    # The subscribers' writers are ready to send the new frames: they go first, as a server
    # pushes a change when it happens (answering first put the answer's write and the request's
    # end, about a millisecond, between the value's lastUpdateTime and its push).
    await asyncio.sleep(0)
    return json_response(results if many else results[0])


@_control
async def control_auth_key(request: web.Request, body: dict[str, Any]) -> web.Response:
    key = body.get("key")
    if not isinstance(key, str) or not key:
        return error_response(400, "key must be a non-empty string")
    engine = request.app[ENGINE]
    engine.rotate_key(key)
    if body.get("disconnect"):
        await engine.hub.close_all(code=1008)
    return json_response({"rotated": True})


@_control
async def control_cold(request: web.Request, body: dict[str, Any]) -> web.Response:
    request.app[ENGINE].chill()
    return json_response({"cold": True})


@_control
async def control_clock(request: web.Request, body: dict[str, Any]) -> web.Response:
    engine = request.app[ENGINE]
    advance, skew = body.get("advance_ms"), body.get("skew_ms")
    for name, raw in (("advance_ms", advance), ("skew_ms", skew)):
        if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int)):
            return error_response(400, f"{name} must be an integer")
    if advance is None and skew is None:
        return error_response(400, "give advance_ms or skew_ms")
    if advance is not None and advance < 0:
        return error_response(400, "advance_ms must be >= 0")
    if skew is not None:
        engine.clock.set_skew(skew)
    if advance is not None:
        engine.clock.advance(advance)
    engine.tick()
    now = engine.clock.now_ms()
    return json_response({"now_ms": now, "skew_ms": engine.clock.skew_ms})


@_control
async def control_stats(request: web.Request, body: dict[str, Any]) -> web.Response:
    return json_response(request.app[ENGINE].stats())


@_control
async def control_faults(request: web.Request, body: dict[str, Any]) -> web.Response:
    """GET: the active faults. POST: change them; ``{}`` or ``{"clear": true}`` clears all."""
    engine = request.app[ENGINE]
    if request.method == "GET":
        return json_response(engine.faults.active())
    try:
        active = engine.set_faults(body)
    except ValueError as exc:
        return error_response(400, str(exc))
    return json_response(active)


@_control
async def control_strict(request: web.Request, body: dict[str, Any]) -> web.Response:
    """GET: whether only the documented id forms are answered. POST {"strict": bool}: switch."""
    engine = request.app[ENGINE]
    if request.method == "POST":
        if not isinstance(body.get("strict"), bool):
            return error_response(400, "strict must be true or false")
        engine.strict = body["strict"]
    return json_response({"strict": engine.strict})
