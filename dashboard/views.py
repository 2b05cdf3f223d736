"""Thin views: pages for boards and displays, trend data, health."""

from datetime import UTC, datetime, timedelta

from asgiref.sync import async_to_sync, sync_to_async
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.clickjacking import xframe_options_sameorigin

from dashboard import access, boards, demo
from dashboard.forms import AlertRuleForm
from dashboard.screens import rules
from metrics import health, history
from metrics.models import AlertEvent, AlertRule, Metric, Sample, Tile, Widget


@login_required
def home(request: HttpRequest) -> HttpResponse:
    context = {
        "boards": access.visible_boards(request.user),
        "live": access.live_scope(request.user) is not None,
        "screens": rules.may_use_screens(request.user),
        "may_design": access.may_design(request.user),
    }
    return render(request, "metrics/home.html", context)


@login_required
def all_metrics_board(request: HttpRequest) -> HttpResponse:
    access.require_live_scope(request.user)
    page = {"title": "All metrics", "ws": "/ws/boards/all/", "boards": None, "kiosk": False}
    return render(request, "metrics/board.html", {"page": page, "title": "All metrics"})


@login_required
def team(request: HttpRequest) -> HttpResponse:
    """Drill-down: a live, sortable and searchable table of the user's agents and queues."""
    access.require_live_scope(request.user)
    page = {"ws": "/ws/boards/all/", "history": "/history/"}
    return render(request, "metrics/team.html", {"page": page, "title": "Team"})


@xframe_options_sameorigin  # the admin shows it as a live preview
@login_required
def board(request: HttpRequest, slug: str) -> HttpResponse:
    found = get_object_or_404(access.visible_boards(request.user), slug=slug)
    page = {
        "title": found.title or found.name,
        "ws": f"/ws/boards/{found.slug}/",
        "trend": f"/boards/{found.slug}/tiles/",
        "boards": [boards.board_config(found)],
        "kiosk": request.GET.get("kiosk") == "1",
    }
    if access.may_edit(request.user, found):
        page["edit"] = reverse("designer-board", args=[found.slug])
        page["slug"] = found.slug
    return render(request, "metrics/board.html", {"page": page, "title": page["title"]})


def display(request: HttpRequest, token: str) -> HttpResponse:
    """A TV's board, opened with its display link: no login, nothing but its own board(s)."""
    link = boards.find_display_link(token)
    if link is None:
        return render(request, "metrics/display_invalid.html", status=404)
    configs = [boards.board_config(b, seconds) for b, seconds in boards.display_boards(link)]
    page = {
        "title": link.name,
        "ws": f"/ws/display/{token}/",
        "trend": f"/display/{token}/tiles/",
        "boards": configs,
        "kiosk": True,
    }
    return render(request, "metrics/board.html", {"page": page, "title": link.name})


def _trend(tile: Tile) -> JsonResponse:
    return trend_json(tile.metric, tile.category, tile.trend_hours)


def trend_json(metric: Metric, category: str, hours: int) -> JsonResponse:
    """A trend tile's samples (the caller has checked that the user may see them)."""
    since = timezone.now() - timedelta(hours=hours)
    samples = Sample.objects.filter(
        metric_id=metric.metric_id, category=category, at__gte=since
    ).order_by("at")
    points = list(samples.values_list("at", "value"))
    return JsonResponse(
        {
            "unit": _unit(metric),
            "t": [int(at.timestamp() * 1000) for at, _ in points],
            "v": [v for _, v in points],
        }
    )


def _unit(metric: Metric) -> str:
    """ "ms" or "count": how a chart labels the metric's numbers."""
    return async_to_sync(history.unit)(metric.metric_id, metric.category_type, metric.categories)


@login_required
def board_trend(request: HttpRequest, slug: str, tile_id: int) -> JsonResponse:
    board = get_object_or_404(access.visible_boards(request.user), slug=slug)
    tile = get_object_or_404(Tile.objects.select_related("metric"), pk=tile_id, board=board)
    return _trend(tile)


def display_trend(request: HttpRequest, token: str, tile_id: int) -> JsonResponse:
    link = boards.find_display_link(token)
    if link is None:
        raise Http404
    allowed = [b.pk for b, _ in boards.display_boards(link)]
    tile = get_object_or_404(Tile.objects.select_related("metric"), pk=tile_id, board__in=allowed)
    return _trend(tile)


async def health_check(request: HttpRequest) -> JsonResponse:
    """For monitoring: 200 while values flow (ok or degraded), 503 when nothing fresh comes from
    the upstream. Metric names, per-metric detail and the errors' own words only for staff."""
    report = await health.read_health()
    user = await request.auser()
    if not user.is_staff:
        report = health.report_without_detail(report)
    return JsonResponse(report, status=503 if report["status"] == "down" else 200)


