"""The demo metric catalog: the API-enabled metric profiles a service user would see.

A metric is ``{metricId, metricName, categoryType, categorySelection, value type}`` plus the
emulator-only ``measure`` (what the simulation computes) and ``assigned`` (whether this
service user may read it; unassigned metrics exist but answer 403).
"""

from __future__ import annotations

from dataclasses import dataclass

from acr_emulator.valuemodel import AVERAGE_DURATION, COUNT, DURATION, MAX_DURATION

AGENT = "AGENT"
GROUP = "GROUP"
CALL_DIRECTION = "CALL_DIRECTION"
ACCOUNT_CODE = "ACCOUNT_CODE"
NONE = "NONE"

GROUPS: tuple[str, ...] = ("Sales", "Support", "Billing")
DIRECTIONS: tuple[str, ...] = ("Inbound", "Outbound", "Internal")
ACCOUNT_CODES: tuple[str, ...] = ("1001", "2040", "3100", "7700")


@dataclass(frozen=True)
class Agent:
    agent_id: str
    name: str
    extension: str
    group: str

    @property
    def display(self) -> str:
        """The ``Name(ext)`` form used by categoryValue and the agent mapping."""
        return f"{self.name}({self.extension})"


AGENTS: tuple[Agent, ...] = (
    Agent("agarcia", "Ana García", "201", "Sales"),
    Agent("bokafor", "Ben Okafor", "202", "Sales"),
    Agent("cmartin", "Chloé Martin", "203", "Sales"),
    Agent("dpatel", "Dev Patel", "204", "Support"),
    Agent("eschmidt", "Emma Schmidt", "205", "Support"),
    Agent("fhaddad", "Farid Haddad", "206", "Support"),
    Agent("glee", "Grace Lee", "207", "Billing"),
    Agent("htanaka", "Hiro Tanaka", "208", "Billing"),
)


@dataclass(frozen=True)
class MetricDef:
    metric_id: str
    name: str
    category_type: str
    selection: tuple[str, ...]
    value_type: str
    measure: str
    assigned: bool = True

    @property
    def category_values(self) -> tuple[str, ...]:
        """Internal category values; a NONE metric has exactly one, spelled ``""``."""
        return self.selection if self.category_type != NONE else ("",)

    def listing(self) -> dict[str, object]:
        """The ``GET realtime/metrics`` element."""
        return {
            "metricId": self.metric_id,
            "metricName": self.name,
            "categoryType": self.category_type,
            "categorySelection": list(self.selection),
        }


def _agents() -> tuple[str, ...]:
    return tuple(agent.display for agent in AGENTS)


DEMO_METRICS: tuple[MetricDef, ...] = (
    MetricDef("CIQGRP01", "Calls in Queue", GROUP, GROUPS, COUNT, "calls_in_queue"),
    MetricDef("LWCGRP01", "Longest Waiting Call", GROUP, GROUPS, DURATION, "longest_wait"),
    MetricDef("AWTGRP01", "Average Wait Time", GROUP, GROUPS, AVERAGE_DURATION, "average_wait"),
    MetricDef("ATTAGT01", "Agent Talk Time", AGENT, _agents(), DURATION, "agent_talk"),
    MetricDef("AVLGRP01", "Agents Available", GROUP, GROUPS, COUNT, "agents_available"),
    MetricDef("CANTOD01", "Calls Answered Today", NONE, (), COUNT, "answered_today"),
    MetricDef("CABGRP01", "Calls Abandoned Today", GROUP, GROUPS, COUNT, "abandoned_today"),
    MetricDef("CBDDIR01", "Calls by Direction", CALL_DIRECTION, DIRECTIONS, COUNT, "by_direction"),
    MetricDef("CBACOD01", "Calls by Account Code", ACCOUNT_CODE, ACCOUNT_CODES, COUNT, "by_code"),
    # An undocumented value type carrying the documented DURATION fields (valuemodel).
    MetricDef(
        "LWCALL01", "Longest Waiting Call, All Groups", NONE, (), MAX_DURATION, "longest_wait_all"
    ),
    # Exists on the server but is assigned to another service user: 403, never listed.
    MetricDef("HIDDEN01", "Calls Transferred Today", NONE, (), COUNT, "transferred_today", False),
)


class Catalog:
    """Lookup over a fixed tuple of metric definitions."""

    def __init__(self, metrics: tuple[MetricDef, ...] = DEMO_METRICS) -> None:
        self.metrics = metrics
        self._by_id = {metric.metric_id: metric for metric in metrics}

    def get(self, metric_id: str) -> MetricDef | None:
        return self._by_id.get(metric_id)

    def visible(self) -> list[MetricDef]:
        return [metric for metric in self.metrics if metric.assigned]

    def keys(self) -> list[tuple[str, str]]:
        return [(m.metric_id, cv) for m in self.metrics for cv in m.category_values]

    def check_access(self, metric_ids: list[str]) -> int | None:
        """404 when any id is unknown, else 403 when any is unassigned, else None."""
        metrics = [self._by_id.get(metric_id) for metric_id in metric_ids]
        if any(metric is None for metric in metrics):
            return 404
        if any(metric is not None and not metric.assigned for metric in metrics):
            return 403
        return None


def agent_mapping() -> dict[str, str]:
    """``GET agents/mapping``: AgentId -> ``Name(ext)``."""
    return {agent.agent_id: agent.display for agent in AGENTS}
