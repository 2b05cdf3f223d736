"""The emulated server's state and behaviour, independent of HTTP.

Ties together the clock, the catalog, the value store, warm/cold tracking, the simulation
and the websocket hub. ``tick()`` is the one place that moves time forward and emits
changes; the aiohttp layer only translates requests into calls on :class:`Emulator`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections import Counter
from typing import Any

from acr_emulator.catalog import NONE, Catalog, MetricDef, agent_mapping
from acr_emulator.clock import EmulatorClock
from acr_emulator.config import EmulatorConfig
from acr_emulator.faults import UNKNOWN_TYPE, UNKNOWN_TYPE_METRIC, Faults, apply_faults
from acr_emulator.hub import ABNORMAL, Hub, Subscriber
from acr_emulator.naming import Naming
from acr_emulator.readings import read_center, read_static
from acr_emulator.simulation import ContactCenter
from acr_emulator.store import Key, ValueStore, Warmth
from acr_emulator.valuemodel import CountValue, MetricValue, value_from_json, value_to_json

log = logging.getLogger(__name__)

TICK_SECONDS = 0.1
FRAME_CACHE_SIZE = 4096  # encoded {key, value} items kept (the catalog has a few dozen keys)


class Emulator:
    def __init__(self, config: EmulatorConfig, clock: EmulatorClock | None = None) -> None:
        self.config = config
        self.clock = clock or EmulatorClock(skew_ms=config.skew_ms)
        self.catalog = Catalog()
        self.auth_key = config.auth_key
        self.strict = config.strict  # the control API may switch it
        self.offset_minutes = config.offset_minutes
        now = self.clock.now_ms()
        self.center: ContactCenter | None = None
        if config.scenario == "demo":
            self.center = ContactCenter(
                config.seed,
                now,
                self.offset_minutes,
                demo_floor=config.demo_floor,
                busy=config.demo_busy,
            )
            initial = read_center(self.center, self.catalog, now)
        else:
            initial = read_static(self.catalog, now)
        self.store = ValueStore(self.catalog, initial)
        self.warmth = Warmth(
            init_ms=round(config.init_seconds * 1000),
            cold_after_ms=round(config.cold_after_seconds * 1000),
        )
        self.hub = Hub()
        self.requests: Counter[str] = Counter(catalog=0, values=0, mapping=0)
        self.values_ids_total = 0
        self.ws_total = 0
        self.faults = Faults()
        self.naming = Naming()
        self._frames: dict[tuple[Key, MetricValue], str] = {}
        self._frames_state: tuple[Any, ...] = ()
        self.set_faults(config.faults.active())

    # --- auth -----------------------------------------------------------------------------

    def check_access(self, metric_ids: list[str]) -> int | None:
        """404 for an unknown id, 403 for one this service user may not read (unassigned, or
        refused by the ``refused_metrics`` fault), else None."""
        denied = self.catalog.check_access(metric_ids)
        if denied is None and set(metric_ids) & set(self.faults.refused_metrics):
            return 403
        return denied

    def key_matches(self, token: str | None) -> bool:
        if not token:
            return False
        return hmac.compare_digest(token.encode(), self.auth_key.encode())

    def rotate_key(self, key: str) -> None:
        self.auth_key = key

    # --- wire shapes --------------------------------------------------------------------

    def category_out(self, metric: MetricDef, category_value: str) -> str | None:
        """How a categoryValue is spelled on the wire (``--none-category``, hostile names)."""
        if metric.category_type != NONE:
            return self.naming.value(category_value)
        name = self.naming.metric_name(metric.metric_id, metric.name)
        return {"empty": "", "null": None, "name": name}[self.config.none_category]

    def listing(self) -> list[dict[str, Any]]:
        """``GET realtime/metrics``: the metrics assigned to this service user."""
        return [
            {
                "metricId": metric.metric_id,
                "metricName": self.naming.metric_name(metric.metric_id, metric.name),
                "categoryType": metric.category_type,
                "categorySelection": [self.naming.value(cv) for cv in metric.selection],
            }
            for metric in self.catalog.visible()
        ]

    def mapping(self) -> dict[str, str]:
        """``GET agents/mapping``, spelled like the AGENT category values."""
        return {agent_id: self.naming.value(name) for agent_id, name in agent_mapping().items()}

    def key_json(self, key: Key) -> dict[str, Any]:
        metric = self.catalog.get(key[0])
        assert metric is not None
        return {"metricId": key[0], "categoryValue": self.category_out(metric, key[1])}

    def result_json(self, key: Key, value: MetricValue) -> dict[str, Any]:
        faults = self.faults
        body = value_to_json(
            value, self.offset_minutes, zulu=faults.z_timestamps, millis=not faults.no_millis
        )
        if faults.unknown_type and key[0] == UNKNOWN_TYPE_METRIC:
            # An undocumented type, as the real server might have (spec section 6.5).
            extra = 60_000 * value.count if isinstance(value, CountValue) else 0
            body = {
                "lastUpdateTime": body["lastUpdateTime"],
                "maxDuration": 1234 + extra,
                "type": UNKNOWN_TYPE,
            }
        return {"key": self.key_json(key), "value": body}

    def frame(self, key: Key, value: MetricValue) -> str:
        """One ``{key, value}`` item as JSON text: a websocket frame, or an item of a values
        answer's ``results``.

        Encoded once per (key, value) and wire spelling, then shared by every subscriber and
        every values request until the value or the spelling (faults, names) changes.
        """
        faults = self.faults
        state = (
            self.offset_minutes,
            faults.z_timestamps,
            faults.no_millis,
            faults.unknown_type,
            self.naming.hostile,
        )
        if state != self._frames_state:
            self._frames.clear()
            self._frames_state = state
        text = self._frames.get((key, value))
        if text is None:
            if len(self._frames) >= FRAME_CACHE_SIZE:
                self._frames.clear()
            text = json.dumps(self.result_json(key, value), ensure_ascii=False)
            self._frames[(key, value)] = text
        return text

    def initializing_items(self, metric: MetricDef) -> list[Any]:
        form = self.config.initializing_form
        if form == "id":
            return [metric.metric_id]
        keys = [(metric.metric_id, cv) for cv in metric.category_values]
        if form == "object":
            return [self.key_json(key) for key in keys]
        if metric.category_type == NONE:
            return [metric.metric_id]
        return [f"{metric_id}:{cv}" for metric_id, cv in keys]

    # --- reads ------------------------------------------------------------------------------

    def read(self, metric_ids: list[str]) -> tuple[str, bool]:
        """A values request's JSON body, ``{"results": [..], "initializing": [..]}``, and
        whether anything is initializing. The request warms the metrics."""
        now = self.clock.now_ms()
        self.warmth.touch(metric_ids, now)
        results: list[str] = []
        initializing: list[Any] = []
        for metric_id in metric_ids:
            metric = self.catalog.get(metric_id)
            assert metric is not None
            if self.warmth.is_ready(metric_id, now):
                results += [self.frame(k, v) for k, v in self.store.items_for(metric_id)]
            else:
                initializing += self.initializing_items(metric)
        # Byte for byte what json.dumps(body, ensure_ascii=False) gives, from cached items.
        tail = json.dumps(initializing, ensure_ascii=False)
        return '{"results": [' + ", ".join(results) + '], "initializing": ' + tail + "}", bool(
            initializing
        )

    # --- subscriptions ----------------------------------------------------------------------

    def subscribe(self, ws: Any, metric_ids: list[str]) -> Subscriber:
        """Register a socket, warm its metrics and queue the snapshot of the ready ones."""
        sub = self.hub.add(ws, metric_ids)
        self.ws_total += 1
        now = self.clock.now_ms()
        self.warmth.touch(sub.metric_ids, now)
        self._promote(sub, now)
        return sub

    def _promote(self, sub: Subscriber, now: int) -> None:
        for metric_id in [m for m in sub.metric_ids if m in sub.pending]:
            if self.warmth.is_ready(metric_id, now):
                sub.pending.discard(metric_id)
                frames = [self.frame(k, v) for k, v in self.store.items_for(metric_id)]
                if self.faults.array_frames:
                    frames = ["[" + ",".join(frames) + "]"]
                self.hub.offer(sub, frames)

    # --- writes -----------------------------------------------------------------------------

    def set_value(
        self, metric_id: Any, category_value: Any, data: Any, *, pin: bool = True
    ) -> dict[str, Any]:
        """Control API: replace one value and push it.

        A pinned value is left alone by the simulation; unpinned, the next step may replace it.
        """
        return self.set_values([(metric_id, category_value, data)], pin=pin)[0]

    def set_values(
        self, items: list[tuple[Any, Any, Any]], *, pin: bool = True
    ) -> list[dict[str, Any]]:
        """Control API: replace several values in one simulation step, pushed together (as a
        tick that changes many metrics pushes them). All are checked before any is stored."""
        changes = [self._checked_value(*item) for item in items]
        for key, value in changes:
            self.store.put(key, value, pin=pin)
        self._publish([key for key, _ in changes])
        return [self.result_json(key, value) for key, value in changes]

    def _checked_value(
        self, metric_id: Any, category_value: Any, data: Any
    ) -> tuple[Key, MetricValue]:
        metric = self.catalog.get(metric_id) if isinstance(metric_id, str) else None
        if metric is None:
            raise LookupError(f"unknown metricId {metric_id!r}")
        if metric.category_type == NONE and category_value in ("", None, metric.name):
            category_value = ""
        elif isinstance(category_value, str):
            category_value = self.naming.plain(category_value)
        if category_value not in metric.category_values:
            raise LookupError(f"{metric_id} has no categoryValue {category_value!r}")
        value = value_from_json(data, default_ms=self.clock.now_ms())
        if value.type != metric.value_type:
            raise ValueError(f"{metric_id} holds {metric.value_type} values, not {value.type}")
        return (metric.metric_id, category_value), value

    def chill(self) -> None:
        """Control API: every metric cold again; subscribers get a fresh snapshot when ready."""
        self.warmth.chill()
        self.hub.mark_all_pending()

    def _publish(self, keys: list[Key]) -> None:
        by_metric: dict[str, list[str]] = {}
        for key in keys:
            by_metric.setdefault(key[0], []).append(self.frame(key, self.store.get(key)))
        self.hub.publish_many(by_metric, as_array=self.faults.array_frames)

    # --- faults -----------------------------------------------------------------------------

    def set_faults(self, body: dict[str, Any]) -> dict[str, Any]:
        """Control API: change the injected faults (see :mod:`acr_emulator.faults`)."""
        self.faults, actions = apply_faults(self.faults, body)
        self.naming.hostile = self.faults.hostile_names
        self.hub.set_stalled(self.faults.stall_websockets)
        if actions.drop_websockets:
            for sub in list(self.hub.subscribers):
                self.hub.drop(sub, ABNORMAL)
        if actions.malformed_frame is not None:
            self.hub.broadcast(actions.malformed_frame)
        if "unknown_type" in actions.changed:
            metric_keys = [key for key, _ in self.store.items_for(UNKNOWN_TYPE_METRIC)]
            self._publish(metric_keys)
        return self.faults.active()

    def take_status_fault(self) -> int | None:
        """The status the next REST answer must have under ``http_status`` (counts it down)."""
        status, self.faults = self.faults.consume_status()
        return status

    # --- time -------------------------------------------------------------------------------

    def tick(self) -> None:
        """Step the simulation up to now, push changes, send snapshots of newly ready metrics."""
        now = self.clock.now_ms()
        self.warmth.keep_warm(self.hub.metric_ids(), now)
        if self.center is not None:
            before = self.center.now_ms
            self.center.advance_to(now)
            if self.center.now_ms != before:
                readings = read_center(self.center, self.catalog, self.center.now_ms)
                self._publish(self.store.apply(readings))
        for sub in list(self.hub.subscribers):
            if sub.pending:
                self._promote(sub, now)

    async def run(self) -> None:
        """The ticker: poll the emulator clock a few times per emulated step."""
        while True:
            try:
                self.tick()
            except Exception:  # a bug in one tick must not stop the emulator
                log.exception("emulator tick failed")
            await asyncio.sleep(TICK_SECONDS)

    def stats(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "requests_total": sum(self.requests.values()),
            "values_ids_total": self.values_ids_total,
            "ws_open": len(self.hub.subscribers),
            "ws_total": self.ws_total,
        }
