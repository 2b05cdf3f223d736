from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from metrics import services


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "metrics/home.html")


@login_required
def all_metrics_board(request: HttpRequest) -> HttpResponse:
    return render(request, "metrics/board.html", {"ws_path": "/ws/boards/all/"})


async def health(request: HttpRequest) -> JsonResponse:
    """For monitoring: 200 while values flow (ok or degraded), 503 when nothing fresh comes from
    the upstream. Metric names and per-metric detail only for staff."""
    report = await services.read_health()
    user = await request.auser()
    if not user.is_staff:
        report = {k: v for k, v in report.items() if k != "metrics"}
    return JsonResponse(report, status=503 if report["status"] == "down" else 200)
