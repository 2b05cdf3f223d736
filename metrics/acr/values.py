"""Pure parsing of the upstream's JSON into typed values, and the documented value formulas.

Nothing here does I/O or reads the clock: every function that needs "now" takes it as `at_ms`
(milliseconds since the epoch, on the upstream's clock).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any


class PayloadError(ValueError):
    """The upstream sent something that does not match the documented shape."""


@dataclass(frozen=True)
class CatalogMetric:
    metric_id: str
    name: str
    category_type: str
    categories: tuple[str, ...]


# The value types the docs name. Another name is read by the fields its value carries
# (parse_value), and keeps its own name in `upstream_type` (None: the documented one).
COUNT = "COUNT"
DURATION = "DURATION"
AVERAGE_DURATION = "AVERAGE_DURATION"
DOCUMENTED_TYPES = (COUNT, DURATION, AVERAGE_DURATION)
DURATION_FIELDS = ("finishedDuration", "numCountingUp", "numCountingDown")
# The raw JSON kept of an unsupported value, for the log: enough to see its shape.
RAW_CHARS = 500


@dataclass(frozen=True)
class CountValue:
    count: int
    last_update_ms: int
    upstream_type: str | None = None


@dataclass(frozen=True)
class DurationValue:
    finished_ms: int
    counting_up: int
    counting_down: int
    last_update_ms: int
    upstream_type: str | None = None


@dataclass(frozen=True)
class AverageDurationValue:
    finished_ms: int
    counting_up: int
    counting_down: int
    count: int
    last_update_ms: int
    upstream_type: str | None = None


@dataclass(frozen=True)
class UnsupportedValue:
    """A value with no field we can read a number from; shown as unsupported, not guessed at."""

    type_name: str
    last_update_ms: int | None
    raw: str = ""  # its JSON, cut to RAW_CHARS


Value = CountValue | DurationValue | AverageDurationValue | UnsupportedValue


@dataclass(frozen=True)
class MetricValue:
    metric_id: str
    category: str
    value: Value


@dataclass(frozen=True)
class Initializing:
    """A metric (category None: all of its categories) that the upstream is still preparing."""

    metric_id: str
    category: str | None


@dataclass(frozen=True)
class ValuesResponse:
    results: list[MetricValue]
    initializing: list[Initializing]
    errors: list[str]


# --- formulas -------------------------------------------------------------------------------


def duration_ms(value: DurationValue | AverageDurationValue, *, at_ms: int) -> int:
    """finishedDuration + (numCountingUp - numCountingDown) * (atTime - lastUpdateTime), and 0
    where that falls below 0: a negative wait or talk time never means anything (more counting
    down than up, an upstream clock ahead of ours, a value sent below 0). The one place this
    rule lives: tiles, alerts, history, sorting and the widget all read values through here."""
    running = value.counting_up - value.counting_down
    return max(0, value.finished_ms + running * (at_ms - value.last_update_ms))


def average_ms(value: AverageDurationValue, *, at_ms: int) -> float | None:
    """The duration divided by count; None (no number, never 0) when count is 0."""
    if value.count == 0:
        return None
    return duration_ms(value, at_ms=at_ms) / value.count


def value_at(value: Value, *, at_ms: int) -> float | None:
    """The number a tile shows at `at_ms`: a count, or milliseconds; None when there is none."""
    if isinstance(value, CountValue):
        return value.count
    if isinstance(value, DurationValue):
        return duration_ms(value, at_ms=at_ms)
    if isinstance(value, AverageDurationValue):
        return average_ms(value, at_ms=at_ms)
    return None


# --- field parsers --------------------------------------------------------------------------


def parse_timestamp_ms(raw: Any) -> int:
    """ISO 8601 with an offset, with or without fractional seconds (both are documented).

    A `Z` suffix is not documented but is valid ISO 8601, so it is accepted. A bare number is
    taken as epoch milliseconds, a form some Java servers use. A timestamp without an offset is
    refused: we cannot know which zone the upstream meant.
    """
    if isinstance(raw, bool):
        raise PayloadError(f"timestamp is not a string: {raw!r}")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise PayloadError(f"timestamp is not finite: {raw!r}")
        return int(raw)
    if not isinstance(raw, str):
        raise PayloadError(f"timestamp is not a string: {raw!r}")
    try:
        parsed = datetime.fromisoformat(raw.strip())
    except ValueError as exc:
        raise PayloadError(f"timestamp is not ISO 8601: {raw!r}") from exc
    if parsed.tzinfo is None:
        raise PayloadError(f"timestamp has no UTC offset: {raw!r}")
    return round(parsed.timestamp() * 1000)


def _integer(obj: dict[str, Any], name: str, *, minimum: int | None = None) -> int:
    raw = obj.get(name)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise PayloadError(f"{name} is not a number: {raw!r}")
    if not math.isfinite(raw) or raw != int(raw):
        raise PayloadError(f"{name} is not a whole number: {raw!r}")
    if minimum is not None and raw < minimum:
        raise PayloadError(f"{name} is below {minimum}: {raw!r}")
    return int(raw)


def _text(raw: Any, what: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise PayloadError(f"{what} is not a non-empty string: {raw!r}")
    return raw


def _category(raw: Any) -> str:
    # The docs do not say what categoryValue is for category type NONE: null and a missing
    # field are read as "", the same as an empty string.
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise PayloadError(f"categoryValue is not a string: {raw!r}")
    return raw


# --- payload parsers ------------------------------------------------------------------------


def parse_value(obj: Any) -> Value:
    if not isinstance(obj, dict):
        raise PayloadError(f"value is not an object: {obj!r}")
    kind = obj.get("type")
    if not isinstance(kind, str) or not kind:
        raise PayloadError(f"value has no type: {obj!r}")
    if kind in DOCUMENTED_TYPES:
        return _read_as(kind, obj)
    # The docs speak of "several different types" of values but name only these three, so a
    # real server may send others (e.g. MAX_DURATION for a longest wait): such a value is read by
    # the documented fields it carries, and is unsupported only when it has none we can read.
    shape = _shape(obj)
    if shape is not None:
        try:
            return replace(_read_as(shape, obj), upstream_type=kind)
        except PayloadError:
            pass
    try:
        last = parse_timestamp_ms(obj.get("lastUpdateTime"))
    except PayloadError:
        last = None
    raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)
    return UnsupportedValue(type_name=kind, last_update_ms=last, raw=raw[:RAW_CHARS])


def _shape(obj: dict[str, Any]) -> str | None:
    """The documented type whose fields a value carries: the duration fields and `count` an
    average, the duration fields a duration, `count` alone a count; None for anything else."""
    carried = [name in obj for name in DURATION_FIELDS]
    if all(carried):
        return AVERAGE_DURATION if "count" in obj else DURATION
    if not any(carried) and "count" in obj:
        return COUNT
    return None


def _read_as(kind: str, obj: dict[str, Any]) -> CountValue | DurationValue | AverageDurationValue:
    """A value strictly as the documented type `kind`: every field it is documented with."""
    last_update_ms = parse_timestamp_ms(obj.get("lastUpdateTime"))
    if kind == COUNT:
        return CountValue(_integer(obj, "count", minimum=0), last_update_ms)
    fields = {
        "finished_ms": _integer(obj, "finishedDuration"),
        "counting_up": _integer(obj, "numCountingUp", minimum=0),
        "counting_down": _integer(obj, "numCountingDown", minimum=0),
        "last_update_ms": last_update_ms,
    }
    if kind == DURATION:
        return DurationValue(**fields)
    return AverageDurationValue(count=_integer(obj, "count", minimum=0), **fields)


def parse_metric_value(obj: Any) -> MetricValue:
    """One `{key: {metricId, categoryValue}, value: {...}}` element."""
    if not isinstance(obj, dict) or not isinstance(obj.get("key"), dict):
        raise PayloadError(f"metric value has no key object: {obj!r}")
    key = obj["key"]
    return MetricValue(
        metric_id=_text(key.get("metricId"), "metricId"),
        category=_category(key.get("categoryValue")),
        value=parse_value(obj.get("value")),
    )


def parse_catalog(data: Any) -> list[CatalogMetric]:
    """The `GET /realtime/metrics` array."""
    if not isinstance(data, list):
        raise PayloadError("the metric catalog is not a JSON array")
    metrics = []
    for item in data:
        if not isinstance(item, dict):
            raise PayloadError(f"catalog entry is not an object: {item!r}")
        selection = item.get("categorySelection") or []
        if not isinstance(selection, list) or not all(isinstance(c, str) for c in selection):
            raise PayloadError(f"categorySelection is not a list of strings: {selection!r}")
        kind = item.get("categoryType") or "NONE"
        if not isinstance(kind, str):
            raise PayloadError(f"categoryType is not a string: {kind!r}")
        metrics.append(
            CatalogMetric(
                metric_id=_text(item.get("metricId"), "metricId"),
                name=item.get("metricName") if isinstance(item.get("metricName"), str) else "",
                category_type=kind,
                categories=tuple(dict.fromkeys(selection)),
            )
        )
    return metrics


def parse_initializing_item(item: Any, known_ids: set[str]) -> Initializing:
    """One `initializing` element. The vendor text says it holds metric ids, or for metrics with
    a category selection "a combination of the metric ID and the category value", without saying
    how they are combined. So we accept a bare id, a known id followed by any one separator
    character and a category value (perhaps "", as a NONE metric's), and a `{metricId,
    categoryValue}` object like a result key.

    The longest known id that fits wins, so ids that are prefixes of others are told apart. A
    letter or digit is never a separator: metric ids are made of them ("K0FLAEB6"), so after a
    known id one is more of a longer id, e.g. a metric created since we read the catalog.
    """
    if isinstance(item, dict):
        category = item.get("categoryValue")
        return Initializing(
            metric_id=_text(item.get("metricId"), "metricId"),
            category=None if category is None else _category(category),
        )
    text = _text(item, "initializing item")
    if text in known_ids:
        return Initializing(metric_id=text, category=None)
    for metric_id in sorted(known_ids, key=len, reverse=True):
        separator = text[len(metric_id) : len(metric_id) + 1]
        if text.startswith(metric_id) and separator and not separator.isalnum():
            return Initializing(metric_id=metric_id, category=text[len(metric_id) + 1 :])
    return Initializing(metric_id=text, category=None)


def parse_values_response(data: Any, known_ids: set[str]) -> ValuesResponse:
    """The `GET /realtime/metrics/values` body; a bad element is reported, not fatal."""
    if not isinstance(data, dict):
        raise PayloadError("the values response is not a JSON object")
    raw_results = data.get("results") or []
    raw_initializing = data.get("initializing") or []
    if not isinstance(raw_results, list) or not isinstance(raw_initializing, list):
        raise PayloadError("results and initializing must be JSON arrays")
    results, initializing, errors = [], [], []
    for item in raw_results:
        try:
            results.append(parse_metric_value(item))
        except PayloadError as exc:
            errors.append(str(exc))
    for item in raw_initializing:
        try:
            initializing.append(parse_initializing_item(item, known_ids))
        except PayloadError as exc:
            errors.append(str(exc))
    return ValuesResponse(results=results, initializing=initializing, errors=errors)


def parse_frame(data: Any) -> list[MetricValue]:
    """A websocket frame: documented as one {key, value} object; an array of them is accepted
    too, since nothing says the server never batches."""
    items = data if isinstance(data, list) else [data]
    return [parse_metric_value(item) for item in items]


# --- wire form for Redis and browsers ------------------------------------------------------


def value_to_wire(value: Value) -> dict[str, Any]:
    """The fields a browser needs to show and tick a value (all times in upstream ms). `type` is
    always one a browser knows (COUNT, DURATION, AVERAGE_DURATION or UNSUPPORTED); a type name
    no document gives is kept beside it as `upstream_type`, for a tile to show."""
    wire: dict[str, Any]
    if isinstance(value, UnsupportedValue):
        return {
            "type": "UNSUPPORTED",
            "upstream_type": value.type_name,
            "last_update_ms": value.last_update_ms,
            "raw": value.raw,
        }
    if isinstance(value, CountValue):
        wire = {"type": COUNT, "count": value.count}
    else:
        wire = {
            "type": DURATION if isinstance(value, DurationValue) else AVERAGE_DURATION,
            "finished_ms": value.finished_ms,
            "up": value.counting_up,
            "down": value.counting_down,
        }
        if isinstance(value, AverageDurationValue):
            wire["count"] = value.count
    wire["last_update_ms"] = value.last_update_ms
    if value.upstream_type is not None:
        wire["upstream_type"] = value.upstream_type
    return wire


def value_from_wire(wire: dict[str, Any]) -> Value:
    """The inverse of value_to_wire."""
    kind = wire["type"]
    if kind == "UNSUPPORTED":
        return UnsupportedValue(wire["upstream_type"], wire["last_update_ms"], wire.get("raw", ""))
    upstream_type = wire.get("upstream_type")
    if kind == COUNT:
        return CountValue(wire["count"], wire["last_update_ms"], upstream_type)
    fields = {
        "finished_ms": wire["finished_ms"],
        "counting_up": wire["up"],
        "counting_down": wire["down"],
        "last_update_ms": wire["last_update_ms"],
        "upstream_type": upstream_type,
    }
    if kind == DURATION:
        return DurationValue(**fields)
    return AverageDurationValue(count=wire["count"], **fields)
