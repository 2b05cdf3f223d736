"""Who may see what. Checked on every page, JSON endpoint and websocket, not only in menus.

- staff (admins) see everything;
- a team's supervisors see its queues and agents live (All metrics, scoped) and its boards;
- a team's viewers see its boards only;
- anyone else sees nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from metrics.models import Board, Metric, Playlist, Team

NO_LIVE_DATA = "No team of yours has queues or agents to show."


@dataclass(frozen=True)
class Scope:
    """The category values a user may see live; None means all of them."""

    categories: frozenset[str] | None

    def allows(self, category: str) -> bool:
        return self.categories is None or category in self.categories

    def keeps(self, record: dict[str, Any]) -> bool:
        """Whether a live record is for this scope (the filter of metrics.fanout's frames)."""
        return self.allows(record["category"])

    def within(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        """The part of a snapshot this scope allows: its categories of every metric."""
        if self.categories is None:
            return snapshot
        metrics = []
        for metric in snapshot["metrics"]:
            categories = [c for c in metric["categories"] if self.allows(c)]
            if categories:
                metrics.append({**metric, "categories": categories})
        kept = {m["metric_id"] for m in metrics}
        return {
            **snapshot,
            "metrics": metrics,
            "records": [r for r in snapshot["records"] if r["metric_id"] in kept and self.keeps(r)],
            "agents": {k: v for k, v in snapshot.get("agents", {}).items() if self.allows(k)},
        }

    def allows_metric(self, metric: Metric) -> bool:
        """True when the metric has a category this scope sees (a metric without categories
        only for those who see everything)."""
        return self.categories is None or bool(set(metric.categories) & self.categories)


def user_group(user_id: int) -> str:
    """The channel group of a user's sockets, told to check their access again when it may have
    been taken away (dashboard.signals)."""
    return f"access.user.{user_id}"


def live_scope(user) -> Scope | None:
    """The live data a user may see on the All-metrics board; None: not even the board."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_staff:
        return Scope(None)
    categories: set[str] = set()
    for team in Team.objects.filter(supervisors=user):
        categories.update(team.queues)
        categories.update(team.agents)
    return Scope(frozenset(categories)) if categories else None


def require_live_scope(user) -> Scope:
    """The user's live scope, or 403 with the one explanation every page gives."""
    scope = live_scope(user)
    if scope is None:
        raise PermissionDenied(NO_LIVE_DATA)
    return scope


def visible_metrics(scope: Scope) -> QuerySet[Metric]:
    """The catalog's metrics a scope sees some category of."""
    metrics = Metric.objects.filter(in_catalog=True)
    if scope.categories is None:
        return metrics
    return metrics.filter(pk__in=[m.pk for m in metrics if scope.allows_metric(m)])


def visible_boards(user) -> QuerySet[Board]:
    if user is None or not user.is_authenticated or not user.is_active:
        return Board.objects.none()
    if user.is_staff:
        return Board.objects.all()
    return Board.objects.filter(Q(teams__supervisors=user) | Q(teams__viewers=user)).distinct()


# --- who may edit boards (the designer) --------------------------------------------------------


def editable_teams(user) -> QuerySet[Team]:
    """The teams a user may share a board with: every team for staff, the teams they supervise
    for a supervisor, none for anyone else."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Team.objects.none()
    if user.is_staff:
        return Team.objects.all()
    return Team.objects.filter(supervisors=user)


def may_design(user) -> bool:
    """Whether the designer is for this user at all: staff, and supervisors of some team."""
    if user is not None and user.is_authenticated and user.is_active and user.is_staff:
        return True
    return editable_teams(user).exists()


def editable_boards(user) -> QuerySet[Board]:
    """The boards a user may change: staff every board; a supervisor the boards shared with at
    least one team and only with teams they supervise. A board also shared with a team they do
    not supervise is not theirs: their tiles would show their queues to that team's viewers, and
    that team's supervisor would see their board change under them."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Board.objects.none()
    if user.is_staff:
        return Board.objects.all()
    others = Team.objects.exclude(supervisors=user)
    return Board.objects.filter(teams__supervisors=user).exclude(teams__in=others).distinct()


def may_edit(user, board: Board) -> bool:
    return editable_boards(user).filter(pk=board.pk).exists()


def editable_playlists(user) -> QuerySet[Playlist]:
    """Staff edit every playlist; a supervisor the playlists they made (of boards they see)."""
    if not may_design(user):
        return Playlist.objects.none()
    if user.is_staff:
        return Playlist.objects.all()
    return Playlist.objects.filter(owner=user)


def may_design_widgets(user) -> bool:
    """Widgets are public: what they show and who may embed them is an administrator's call
    (staff), as is marking a metric public in the first place."""
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)
