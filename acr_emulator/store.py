"""Current values keyed by (metricId, categoryValue), and which metrics are warm.

A metric is cold until requested; the first request starts warming it and it is ready
``init_ms`` later. One not requested for ``cold_after_ms`` goes cold again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from acr_emulator.catalog import Catalog
from acr_emulator.valuemodel import MetricValue, settle

Key = tuple[str, str]


class ValueStore:
    def __init__(self, catalog: Catalog, initial: dict[Key, MetricValue]) -> None:
        self.catalog = catalog
        self._values = dict(initial)
        self.pinned: set[Key] = set()

    def get(self, key: Key) -> MetricValue:
        return self._values[key]

    def items_for(self, metric_id: str) -> list[tuple[Key, MetricValue]]:
        """The metric's values in categorySelection order."""
        metric = self.catalog.get(metric_id)
        assert metric is not None
        keys = [(metric_id, cv) for cv in metric.category_values]
        return [(key, self._values[key]) for key in keys]

    def apply(self, readings: dict[Key, MetricValue]) -> list[Key]:
        """Merge fresh readings; return the keys whose value really changed.

        Pinned keys (set through the control API) are left alone by the simulation.
        """
        changed = []
        for key, reading in readings.items():
            if key in self.pinned:
                continue
            old = self._values.get(key)
            new = settle(old, reading)
            if new is not old:
                self._values[key] = new
                changed.append(key)
        return changed

    def put(self, key: Key, value: MetricValue, *, pin: bool = True) -> None:
        self._values[key] = value
        if pin:
            self.pinned.add(key)
        else:
            self.pinned.discard(key)


@dataclass
class _Warmth:
    started_ms: int
    last_request_ms: int


class Warmth:
    def __init__(self, *, init_ms: int, cold_after_ms: int) -> None:
        self.init_ms = init_ms
        self.cold_after_ms = cold_after_ms
        self._state: dict[str, _Warmth] = {}

    def touch(self, metric_ids: Iterable[str], now_ms: int) -> None:
        """Record a request; a cold metric starts warming now."""
        for metric_id in metric_ids:
            state = self._state.get(metric_id)
            if state is None or now_ms - state.last_request_ms > self.cold_after_ms:
                self._state[metric_id] = _Warmth(now_ms, now_ms)
            else:
                state.last_request_ms = max(state.last_request_ms, now_ms)

    def keep_warm(self, metric_ids: Iterable[str], now_ms: int) -> None:
        """An open subscription keeps its metrics warm however much time jumps."""
        for metric_id in metric_ids:
            state = self._state.get(metric_id)
            if state is None:
                self._state[metric_id] = _Warmth(now_ms, now_ms)
            else:
                state.last_request_ms = max(state.last_request_ms, now_ms)

    def is_ready(self, metric_id: str, now_ms: int) -> bool:
        if self.init_ms == 0:
            return True
        state = self._state.get(metric_id)
        if state is None or now_ms - state.last_request_ms > self.cold_after_ms:
            return False
        return now_ms >= state.started_ms + self.init_ms

    def chill(self) -> None:
        """Every metric cold again."""
        self._state.clear()
