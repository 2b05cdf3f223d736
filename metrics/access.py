"""Who may see what. Checked on every page, JSON endpoint and websocket, not only in menus.

- staff (admins) see everything;
- a team's supervisors see its queues and agents live (All metrics, scoped) and its boards;
- a team's viewers see its boards only;
- anyone else sees nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from metrics.models import Board, Team


@dataclass(frozen=True)
class Scope:
    """The category values a user may see live; None means all of them."""

    categories: frozenset[str] | None

    def allows(self, category: str) -> bool:
        return self.categories is None or category in self.categories


def live_scope(user) -> Scope | None:
    """The live data a user may see on the All-metrics board; None: not even the board."""
    if user is None or not user.is_authenticated:
        return None
    if user.is_staff:
        return Scope(None)
    categories: set[str] = set()
    for team in Team.objects.filter(supervisors=user):
        categories.update(team.queues)
        categories.update(team.agents)
    return Scope(frozenset(categories)) if categories else None


def visible_boards(user) -> QuerySet[Board]:
    if user is None or not user.is_authenticated:
        return Board.objects.none()
    if user.is_staff:
        return Board.objects.all()
    return Board.objects.filter(Q(teams__supervisors=user) | Q(teams__viewers=user)).distinct()


def within_scope(snapshot: dict[str, Any], scope: Scope) -> dict[str, Any]:
    """The part of a snapshot a scope allows: its categories of every metric."""
    if scope.categories is None:
        return snapshot
    metrics = []
    for metric in snapshot["metrics"]:
        categories = [c for c in metric["categories"] if scope.allows(c)]
        if categories:
            metrics.append({**metric, "categories": categories})
    kept = {m["metric_id"] for m in metrics}
    return {
        **snapshot,
        "metrics": metrics,
        "tiles": [
            t for t in snapshot["tiles"] if t["metric_id"] in kept and scope.allows(t["category"])
        ],
        "mseq": {k: v for k, v in snapshot["mseq"].items() if k in kept},
        "agents": {k: v for k, v in snapshot.get("agents", {}).items() if scope.allows(k)},
    }
