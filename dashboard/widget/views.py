"""The public widget's endpoints: JSON, and the page an iframe embeds. Anonymous, any rate, any
origin: served from the live state in Redis only, never from the upstream. And the widget
designer, where administrators make them."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_POST

from dashboard import access, designer
from dashboard.forms import FIELD_GROUPS, WidgetForm
from dashboard.widget import payload
from dashboard.widget.embeds import embeds
from metrics.models import Metric, Widget


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


# --- the widget designer (administrators) ------------------------------------------------------


def _designer(request: HttpRequest) -> None:
    if not access.may_design_widgets(request.user):
        raise PermissionDenied("Only administrators design the public widgets.")


def _public_catalog() -> dict:
    """The picker's catalog: the metrics marked public, all their categories (a widget may show
    only those; an administrator marks a metric public in the admin's metric list)."""
    catalog = designer.catalog(access.Scope(None))
    public = set(Metric.objects.filter(public=True).values_list("metric_id", flat=True))
    return {"metrics": [m for m in catalog["metrics"] if m["metric_id"] in public]}


@login_required
def widget_list(request: HttpRequest) -> HttpResponse:
    _designer(request)
    widgets = Widget.objects.order_by("name")
    return render(request, "metrics/widget_list.html", {"widgets": widgets})


@login_required
def widget_edit(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    """New (no slug) or existing widget: its settings, its look, and its three embeds each
    previewed beside its code with its current live answer."""
    _designer(request)
    widget = None if slug is None else get_object_or_404(Widget, slug=slug)
    form = WidgetForm(request.POST or None, instance=widget)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        payload.forget_config(saved.slug)  # this process shows the change at once
        messages.success(request, f"Saved {saved.name}.")
        return redirect("widget-edit", slug=saved.slug)
    groups = {name: [form[field] for field in fields] for name, fields in FIELD_GROUPS.items()}
    context = {
        **groups,
        "form": form,
        "widget": widget,
        "catalog": _public_catalog(),
        "embeds": [] if widget is None else embeds(widget.slug, request.build_absolute_uri),
    }
    return render(
        request, "metrics/widget_designer.html", context, status=400 if form.errors else 200
    )


@login_required
@require_POST
def widget_delete(request: HttpRequest, slug: str) -> HttpResponse:
    _designer(request)
    widget = get_object_or_404(Widget, slug=slug)
    widget.delete()
    payload.forget_config(slug)
    messages.success(request, f"Deleted {widget.name}: its embeds now answer 404.")
    return redirect("widget-list")
