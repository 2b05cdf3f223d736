"""Emulator options: one frozen dataclass, validated once at construction."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from acr_emulator.faults import Faults

Scenario = Literal["demo", "static"]
InitializingForm = Literal["id", "combo", "object"]
NoneCategory = Literal["empty", "null", "name"]

DEFAULT_PREFIX = "/rest/api/v1"
ALTERNATE_PREFIX = "/api/v1"

_OFFSET_RE = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def parse_utc_offset(text: str) -> int:
    """Return the offset in minutes for ``±HH:MM`` (e.g. ``-06:00`` -> -360)."""
    match = _OFFSET_RE.match(text)
    if not match:
        raise ValueError(f"UTC offset must look like -06:00, got {text!r}")
    sign, hours, minutes = match.groups()
    if int(hours) > 14 or int(minutes) > 59:
        raise ValueError(f"UTC offset out of range: {text!r}")
    total = int(hours) * 60 + int(minutes)
    return -total if sign == "-" else total


def normalize_prefix(prefix: str) -> str:
    """``rest/api/v1/`` -> ``/rest/api/v1``."""
    cleaned = "/" + prefix.strip().strip("/")
    if cleaned == "/":
        raise ValueError("prefix must not be empty")
    return cleaned


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything the CLI can set. Times in seconds, like the CLI flags."""

    auth_key: str
    host: str = "127.0.0.1"
    port: int = 8081
    seed: int = 1
    prefix: str = DEFAULT_PREFIX
    skew_ms: int = 0
    utc_offset: str = "-06:00"
    scenario: Scenario = "demo"
    init_seconds: float = 3.0
    cold_after_seconds: float = 600.0
    not_ready_status: int = 206
    initializing_form: InitializingForm = "id"
    none_category: NoneCategory = "empty"
    # Minimum inbound calls per hour in the demo, whatever the hour: the board always moves.
    demo_floor: float = 45.0
    # Every demo agent on shift and a busy call rate, whatever the hour; off: the daily rota.
    demo_busy: bool = True
    # Answer only the documented id forms (see server.request_ids); off: accept every form.
    strict: bool = False
    # Faults active from start-up (CLI flags); the control API changes them later.
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        if not self.auth_key:
            raise ValueError("an auth key is required")
        object.__setattr__(self, "prefix", normalize_prefix(self.prefix))
        parse_utc_offset(self.utc_offset)
        _require(self.scenario in ("demo", "static"), f"unknown scenario {self.scenario!r}")
        _require(self.not_ready_status in (206, 400), "not_ready_status must be 206 or 400")
        _require(
            self.initializing_form in ("id", "combo", "object"),
            f"unknown initializing form {self.initializing_form!r}",
        )
        _require(
            self.none_category in ("empty", "null", "name"),
            f"unknown none category {self.none_category!r}",
        )
        _require(self.init_seconds >= 0, "init_seconds must be >= 0")
        _require(self.cold_after_seconds > 0, "cold_after_seconds must be > 0")
        _require(0 <= self.demo_floor <= 3600, "demo_floor must be from 0 to 3600 calls/hour")

    @property
    def offset_minutes(self) -> int:
        return parse_utc_offset(self.utc_offset)

    @property
    def prefixes(self) -> tuple[str, ...]:
        """The configured prefix first, then both documented ones (deduplicated)."""
        ordered = (self.prefix, DEFAULT_PREFIX, ALTERNATE_PREFIX)
        return tuple(dict.fromkeys(ordered))


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)
