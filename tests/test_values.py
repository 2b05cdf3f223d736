"""The pure parsing and formulas of metrics.acr.values."""

import json
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metrics.acr.values import (
    AverageDurationValue,
    CountValue,
    DurationValue,
    Initializing,
    PayloadError,
    UnsupportedValue,
    average_ms,
    duration_ms,
    parse_catalog,
    parse_frame,
    parse_initializing_item,
    parse_metric_value,
    parse_timestamp_ms,
    parse_value,
    parse_values_response,
    value_at,
    value_from_wire,
    value_to_wire,
)

T0 = parse_timestamp_ms("2019-10-01T10:17:56.496-06:00")


def test_the_documented_worked_example():
    value = DurationValue(finished_ms=120000, counting_up=2, counting_down=0, last_update_ms=T0)
    assert duration_ms(value, at_ms=T0 + 5000) == 130000
    average = AverageDurationValue(120000, 2, 0, count=4, last_update_ms=T0)
    assert average_ms(average, at_ms=T0 + 5000) == 32500


def test_an_average_over_zero_calls_has_no_number():
    average = AverageDurationValue(120000, 2, 0, count=0, last_update_ms=T0)
    assert average_ms(average, at_ms=T0 + 5000) is None
    assert value_at(average, at_ms=T0) is None


def test_counting_down_subtracts():
    value = DurationValue(finished_ms=60000, counting_up=1, counting_down=3, last_update_ms=T0)
    assert duration_ms(value, at_ms=T0 + 1000) == 58000


@pytest.mark.parametrize(
    ("value", "at_ms"),
    [
        # More counting down than up, past zero.
        (DurationValue(1000, 0, 2, T0), T0 + 5000),
        (DurationValue(60000, 1, 3, T0), T0 + 40000),
        # Counting up, valued a little before lastUpdateTime (an upstream clock ahead of ours).
        (DurationValue(0, 1, 0, T0), T0 - 500),
        # Sent below zero.
        (DurationValue(-5, 0, 0, T0), T0),
        (AverageDurationValue(1000, 0, 2, 4, T0), T0 + 5000),
    ],
)
def test_a_duration_computed_below_zero_reads_as_zero(value, at_ms):
    """A negative wait or talk time never means anything: it reads as 0, for every tile, alert,
    sample and sort that reads a value."""
    assert duration_ms(value, at_ms=at_ms) == 0
    assert value_at(value, at_ms=at_ms) == 0


@given(
    st.builds(
        AverageDurationValue,
        finished_ms=st.integers(-(10**6), 10**9),
        counting_up=st.integers(0, 50),
        counting_down=st.integers(0, 50),
        count=st.integers(1, 500),
        last_update_ms=st.integers(0, 10**12),
    ),
    st.integers(-(10**7), 10**7),
)
def test_a_computed_duration_is_the_formula_never_below_zero(value, after):
    at = value.last_update_ms + after
    formula = value.finished_ms + (value.counting_up - value.counting_down) * after
    assert duration_ms(value, at_ms=at) == max(0, formula)
    assert value_at(value, at_ms=at) == max(0, formula) / value.count


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-10-01T10:17:56.496-06:00", 1569946676496),
        ("2019-10-01T10:17:56-06:00", 1569946676000),
        ("2019-10-01T16:17:56.496Z", 1569946676496),
        ("2019-10-01T16:17:56.496+00:00", 1569946676496),
        ("2019-10-01T21:47:56.496+05:30", 1569946676496),
        (1569946676496, 1569946676496),
    ],
)
def test_timestamps_with_any_offset_and_precision(text, expected):
    assert parse_timestamp_ms(text) == expected


@pytest.mark.parametrize("bad", ["2019-10-01T10:17:56", "yesterday", None, True, [], float("nan")])
def test_unreadable_timestamps_are_refused(bad):
    with pytest.raises(PayloadError):
        parse_timestamp_ms(bad)


