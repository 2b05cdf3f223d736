from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "metrics/home.html")


@login_required
def all_metrics_board(request: HttpRequest) -> HttpResponse:
    return render(request, "metrics/board.html", {"ws_path": "/ws/boards/all/"})
