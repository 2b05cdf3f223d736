"""History for charts and CSV: samples of the tiles a user may see, over a time range, reduced
for drawing so that a day of one-second samples stays quick to render."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from metrics.access import Scope
from metrics.models import Sample

# Points per series sent to a chart: more than a screen has pixels gains nothing.
MAX_POINTS = 1200


def reduce_points(times: list[int], values: list[float | None], buckets: int) -> tuple[list, list]:
    """Keeps the first, minimum and maximum of each time bucket, so peaks survive reduction."""
    if len(times) <= buckets * 3:
        return times, values
    start, end = times[0], times[-1]
    width = (end - start) / buckets or 1
    out_t: list[int] = []
    out_v: list[float | None] = []
    bucket: list[tuple[int, float | None]] = []
    current = 0
    for t, v in zip(times, values, strict=True):
        index = min(int((t - start) / width), buckets - 1)
        if index != current and bucket:
            _flush(bucket, out_t, out_v)
            bucket = []
        current = index
        bucket.append((t, v))
    if bucket:
        _flush(bucket, out_t, out_v)
    return out_t, out_v


def _flush(bucket, out_t, out_v) -> None:
    numbers = [(t, v) for t, v in bucket if v is not None]
    chosen = {bucket[0]}
    if numbers:
        chosen.add(min(numbers, key=lambda p: p[1]))
        chosen.add(max(numbers, key=lambda p: p[1]))
    for t, v in sorted(chosen, key=lambda p: p[0]):
        out_t.append(t)
        out_v.append(v)


def samples(metric_id: str, scope: Scope, start: datetime, end: datetime):
    query = Sample.objects.filter(metric_id=metric_id, at__gte=start, at__lt=end)
    if scope.categories is not None:
        query = query.filter(category__in=scope.categories)
    return query.order_by("category", "at").values_list("category", "at", "value")


def series(metric_id: str, scope: Scope, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """One series per category: {"category", "t": [epoch ms], "v": [value or null]}."""
    grouped: dict[str, tuple[list, list]] = {}
    for category, at, value in samples(metric_id, scope, start, end).iterator(chunk_size=5000):
        times, values = grouped.setdefault(category, ([], []))
        times.append(int(at.timestamp() * 1000))
        values.append(value)
    out = []
    for category, (times, values) in sorted(grouped.items()):
        t, v = reduce_points(times, values, MAX_POINTS // 3)
        out.append({"category": category, "t": t, "v": v})
    return out


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