def test_the_documented_count_example_parses():
    item = parse_metric_value(
        {
            "key": {"metricId": "K0FLAEB6", "categoryValue": "John Doe(481)"},
            "value": {
                "lastUpdateTime": "2019-10-01T10:17:56.496-06:00",
                "count": 15,
                "type": "COUNT",
            },
        }
    )
    assert item.metric_id == "K0FLAEB6"
    assert item.category == "John Doe(481)"
    assert item.value == CountValue(count=15, last_update_ms=T0)


def test_an_unknown_value_type_without_a_readable_number_is_kept_as_unsupported():
    item = parse_metric_value(
        {"key": {"metricId": "A"}, "value": {"type": "MAX_DURATION", "max": 3, "lastUpdateTime": 5}}
    )
    assert item.category == ""
    assert item.value == UnsupportedValue(
        type_name="MAX_DURATION",
        last_update_ms=5,
        raw='{"type":"MAX_DURATION","max":3,"lastUpdateTime":5}',
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # `count` alone: a count.
        (
            {"type": "QUEUE_SIZE", "count": 4, "lastUpdateTime": 5},
            CountValue(4, 5, upstream_type="QUEUE_SIZE"),
        ),
        # The duration fields: a ticking duration.
        (
            {
                "type": "MAX_DURATION",
                "finishedDuration": 45000,
                "numCountingUp": 1,
                "numCountingDown": 0,
                "lastUpdateTime": 5,
                "someFutureField": "ignored",
            },
            DurationValue(45000, 1, 0, 5, upstream_type="MAX_DURATION"),
        ),
        # The duration fields and `count`: an average.
        (
            {
                "type": "AVERAGE_TALK_TIME",
                "count": 3,
                "finishedDuration": 9000,
                "numCountingUp": 1,
                "numCountingDown": 0,
                "lastUpdateTime": 5,
            },
            AverageDurationValue(9000, 1, 0, 3, 5, upstream_type="AVERAGE_TALK_TIME"),
        ),
    ],
)
def test_a_value_of_any_type_name_is_read_by_the_fields_it_carries(value, expected):
    assert parse_value(value) == expected


def test_an_average_of_any_type_name_over_zero_calls_has_no_number():
    value = parse_value(
        {
            "type": "AVERAGE_TALK_TIME",
            "count": 0,
            "finishedDuration": 0,
            "numCountingUp": 0,
            "numCountingDown": 0,
            "lastUpdateTime": 5,
        }
    )
    assert value_at(value, at_ms=10) is None


@pytest.mark.parametrize(
    "value",
    [
        {"type": "SERVICE_LEVEL", "percent": 93.5, "lastUpdateTime": 5},
        {"type": "AGENT_STATE", "state": "READY", "lastUpdateTime": 5},
        {"type": "QUEUE_SIZE", "count": "4", "lastUpdateTime": 5},
        {"type": "QUEUE_SIZE", "count": -4, "lastUpdateTime": 5},
        {"type": "QUEUE_SIZE", "count": 4},  # no time to order it by
        {"type": "MAX_DURATION", "finishedDuration": 1, "numCountingUp": 1, "lastUpdateTime": 5},
        {"type": "MAX_DURATION", "finishedDuration": 1, "count": 2, "lastUpdateTime": 5},
    ],
)
def test_a_value_of_another_type_name_with_no_readable_number_is_unsupported(value):
    parsed = parse_value(value)
    assert isinstance(parsed, UnsupportedValue)
    assert parsed.type_name == value["type"]
    assert json.loads(parsed.raw) == value
    assert value_at(parsed, at_ms=10) is None


def test_the_raw_json_of_an_unsupported_value_is_cut_short():
    parsed = parse_value({"type": "BIG", "blob": "x" * 10_000, "lastUpdateTime": 5})
    assert len(parsed.raw) <= 500


@pytest.mark.parametrize(
    "value",
    [
        CountValue(4, 5),
        CountValue(4, 5, upstream_type="QUEUE_SIZE"),
        DurationValue(45000, 1, 0, 5, upstream_type="MAX_DURATION"),
        AverageDurationValue(9000, 1, 0, 3, 5, upstream_type="AVERAGE_TALK_TIME"),
        UnsupportedValue("SERVICE_LEVEL", 5, raw='{"type":"SERVICE_LEVEL"}'),
    ],
)
def test_the_wire_form_round_trips_and_keeps_the_upstream_type_name(value):
    wire = value_to_wire(value)
    assert value_from_wire(wire) == value
    unsupported = isinstance(value, UnsupportedValue)
    assert wire.get("upstream_type") == (value.type_name if unsupported else value.upstream_type)