# --- history ---------------------------------------------------------------------------------


def _history_request(request: HttpRequest) -> tuple[access.Scope, Metric, datetime, datetime]:
    """The scope, metric and time range asked for; refuses what the user may not see."""
    scope = access.require_live_scope(request.user)
    metric = Metric.objects.filter(metric_id=request.GET.get("metric", "")).first()
    if metric is None or not scope.allows_metric(metric):
        raise Http404("no such metric")
    start, end = _history_range(request.GET)
    return scope, metric, start, end


def _history_range(query) -> tuple[datetime, datetime]:
    """`hours` back from now (default 24), or `start` and `end` as epoch milliseconds."""
    now = timezone.now()
    if "start" in query or "end" in query:
        try:
            start_ms, end_ms = int(query.get("start", "")), int(query.get("end", ""))
        except ValueError:
            raise BadRequest("start and end must be epoch milliseconds") from None
        if not 0 < end_ms - start_ms <= 31 * 24 * 3600 * 1000:
            raise BadRequest("end must be after start, and at most 31 days after it")
        try:
            start = datetime.fromtimestamp(start_ms / 1000, UTC)
            end = datetime.fromtimestamp(end_ms / 1000, UTC)
        except (ValueError, OverflowError, OSError):  # before year 1 or after 9999
            raise BadRequest("start and end must be dates between years 1 and 9999") from None
        return start, min(now, end)
    try:
        hours = float(query.get("hours", "24"))
    except ValueError:
        raise BadRequest("hours must be a number") from None
    if not 0 < hours <= 24 * 31:
        raise BadRequest("hours must be between 0 and 744")
    return now - timedelta(hours=hours), now


@login_required
def history_page(request: HttpRequest) -> HttpResponse:
    metrics = access.visible_metrics(access.require_live_scope(request.user))
    return render(request, "metrics/history.html", {"metrics": metrics, "title": "History"})


@login_required
def history_data(request: HttpRequest) -> JsonResponse:
    scope, metric, start, end = _history_request(request)
    return JsonResponse(
        {
            "metric": {"metric_id": metric.metric_id, "name": metric.name},
            "unit": _unit(metric),
            "series": history.series(metric.metric_id, scope.categories, start, end),
        }
    )


@login_required
async def history_csv(request: HttpRequest) -> StreamingHttpResponse:
    scope, metric, start, end = await sync_to_async(_history_request)(request)
    name = f"{metric.metric_id}-{start:%Y%m%d%H%M}-{end:%Y%m%d%H%M}.csv"
    return StreamingHttpResponse(
        history.csv_chunks(metric.metric_id, scope.categories, start, end),
        content_type="text/csv; charset=utf-8",
        # The metric id is the upstream's: quoted (or encoded) as RFC 6266 says.
        headers={"Content-Disposition": content_disposition_header(True, name)},
    )


@login_required
def status_page(request: HttpRequest) -> HttpResponse:
    """The upstream's status in words an operator understands, and what to do about it."""
    if not request.user.is_staff:
        raise PermissionDenied("Only administrators see the upstream status.")
    report = async_to_sync(health.read_health)()
    return render(request, "metrics/status.html", {"health": report, "title": "Upstream status"})


# --- alerts ----------------------------------------------------------------------------------


@login_required
def alerts_page(request: HttpRequest) -> HttpResponse:
    """A user's alert rules, their recent alerts, and a form for a new rule."""
    if request.method == "POST" and "delete" in request.POST:
        AlertRule.objects.filter(owner=request.user, pk=request.POST.get("delete")).delete()
        return redirect("alerts")
    form = AlertRuleForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        form.instance.owner = request.user
        form.save()
        return redirect("alerts")
    rules = AlertRule.objects.filter(owner=request.user).select_related("metric")
    events = AlertEvent.objects.filter(rule__owner=request.user).select_related("rule")[:50]
    context = {
        "form": form,
        "rules": rules,
        "events": events,
        "title": "Alerts",
        # Without a queue or agent to watch there is no rule to make (viewers see boards only).
        "can_watch": form.scope.categories is None or bool(form.scope.categories),
        "no_live_data": access.NO_LIVE_DATA,
    }
    return render(request, "metrics/alerts.html", context, status=400 if form.errors else 200)


def demo_site(request: HttpRequest) -> HttpResponse:
    """A stand-in for a company's public web site that embeds the demo widget (only once the
    demo is seeded: `manage.py seed_demo`)."""
    if not Widget.objects.filter(slug=demo.WIDGET).exists():
        raise Http404("the demo is not seeded")
    return render(request, "metrics/demo_site.html", {"slug": demo.WIDGET})
