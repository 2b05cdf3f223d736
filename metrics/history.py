"""History for charts and CSV: samples of the tiles a user may see, over a time range, reduced
for drawing so that a day of one-second samples stays quick to render."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from django.db.models import F, Max, Min

from metrics.access import Scope
from metrics.models import Sample

# Time buckets per series sent to a chart (each gives its minimum and maximum, so peaks survive):
# more than a screen has pixels gains nothing.
BUCKETS = 600


def samples(metric_id: str, scope: Scope, start: datetime, end: datetime):
    query = Sample.objects.filter(metric_id=metric_id, at__gte=start, at__lt=end)
    if scope.categories is not None:
        query = query.filter(category__in=scope.categories)
    return query.order_by("category", "at").values_list("category", "at", "value")


def series(metric_id: str, scope: Scope, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """One series per category: {"category", "t": [epoch ms], "v": [value or null]}, reduced in
    the database to the minimum and maximum of each of BUCKETS time buckets."""
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    width = max(1, -(-(end_ms - start_ms) // BUCKETS))  # rounded up: at most BUCKETS buckets
    query = Sample.objects.filter(metric_id=metric_id, at_ms__gte=start_ms, at_ms__lt=end_ms)
    if scope.categories is not None:
        query = query.filter(category__in=scope.categories)
    rows = (
        query.annotate(bucket=(F("at_ms") - start_ms) / width)  # integer division, in SQL
        .values("category", "bucket")
        .annotate(low=Min("value"), high=Max("value"), first=Min("at_ms"), last=Max("at_ms"))
        .order_by("category", "bucket")
    )
    grouped: dict[str, tuple[list, list]] = {}
    for row in rows:
        times, values = grouped.setdefault(row["category"], ([], []))
        times.append(row["first"])
        values.append(row["low"])
        if row["high"] != row["low"]:
            times.append(row["last"])
            values.append(row["high"])
    return [{"category": c, "t": t, "v": v} for c, (t, v) in sorted(grouped.items())]


def as_csv(metric_id: str, scope: Scope, start: datetime, end: datetime) -> str:
    """Every sample (not reduced), one row each; durations in milliseconds."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["time_utc", "metric_id", "category", "value"])
    for category, at, value in samples(metric_id, scope, start, end).iterator(chunk_size=5000):
        # A leading =, +, - or @ would make a spreadsheet run the cell as a formula.
        safe = "'" + category if category[:1] in ("=", "+", "-", "@") else category
        writer.writerow([at.isoformat(), metric_id, safe, "" if value is None else value])
    return buffer.getvalue()
