"""Boards, display links and playlists: what a board shows, and who may open it."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from dashboard.access import visible_boards
from metrics import live
from metrics.models import Board, DisplayLink, Playlist, Tile

Access = tuple[set[str] | None, list[str]]


def board_group(board_id: int) -> str:
    return f"board.{board_id}"


def only_metrics(snapshot: dict[str, Any], metric_ids: set[str] | None) -> dict[str, Any]:
    """The part of a snapshot about `metric_ids` (all of it for None)."""
    if metric_ids is None:
        return snapshot
    return {
        **snapshot,
        "metrics": [m for m in snapshot["metrics"] if m["metric_id"] in metric_ids],
        "records": [r for r in snapshot["records"] if r["metric_id"] in metric_ids],
        "agents": {},  # boards do not need agent ids
    }


def tile_config(tile: Tile) -> dict[str, Any]:
    return {
        "id": tile.pk,
        "kind": tile.kind,
        "metric_id": tile.metric.metric_id,
        "category": tile.category,
        "title": tile.title or tile.metric.name or tile.metric.metric_id,
        "format": tile.format,
        "width": tile.width,
        "height": tile.height,
        "direction": tile.direction,
        "warning": tile.warning,
        "critical": tile.critical,
        "targets": tile.targets,
        "trend_hours": tile.trend_hours,
    }


def board_config(board: Board, seconds: int | None = None) -> dict[str, Any]:
    """Everything a browser needs to draw the board (no secrets, no other boards)."""
    tiles = board.tiles.select_related("metric")
    return {
        "id": board.pk,
        "name": board.name,
        "title": board.title or board.name,
        "theme": board.theme,
        "columns": board.columns,
        "seconds": seconds,
        "tiles": [tile_config(tile) for tile in tiles],
    }


def _access(boards: list[Board], extra_groups: list[str]) -> Access:
    metric_ids = set(
        Tile.objects.filter(board__in=boards).values_list("metric__metric_id", flat=True)
    )
    groups = [live.metric_group(m) for m in sorted(metric_ids)]
    return metric_ids, groups + [board_group(b.pk) for b in boards] + extra_groups


def board_access(user, slug: str) -> Access | None:
    """A board's metrics and groups, for a user allowed to see it (None otherwise)."""
    board = visible_boards(user).filter(slug=slug).first()
    return None if board is None else _access([board], [])


# --- display links -----------------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(link: DisplayLink) -> str:
    """Gives the link a new token and returns it (shown once: only the hash is kept)."""
    token = secrets.token_urlsafe(32)
    link.token_hash = _hash(token)
    return token


def create_display_link(
    name: str, board: Board | None = None, playlist: Playlist | None = None
) -> tuple[DisplayLink, str]:
    link = DisplayLink(name=name, board=board, playlist=playlist)
    token = issue_token(link)
    link.full_clean()
    link.save()
    return link, token


def find_display_link(token: str) -> DisplayLink | None:
    if not token or len(token) > 100:
        return None
    link = DisplayLink.objects.filter(token_hash=_hash(token), revoked_at=None).first()
    return link


def display_boards(link: DisplayLink) -> list[tuple[Board, int | None]]:
    """The boards a link opens, with how long each is shown (None: a single board)."""
    if link.board is not None:
        return [(link.board, None)]
    items = link.playlist.items.select_related("board")
    return [(item.board, item.seconds) for item in items]


def display_access(token: str) -> tuple[DisplayLink, Access] | None:
    """A display link and its metrics and groups (None for an unknown or revoked link)."""
    link = find_display_link(token)
    if link is None:
        return None
    return link, _access([board for board, _ in display_boards(link)], [link.group])


def mark_seen(link: DisplayLink) -> None:
    """Notes when a TV last connected with the link (the admin shows it)."""
    DisplayLink.objects.filter(pk=link.pk).update(last_seen_at=timezone.now())


def revoke_display_link(link: DisplayLink) -> None:
    """Revokes the link and disconnects every screen using it, at once."""
    link.revoked_at = timezone.now()
    link.save(update_fields=["revoked_at"])
    async_to_sync(get_channel_layer().group_send)(link.group, {"type": "display.revoked"})


# --- tell open boards when their configuration changes ------------------------------------------


@receiver([post_save, post_delete], sender=Board)
@receiver([post_save, post_delete], sender=Tile)
def _board_changed(sender, instance, **kwargs) -> None:
    board_id = instance.pk if sender is Board else instance.board_id
    async_to_sync(get_channel_layer().group_send)(board_group(board_id), {"type": "board.changed"})
