"""History: live records sampled into the database, rolled up per minute, pruned; and read back
for charts and CSV (the categories a caller may see, over a time range, reduced for drawing so
that a day of one-second samples stays quick to render).

Readers take `categories`: the category values to include, None for all of them (the screens
decide what a person may see and pass it in).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import F, Max, Min, Q
from django.utils import timezone

from metrics import health, live, records
from metrics.acr import clock
from metrics.models import Sample, SampleMinute

Categories = frozenset[str] | None

# Time buckets per series sent to a chart (each gives its minimum and maximum, so peaks survive):
# more than a screen has pixels gains nothing.
BUCKETS = 600


MINUTE_MS = 60_000
# Ranges at least this long are read from the per-minute rollup (then a bucket is whole minutes);
# shorter ones from the samples themselves, at most 2 h x 3,600 rows per series.
ROLLUP_FROM_MS = 2 * 3600 * 1000
# Each run of roll_up recomputes this many minutes before the newest rolled-up one, so that a
# sample written a little late (a delayed sampling task) still reaches its minute.
REROLL_MS = 5 * MINUTE_MS
# One run rolls up at most this much (a backlog after an upgrade or an outage is caught up in
# steps rather than in one long transaction).
ROLL_STEP_MS = 6 * 3600 * 1000


# Sample's columns as _bucketed takes them: time, lowest, highest, first and last time.
RAW = ("at_ms", "value", "value", "at_ms", "at_ms")


def _bucketed(
    query,
    origin_ms: int,
    width: int,
    time: str,
    low: str,
    high: str,
    first: str,
    last: str,
    by: tuple[str, ...] = ("category",),
):
    """Rows of (*by, bucket, low, high, first, last), reduced in SQL with integer division."""
    return (
        query.annotate(bucket=(F(time) - origin_ms) / width)
        .values(*by, "bucket")
        .annotate(low=Min(low), high=Max(high), first=Min(first), last=Max(last))
        .order_by()
    )


# --- sampling ----------------------------------------------------------------------------------


def save_samples(rows: list[tuple], at: datetime) -> int:
    """Writes one batch; a sample already written for that moment (a retried task) is skipped."""
    samples = [Sample.of(m, c, at, v) for m, c, v in rows]
    Sample.objects.bulk_create(samples, ignore_conflicts=True, batch_size=500)
    return len(samples)


async def record_samples() -> int:
    """Samples every live record at the current sampling moment; nothing while the data is
    stale, so a chart shows a gap rather than a frozen number."""
    interval_ms = int(settings.ACR_SAMPLE_SECONDS * 1000)
    now = clock.now_ms()
    moment = now - now % interval_ms
    snapshot = await live.read_snapshot()
    status = snapshot["status"]
    if health.is_stale(status, now_ms=now):
        return 0
    rows = records.sample_values(
        snapshot["records"], upstream_at_ms=moment + status["upstream_offset_ms"]
    )
    return await sync_to_async(save_samples)(rows, _moment(moment))


def prune_samples() -> int:
    """Deletes samples (and their per-minute rollups) older than the retention period, and
    nothing else."""
    cutoff = timezone.now() - timedelta(days=settings.ACR_HISTORY_DAYS)
    deleted, _ = Sample.objects.filter(at__lt=cutoff).delete()
    cutoff_ms = int(cutoff.timestamp() * 1000)
    SampleMinute.objects.filter(minute_ms__lt=cutoff_ms - cutoff_ms % 60_000).delete()
    return deleted


# --- rollups -------------------------------------------------------------------------------------


def rolled_up_until() -> int:
    """Epoch ms up to which SampleMinute is complete (0: nothing rolled up yet)."""
    newest = SampleMinute.objects.aggregate(newest=Max("minute_ms"))["newest"]
    return 0 if newest is None else newest + MINUTE_MS


def series(
    metric_id: str, categories: Categories, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """One series per category: {"category", "t": [epoch ms], "v": [value or null]}, reduced in
    the database to the minimum and maximum of each of at most BUCKETS time buckets."""
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    samples = Sample.objects.filter(metric_id=metric_id)
    minutes = SampleMinute.objects.filter(metric_id=metric_id)
    if categories is not None:
        samples = samples.filter(category__in=categories)
        minutes = minutes.filter(category__in=categories)
    if end_ms - start_ms < ROLLUP_FROM_MS:
        width = max(1, -(-(end_ms - start_ms) // BUCKETS))  # rounded up: at most BUCKETS
        origin = start_ms
        parts = [
            _bucketed(samples.filter(at_ms__gte=start_ms, at_ms__lt=end_ms), origin, width, *RAW)
        ]
    else:
        # Buckets of whole minutes, from the minute `start` falls in: a minute is never split.
        width = -(-(end_ms - start_ms) // (BUCKETS * MINUTE_MS)) * MINUTE_MS
        origin = start_ms - start_ms % MINUTE_MS
        until = max(origin, min(rolled_up_until(), end_ms))
        rolled = minutes.filter(minute_ms__gte=origin, minute_ms__lt=until)
        recent = samples.filter(at_ms__gte=until, at_ms__lt=end_ms)
        parts = [
            _bucketed(rolled, origin, width, "minute_ms", "low", "high", "first_ms", "last_ms"),
            _bucketed(recent, origin, width, *RAW),
        ]
    buckets: dict[tuple[str, int], dict[str, Any]] = {}
    for part in parts:
        for row in part:
            key = (row["category"], row["bucket"])
            seen = buckets.setdefault(key, row)
            if seen is not row:  # the same bucket from the rollup and the recent samples
                seen["low"] = _least(seen["low"], row["low"])
                seen["high"] = _greatest(seen["high"], row["high"])
                seen["first"], seen["last"] = (
                    min(seen["first"], row["first"]),
                    max(seen["last"], row["last"]),
                )
    grouped: dict[str, tuple[list, list]] = {}
    for (category, _), row in sorted(buckets.items()):
        times, values = grouped.setdefault(category, ([], []))
        times.append(row["first"])
        values.append(row["low"])
        if row["high"] != row["low"]:
            times.append(row["last"])
            values.append(row["high"])
    return [{"category": c, "t": t, "v": v} for c, (t, v) in grouped.items()]


async def unit(metric_id: str, category_type: str, categories: list[str]) -> str:
    """ "ms" when the metric's numbers are durations, else "count". Samples keep only numbers;
    the value type lives in the metric's live records (the upstream gives a metric one type), so
    it is read from them. A metric with no live record left reads as "count": plain numbers."""
    metric = {"category_type": category_type, "categories": categories}
    fields = [live.record_field(metric_id, c) for c in records.record_categories(metric)]
    found, _ = await live.read_for_widget(fields)
    return "ms" if any(records.is_duration(record) for record in found) else "count"


def _least(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _greatest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def roll_up(now_ms: int) -> int:
    """Rolls complete minutes of samples up into SampleMinute: from a little before the last
    rolled-up minute (or the oldest sample) up to the current minute, at most ROLL_STEP_MS per
    call. Idempotent: a minute rolled up again is overwritten. Returns the rows written."""
    # From a little before the newest rolled-up minute, up to one step past the first sample
    # after it: a gap (the system was off) longer than a step must not stall the rollup.
    done = rolled_up_until()
    first = Sample.objects.filter(at__gte=_moment(done)).aggregate(first=Min("at"))["first"]
    if first is None:
        until = done  # nothing new: only the re-rolled minutes
    else:
        first_ms = int(first.timestamp() * 1000)
        until = first_ms - first_ms % MINUTE_MS + ROLL_STEP_MS
    since = max(0, done - REROLL_MS) if done else until - ROLL_STEP_MS
    until = min(until, now_ms - now_ms % MINUTE_MS)
    if until <= since:
        return 0
    in_range = Sample.objects.filter(at__gte=_moment(since), at__lt=_moment(until))  # `at` index
    rows = _bucketed(in_range, since, MINUTE_MS, *RAW, by=("metric_id", "category"))
    rolled = [
        SampleMinute(
            metric_id=row["metric_id"],
            category=row["category"],
            minute_ms=since + row["bucket"] * MINUTE_MS,
            low=row["low"],
            high=row["high"],
            first_ms=row["first"],
            last_ms=row["last"],
        )
        for row in rows
    ]
    SampleMinute.objects.bulk_create(
        rolled,
        batch_size=500,
        update_conflicts=True,
        unique_fields=["metric_id", "category", "minute_ms"],
        update_fields=["low", "high", "first_ms", "last_ms"],
    )
    return len(rolled)


CSV_CHUNK = 5000  # rows read (and sent) at a time


async def csv_chunks(metric_id: str, categories: Categories, start: datetime, end: datetime):
    """Every sample (not reduced), one row each, durations in milliseconds, oldest first: an
    async iterator of CSV text, read in chunks so that a month of samples is never held in
    memory at once (Django's ASGI handler would collect a synchronous iterator first). Times are
    ISO 8601 in the site's zone, each with its offset (it changes with daylight saving)."""
    yield _csv_text([["time", "metric_id", "category", "value"]])
    after: tuple[int, int] | None = None
    while True:
        rows = await sync_to_async(_csv_chunk)(metric_id, categories, start, end, after)
        if not rows:
            return
        yield _csv_text(
            [
                timezone.localtime(at).isoformat(),
                _text_cell(metric_id),
                _text_cell(category),
                _cell(value),
            ]
            for _, _, category, at, value in rows
        )
        after = (rows[-1][0], rows[-1][1])


def _time_cell(at: datetime) -> str:
    return timezone.localtime(at).isoformat()


def _csv_chunk(metric_id, categories, start, end, after) -> list[tuple]:
    query = Sample.objects.filter(
        metric_id=metric_id,
        at_ms__gte=int(start.timestamp() * 1000),
        at_ms__lt=int(end.timestamp() * 1000),
    )
    if categories is not None:
        query = query.filter(category__in=categories)
    if after is not None:  # keyset paging: cheap at any depth
        query = query.filter(Q(at_ms__gt=after[0]) | Q(at_ms=after[0], id__gt=after[1]))
    ordered = query.order_by("at_ms", "id")
    return list(ordered.values_list("at_ms", "id", "category", "at", "value")[:CSV_CHUNK])


def _csv_text(rows) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


# A cell starting with one of these is run as a formula by some spreadsheet (OWASP's list: a
# tab or carriage return may come before the formula itself).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text_cell(text: str) -> str:
    """A text from the upstream as a cell no spreadsheet runs: a leading quote when it would."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _moment(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)


def _cell(value: float | None) -> str | int | float:
    """A count as 7, not 7.0 (samples are stored as floats); no number as an empty cell."""
    if value is None:
        return ""
    return int(value) if value.is_integer() else value
