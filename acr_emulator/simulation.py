"""A small contact center behind the demo numbers.

Inbound calls arrive as a Poisson process whose rate follows a daily curve (never below the
demo floor), wait in a queue per group while they are routed (a few seconds of ringing),
are answered by an available agent of that group (or by any agent once they have waited
long, or when nobody of the group is on shift) or abandon when the caller's patience runs
out. Agents work shifts (see :mod:`acr_emulator.schedule`); on shift they go talking ->
after-call work -> available, take the odd break and place some outbound and internal
calls; off shift they are not counted. Everything happens on a one-second grid of emulator
time and is deterministic given the seed and the start time.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from acr_emulator.catalog import ACCOUNT_CODES, AGENTS, DIRECTIONS, GROUPS, Agent
from acr_emulator.schedule import (
    GROUP_SHARE,
    Shift,
    daily_load,
    excess_per_hour,
    local_day,
    local_hour,
    plan_shifts,
)

__all__ = ["ContactCenter", "daily_load", "local_hour"]

STEP_MS = 1000

TALK_MEDIAN_S = {"Sales": 70.0, "Support": 90.0, "Billing": 60.0}
TALK_SIGMA = 0.55
ACW_MEDIAN_S, ACW_SIGMA = 10.0, 0.4
PATIENCE_MEDIAN_S, PATIENCE_SIGMA = 90.0, 0.6
AWAY_MEDIAN_S, AWAY_SIGMA = 240.0, 0.5
ROUTING_S = (3, 15)  # announcement + ringing before an idle agent can pick up
OVERFLOW_AFTER_MS = 30_000  # then any available agent may take the call
OUTBOUND_PER_IDLE_S = 1 / 900
INTERNAL_PER_IDLE_S = 1 / 1800
AWAY_PER_IDLE_S = 1 / 2400
CODE_SHARE = 0.6
CODE_WEIGHTS = (5, 3, 2, 1)
TRANSFER_SHARE = 0.05
# A busy demo: everyone on shift and at least this many inbound calls per hour, whatever the hour.
BUSY_FLOOR_PER_HOUR = 180.0

AVAILABLE, TALKING, ACW, AWAY, OFF = "available", "talking", "acw", "away", "off_shift"


@dataclass
class Call:
    group: str
    arrived_ms: int
    patience_ms: int
    routed_ms: int = 0  # from then on an idle agent can pick it up


@dataclass
class AgentState:
    agent: Agent
    shift: Shift
    state: str = AVAILABLE
    until_ms: int = 0
    idle_since_ms: int = 0
    talk_done_ms: int = 0
    talk_since_ms: int | None = None
    direction: str = "Inbound"


@dataclass
class GroupTotals:
    answered: int = 0
    abandoned: int = 0
    answered_wait_ms: int = 0


@dataclass(frozen=True)
class Event:
    """Something that really happened; consumers use it to explain value jumps."""

    at_ms: int
    kind: str
    group: str | None = None
    agent: str | None = None
    wait_ms: int = 0


@dataclass
class ContactCenter:
    seed: int
    start_ms: int
    offset_minutes: int
    demo_floor: float = 45.0
    busy: bool = False  # every agent on shift and the busy floor: a demo started at night moves
    rng: random.Random = field(init=False)
    now_ms: int = field(init=False)
    queues: dict[str, list[Call]] = field(init=False)
    totals: dict[str, GroupTotals] = field(init=False)
    by_direction: dict[str, int] = field(init=False)
    by_code: dict[str, int] = field(init=False)
    transferred: int = field(init=False, default=0)
    agents: dict[str, AgentState] = field(init=False)
    day: int = field(init=False)
    next_floor_ms: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 - a seeded simulation, not crypto
        if self.busy:
            self.demo_floor = max(self.demo_floor, BUSY_FLOOR_PER_HOUR)
        self.now_ms = self.start_ms
        self.queues = {group: [] for group in GROUPS}
        self.totals = {group: GroupTotals() for group in GROUPS}
        self.by_direction = dict.fromkeys(DIRECTIONS, 0)
        self.by_code = dict.fromkeys(ACCOUNT_CODES, 0)
        shifts = plan_shifts(self.rng)
        self.agents = {
            a.display: AgentState(a, shifts[a.agent_id], idle_since_ms=self.start_ms)
            for a in AGENTS
        }
        self.day = local_day(self.start_ms, self.offset_minutes)
        self.next_floor_ms = self.start_ms
        # Imported here: seeding builds on this class (a module-level import would be circular).
        from acr_emulator.seeding import seed_day

        seed_day(self)

    def on_shift(self, st: AgentState, at: int) -> bool:
        return self.busy or st.shift.is_on(at, self.offset_minutes)

    # --- driving -------------------------------------------------------------------------

    def advance_to(self, target_ms: int) -> list[Event]:
        """Step on the one-second grid up to ``target_ms``; return what happened."""
        events: list[Event] = []
        while self.now_ms + STEP_MS <= target_ms:
            events.extend(self.step())
        return events

    def step(self) -> list[Event]:
        self.now_ms += STEP_MS
        at = self.now_ms
        events: list[Event] = []
        if local_day(at, self.offset_minutes) != self.day:
            events.append(self._reset_day(at))
        events += self._finish_agent_work(at)
        events += self._shift_changes(at)
        events += self._abandon(at)
        events += self._arrive(at)
        events += self._route(at)
        events += self._idle_activity(at)
        return events

    # --- phases ----------------------------------------------------------------------------

    def _reset_day(self, at: int) -> Event:
        self.day = local_day(at, self.offset_minutes)
        self.totals = {group: GroupTotals() for group in GROUPS}
        self.by_direction = dict.fromkeys(DIRECTIONS, 0)
        self.by_code = dict.fromkeys(ACCOUNT_CODES, 0)
        self.transferred = 0
        for state in self.agents.values():
            state.talk_done_ms = 0
            if state.talk_since_ms is not None:
                state.talk_since_ms = at
        return Event(at, "day_reset")

    def _finish_agent_work(self, at: int) -> list[Event]:
        events = []
        for name, st in self.agents.items():
            if st.state == AVAILABLE or st.until_ms > at:
                continue
            if st.state == TALKING:
                assert st.talk_since_ms is not None
                st.talk_done_ms += at - st.talk_since_ms
                st.talk_since_ms = None
                self._wrap_up(st)
                st.state, st.until_ms = ACW, at + self._sample_ms(ACW_MEDIAN_S, ACW_SIGMA)
                events.append(Event(at, "hangup", st.agent.group, name))
            else:
                events.append(Event(at, f"{st.state}_end", st.agent.group, name))
                st.state, st.until_ms, st.idle_since_ms = AVAILABLE, 0, at
        return events

    def _shift_changes(self, at: int) -> list[Event]:
        """Agents start their shift, or leave once idle after it ended."""
        events = []
        for name, st in self.agents.items():
            on = self.on_shift(st, at)
            if st.state == OFF and on:
                st.state, st.idle_since_ms = AVAILABLE, at
                events.append(Event(at, "shift_start", st.agent.group, name))
            elif st.state == AVAILABLE and not on:
                st.state = OFF
                events.append(Event(at, "shift_end", st.agent.group, name))
        return events

    def _wrap_up(self, st: AgentState) -> None:
        if st.direction != "Internal" and self.rng.random() < CODE_SHARE:
            code = self.rng.choices(ACCOUNT_CODES, weights=CODE_WEIGHTS)[0]
            self.by_code[code] += 1
        if st.direction == "Inbound" and self.rng.random() < TRANSFER_SHARE:
            self.transferred += 1

    def _abandon(self, at: int) -> list[Event]:
        events = []
        for group, queue in self.queues.items():
            staying = []
            for call in queue:
                if at - call.arrived_ms >= call.patience_ms:
                    self.totals[group].abandoned += 1
                    events.append(Event(at, "abandon", group, wait_ms=at - call.arrived_ms))
                else:
                    staying.append(call)
            self.queues[group] = staying
        return events

    def _arrive(self, at: int) -> list[Event]:
        events = []
        hour = local_hour(at, self.offset_minutes)
        arrivals: list[str] = []
        for group in GROUPS:
            rate = excess_per_hour(hour, self.demo_floor) * GROUP_SHARE[group] / 3600.0
            arrivals += [group] * _poisson(self.rng, rate * STEP_MS / 1000)
        if self.demo_floor > 0 and at >= self.next_floor_ms:
            # The floor comes as a regular trickle, not Poisson: no long silent stretches.
            arrivals += self.rng.choices(GROUPS, weights=[GROUP_SHARE[g] for g in GROUPS])
            gap_ms = 3_600_000 / self.demo_floor * self.rng.uniform(0.5, 1.5)
            self.next_floor_ms = at + max(STEP_MS, round(gap_ms / STEP_MS) * STEP_MS)
        for group in arrivals:
            patience = self._sample_ms(PATIENCE_MEDIAN_S, PATIENCE_SIGMA)
            routed = at + self.rng.randint(*ROUTING_S) * 1000
            self.queues[group].append(Call(group, at, patience, routed))
            self.by_direction["Inbound"] += 1
            events.append(Event(at, "arrive", group))
        return events

    def _route(self, at: int) -> list[Event]:
        events = []
        for group, queue in self.queues.items():
            staffed = any(s.agent.group == group and s.state != OFF for s in self.agents.values())
            while queue and queue[0].routed_ms <= at:
                overflow = not staffed or at - queue[0].arrived_ms >= OVERFLOW_AFTER_MS
                idle = [
                    s
                    for s in self.agents.values()
                    if s.state == AVAILABLE and (overflow or s.agent.group == group)
                ]
                if not idle:
                    break
                agent = min(idle, key=lambda s: s.idle_since_ms)
                call = queue.pop(0)
                wait = at - call.arrived_ms
                self.totals[group].answered += 1
                self.totals[group].answered_wait_ms += wait
                self._start_talking(agent, at, "Inbound")
                events.append(Event(at, "answer", group, agent.agent.display, wait))
        return events

    def _idle_activity(self, at: int) -> list[Event]:
        events = []
        seconds = STEP_MS / 1000
        for name, st in self.agents.items():
            if st.state != AVAILABLE:
                continue
            roll = self.rng.random()
            if roll < OUTBOUND_PER_IDLE_S * seconds:
                kind = "Outbound"
            elif roll < (OUTBOUND_PER_IDLE_S + INTERNAL_PER_IDLE_S) * seconds:
                kind = "Internal"
            elif roll < (OUTBOUND_PER_IDLE_S + INTERNAL_PER_IDLE_S + AWAY_PER_IDLE_S) * seconds:
                st.state, st.until_ms = AWAY, at + self._sample_ms(AWAY_MEDIAN_S, AWAY_SIGMA)
                events.append(Event(at, "away", st.agent.group, name))
                continue
            else:
                continue
            self.by_direction[kind] += 1
            self._start_talking(st, at, kind)
            events.append(Event(at, kind.lower(), st.agent.group, name))
        return events

    # --- helpers ---------------------------------------------------------------------------

    def _start_talking(self, st: AgentState, at: int, direction: str) -> None:
        median = TALK_MEDIAN_S[st.agent.group] * (0.8 if direction != "Inbound" else 1.0)
        st.state, st.direction = TALKING, direction
        st.talk_since_ms = at
        st.until_ms = at + self._sample_ms(median, TALK_SIGMA)

    def _sample_ms(self, median_s: float, sigma: float) -> int:
        """Lognormal with the given median, rounded to the step grid (at least one step)."""
        seconds = self.rng.lognormvariate(math.log(median_s), sigma)
        return max(STEP_MS, round(seconds) * 1000)


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method; fine for the small per-step rates used here."""
    threshold, k, p = math.exp(-lam), 0, rng.random()
    while p > threshold:
        k += 1
        p *= rng.random()
    return k
