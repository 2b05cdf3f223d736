"""Thin views of the board designer: the catalog picker's data, boards, tiles and playlists.

Every designer URL: an anonymous visitor is sent to the login page; a board the user may not
see answers 404 (not even its existence), one they see but may not edit 403, and a user who
may edit nothing 403 (dashboard.access.may_design, editable_boards)."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from dashboard import access, designer
from dashboard.views import trend_json
from metrics.models import Board, Metric, Playlist

NOT_DESIGNER = "Only administrators and team supervisors build boards."


def catalog_json(request: HttpRequest) -> JsonResponse:
    """The metrics and categories the user may pick (staff: all; a supervisor: their teams'
    queues and agents; anyone else, signed in or not: 403, as JSON endpoints answer)."""
    scope = access.require_live_scope(request.user)
    return JsonResponse(designer.catalog(scope))


def _designer(user) -> None:
    if not access.may_design(user):
        raise PermissionDenied(NOT_DESIGNER)


def _editable(user, slug: str) -> Board:
    """The board, if the user may edit it: 404 when they may not see it, else 403."""
    board = get_object_or_404(access.visible_boards(user), slug=slug)
    if not access.may_edit(user, board):
        raise PermissionDenied("This board is shared with a team you do not supervise.")
    return board


@login_required
def board_list(request: HttpRequest) -> HttpResponse:
    """The boards the user may edit, with New, Duplicate, Rename and Delete."""
    _designer(request.user)
    if request.method == "POST":
        name = request.POST.get("name", "").strip()[:200]
        if not name:
            return _list(request, "Give the new board a name.", status=400)
        teams = list(access.editable_teams(request.user)) if not request.user.is_staff else []
        board = designer.save(Board(name=name), [], teams)
        return redirect("designer-board", board.slug)
    return _list(request)


def _list(request: HttpRequest, error: str = "", status: int = 200) -> HttpResponse:
    context = {
        "boards": access.editable_boards(request.user).prefetch_related("teams"),
        "error": error,
        "title": "Board designer",
    }
    return render(request, "metrics/designer_list.html", context, status=status)


@login_required
def board_editor(request: HttpRequest, slug: str) -> HttpResponse:
    board = _editable(request.user, slug)
    page = {
        "board": designer.editor_config(board),
        "teams": [{"id": t.pk, "name": t.name} for t in access.editable_teams(request.user)],
        "save": reverse("designer-save", args=[board.slug]),
        "preview": "/designer/preview/",
        "staff": request.user.is_staff,
    }
    return render(
        request, "metrics/designer.html", {"page": page, "board": board, "title": board.name}
    )


@login_required
@require_POST
def board_save(request: HttpRequest, slug: str) -> JsonResponse:
    """Saves the whole board as the designer sends it (JSON), or says what is wrong where."""
    board = _editable(request.user, slug)
    try:
        data = json.loads(request.body or b"null")
    except ValueError:
        return JsonResponse({"errors": {"form": "Not JSON."}}, status=400)
    try:
        checked = designer.check(data, user=request.user, board=board)
    except designer.Refused as refused:
        return JsonResponse({"errors": refused.errors}, status=400)
    saved = designer.save(*checked)
    return JsonResponse({"saved": True, "board": designer.editor_config(saved)})


@login_required
@require_POST
def board_duplicate(request: HttpRequest, slug: str) -> HttpResponse:
    board = _editable(request.user, slug)
    copy = designer.duplicate(board, f"Copy of {board.name}"[:200])
    return redirect("designer-board", copy.slug)


@login_required
@require_POST
def board_rename(request: HttpRequest, slug: str) -> HttpResponse:
    board = _editable(request.user, slug)
    name = request.POST.get("name", "").strip()[:200]
    if not name:
        return _list(request, "A board needs a name.", status=400)
    board.name = name
    board.save(update_fields=["name"])
    return redirect("designer")


@login_required
def board_delete(request: HttpRequest, slug: str) -> HttpResponse:
    """Asks first (GET), deletes on the confirmation's POST."""
    board = _editable(request.user, slug)
    if request.method == "POST":
        board.delete()
        return redirect("designer")
    context = {"board": board, "title": f"Delete {board.name}"}
    return render(request, "metrics/designer_delete.html", context)


@xframe_options_sameorigin  # the editor shows it in a frame
@login_required
def preview(request: HttpRequest) -> HttpResponse:
    """The live preview: board.js drawing the editor's unsaved tiles from the All-metrics
    socket, which sends only what the user may see live (their scope), whatever the tiles."""
    _designer(request.user)
    access.require_live_scope(request.user)
    page = {
        "title": "Preview",
        "ws": "/ws/boards/all/",
        "trend": "/designer/trend.json",
        "boards": [],
        "preview": True,
        "kiosk": True,
    }
    return render(request, "metrics/board.html", {"page": page, "title": "Preview"})


@login_required
def preview_trend(request: HttpRequest) -> JsonResponse:
    """A trend's samples for an unsaved tile, within the user's scope."""
    _designer(request.user)
    scope = access.require_live_scope(request.user)
    category = request.GET.get("category", "")
    metric = Metric.objects.filter(metric_id=request.GET.get("metric", "")).first()
    if metric is None or not scope.allows(category):
        return JsonResponse({"error": "no such metric or category"}, status=404)
    try:
        hours = min(max(int(request.GET.get("hours", "4")), 1), 24)
    except ValueError:
        hours = 4
    return trend_json(metric, category, hours)


# --- playlists -----------------------------------------------------------------------------------


@login_required
def playlist_list(request: HttpRequest) -> HttpResponse:
    _designer(request.user)
    error = ""
    if request.method == "POST":
        name = request.POST.get("name", "").strip()[:200]
        if name:
            playlist = Playlist.objects.create(name=name, owner=request.user)
            return redirect("designer-playlist", playlist.pk)
        error = "Give the new playlist a name."
    context = {
        "playlists": access.editable_playlists(request.user).prefetch_related("items__board"),
        "error": error,
        "title": "Playlists",
    }
    return render(request, "metrics/designer_playlists.html", context, status=400 if error else 200)


@login_required
def playlist_editor(request: HttpRequest, pk: int) -> HttpResponse:
    """A playlist's boards (those the user may see), their order and seconds each."""
    _designer(request.user)
    playlist = get_object_or_404(access.editable_playlists(request.user), pk=pk)
    visible = access.visible_boards(request.user)
    if request.method == "POST" and "delete" in request.POST and "confirm" in request.POST:
        playlist.delete()
        return redirect("designer-playlists")
    errors: list[str] = []
    if request.method == "POST":
        try:
            items = designer.playlist_items(request.POST, visible)
        except designer.Refused as refused:
            errors = list(refused.errors.values())
        else:
            designer.save_playlist(playlist, request.POST.get("name", ""), items)
            return redirect("designer-playlists")
    rows = [(item.board_id, item.seconds) for item in playlist.items.all()]
    rows += [(None, 30)] * 3  # room for more
    context = {
        "playlist": playlist,
        "rows": rows,
        "boards": visible,
        "errors": errors,
        "title": playlist.name,
    }
    return render(request, "metrics/designer_playlist.html", context, status=400 if errors else 200)
