"""A small contact center behind the demo numbers.

Inbound calls arrive as a Poisson process whose rate follows a daily curve, wait in a queue
per group, are answered by an available agent of that group or abandon when the caller's
patience runs out. Agents go talking -> after-call work -> available, take the odd break and
place some outbound and internal calls. Everything happens on a one-second grid of emulator
time and is deterministic given the seed and the start time.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from acr_emulator.catalog import ACCOUNT_CODES, AGENTS, DIRECTIONS, GROUPS, Agent

STEP_MS = 1000
DAY_MS = 86_400_000
HOUR_MS = 3_600_000

PEAK_INBOUND_PER_HOUR = 240.0
GROUP_SHARE = {"Sales": 0.4, "Support": 0.4, "Billing": 0.2}
TALK_MEDIAN_S = {"Sales": 70.0, "Support": 90.0, "Billing": 60.0}
TALK_SIGMA = 0.55
ACW_MEDIAN_S, ACW_SIGMA = 10.0, 0.4
PATIENCE_MEDIAN_S, PATIENCE_SIGMA = 90.0, 0.6
AWAY_MEDIAN_S, AWAY_SIGMA = 240.0, 0.5
OUTBOUND_PER_IDLE_S = 1 / 300
INTERNAL_PER_IDLE_S = 1 / 900
AWAY_PER_IDLE_S = 1 / 2400
CODE_SHARE = 0.6
CODE_WEIGHTS = (5, 3, 2, 1)
TRANSFER_SHARE = 0.05

AVAILABLE, TALKING, ACW, AWAY = "available", "talking", "acw", "away"


def daily_load(hour: float) -> float:
    """Relative inbound load in [0.55, 1]: busiest mid-morning and mid-afternoon.

    The floor is high on purpose: the demo must show movement at any hour.
    """
    morning = math.exp(-(((hour - 10.5) / 1.6) ** 2) / 2)
    afternoon = 0.85 * math.exp(-(((hour - 14.5) / 1.8) ** 2) / 2)
    return 0.55 + 0.45 * max(morning, afternoon)


def inbound_rate_per_s(group: str, hour: float) -> float:
    return PEAK_INBOUND_PER_HOUR * GROUP_SHARE[group] * daily_load(hour) / 3600.0


def local_hour(ms: int, offset_minutes: int) -> float:
    return ((ms + offset_minutes * 60_000) % DAY_MS) / HOUR_MS


def local_day(ms: int, offset_minutes: int) -> int:
    return (ms + offset_minutes * 60_000) // DAY_MS


def expected_inbound_since_midnight(group: str, hour: float) -> float:
    """Integral of the arrival rate from local midnight to ``hour`` (5-minute steps)."""
    steps = int(hour * 12)
    per_step = [inbound_rate_per_s(group, i / 12) * 300 for i in range(steps)]
    return sum(per_step) + inbound_rate_per_s(group, hour) * (hour * 12 - steps) * 300


@dataclass
class Call:
    group: str
    arrived_ms: int
    patience_ms: int


@dataclass
class AgentState:
    agent: Agent
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
    rng: random.Random = field(init=False)
    now_ms: int = field(init=False)
    queues: dict[str, list[Call]] = field(init=False)
    totals: dict[str, GroupTotals] = field(init=False)
    by_direction: dict[str, int] = field(init=False)
    by_code: dict[str, int] = field(init=False)
    transferred: int = field(init=False, default=0)
    agents: dict[str, AgentState] = field(init=False)
    day: int = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 - a seeded simulation, not crypto
        self.now_ms = self.start_ms
        self.queues = {group: [] for group in GROUPS}
        self.totals = {group: GroupTotals() for group in GROUPS}
        self.by_direction = dict.fromkeys(DIRECTIONS, 0)
        self.by_code = dict.fromkeys(ACCOUNT_CODES, 0)
        self.agents = {a.display: AgentState(a, idle_since_ms=self.start_ms) for a in AGENTS}
        self.day = local_day(self.start_ms, self.offset_minutes)
        _seed_day(self)

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
        for group in GROUPS:
            for _ in range(_poisson(self.rng, inbound_rate_per_s(group, hour) * STEP_MS / 1000)):
                patience = self._sample_ms(PATIENCE_MEDIAN_S, PATIENCE_SIGMA)
                self.queues[group].append(Call(group, at, patience))
                self.by_direction["Inbound"] += 1
                events.append(Event(at, "arrive", group))
        return events

    def _route(self, at: int) -> list[Event]:
        events = []
        for group, queue in self.queues.items():
            while queue:
                idle = [s for s in self.agents.values() if _available_in(s, group)]
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


def _available_in(st: AgentState, group: str) -> bool:
    return st.state == AVAILABLE and st.agent.group == group


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method; fine for the small per-step rates used here."""
    threshold, k, p = math.exp(-lam), 0, rng.random()
    while p > threshold:
        k += 1
        p *= rng.random()
    return k


def _seed_day(center: ContactCenter) -> None:
    """Plausible "today so far" totals and a live floor, so the demo never starts at zero."""
    rng, at = center.rng, center.start_ms
    hour = local_hour(at, center.offset_minutes)
    inbound_total = 0
    for group in GROUPS:
        offered = round(expected_inbound_since_midnight(group, hour) * rng.uniform(0.9, 1.1))
        abandoned = round(offered * rng.uniform(0.03, 0.08))
        answered = offered - abandoned
        totals = center.totals[group]
        totals.answered, totals.abandoned = answered, abandoned
        totals.answered_wait_ms = answered * rng.randint(12_000, 35_000)
        inbound_total += offered
        members = [s for s in center.agents.values() if s.agent.group == group]
        for st in members:
            share = answered / len(members) * rng.uniform(0.8, 1.2)
            st.talk_done_ms = round(share * TALK_MEDIAN_S[group] * 1130)
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
        if roll < 0.55:
            center._start_talking(st, at, "Inbound")
            elapsed = rng.randint(0, 60) * 1000
            # The current call started before the emulator did; today's total includes it.
            st.talk_since_ms = at - elapsed
            st.talk_done_ms = max(0, st.talk_done_ms - elapsed)
        elif roll < 0.65:
            st.state, st.until_ms = ACW, at + rng.randint(1, 10) * 1000
        elif roll < 0.7:
            st.state, st.until_ms = AWAY, at + rng.randint(30, 300) * 1000
    for group in GROUPS:
        if not any(_available_in(s, group) for s in center.agents.values()):
            for _ in range(rng.randint(0, 2)):
                patience = center._sample_ms(PATIENCE_MEDIAN_S, PATIENCE_SIGMA)
                arrived = at - rng.randint(1, 40) * 1000
                center.queues[group].append(Call(group, arrived, max(patience, 45_000)))
        center.queues[group].sort(key=lambda call: call.arrived_ms)