def test_browsers_tick_an_undocumented_type_by_a_documented_wire_type():
    wire = value_to_wire(DurationValue(45000, 1, 0, 5, upstream_type="MAX_DURATION"))
    assert wire == {
        "type": "DURATION",
        "upstream_type": "MAX_DURATION",
        "finished_ms": 45000,
        "up": 1,
        "down": 0,
        "last_update_ms": 5,
    }
    assert value_to_wire(CountValue(4, 5)) == {"type": "COUNT", "count": 4, "last_update_ms": 5}


@pytest.mark.parametrize(
    "value",
    [
        {"type": "COUNT", "count": -1, "lastUpdateTime": 1},
        {"type": "COUNT", "count": "3", "lastUpdateTime": 1},
        {"type": "COUNT", "count": 2.5, "lastUpdateTime": 1},
        {"type": "DURATION", "finishedDuration": 1, "numCountingUp": 1, "lastUpdateTime": 1},
        {"count": 1, "lastUpdateTime": 1},
        "COUNT",
        # A documented name is held to its documented fields, not read by what it carries.
        {"type": "COUNT", "finishedDuration": 1, "numCountingUp": 1, "numCountingDown": 0},
        {
            "type": "AVERAGE_DURATION",
            "finishedDuration": 1,
            "numCountingUp": 1,
            "numCountingDown": 0,
            "lastUpdateTime": 1,
        },
    ],
)
def test_malformed_values_raise_our_error(value):
    with pytest.raises(PayloadError):
        parse_metric_value({"key": {"metricId": "A", "categoryValue": "x"}, "value": value})


def test_a_values_response_keeps_good_elements_and_reports_bad_ones():
    response = parse_values_response(
        {
            "results": [
                {
                    "key": {"metricId": "A", "categoryValue": "x"},
                    "value": {"type": "COUNT", "count": 1, "lastUpdateTime": 1},
                },
                {"key": {"metricId": "A", "categoryValue": "y"}, "value": {"type": "COUNT"}},
            ],
            "initializing": ["B"],
        },
        {"A", "B"},
    )
    assert [r.category for r in response.results] == ["x"]
    assert response.initializing == [Initializing("B", None)]
    assert len(response.errors) == 1


# Ids that are prefixes of one another: the longest that fits wins.
INITIALIZING_IDS = {"Q7XD2M1A", "Q7XD2M1AB", "Q7", "OTHER"}
SEPARATORS = [":", "-", "|", "/", " ", "_", ".", ",", ";", "#", "@", "=", "\t", "\u001f", "·"]


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        # A bare id: every category of the metric.
        ("Q7XD2M1A", Initializing("Q7XD2M1A", None)),
        ("Q7XD2M1AB", Initializing("Q7XD2M1AB", None)),
        ("Q7", Initializing("Q7", None)),
        # The id and the category joined by one separator character.
        ("Q7XD2M1A:Support", Initializing("Q7XD2M1A", "Support")),
        ("Q7XD2M1A-Ana García(201)", Initializing("Q7XD2M1A", "Ana García(201)")),
        ("Q7XD2M1AB:Sales", Initializing("Q7XD2M1AB", "Sales")),
        ("Q7:Sales", Initializing("Q7", "Sales")),
        ("Q7XD2M1A:a:b", Initializing("Q7XD2M1A", "a:b")),
        ("Q7XD2M1A::", Initializing("Q7XD2M1A", ":")),
        # A NONE metric's category "" joined all the same.
        ("Q7XD2M1A:", Initializing("Q7XD2M1A", "")),
        # An object like a result's key.
        ({"metricId": "Q7XD2M1A", "categoryValue": "Sales"}, Initializing("Q7XD2M1A", "Sales")),
        ({"metricId": "Q7", "categoryValue": ""}, Initializing("Q7", "")),
        ({"metricId": "Q7XD2M1A"}, Initializing("Q7XD2M1A", None)),
        ({"metricId": "Q7XD2M1A", "categoryValue": None}, Initializing("Q7XD2M1A", None)),
        ({"metricId": "NEW00001", "categoryValue": "x"}, Initializing("NEW00001", "x")),
        # An id we do not know (yet) is kept whole; the caller skips it. A letter or digit
        # after a known id is more of an id, not a separator.
        ("ZZZ:Sales", Initializing("ZZZ:Sales", None)),
        ("Q7XD2M1AC", Initializing("Q7XD2M1AC", None)),
        ("Q7XD2M1AC:Sales", Initializing("Q7XD2M1AC:Sales", None)),
    ],
)
def test_every_initializing_form_is_understood(item, expected):
    assert parse_initializing_item(item, INITIALIZING_IDS) == expected


