"""When the demo contact center is busy and who is on shift: the daily curve and the rota.

Pure: every function takes the time (ms since the epoch) and the server's UTC offset.
A 24/7 center with eight agents: four on the day shift from about 08:00, two on a late
shift from about 15:30 and two on a night shift from about 23:30 (8.5 to 9 hours, so the
shifts overlap whatever the jitter). The inbound rate follows a business-day curve, but
never drops below the ``demo_floor`` (calls per hour for the whole center), so the board
moves at any hour.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000

PEAK_INBOUND_PER_HOUR = 90.0
GROUP_SHARE = {"Sales": 0.4, "Support": 0.35, "Billing": 0.25}
DAY, LATE, NIGHT = (8 * 60, 510), (15 * 60 + 30, 510), (23 * 60 + 30, 540)
# AgentId -> nominal (shift start in local minutes after midnight, length in minutes).
ROTA: dict[str, tuple[int, int]] = {
    "agarcia": DAY,
    "bokafor": DAY,
    "dpatel": DAY,
    "glee": DAY,
    "cmartin": LATE,
    "eschmidt": LATE,
    "fhaddad": NIGHT,
    "htanaka": NIGHT,
}
# Small enough that consecutive shifts still overlap: nobody's seat is ever empty.
JITTER_MINUTES = (-15, 0, 15)


@dataclass(frozen=True)
class Shift:
    start_minute: int  # local minutes after midnight; the shift may run past midnight
    length_minutes: int

    def is_on(self, ms: int, offset_minutes: int) -> bool:
        minute = local_minute(ms, offset_minutes)
        return (minute - self.start_minute) % 1440 < self.length_minutes

    def worked_today_ms(self, ms: int, offset_minutes: int) -> int:
        """Time on shift between local midnight and ``ms`` (yesterday's late part included)."""
        day_start = ms - round(local_minute(ms, offset_minutes) * MINUTE_MS)
        total = 0
        for start_day in (-1, 0):
            start = day_start + (start_day * 1440 + self.start_minute) * MINUTE_MS
            end = start + self.length_minutes * MINUTE_MS
            total += max(0, min(end, ms) - max(start, day_start))
        return total

    def started_ms(self, ms: int, offset_minutes: int) -> int:
        """When the current (or most recent) shift started."""
        since = (local_minute(ms, offset_minutes) - self.start_minute) % 1440
        return ms - round(since * MINUTE_MS)


def plan_shifts(rng: random.Random) -> dict[str, Shift]:
    """The rota with each start moved by up to half an hour (deterministic given ``rng``)."""
    return {
        agent_id: Shift((start + rng.choice(JITTER_MINUTES)) % 1440, length)
        for agent_id, (start, length) in ROTA.items()
    }


def local_hour(ms: int, offset_minutes: int) -> float:
    return ((ms + offset_minutes * MINUTE_MS) % DAY_MS) / HOUR_MS


def local_minute(ms: int, offset_minutes: int) -> float:
    return local_hour(ms, offset_minutes) * 60


def local_day(ms: int, offset_minutes: int) -> int:
    return (ms + offset_minutes * MINUTE_MS) // DAY_MS


def daily_load(hour: float) -> float:
    """Relative inbound load in [0.03, 1]: busiest mid-morning and mid-afternoon, a tail
    into the evening, almost nothing at night (the demo floor takes over there)."""
    morning = math.exp(-(((hour - 10.5) / 1.6) ** 2) / 2)
    afternoon = 0.85 * math.exp(-(((hour - 14.5) / 1.8) ** 2) / 2)
    evening = 0.35 * math.exp(-(((hour - 18.5) / 2.0) ** 2) / 2)
    return 0.03 + 0.97 * max(morning, afternoon, evening)


def curve_per_hour(hour: float) -> float:
    """Inbound calls per hour for the whole center by the daily curve alone."""
    return PEAK_INBOUND_PER_HOUR * daily_load(hour)


def excess_per_hour(hour: float, demo_floor: float) -> float:
    """Calls per hour the curve brings above the demo floor (0 in quiet hours)."""
    return max(0.0, curve_per_hour(hour) - demo_floor)


def inbound_rate_per_s(group: str, hour: float, demo_floor: float) -> float:
    """Expected arrivals per second for a group, the curve and the floor together."""
    per_hour = max(curve_per_hour(hour), demo_floor)
    return per_hour * GROUP_SHARE[group] / 3600.0


def expected_inbound_since_midnight(group: str, hour: float, demo_floor: float) -> float:
    """Integral of the arrival rate from local midnight to ``hour`` (5-minute steps)."""
    steps = int(hour * 12)
    per_step = [inbound_rate_per_s(group, i / 12, demo_floor) * 300 for i in range(steps)]
    rest = inbound_rate_per_s(group, hour, demo_floor) * (hour * 12 - steps) * 300
    return sum(per_step) + rest
