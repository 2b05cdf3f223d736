"""Injected faults: what is currently broken on purpose, and how a control request changes it.

Pure: :func:`apply_faults` validates a ``POST /_emulator/faults`` body against the current
:class:`Faults` and returns the new state plus the one-shot actions to perform now. The
engine and the HTTP layer read the state; nothing here touches sockets or clocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

# The metric whose values switch to an undocumented type under ``unknown_type``.
UNKNOWN_TYPE_METRIC = "AVLGRP01"
UNKNOWN_TYPE = "MAX_DURATION"

# Persistent on/off faults; the command line offers each as a flag too.
FLAGS = (
    "refuse",
    "stall_websockets",
    "array_frames",
    "malformed_values",
    "unknown_type",
    "z_timestamps",
    "no_millis",
    "hostile_names",
)
_ONE_SHOT = ("drop_websockets", "malformed_frame")
_KNOWN = {
    "clear",
    "latency_ms",
    "http_status",
    "count",
    "refused_metrics",
    "refuse_websockets",
    *FLAGS,
    *_ONE_SHOT,
}


@dataclass(frozen=True)
class Faults:
    """Persistent faults; every default means "behave normally"."""

    latency_ms: int = 0
    http_status: int | None = None
    count: int | None = None  # remaining REST answers with http_status; None = until cleared
    refuse: bool = False
    stall_websockets: bool = False
    array_frames: bool = False
    malformed_values: bool = False
    unknown_type: bool = False
    z_timestamps: bool = False
    no_millis: bool = False
    hostile_names: bool = False
    # Listed in the catalog, but values requests and subscriptions naming them answer 403 (a
    # metric assigned to another service user after the catalog was read, 4.2 / 5.0).
    refused_metrics: tuple[str, ...] = ()
    # Every websocket handshake answered with this HTTP status, as a proxy that blocks upgrades
    # would (REST goes on working).
    refuse_websockets: int | None = None

    def active(self) -> dict[str, Any]:
        """Only the fields that differ from normal behaviour (``{}`` when all is well)."""
        normal = Faults()
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) != getattr(normal, f.name)
        }

    def consume_status(self) -> tuple[int | None, Faults]:
        """The status a REST request must answer with now, and the state after it."""
        if self.http_status is None:
            return None, self
        if self.count is None:
            return self.http_status, self
        remaining = self.count - 1
        if remaining <= 0:
            return self.http_status, replace(self, http_status=None, count=None)
        return self.http_status, replace(self, count=remaining)


@dataclass(frozen=True)
class FaultActions:
    """One-shot things to do right away; never stored."""

    drop_websockets: bool = False
    malformed_frame: str | None = None
    changed: set[str] = field(default_factory=set)


def apply_faults(current: Faults, body: dict[str, Any]) -> tuple[Faults, FaultActions]:
    """Merge a control body into ``current``; raise ValueError on anything invalid.

    ``{}`` or ``{"clear": true}`` clears every fault first; other fields are merged, so a
    test can switch one fault on or off without restating the others.
    """
    unknown = set(body) - _KNOWN
    if unknown:
        raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
    clear = body.get("clear", False)
    if not isinstance(clear, bool):
        raise ValueError("clear must be true or false")
    base = Faults() if clear or not body else current
    updates: dict[str, Any] = {}
    for name in FLAGS:
        if name in body:
            updates[name] = _bool(body, name)
    if "latency_ms" in body:
        updates["latency_ms"] = _int(body, "latency_ms", minimum=0, maximum=600_000)
    if "http_status" in body or "count" in body:
        updates.update(_status_fields(body))
    if "refused_metrics" in body:
        updates["refused_metrics"] = _ids(body, "refused_metrics")
    if "refuse_websockets" in body:
        refused = body["refuse_websockets"]
        updates["refuse_websockets"] = (
            None if refused is None else _int(body, "refuse_websockets", minimum=400, maximum=599)
        )
    new = replace(base, **updates)
    actions = FaultActions(
        drop_websockets=_bool(body, "drop_websockets") if "drop_websockets" in body else False,
        malformed_frame=_frame(body),
        changed={f.name for f in fields(new) if getattr(new, f.name) != getattr(current, f.name)},
    )
    return new, actions


def _status_fields(body: dict[str, Any]) -> dict[str, Any]:
    status = body.get("http_status")
    if status is None:
        if body.get("count") is not None:
            raise ValueError("count needs an http_status")
        return {"http_status": None, "count": None}
    status = _int(body, "http_status", minimum=400, maximum=599)
    count = body.get("count")
    if count is not None:
        count = _int(body, "count", minimum=1, maximum=1_000_000)
    return {"http_status": status, "count": count}


def _ids(body: dict[str, Any], name: str) -> tuple[str, ...]:
    raw = body[name]
    if not isinstance(raw, list | tuple) or not all(isinstance(i, str) and i for i in raw):
        raise ValueError(f"{name} must be a list of metric ids")
    return tuple(dict.fromkeys(raw))


def _bool(body: dict[str, Any], name: str) -> bool:
    raw = body[name]
    if not isinstance(raw, bool):
        raise ValueError(f"{name} must be true or false")
    return raw


def _int(body: dict[str, Any], name: str, *, minimum: int, maximum: int) -> int:
    raw = body[name]
    if isinstance(raw, bool) or not isinstance(raw, int) or not minimum <= raw <= maximum:
        raise ValueError(f"{name} must be an integer from {minimum} to {maximum}")
    return raw


def _frame(body: dict[str, Any]) -> str | None:
    raw = body.get("malformed_frame")
    if raw is not None and (not isinstance(raw, str) or not raw):
        raise ValueError("malformed_frame must be a non-empty string")
    return raw
