"""static/metrics/format.js, run in Chromium: the browser reads a value by the same formulas
as metrics.acr.values (durations tick from finishedDuration, averages have no number over zero
calls, a duration never goes below zero), so a tile, the widget, alerts and history agree."""

import pytest

from metrics.acr.values import value_at, value_from_wire
from tests.conftest import ROOT

AT = 1_000_000


def duration(finished: int, up: int, down: int, at: int, **extra) -> dict:
    return {
        "type": "DURATION",
        "finished_ms": finished,
        "up": up,
        "down": down,
        "last_update_ms": at,
        **extra,
    }


VALUES = [
    {"type": "COUNT", "count": 7, "last_update_ms": AT - 5000},
    duration(120_000, 2, 0, AT - 5000),  # the spec's worked example: 130,000 ms
    duration(120_000, 2, 0, AT - 5000) | {"type": "AVERAGE_DURATION", "count": 4},
    duration(120_000, 2, 0, AT - 5000) | {"type": "AVERAGE_DURATION", "count": 0},
    duration(3_000, 0, 1, AT - 5000),  # counting down past zero: 0, never -2,000
    duration(-500, 0, 0, AT),  # sent below zero
    duration(3_000, 1, 0, AT + 9000),  # valued before its lastUpdateTime (a clock ahead)
]


@pytest.fixture
def format_js(browser):
    page = browser.new_page()
    page.add_script_tag(path=str(ROOT / "static" / "metrics" / "format.js"))
    yield page
    page.close()


@pytest.mark.parametrize("wire", VALUES)
def test_the_browser_reads_a_value_as_the_server_does(format_js, wire):
    shown = format_js.evaluate("([v, at]) => BoardFormat.rawValue(v, at)", [wire, AT])
    assert shown == value_at(value_from_wire(wire), at_ms=AT)


def test_a_duration_counting_down_past_zero_reads_zero_on_both_sides(format_js):
    wire = duration(3_000, 0, 1, AT - 5000)
    assert value_at(value_from_wire(wire), at_ms=AT) == 0
    assert format_js.evaluate("([v, at]) => BoardFormat.rawValue(v, at)", [wire, AT]) == 0


@pytest.fixture
def charts_js(format_js):
    format_js.add_script_tag(path=str(ROOT / "static" / "metrics" / "charts.js"))
    return format_js


@pytest.mark.parametrize(
    ("values", "unit", "texts"),
    [
        ([590_000], "ms", ["00:00", "02:00", "04:00", "06:00", "08:00", "10:00"]),
        ([100_000], "ms", ["00:00", "00:30", "01:00", "01:30", "02:00"]),
        ([4_000_000], "ms", ["0:00:00", "0:15:00", "0:30:00", "0:45:00", "1:00:00", "1:15:00"]),
        ([None, 0], "ms", ["00:00", "00:01"]),
    ],
)
def test_a_duration_axis_ticks_on_whole_steps_as_clocks(charts_js, values, unit, texts):
    axis = charts_js.evaluate("([v, u]) => Charts.valueAxis(v, u)", [values, unit])
    assert axis["ticktext"] == texts


def test_a_count_axis_has_plain_numbers(charts_js):
    axis = charts_js.evaluate("() => Charts.valueAxis([60000], 'count')")
    assert axis["exponentformat"] == "none" and "ticktext" not in axis


@pytest.mark.parametrize(
    ("utc_ms", "wall_ms", "clock"),
    [
        (1_783_080_000_000, 1_783_080_000_000 - 5 * 3_600_000, "7:00:00"),  # 07-03 12:00Z: CDT
        (1_767_441_600_000, 1_767_441_600_000 - 6 * 3_600_000, "6:00:00"),  # 01-03 12:00Z: CST
    ],
)
def test_charts_and_times_show_the_sites_wall_clock_whatever_the_browsers_zone(
    format_js, utc_ms, wall_ms, clock
):
    shown = format_js.evaluate("(ms) => BoardFormat.wallClock(ms, 'America/Chicago')", utc_ms)
    assert shown == wall_ms
    text = format_js.evaluate("(ms) => BoardFormat.timeOfDay(ms, 'America/Chicago')", utc_ms)
    assert text.lstrip("0").startswith(clock)
    back = format_js.evaluate("(ms) => BoardFormat.fromWallClock(ms, 'America/Chicago')", wall_ms)
    assert back == utc_ms
