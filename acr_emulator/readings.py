"""Turn simulation state into metric values, and the fixed values of the static scenario.

Pure: each function takes the time to read at. A value read at ``at_ms`` carries
``lastUpdateTime = at_ms``; the store keeps the previous value when nothing really changed.
"""

from __future__ import annotations

from collections.abc import Callable

from acr_emulator.catalog import ACCOUNT_CODES, AGENTS, DIRECTIONS, GROUPS, Catalog, MetricDef
from acr_emulator.simulation import AVAILABLE, ContactCenter
from acr_emulator.valuemodel import (
    MAX_DURATION,
    AverageDurationValue,
    CountValue,
    DurationValue,
    MetricValue,
)

Key = tuple[str, str]
Reader = Callable[[ContactCenter, str, int], MetricValue]


def _calls_in_queue(c: ContactCenter, group: str, at: int) -> MetricValue:
    return CountValue(at, len(c.queues[group]))


def _longest_wait(c: ContactCenter, group: str, at: int) -> MetricValue:
    queue = c.queues[group]
    if not queue:
        return DurationValue(at, 0, 0, 0)
    return DurationValue(at, at - queue[0].arrived_ms, 1, 0)


def _longest_wait_all(c: ContactCenter, _: str, at: int) -> MetricValue:
    arrived = [call.arrived_ms for queue in c.queues.values() for call in queue]
    if not arrived:
        return DurationValue(at, 0, 0, 0, MAX_DURATION)
    return DurationValue(at, at - min(arrived), 1, 0, MAX_DURATION)


def _average_wait(c: ContactCenter, group: str, at: int) -> MetricValue:
    # Answered calls contribute their final wait; calls still waiting keep counting up.
    totals, queue = c.totals[group], c.queues[group]
    waiting_ms = sum(at - call.arrived_ms for call in queue)
    return AverageDurationValue(
        at,
        totals.answered_wait_ms + waiting_ms,
        len(queue),
        0,
        totals.answered + len(queue),
    )


def _agent_talk(c: ContactCenter, agent: str, at: int) -> MetricValue:
    st = c.agents[agent]
    if st.talk_since_ms is None:
        return DurationValue(at, st.talk_done_ms, 0, 0)
    return DurationValue(at, st.talk_done_ms + at - st.talk_since_ms, 1, 0)


def _agents_available(c: ContactCenter, group: str, at: int) -> MetricValue:
    count = sum(1 for s in c.agents.values() if s.agent.group == group and s.state == AVAILABLE)
    return CountValue(at, count)


READERS: dict[str, Reader] = {
    "calls_in_queue": _calls_in_queue,
    "longest_wait": _longest_wait,
    "longest_wait_all": _longest_wait_all,
    "average_wait": _average_wait,
    "agent_talk": _agent_talk,
    "agents_available": _agents_available,
    "answered_today": lambda c, _, at: CountValue(at, sum(t.answered for t in c.totals.values())),
    "abandoned_today": lambda c, group, at: CountValue(at, c.totals[group].abandoned),
    "by_direction": lambda c, direction, at: CountValue(at, c.by_direction[direction]),
    "by_code": lambda c, code, at: CountValue(at, c.by_code[code]),
    "transferred_today": lambda c, _, at: CountValue(at, c.transferred),
}


def read_center(center: ContactCenter, catalog: Catalog, at_ms: int) -> dict[Key, MetricValue]:
    """Every (metricId, categoryValue) value of the catalog, read from the simulation."""
    values: dict[Key, MetricValue] = {}
    for metric in catalog.metrics:
        reader = READERS[metric.measure]
        for category_value in metric.category_values:
            values[(metric.metric_id, category_value)] = reader(center, category_value, at_ms)
    return values


# --- static scenario ----------------------------------------------------------------------

_STATIC_COUNTS: dict[str, dict[str, int]] = {
    "calls_in_queue": {"Sales": 3, "Support": 1, "Billing": 0},
    "agents_available": {"Sales": 1, "Support": 0, "Billing": 2},
    "answered_today": {"": 412},
    "abandoned_today": {"Sales": 9, "Support": 14, "Billing": 3},
    "by_direction": dict(zip(DIRECTIONS, (455, 118, 37), strict=True)),
    "by_code": dict(zip(ACCOUNT_CODES, (120, 71, 48, 12), strict=True)),
    "transferred_today": {"": 21},
}


def static_value(metric: MetricDef, category_value: str, at_ms: int) -> MetricValue:
    """Fixed, hand-picked values: the static scenario's contract for deterministic tests."""
    if metric.measure in _STATIC_COUNTS:
        return CountValue(at_ms, _STATIC_COUNTS[metric.measure][category_value])
    if metric.measure == "longest_wait":
        waits = {"Sales": 45_000, "Support": 12_000, "Billing": 0}
        wait = waits[category_value]
        return DurationValue(at_ms, wait, 1 if wait else 0, 0)
    if metric.measure == "longest_wait_all":  # the longest of the groups' longest waits
        return DurationValue(at_ms, 45_000, 1, 0, MAX_DURATION)
    if metric.measure == "average_wait":
        index = GROUPS.index(category_value)
        waiting = _STATIC_COUNTS["calls_in_queue"][category_value]
        return AverageDurationValue(at_ms, 2_400_000 + 600_000 * index, waiting, 0, 120 - index)
    if metric.measure == "agent_talk":
        index = [a.display for a in AGENTS].index(category_value)
        return DurationValue(at_ms, 1_800_000 + 60_000 * index, index % 2, 0)
    raise KeyError(metric.measure)


def read_static(catalog: Catalog, at_ms: int) -> dict[Key, MetricValue]:
    return {
        (metric.metric_id, cv): static_value(metric, cv, at_ms)
        for metric in catalog.metrics
        for cv in metric.category_values
    }
