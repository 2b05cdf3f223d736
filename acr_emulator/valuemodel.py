"""Metric value objects, the documented duration formulas and wire (JSON) formatting.

Pure: nothing here reads a clock. Times are integer milliseconds since the epoch; the wire
format has millisecond precision, so integer arithmetic keeps the formula exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

COUNT = "COUNT"
DURATION = "DURATION"
AVERAGE_DURATION = "AVERAGE_DURATION"
# No document names it: the docs speak of "several different types" of values and show three,
# so one metric sends this plausible name (spec 6.5) with the DURATION fields, as a real server
# might for a longest wait.
MAX_DURATION = "MAX_DURATION"
VALUE_TYPES = (COUNT, DURATION, AVERAGE_DURATION, MAX_DURATION)


@dataclass(frozen=True, slots=True)
class CountValue:
    last_update_ms: int
    count: int

    @property
    def type(self) -> str:
        return COUNT


@dataclass(frozen=True, slots=True)
class DurationValue:
    last_update_ms: int
    finished_ms: int
    counting_up: int = 0
    counting_down: int = 0
    kind: str = DURATION  # or MAX_DURATION: the same fields under another name

    @property
    def type(self) -> str:
        return self.kind


@dataclass(frozen=True, slots=True)
class AverageDurationValue:
    last_update_ms: int
    finished_ms: int
    counting_up: int = 0
    counting_down: int = 0
    count: int = 0

    @property
    def type(self) -> str:
        return AVERAGE_DURATION


MetricValue = CountValue | DurationValue | AverageDurationValue
Timed = DurationValue | AverageDurationValue


def duration_at(value: Timed, at_ms: int) -> int:
    """finishedDuration + (numCountingUp - numCountingDown) * (atTime - lastUpdateTime)."""
    rate = value.counting_up - value.counting_down
    return value.finished_ms + rate * (at_ms - value.last_update_ms)


def average_at(value: AverageDurationValue, at_ms: int) -> float | None:
    """duration(atTime) / count, defined only when count != 0 (None otherwise)."""
    if value.count == 0:
        return None
    return duration_at(value, at_ms) / value.count


def same_reading(old: MetricValue | None, new: MetricValue) -> bool:
    """True when ``new`` tells a client nothing that extrapolating ``old`` would not.

    A duration that merely kept running is the same reading: the client extrapolates it.
    """
    if old is None or type(old) is not type(new) or old.type != new.type:
        return False
    if isinstance(new, CountValue):
        assert isinstance(old, CountValue)
        return old.count == new.count
    assert not isinstance(old, CountValue)
    if (old.counting_up, old.counting_down) != (new.counting_up, new.counting_down):
        return False
    if isinstance(new, AverageDurationValue):
        assert isinstance(old, AverageDurationValue)
        if old.count != new.count:
            return False
    return duration_at(old, new.last_update_ms) == new.finished_ms


def settle(old: MetricValue | None, new: MetricValue) -> MetricValue:
    """Keep ``old`` (and its lastUpdateTime) unless ``new`` really changed something."""
    if old is not None and same_reading(old, new):
        return old
    return new


# --- timestamps -------------------------------------------------------------------------


def format_timestamp(
    ms: int, offset_minutes: int, *, zulu: bool = False, millis: bool = True
) -> str:
    """``2019-10-01T10:17:56.496-06:00``: milliseconds and a numeric offset by default.

    ``zulu`` (UTC with a ``Z`` suffix) and ``millis=False`` exist only as injected faults.
    """
    zone = UTC if zulu else timezone(timedelta(minutes=offset_minutes))
    seconds, fraction = divmod(ms, 1000)
    moment = datetime.fromtimestamp(seconds, tz=zone).replace(microsecond=fraction * 1000)
    text = moment.isoformat(timespec="milliseconds" if millis else "seconds")
    return text.replace("+00:00", "Z") if zulu else text


def parse_timestamp(text: str) -> int:
    """Inverse of :func:`format_timestamp`; also accepts no fraction and a ``Z`` suffix."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without UTC offset: {text!r}")
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return delta // timedelta(milliseconds=1)


# --- JSON -------------------------------------------------------------------------------


def value_to_json(
    value: MetricValue, offset_minutes: int, *, zulu: bool = False, millis: bool = True
) -> dict[str, Any]:
    """The documented ``value`` object (field order as in the vendor examples)."""
    stamp = format_timestamp(value.last_update_ms, offset_minutes, zulu=zulu, millis=millis)
    if isinstance(value, CountValue):
        return {"lastUpdateTime": stamp, "count": value.count, "type": COUNT}
    body: dict[str, Any] = {"lastUpdateTime": stamp}
    if isinstance(value, AverageDurationValue):
        body["count"] = value.count
    body["finishedDuration"] = value.finished_ms
    body["numCountingUp"] = value.counting_up
    body["numCountingDown"] = value.counting_down
    body["type"] = value.type
    return body


def value_from_json(data: Any, *, default_ms: int) -> MetricValue:
    """Parse a ``value`` object strictly; raise ValueError on anything malformed."""
    if not isinstance(data, dict):
        raise ValueError("value must be a JSON object")
    kind = data.get("type")
    stamp = data.get("lastUpdateTime")
    if stamp is None:
        at_ms = default_ms
    elif isinstance(stamp, str):
        at_ms = parse_timestamp(stamp)
    else:
        raise ValueError("lastUpdateTime must be a string")
    if kind == COUNT:
        return CountValue(at_ms, _int_field(data, "count", minimum=0))
    if kind in (DURATION, MAX_DURATION):
        return DurationValue(at_ms, *_duration_fields(data), kind)
    if kind == AVERAGE_DURATION:
        count = _int_field(data, "count", minimum=0)
        return AverageDurationValue(at_ms, *_duration_fields(data), count)
    raise ValueError(f"type must be one of {', '.join(VALUE_TYPES)}")


def _duration_fields(data: dict[str, Any]) -> tuple[int, int, int]:
    return (
        _int_field(data, "finishedDuration"),
        _int_field(data, "numCountingUp", default=0, minimum=0),
        _int_field(data, "numCountingDown", default=0, minimum=0),
    )


def _int_field(
    data: dict[str, Any], name: str, *, default: int | None = None, minimum: int | None = None
) -> int:
    raw = data.get(name, default)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ValueError(f"{name} must be an integer")
    if minimum is not None and raw < minimum:
        raise ValueError(f"{name} must be >= {minimum}")
    return raw
