"""The public widget's endpoints: JSON, and the page an iframe embeds. Anonymous, any rate, any
origin: served from the live state in Redis only, never from the upstream."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_exempt

from dashboard.widget import payload


async def widget_json(request: HttpRequest, slug: str) -> HttpResponse:
    """Never reached under ASGI: dashboard.widget.asgi answers /widget/<slug>.json in front of
    Django. The route exists so the URL can be reversed (admin snippets, the iframe page)."""
    raise Http404("served by dashboard.widget.asgi")


@xframe_options_exempt
def widget_frame(request: HttpRequest, slug: str) -> HttpResponse:
    """The page an <iframe> embeds; only the allowed sites may frame it."""
    config = payload.cached_config(slug)
    if config is None:
        raise Http404("no such widget")
    response = render(request, "metrics/widget_frame.html", {"slug": slug, "lang": config["lang"]})
    response["Content-Security-Policy"] = payload.frame_ancestors(config)
    return response
