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
    boards = _board_ids_of(user)
    playlists = Playlist.objects.prefetch_related("items").order_by("name")
    return [p for p in playlists if _within(p, boards)]


def _board_ids(playlist: Playlist) -> set[int]:
    return {item.board_id for item in playlist.items.all()}


def may_send(user, shown: Shown | None) -> bool:
    """The one rule: may `user` put `shown` (a board or playlist) on a screen?"""
    if shown is None or not may_use_screens(user):
        return False
    return user.is_staff or _within(shown, _board_ids_of(user))


def _board_ids_of(user) -> set[int]:
    return set(sendable_boards(user).values_list("pk", flat=True))


def _within(shown: Shown, boards: set[int]) -> bool:
    """A board among `boards`, or a playlist with boards, all of them among `boards`."""
    if isinstance(shown, Board):
        return shown.pk in boards
    ids = _board_ids(shown)
    return bool(ids) and ids <= boards


def shown_by(link: DisplayLink) -> Shown | None:
    return link.board if link.board_id is not None else link.playlist


def manageable_links(user) -> list[DisplayLink]:
    """The active display links the user may re-point, re-link and revoke: those showing what
    they may send (may_send, with the user's boards read once)."""
    if not may_use_screens(user):
        return []
    links = (
        DisplayLink.objects.filter(revoked_at=None)
        .select_related("board", "playlist", "created_by")
        .prefetch_related("playlist__items")
        .order_by("name")
    )
    if user.is_staff:
        return list(links)
    boards = _board_ids_of(user)
    return [link for link in links if _within(shown_by(link), boards)]


def manageable_link(user, link_id: int) -> DisplayLink | None:
    return next((link for link in manageable_links(user) if link.pk == link_id), None)
