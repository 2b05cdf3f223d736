"""Boards, display links and playlists: what a board shows, and who may open it."""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from dashboard.access import visible_boards
from metrics import live
from metrics.models import Board, DisplayLink, Playlist, Tile


@dataclass(frozen=True)
class Shown:
    """The live records a board's tiles show (or a display's boards'), and nothing else: a value
    or trend tile shows its one (metric, category); a breakdown tile its chosen categories, or
    every category of its metric when none are chosen (board.js draws a row for each record of
    the metric it is sent: a queue metric's breakdown shows every queue, by the admin's choice
    of tile; the designer makes a supervisor choose their own). A metric no tile shows, and the
    categories of a metric that only value tiles show, are never sent.

    Hashable and compared by value: the sockets of one board share their frames
    (metrics.fanout builds each once per burst for every distinct filter)."""

    records: frozenset[tuple[str, str]]  # (metric id, category) of value and trend tiles
    whole: frozenset[str]  # metric ids shown with every category (breakdowns)

    @property
    def metric_ids(self) -> set[str]:
        return {metric_id for metric_id, _ in self.records} | self.whole

    def allows(self, metric_id: str, category: str) -> bool:
        return metric_id in self.whole or (metric_id, category) in self.records

    def keeps(self, record: dict[str, Any]) -> bool:
        """Whether a live record is shown (the filter of metrics.fanout's frames)."""
        return self.allows(record["metric_id"], record["category"])

    def within(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        """The part of a snapshot the tiles show (the catalog's categories too)."""
        metric_ids = self.metric_ids
        metrics = [
            {**m, "categories": [c for c in m["categories"] if self.allows(m["metric_id"], c)]}
            for m in snapshot["metrics"]
            if m["metric_id"] in metric_ids
        ]
        return {
            **snapshot,
            "metrics": metrics,
            "records": [r for r in snapshot["records"] if self.keeps(r)],
            "agents": {},  # boards do not need agent ids
        }


Access = tuple[Shown, list[str]]


def board_group(board_id: int) -> str:
    return f"board.{board_id}"


def tile_config(tile: Tile) -> dict[str, Any]:
    return {
        "id": tile.pk,
        "kind": tile.kind,
        "metric_id": tile.metric.metric_id,
        "category": tile.category,
        "categories": tile.categories,
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
    tiles = Tile.objects.filter(board__in=boards).values_list(
        "kind", "metric__metric_id", "category", "categories"
    )
    records: set[tuple[str, str]] = set()
    whole: set[str] = set()
    for kind, metric_id, category, categories in tiles:
        if kind != "breakdown":
            records.add((metric_id, category))
        elif categories:  # a breakdown of chosen categories: those alone
            records.update((metric_id, c) for c in categories)
        else:
            whole.add(metric_id)
    shown = Shown(records=frozenset(records), whole=frozenset(whole))
    groups = [live.metric_group(m) for m in sorted(shown.metric_ids)]
    return shown, groups + [board_group(b.pk) for b in boards] + extra_groups


@functools.lru_cache(maxsize=1024)
def _one_shown(records: frozenset[tuple[str, str]], whole: frozenset[str]) -> Shown:
    """One object per distinct set of tiles: metrics.fanout finds the frame that a board's
    sockets share by identity, where comparing their sets for each socket cost the fan-out
    half as much again (1,000 TVs on a 16-tile board)."""
    return Shown(records, whole)


def board_access(user, slug: str) -> Access | None:
    """What a board shows and its groups, for a user allowed to see it (None otherwise)."""
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
    name: str, board: Board | None = None, playlist: Playlist | None = None, created_by=None
) -> tuple[DisplayLink, str]:
    link = DisplayLink(name=name, board=board, playlist=playlist, created_by=created_by)
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
    """A display link, what its boards show and their groups (None for an unknown or revoked
    link)."""
    link = find_display_link(token)
    if link is None:
        return None
    return link, _access([board for board, _ in display_boards(link)], [link.group])


def mark_seen(link: DisplayLink) -> None:
    """Notes when a TV last connected with the link (the admin shows it)."""
    DisplayLink.objects.filter(pk=link.pk).update(last_seen_at=timezone.now())


def revoke_display_link(link: DisplayLink) -> None:
    """Revokes the link; its screens go dark at once. (The save tells their sockets, once it is
    committed, through dashboard.signals: they check the link again, and are told "revoked".)"""
    link.revoked_at = timezone.now()
    link.save(update_fields=["revoked_at"])
