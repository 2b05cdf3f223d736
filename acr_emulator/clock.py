"""The emulator's clock: real time plus a skew, or a manual clock for tests.

The upstream's clock is not the client's: ``skew_ms`` lets the emulator run ahead of (or
behind) the host so a client's clock-offset handling can be exercised.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


class EmulatorClock:
    """Milliseconds since the epoch as the emulated server sees them."""

    def __init__(self, *, skew_ms: int = 0, start_ms: int | None = None) -> None:
        self.skew_ms = skew_ms
        self._manual_ms = start_ms
        self._advanced_ms = 0

    @classmethod
    def manual(cls, start_ms: int, *, skew_ms: int = 0) -> EmulatorClock:
        """A clock that only moves when told to (``advance``)."""
        return cls(skew_ms=skew_ms, start_ms=start_ms)

    @property
    def is_manual(self) -> bool:
        return self._manual_ms is not None

    def now_ms(self) -> int:
        base = self._manual_ms if self._manual_ms is not None else time.time_ns() // 1_000_000
        return base + self._advanced_ms + self.skew_ms

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ms() / 1000, tz=UTC)

    def advance(self, ms: int) -> None:
        """Jump forward; time never runs backwards through ``advance``."""
        if ms < 0:
            raise ValueError("advance_ms must be >= 0")
        self._advanced_ms += ms

    def set_skew(self, ms: int) -> None:
        self.skew_ms = ms
