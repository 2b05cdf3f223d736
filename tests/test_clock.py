"""Estimating the upstream clock offset from Date headers and value timestamps."""

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metrics.acr.clock import Bounds, date_header_bounds, estimate_offset, value_bounds


def header_at(upstream_ms: int) -> str:
    return format_datetime(datetime.fromtimestamp(upstream_ms / 1000, UTC), usegmt=True)


def test_a_date_header_bounds_the_offset_by_a_second_plus_the_round_trip():
    bounds = date_header_bounds(header_at(1_000_000_500 + 120_000), 1_000_000_490, 1_000_000_510)
    assert bounds.low <= 120_000 <= bounds.high
    assert bounds.high - bounds.low == 1020


def test_an_unreadable_header_gives_nothing():
    assert date_header_bounds("", 0, 1) is None
    assert date_header_bounds("yesterday", 0, 1) is None


@given(
    offset=st.integers(-(10**7), 10**7),
    phases=st.lists(st.integers(0, 999), min_size=20, max_size=40),
    rtt=st.integers(0, 30),
)
def test_many_headers_narrow_the_offset_to_the_round_trip(offset, phases, rtt):
    bounds = []
    for i, phase in enumerate(phases):
        ours = 1_700_000_000_000 + i * 5000 + phase
        bounds.append(date_header_bounds(header_at(ours + offset), ours - rtt, ours + rtt))
    estimate = estimate_offset(bounds)
    assert abs(estimate - offset) <= 1000 + 2 * rtt  # never worse than one header's resolution


@pytest.mark.parametrize("offset", [-120_000, -1_234, 0, 777, 120_000])
def test_headers_at_varied_phases_pin_the_offset_within_tens_of_ms(offset):
    bounds = []
    for i in range(40):
        ours = 1_700_000_000_000 + i * 5_037  # polls drift across the second
        bounds.append(date_header_bounds(header_at(ours + offset), ours - 5, ours + 5))
    assert abs(estimate_offset(bounds) - offset) <= 60


def test_value_timestamps_tighten_the_lower_bound():
    assert estimate_offset([Bounds(-500, 500), value_bounds(1_000_300, 1_000_000)]) == 400


def test_clocks_that_agree_within_the_measurement_get_no_correction():
    assert estimate_offset([Bounds(-304, 696)]) == 0
    assert estimate_offset([Bounds(10, 1010)]) == 510


def test_a_changed_upstream_clock_drops_older_bounds():
    newest, older = Bounds(59_500, 60_500), Bounds(-500, 500)
    assert estimate_offset([newest, older]) == 60_000


def test_no_date_header_and_a_clock_ahead_of_ours():
    assert estimate_offset([value_bounds(1_120_000, 1_000_000)]) == 120_000
    assert estimate_offset([value_bounds(900_000, 1_000_000)]) is None
    assert estimate_offset([]) is None