@pytest.mark.parametrize("separator", SEPARATORS)
def test_any_one_separator_joins_an_initializing_id_and_category(separator):
    item = f"Q7XD2M1A{separator}Sales"
    assert parse_initializing_item(item, INITIALIZING_IDS) == Initializing("Q7XD2M1A", "Sales")


@pytest.mark.parametrize(
    "item", ["", None, 5, ["Q7"], {"categoryValue": "x"}, {"metricId": ""}, {"metricId": 7}]
)
def test_an_unreadable_initializing_item_raises_our_error(item):
    with pytest.raises(PayloadError):
        parse_initializing_item(item, INITIALIZING_IDS)


metric_id_text = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcxyz", min_size=1, max_size=10)


@st.composite
def known_ids_around(draw):
    """An id, the ids that are its prefixes and its extensions, and some others."""
    chosen = draw(metric_id_text)
    prefixes = {chosen[:n] for n in range(1, len(chosen))}
    extensions = {chosen + tail for tail in draw(st.lists(metric_id_text, max_size=3))}
    others = set(draw(st.lists(metric_id_text, max_size=5)))
    return chosen, {chosen} | prefixes | extensions | others


@given(
    known_ids_around(),
    st.sampled_from(SEPARATORS) | st.characters(categories=["P", "S", "Zs", "Cc"]),
    st.text(),
)
def test_a_joined_initializing_item_splits_at_the_longest_known_id(known, separator, category):
    chosen, known_ids = known
    item = chosen + separator + category
    assert parse_initializing_item(item, known_ids) == Initializing(chosen, category)


@given(known_ids_around())
def test_a_bare_initializing_id_means_all_its_categories(known):
    chosen, known_ids = known
    assert parse_initializing_item(chosen, known_ids) == Initializing(chosen, None)


@given(known_ids_around(), metric_id_text, st.text())
def test_an_unknown_id_that_extends_a_known_one_is_not_read_as_its_category(known, tail, rest):
    chosen, known_ids = known
    unknown = chosen + tail
    item = unknown + ":" + rest
    if any(item.startswith(i) and not item[len(i) :][:1].isalnum() for i in known_ids):
        return  # the unknown id is itself a known one followed by a separator
    assert parse_initializing_item(item, known_ids) == Initializing(item, None)


@given(st.text(min_size=1), st.text() | st.none(), st.sets(metric_id_text))
def test_an_initializing_object_is_taken_as_it_is(metric_id, category, known_ids):
    item = {"metricId": metric_id, "categoryValue": category}
    assert parse_initializing_item(item, known_ids) == Initializing(metric_id, category)


def test_a_websocket_frame_may_be_one_object_or_an_array():
    element = {
        "key": {"metricId": "A", "categoryValue": "x"},
        "value": {"type": "COUNT", "count": 1, "lastUpdateTime": 1},
    }
    assert len(parse_frame(element)) == 1
    assert len(parse_frame([element, element])) == 2


