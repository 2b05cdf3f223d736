"""The widget's JSON endpoint as a bare ASGI app, in front of Django.

It takes anonymous traffic at any rate, so it skips Django's middleware and URL routing (a sync
middleware there costs a thread hop per request): one Redis round trip for the rate limit, a
payload computed at most once a second, and the response. The widget configuration is read from
the database at most every few seconds.
"""

from __future__ import annotations

import re
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from dashboard import proxies, ratelimit
from dashboard.widget import payload
from metrics import health, live, observability
from metrics.acr import clock

PATH = re.compile(r"^/widget/(?P<slug>[-a-zA-Z0-9_]+)\.json$")
ALLOWED_METHODS = {"GET", "HEAD", "OPTIONS"}


def matches(scope: dict[str, Any]) -> bool:
    return scope["type"] == "http" and PATH.match(scope["path"]) is not None


async def _config(slug: str) -> dict[str, Any] | None:
    fresh, config = payload.recent_config(slug)  # no thread hop when it is at hand
    return config if fresh else await sync_to_async(payload.cached_config)(slug)


async def _respond(send, status: int, headers: dict[str, str], body: bytes = b"") -> None:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    observability.WIDGET_REQUESTS.labels(str(status)).inc()
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def respond(scope: dict[str, Any], send) -> None:
    slug = PATH.match(scope["path"])["slug"]
    # Limited before anything else: an unknown slug costs a database read.
    if not await _allow(_client(scope)):
        _, known = payload.recent_config(slug)
        cors = payload.cors_headers(known, _header(scope, b"origin")) if known else {}
        await _respond(send, 429, {**cors, "Retry-After": str(settings.WIDGET_RATE_WINDOW)})
        return
    config = await _config(slug)
    if config is None:
        await _respond(send, 404, {"Content-Type": "text/plain"}, b"no such widget")
        return
    cors = payload.cors_headers(config, _header(scope, b"origin"))
    if scope["method"] not in ALLOWED_METHODS:
        await _respond(send, 405, {**cors, "Allow": ", ".join(sorted(ALLOWED_METHODS))})
        return
    if scope["method"] == "OPTIONS":
        await _respond(send, 204, {**cors, "Access-Control-Max-Age": "86400"})
        return
    body, etag = await _cached_payload(slug, config)
    headers = {
        **cors,
        "ETag": etag,
        "Cache-Control": f"public, max-age={config['max_age']}",
        "Content-Type": "application/json; charset=utf-8",
        "X-Content-Type-Options": "nosniff",
    }
    if etag in (_header(scope, b"if-none-match") or ""):
        await _respond(send, 304, headers)
    else:
        await _respond(send, 200, headers, b"" if scope["method"] == "HEAD" else body)


# The payload is the same for every visitor: it is computed at most once per PAYLOAD_SECONDS
# per widget and process, so a flood of requests costs no Redis round trip each.
PAYLOAD_SECONDS = 1.0
_payloads: dict[str, tuple[float, bytes, str]] = {}


async def _cached_payload(slug: str, config: dict[str, Any]) -> tuple[bytes, str]:
    hit = _payloads.get(slug)
    if hit is not None and hit[0] > time.monotonic():
        observability.WIDGET_PAYLOADS.labels("hit").inc()
        return hit[1], hit[2]
    observability.WIDGET_PAYLOADS.labels("miss").inc()
    sources = {name: config[name] for name in ("wait", "queue", "agents") if config[name]}
    fields = [live.record_field(s["metric_id"], s["category"]) for s in sources.values()]
    found, status = await live.read_for_widget(fields)
    now = clock.now_ms()
    data = payload.build_payload(
        config,
        dict(zip(sources, found, strict=True)),
        upstream_now_ms=now + status["upstream_offset_ms"],
        stale=health.is_stale(status, now_ms=now),
    )
    body, etag = payload.encode(data)
    _payloads[slug] = (time.monotonic() + PAYLOAD_SECONDS, body, etag)
    return body, etag


def _client(scope: dict[str, Any]) -> str:
    """The client's address, behind trusted proxies too (every X-Forwarded-For line, in order)."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    hops = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"]
    return proxies.client_address(peer, ",".join(hops))


async def _allow(client: str) -> bool:
    """WIDGET_RATE_LIMIT requests per client per WIDGET_RATE_WINDOW, over every web process."""
    return await ratelimit.hit(
        "widget:" + client,
        limit=settings.WIDGET_RATE_LIMIT,
        window=settings.WIDGET_RATE_WINDOW,
        now_ms=clock.now_ms(),
    )


def with_widget(django_app):
    """Wraps the Django ASGI app: widget JSON requests are answered here, the rest by Django."""

    async def app(scope, receive, send):
        if matches(scope):
            await respond(scope, send)
        else:
            await django_app(scope, receive, send)

    return app
