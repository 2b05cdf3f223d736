"""Pure value model: the documented formulas, timestamps and the wire shape."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acr_emulator.valuemodel import (
    MAX_DURATION,
    AverageDurationValue,
    CountValue,
    DurationValue,
    average_at,
    duration_at,
    format_timestamp,
    parse_timestamp,
    same_reading,
    settle,
    value_from_json,
    value_to_json,
)

T0 = parse_timestamp("2019-10-01T10:17:56.496-06:00")
WIRE_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")


@pytest.mark.parametrize(
    ("finished", "up", "down", "elapsed", "expected"),
    [
        (120_000, 2, 0, 5_000, 130_000),  # the worked example in the spec (section 6.6)
        (120_000, 0, 0, 5_000, 120_000),  # nothing running: frozen
        (120_000, 0, 1, 5_000, 115_000),  # counting down
        (120_000, 3, 1, 1_000, 122_000),  # net rate 2
        (0, 1, 0, 0, 0),  # at lastUpdateTime exactly
        (10_000, 1, 0, -2_000, 8_000),  # before lastUpdateTime: the line extends backwards
    ],
)
def test_duration_at_follows_the_documented_formula(finished, up, down, elapsed, expected):
    value = DurationValue(T0, finished, up, down)
    assert duration_at(value, T0 + elapsed) == expected


def test_average_at_divides_the_duration_by_count():
    value = AverageDurationValue(T0, 120_000, 2, 0, 4)
    assert average_at(value, T0 + 5_000) == 32_500


def test_average_at_is_undefined_when_count_is_zero():
    assert average_at(AverageDurationValue(T0, 120_000, 2, 0, 0), T0 + 5_000) is None


@pytest.mark.parametrize(
    ("text", "offset", "expected"),
    [
        ("2019-10-01T10:17:56.496-06:00", -360, "2019-10-01T10:17:56.496-06:00"),
        ("2019-10-01T16:17:56.496+00:00", 0, "2019-10-01T16:17:56.496+00:00"),
        ("2019-10-01T16:17:56.496+00:00", 330, "2019-10-01T21:47:56.496+05:30"),
        ("2019-10-01T00:00:00-06:00", -360, "2019-10-01T00:00:00.000-06:00"),
        ("2019-10-01T06:00:00.007Z", -360, "2019-10-01T00:00:00.007-06:00"),
        ("1969-12-31T23:59:59.999+00:00", 0, "1969-12-31T23:59:59.999+00:00"),
    ],
)
def test_timestamps_have_milliseconds_and_a_numeric_offset(text, offset, expected):
    ms = parse_timestamp(text)
    assert format_timestamp(ms, offset) == expected
    assert WIRE_TS.match(expected)
    assert parse_timestamp(expected) == ms


def test_parse_timestamp_rejects_a_naive_time():
    with pytest.raises(ValueError):
        parse_timestamp("2019-10-01T10:17:56.496")


def test_value_to_json_uses_the_documented_fields():
    stamp = "2019-10-01T10:17:56.496-06:00"
    assert value_to_json(CountValue(T0, 15), -360) == {
        "lastUpdateTime": stamp,
        "count": 15,
        "type": "COUNT",
    }
    assert value_to_json(DurationValue(T0, 120_000, 2, 0), -360) == {
        "lastUpdateTime": stamp,
        "finishedDuration": 120_000,
        "numCountingUp": 2,
        "numCountingDown": 0,
        "type": "DURATION",
    }
    assert value_to_json(AverageDurationValue(T0, 120_000, 2, 0, 4), -360) == {
        "lastUpdateTime": stamp,
        "count": 4,
        "finishedDuration": 120_000,
        "numCountingUp": 2,
        "numCountingDown": 0,
        "type": "AVERAGE_DURATION",
    }


@pytest.mark.parametrize(
    "value",
    [
        CountValue(T0, 3),
        DurationValue(T0, 5, 1, 0),
        DurationValue(T0, 5, 1, 0, MAX_DURATION),
        AverageDurationValue(T0, 9, 1, 2, 3),
    ],
)
def test_value_json_round_trips(value):
    assert value_from_json(value_to_json(value, -360), default_ms=0) == value


@pytest.mark.parametrize(
    "data",
    [
        {"type": "COUNT"},
        {"type": "COUNT", "count": True},
        {"type": "COUNT", "count": -1},
        {"type": "COUNT", "count": 1.5},
        {"type": "DURATION", "numCountingUp": 1},
        {"type": "DURATION", "finishedDuration": 1, "numCountingUp": -1},
        {"type": "NO_SUCH_TYPE", "finishedDuration": 1},
        {"count": 1},
        {"type": "COUNT", "count": 1, "lastUpdateTime": 5},
        [],
    ],
)
def test_value_from_json_rejects_malformed_values(data):
    with pytest.raises(ValueError):
        value_from_json(data, default_ms=T0)


def test_value_from_json_defaults_the_time_and_the_counters():
    value = value_from_json({"type": "DURATION", "finishedDuration": 7}, default_ms=T0)
    assert value == DurationValue(T0, 7, 0, 0)


def test_a_running_duration_is_the_same_reading_later():
    old = DurationValue(T0, 10_000, 1, 0)
    assert same_reading(old, DurationValue(T0 + 4_000, 14_000, 1, 0))
    assert settle(old, DurationValue(T0 + 4_000, 14_000, 1, 0)) is old
    assert not same_reading(old, DurationValue(T0 + 4_000, 14_001, 1, 0))
    assert not same_reading(old, DurationValue(T0 + 4_000, 14_000, 0, 0))


def test_counts_differ_only_when_the_count_does():
    assert same_reading(CountValue(T0, 4), CountValue(T0 + 9_000, 4))
    assert not same_reading(CountValue(T0, 4), CountValue(T0 + 9_000, 5))
    assert not same_reading(CountValue(T0, 4), DurationValue(T0, 4))
    assert not same_reading(
        AverageDurationValue(T0, 8, 0, 0, 2), AverageDurationValue(T0 + 5, 8, 0, 0, 3)
    )


counters = st.integers(min_value=0, max_value=50)
times = st.integers(min_value=0, max_value=10**13)


@given(
    finished=st.integers(min_value=0, max_value=10**10),
    up=counters,
    down=counters,
    new_up=counters,
    new_down=counters,
    last=times,
    gap=st.integers(min_value=0, max_value=10**8),
    later=st.integers(min_value=0, max_value=10**8),
)
def test_an_update_without_a_real_event_keeps_the_duration_continuous(
    finished, up, down, new_up, new_down, last, gap, later
):
    """Rebasing at t (finished = formula at t, new counters) never moves the number at t,
    and from then on the new line is what a client extrapolates."""
    old = DurationValue(last, finished, up, down)
    update_at = last + gap
    new = DurationValue(update_at, duration_at(old, update_at), new_up, new_down)
    assert duration_at(new, update_at) == duration_at(old, update_at)
    rate_change = (new_up - new_down) - (up - down)
    assert duration_at(new, update_at + later) - duration_at(old, update_at + later) == (
        rate_change * later
    )
    assert (settle(old, new) is old) == ((up, down) == (new_up, new_down))
