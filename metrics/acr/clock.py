"""Estimating the upstream's clock offset (upstream time minus ours), purely from observations.

Durations are extrapolated from `lastUpdateTime`, a time on the upstream's clock, so a server
whose clock is two minutes off would make every running duration two minutes wrong. Each
observation bounds the offset:

- an HTTP `Date` header D (whole seconds) received between our times t0 and t1 was generated at
  an upstream time in [D, D + 1000) and at one of our times in [t0, t1], so the offset lies in
  [D - t1, D + 1000 - t0];
- a value whose `lastUpdateTime` is L, received at our time t, was sent after L, so the offset
  is at least L - t.

Intersecting recent bounds narrows the offset to roughly the network round trip.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

INFINITY = math.inf


def now_ms() -> int:
    """Our clock, in epoch milliseconds: the one reading of "now" on every path."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Bounds:
    low: float
    high: float


def date_header_bounds(date_header: str, sent_ms: int, received_ms: int) -> Bounds | None:
    """Bounds from an HTTP Date header; None when the header is missing or unreadable."""
    try:
        date_ms = parsedate_to_datetime(date_header).timestamp() * 1000
    except (TypeError, ValueError, IndexError):
        return None
    return Bounds(low=date_ms - received_ms, high=date_ms + 1000 - sent_ms)


def value_bounds(last_update_ms: int, received_ms: int) -> Bounds:
    return Bounds(low=last_update_ms - received_ms, high=INFINITY)


def estimate_offset(bounds: list[Bounds], newest_first: bool = True) -> int | None:
    """The middle of the intersection of `bounds` (newest first), or 0 when it contains 0.

    When the bounds do not intersect, the upstream's clock was changed: the older bounds are
    dropped until the newer ones agree. Lower bounds alone (no Date header seen) give no estimate
    unless they show our clock is behind, in which case the greatest lower bound is used.
    """
    ordered = bounds if newest_first else list(reversed(bounds))
    low, high = -INFINITY, INFINITY
    for bound in ordered:
        new_low, new_high = max(low, bound.low), min(high, bound.high)
        if new_low > new_high:
            break
        low, high = new_low, new_high
    if high == INFINITY:
        return None if low == -INFINITY or low <= 0 else round(low)
    if low == -INFINITY:
        return None if high >= 0 else round(high)
    if low <= 0 <= high:
        return 0  # the clocks agree as far as we can measure: most servers run NTP
    return round((low + high) / 2)
