"""The public widget's endpoints: JSON, and the page an iframe embeds. Anonymous, any rate, any
origin: served from the live state in Redis only, never from the upstream."""

import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_http_methods

from metrics import live, widgets


async def _config(slug: str) -> dict:
    hit = widgets._configs.get(slug)
    config = hit[1] if hit and hit[0] > time.monotonic() else None
    if config is None:
        config = await sync_to_async(widgets.cached_config)(slug)
    if config is None:
        raise Http404("no such widget")
    return config


def _client(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


@require_http_methods(["GET", "HEAD", "OPTIONS"])
async def widget_json(request: HttpRequest, slug: str) -> HttpResponse:
    config = await _config(slug)
    cors = widgets.cors_headers(config, request.headers.get("Origin"))
    if request.method == "OPTIONS":
        return HttpResponse(status=204, headers={**cors, "Access-Control-Max-Age": "86400"})
    sources = {name: config[name] for name in ("wait", "queue", "agents") if config[name]}
    fields = [live.tile_field(s["metric_id"], s["category"]) for s in sources.values()]
    found, status, requests = await live.read_for_widget(
        fields, _client(request), settings.WIDGET_RATE_WINDOW
    )
    if requests > settings.WIDGET_RATE_LIMIT:
        return HttpResponse(
            status=429, headers={**cors, "Retry-After": str(settings.WIDGET_RATE_WINDOW)}
        )
    now = time.time_ns() // 1_000_000
    stale = now - max(status["poll_ok_ms"], status["ws_ok_ms"]) > settings.ACR_STALE_SECONDS * 1000
    data = widgets.payload(
        config,
        dict(zip(sources, found, strict=True)),
        upstream_now_ms=now + status["upstream_offset_ms"],
        stale=stale,
    )
    body, etag = widgets.encode(data)
    headers = {
        **cors,
        "ETag": etag,
        "Cache-Control": f"public, max-age={config['max_age']}",
        "Content-Type": "application/json; charset=utf-8",
        "X-Content-Type-Options": "nosniff",
    }
    if etag in request.headers.get("If-None-Match", ""):
        return HttpResponse(status=304, headers=headers)
    return HttpResponse(body, headers=headers)


@xframe_options_exempt
def widget_frame(request: HttpRequest, slug: str) -> HttpResponse:
    """The page an <iframe> embeds; only the allowed sites may frame it."""
    config = widgets.cached_config(slug)
    if config is None:
        raise Http404("no such widget")
    response = render(request, "metrics/widget_frame.html", {"slug": slug, "lang": config["lang"]})
    response["Content-Security-Policy"] = widgets.frame_ancestors(config)
    return response