def test_the_catalog_parses_and_rejects_garbage():
    catalog = parse_catalog(
        [
            {
                "metricId": "101",
                "metricName": "metricA",
                "categoryType": "AGENT",
                "categorySelection": ["Alice", "Bob"],
            },
            {"metricId": "102", "metricName": "<b>x</b>", "categoryType": "NONE"},
        ]
    )
    assert catalog[0].categories == ("Alice", "Bob")
    assert catalog[1].categories == ()
    with pytest.raises(PayloadError):
        parse_catalog({"metricId": "1"})
    with pytest.raises(PayloadError):
        parse_catalog([{"metricId": "1", "categorySelection": "Alice"}])


durations = st.builds(
    DurationValue,
    finished_ms=st.integers(0, 10**9),
    counting_up=st.integers(0, 50),
    counting_down=st.integers(0, 50),
    last_update_ms=st.integers(0, 10**12),
)


@given(durations, st.integers(0, 10**6), st.integers(0, 50), st.integers(0, 50))
def test_a_duration_is_continuous_across_an_update(value, elapsed, up, down):
    """An update that only changes the counters carries the value over: no jump at the update."""
    at = value.last_update_ms + elapsed
    updated = DurationValue(duration_ms(value, at_ms=at), up, down, last_update_ms=at)
    assert duration_ms(updated, at_ms=at) == duration_ms(value, at_ms=at)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    )
)
def test_arbitrary_json_never_escapes_as_another_exception(data):
    for parse in (parse_frame, parse_catalog, lambda d: parse_values_response(d, {"A"})):
        try:
            parse(data)
        except PayloadError:
            pass


timestamps = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).flatmap(
    lambda moment: st.sampled_from(
        [
            moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}-06:00",
            moment.strftime("%Y-%m-%dT%H:%M:%S") + "+05:30",
            moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z",
        ]
    )
)
counts = st.integers(0, 10**6)
valid_values = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("COUNT"), "count": counts, "lastUpdateTime": timestamps}
    ),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["DURATION", "AVERAGE_DURATION"]),
            "count": counts,
            "finishedDuration": st.integers(0, 10**10),
            "numCountingUp": st.integers(0, 500),
            "numCountingDown": st.integers(0, 500),
            "lastUpdateTime": timestamps,
        },
        optional={"someFutureField": st.text()},
    ),
)


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "key": st.fixed_dictionaries(
                    {"metricId": st.text(min_size=1), "categoryValue": st.text() | st.none()}
                ),
                "value": valid_values,
            }
        ),
        max_size=20,
    )
)
def test_any_documented_payload_parses_completely(results):
    response = parse_values_response({"results": results, "initializing": []}, set())
    assert response.errors == []
    assert len(response.results) == len(results)
    for raw, parsed in zip(results, response.results, strict=True):
        assert parsed.metric_id == raw["key"]["metricId"]
        assert parsed.value.last_update_ms == parse_timestamp_ms(raw["value"]["lastUpdateTime"])
        if raw["value"]["type"] != "COUNT":
            assert parsed.value.finished_ms == raw["value"]["finishedDuration"]


documented_shapes = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("COUNT"), "count": counts, "lastUpdateTime": timestamps}
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("DURATION"),
            "finishedDuration": st.integers(0, 10**10),
            "numCountingUp": st.integers(0, 500),
            "numCountingDown": st.integers(0, 500),
            "lastUpdateTime": timestamps,
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("AVERAGE_DURATION"),
            "count": counts,
            "finishedDuration": st.integers(0, 10**10),
            "numCountingUp": st.integers(0, 500),
            "numCountingDown": st.integers(0, 500),
            "lastUpdateTime": timestamps,
        }
    ),
)


@given(
    documented_shapes,
    st.text(min_size=1).filter(lambda t: t not in ("COUNT", "DURATION", "AVERAGE_DURATION")),
    st.integers(-(10**7), 10**7),
)
def test_any_type_name_with_documented_fields_reads_as_the_documented_type(value, name, after):
    documented = parse_value(value)
    renamed = parse_value({**value, "type": name})
    assert type(renamed) is type(documented)
    assert renamed.upstream_type == name
    at = documented.last_update_ms + after
    assert value_at(renamed, at_ms=at) == value_at(documented, at_ms=at)
    assert value_to_wire(renamed)["type"] == value_to_wire(documented)["type"]
