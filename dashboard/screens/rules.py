"""Screens: who may send a board or playlist to a TV and manage the TVs showing them.

- staff: every board, playlist and display link;
- a team's supervisors: the boards shared with their teams, the playlists made only of such
  boards, and the display links showing one of those;
- anyone else (viewers included): none of it.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from metrics.models import Board, DisplayLink, Playlist, Team

Shown = Board | Playlist

NOT_ALLOWED = "Only administrators and team supervisors send boards to screens."


def may_use_screens(user) -> bool:
    """Staff, and supervisors of at least one team."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.is_staff or Team.objects.filter(supervisors=user).exists()


def require_screens(user) -> None:
    if not may_use_screens(user):
        raise PermissionDenied(NOT_ALLOWED)


def sendable_boards(user) -> QuerySet[Board]:
    if not may_use_screens(user):
        return Board.objects.none()
    if user.is_staff:
        return Board.objects.all()
    return Board.objects.filter(teams__supervisors=user).distinct()


def sendable_playlists(user) -> list[Playlist]:
    """Playlists with at least one board, every one of them sendable by the user."""
    boards = set(sendable_boards(user).values_list("pk", flat=True))
    playlists = Playlist.objects.prefetch_related("items").order_by("name")
    return [p for p in playlists if _board_ids(p) and _board_ids(p) <= boards]


def _board_ids(playlist: Playlist) -> set[int]:
    return {item.board_id for item in playlist.items.all()}


def may_send(user, shown: Shown | None) -> bool:
    """The one rule: may `user` put `shown` (a board or playlist) on a screen?"""
    if shown is None or not may_use_screens(user):
        return False
    if user.is_staff:
        return True
    boards = set(sendable_boards(user).values_list("pk", flat=True))
    if isinstance(shown, Board):
        return shown.pk in boards
    ids = _board_ids(shown)
    return bool(ids) and ids <= boards


def shown_by(link: DisplayLink) -> Shown | None:
    return link.board if link.board_id is not None else link.playlist


def manageable_links(user) -> list[DisplayLink]:
    """The active display links the user may re-point, re-link and revoke."""
    links = DisplayLink.objects.filter(revoked_at=None).select_related(
        "board", "playlist", "created_by"
    )
    return [link for link in links.order_by("name") if may_send(user, shown_by(link))]


def manageable_link(user, link_id: int) -> DisplayLink | None:
    return next((link for link in manageable_links(user) if link.pk == link_id), None)
