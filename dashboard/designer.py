"""The board designer's rules: the catalog a user may pick from, and the checking and saving
of a board as the designer sends it (never trusting the browser)."""

from __future__ import annotations

from typing import Any

from dashboard.access import Scope, visible_metrics


def catalog(scope: Scope) -> dict[str, Any]:
    """The metrics and categories a scope may put on a board, as the upstream lists them
    (static/metrics/picker.js fills its selects from this)."""
    metrics = []
    for metric in visible_metrics(scope):
        categories = [c for c in metric.categories if scope.allows(c)]
        metrics.append(
            {
                "metric_id": metric.metric_id,
                "name": metric.name or metric.metric_id,
                "category_type": metric.category_type,
                "categories": sorted(categories, key=str.casefold),
            }
        )
    return {"metrics": metrics}
