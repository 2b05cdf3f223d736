"""Plausible "today so far" for a demo that starts mid-day, so it never starts at zero.

Totals follow the expected arrivals since local midnight; each agent's talk time today is a
share (30-45 %) of the time they have been on shift today, so it stays believable for the
hour (nothing before the shift starts). Then the live floor: who is talking, who is in
after-call work, who is off shift, and a few callers already waiting.
"""

from __future__ import annotations

import random

from acr_emulator.catalog import ACCOUNT_CODES, GROUPS
from acr_emulator.schedule import expected_inbound_since_midnight, local_hour
from acr_emulator.simulation import (
    ACW,
    AVAILABLE,
    AWAY,
    CODE_SHARE,
    CODE_WEIGHTS,
    OFF,
    PATIENCE_MEDIAN_S,
    PATIENCE_SIGMA,
    TRANSFER_SHARE,
    Call,
    ContactCenter,
)

TALK_SHARE_OF_SHIFT = (0.30, 0.45)


def seed_day(center: ContactCenter) -> None:
    rng, at = center.rng, center.start_ms
    hour = local_hour(at, center.offset_minutes)
    inbound_total = 0
    for group in GROUPS:
        expected = expected_inbound_since_midnight(group, hour, center.demo_floor)
        offered = round(expected * rng.uniform(0.9, 1.1))
        abandoned = round(offered * rng.uniform(0.03, 0.08))
        answered = offered - abandoned
        totals = center.totals[group]
        totals.answered, totals.abandoned = answered, abandoned
        totals.answered_wait_ms = answered * rng.randint(12_000, 35_000)
        inbound_total += offered
    for st in center.agents.values():
        worked = st.shift.worked_today_ms(at, center.offset_minutes)
        st.talk_done_ms = round(worked * rng.uniform(*TALK_SHARE_OF_SHIFT) / 1000) * 1000
    center.by_direction.update(
        Inbound=inbound_total,
        Outbound=round(inbound_total * rng.uniform(0.2, 0.3)),
        Internal=round(inbound_total * rng.uniform(0.05, 0.12)),
    )
    coded = round(sum(t.answered for t in center.totals.values()) * CODE_SHARE)
    for code in rng.choices(ACCOUNT_CODES, weights=CODE_WEIGHTS, k=coded):
        center.by_code[code] += 1
    center.transferred = round(coded * TRANSFER_SHARE)
    _seed_floor(center, rng, at)


def _seed_floor(center: ContactCenter, rng: random.Random, at: int) -> None:
    for st in center.agents.values():
        roll = rng.random()
        if not center.on_shift(st, at):
            st.state = OFF
        elif roll < 0.5:
            center._start_talking(st, at, "Inbound")
            # The current call started before the emulator did; today's total includes it.
            elapsed = min(rng.randint(0, 60) * 1000, st.talk_done_ms)
            st.talk_since_ms = at - elapsed
            st.talk_done_ms -= elapsed
        elif roll < 0.6:
            st.state, st.until_ms = ACW, at + rng.randint(1, 10) * 1000
        elif roll < 0.65:
            st.state, st.until_ms = AWAY, at + rng.randint(30, 300) * 1000
    for group in GROUPS:
        idle = [s for s in center.agents.values() if s.state == AVAILABLE]
        if not any(s.agent.group == group for s in idle):
            for _ in range(rng.randint(0, 2)):
                patience = center._sample_ms(PATIENCE_MEDIAN_S, PATIENCE_SIGMA)
                arrived = at - rng.randint(1, 40) * 1000
                center.queues[group].append(Call(group, arrived, max(patience, 45_000), arrived))
        center.queues[group].sort(key=lambda call: call.arrived_ms)
