"""Pure: turn parsed upstream values into the live records kept in Redis and sent to browsers,
and read a record's number.

Words: a *record* is the live state of one (metric, category): its state, its value on the wire,
its error. A *tile* is an element of a board (models.Tile) that shows one or more records.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from metrics.acr.values import (
    Initializing,
    MetricValue,
    UnsupportedValue,
    value_at,
    value_from_wire,
    value_to_wire,
)

State = Literal["live", "initializing", "error"]


class Record(TypedDict):
    """One (metric, category)'s live state, as stored and as browsers receive it."""

    metric_id: str
    category: str  # "" for category type NONE
    state: State
    value: dict[str, Any] | None  # acr.values.value_to_wire, or None while there is none
    error: str
    upstream_ms: int  # orders the records of one (metric, category); NO_VALUE without a value
    source: Literal["poll", "websocket"]
    received_ms: int  # our clock
    seq: NotRequired[int]  # set by the live store on every accepted write
    rseq: NotRequired[int]  # the sequence of this (metric, category)'s writes


# upstream_ms of a record without a value: below any real timestamp, so a poll reply without a
# value never replaces a value that arrived while it was in flight (live._WRITE_SCRIPT).
NO_VALUE = -1


def record_category(metric: dict[str, Any] | None, category: str) -> str:
    """The record's category. For category type NONE the docs leave categoryValue open (null,
    "", or perhaps the metric name), so every such value maps to the one record with category
    ""."""
    if metric is not None and metric["category_type"] == "NONE":
        return ""
    return category


def record_categories(metric: dict[str, Any]) -> list[str]:
    if metric["category_type"] == "NONE" or not metric["categories"]:
        return [""]
    return list(metric["categories"])


def value_records(
    values: list[MetricValue], catalog: dict[str, dict[str, Any]], *, source: str, now_ms: int
) -> list[Record]:
    records = []
    for item in values:
        unsupported = isinstance(item.value, UnsupportedValue)
        records.append(
            {
                "metric_id": item.metric_id,
                "category": record_category(catalog.get(item.metric_id), item.category),
                "state": "error" if unsupported else "live",
                "value": value_to_wire(item.value),
                "error": f"unsupported value type {item.value.type_name}" if unsupported else "",
                "upstream_ms": item.value.last_update_ms or 0,
                "source": source,
                "received_ms": now_ms,
            }
        )
    return records


def _empty_record(metric_id: str, category: str, state: State, error: str, now_ms: int) -> Record:
    return {
        "metric_id": metric_id,
        "category": category,
        "state": state,
        "value": None,
        "error": error,
        "upstream_ms": NO_VALUE,
        "source": "poll",
        "received_ms": now_ms,
    }


def initializing_records(
    items: list[Initializing], catalog: dict[str, dict[str, Any]], *, now_ms: int
) -> list[Record]:
    """One record per (metric, category) the upstream is still preparing (a bare id means all of
    the metric's categories)."""
    records = []
    for item in items:
        metric = catalog.get(item.metric_id)
        if metric is None:
            continue
        if item.category is None:
            categories = record_categories(metric)
        else:
            categories = [record_category(metric, item.category)]
        for category in categories:
            records.append(_empty_record(item.metric_id, category, "initializing", "", now_ms))
    return records


def rejected_records(
    rejected: dict[str, str], catalog: dict[str, dict[str, Any]], *, now_ms: int
) -> list[Record]:
    return [
        _empty_record(metric_id, category, "error", reason, now_ms)
        for metric_id, reason in rejected.items()
        if metric_id in catalog
        for category in record_categories(catalog[metric_id])
    ]


def has_value(record: Record | None) -> bool:
    """A live record with a value of a type we can read."""
    return (
        record is not None
        and record.get("state") == "live"
        and bool(record.get("value"))
        and record["value"]["type"] != "UNSUPPORTED"
    )


def record_value(record: Record | None, *, at_ms: int) -> float | None:
    """The number a record shows at `at_ms` (upstream clock): a count, or milliseconds; None
    when it has none to show (not live, no value yet, an unsupported type, an average over zero
    calls). The widget, alerts and history all read a record through this."""
    if not has_value(record):
        return None
    return value_at(value_from_wire(record["value"]), at_ms=at_ms)


def is_duration(record: Record | None) -> bool:
    """True when the record's number is milliseconds rather than a count."""
    value = (record or {}).get("value") or {}
    return value.get("type") in ("DURATION", "AVERAGE_DURATION")


def sample_values(records: list[Record], *, upstream_at_ms: int) -> list[tuple]:
    """(metric_id, category, value) for every live record with a value, valued at
    upstream_at_ms. A value with no number (an average over zero calls) is kept as None, not 0."""
    return [
        (record["metric_id"], record["category"], record_value(record, at_ms=upstream_at_ms))
        for record in records
        if has_value(record)
    ]
