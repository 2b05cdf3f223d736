"""Pure: turn parsed upstream values into the tile records kept in Redis and sent to browsers."""

from __future__ import annotations

from typing import Any

from metrics.acr.values import (
    Initializing,
    MetricValue,
    UnsupportedValue,
    value_at,
    value_from_wire,
    value_to_wire,
)

# upstream_ms of a record without a value: below any real timestamp (live.py's write script
# lets it replace a value without taking that value's place in time).
NO_VALUE = -1


def tile_category(metric: dict[str, Any] | None, category: str) -> str:
    """The tile's category. For category type NONE the docs leave categoryValue open (null, "",
    or perhaps the metric name), so every such value maps to the one tile with category ""."""
    if metric is not None and metric["category_type"] == "NONE":
        return ""
    return category


def tile_categories(metric: dict[str, Any]) -> list[str]:
    if metric["category_type"] == "NONE" or not metric["categories"]:
        return [""]
    return list(metric["categories"])


def value_records(
    values: list[MetricValue], catalog: dict[str, dict[str, Any]], *, source: str, now_ms: int
) -> list[dict[str, Any]]:
    records = []
    for item in values:
        unsupported = isinstance(item.value, UnsupportedValue)
        records.append(
            {
                "metric_id": item.metric_id,
                "category": tile_category(catalog.get(item.metric_id), item.category),
                "state": "error" if unsupported else "live",
                "value": value_to_wire(item.value),
                "error": f"unsupported value type {item.value.type_name}" if unsupported else "",
                "upstream_ms": item.value.last_update_ms or 0,
                "source": source,
                "received_ms": now_ms,
            }
        )
    return records


def _empty_record(metric_id: str, category: str, state: str, error: str, now_ms: int) -> dict:
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
) -> list[dict[str, Any]]:
    """One record per tile the upstream is still preparing (a bare id means all its tiles)."""
    records = []
    for item in items:
        metric = catalog.get(item.metric_id)
        if metric is None:
            continue
        if item.category is None:
            categories = tile_categories(metric)
        else:
            categories = [tile_category(metric, item.category)]
        for category in categories:
            records.append(_empty_record(item.metric_id, category, "initializing", "", now_ms))
    return records


def rejected_records(
    rejected: dict[str, str], catalog: dict[str, dict[str, Any]], *, now_ms: int
) -> list[dict[str, Any]]:
    return [
        _empty_record(metric_id, category, "error", reason, now_ms)
        for metric_id, reason in rejected.items()
        if metric_id in catalog
        for category in tile_categories(catalog[metric_id])
    ]


def sample_values(tiles: list[dict[str, Any]], *, upstream_at_ms: int) -> list[tuple]:
    """(metric_id, category, value) for every live tile with a value, valued at upstream_at_ms.
    A value with no number (an average over zero calls) is kept as None, not 0."""
    rows = []
    for tile in tiles:
        wire = tile.get("value")
        if tile.get("state") != "live" or not wire or wire["type"] == "UNSUPPORTED":
            continue
        rows.append(
            (
                tile["metric_id"],
                tile["category"],
                value_at(value_from_wire(wire), at_ms=upstream_at_ms),
            )
        )
    return rows
