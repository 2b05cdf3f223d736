"""Drill: the upstream is replaced by another server whose clock is 10 minutes behind.

The stack runs against emulator A until the TV shows A's values. Then emulator B starts (fresh
state, `--skew-ms -600000`, the same key) with other values for some tiles, and ACR_BASE_URL is
pointed at it the way a deploy would: the subscriber, beat and the worker (what reads the
setting) are stopped and started again with the new URL; Redis, the database, the web process
and the TV stay. Every value B sends is older, by its timestamp, than the one stored from A.

What a user must see: every tile shows B's value within one poll interval and a margin of B's
first request (B's count, B's average with no calls as "—" with no number, B's running
duration as B's own clock gives it), and no tile keeps showing A's number as live.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench.drills import runner
from bench.drills.observe import Truth, Watch, now_ms, raw_value, stop_watching, watch_board
from bench.drills.report import Result
from bench.drills.stack import BOARD_TILES, MARKER, Emulator, Stack, wait_for

Key = tuple[str, str]
POLL_S = 5.0  # ACR_POLL_SECONDS of the stack
RECOVERY_TARGET_S = POLL_S + 5.0  # one poll interval and a margin
WATCH_AFTER_SWITCH_S = 30.0  # past the staleness window (20 s + 2 s): A's numbers are wrong then
SKEW_MS = -600_000
AVERAGE: Key = ("AWTGRP01", "Sales")
DURATION: Key = ("LWCGRP01", "Sales")
ANSWERED: Key = ("CANTOD01", "")
AVAILABLE: Key = ("AVLGRP01", "Billing")
TILES: dict[Key, int | None] = {**BOARD_TILES, AVERAGE: None}


def count(n: int) -> dict[str, Any]:
    return {"type": "COUNT", "count": n}


def average(finished_ms: int, calls: int) -> dict[str, Any]:
    return {
        "type": "AVERAGE_DURATION",
        "finishedDuration": finished_ms,
        "numCountingUp": 0,
        "numCountingDown": 0,
        "count": calls,
    }


# What each upstream is set to hold (the other tiles keep the static scenario's values, the same
# on both). A's average is 03:20 and still; B's has no calls yet. B's longest wait started 5 s
# before it was set and ticks; A's has ticked since A started.
A_VALUES: dict[Key, dict[str, Any]] = {
    MARKER: count(11),
    ANSWERED: count(500),
    AVAILABLE: count(5),
    AVERAGE: average(600_000, 3),
}
B_VALUES: dict[Key, dict[str, Any]] = {
    MARKER: count(21),
    ANSWERED: count(7),
    AVAILABLE: count(2),
    AVERAGE: average(600_000, 0),
    DURATION: {"type": "DURATION", "finishedDuration": 5_000, "numCountingUp": 1},
}
B_COUNTS = {
    key: (B_VALUES[key]["count"] if key in B_VALUES else value)
    for key, value in TILES.items()
    if value is not None
}


def label(key: Key) -> str:
    return f"{key[0]}/{key[1] or '-'}"


async def set_values(emulator: Emulator, values: dict[Key, dict[str, Any]]) -> None:
    """Pushed together, as one tick of the upstream would."""
    items = [{"metricId": k[0], "categoryValue": k[1], "value": v} for k, v in values.items()]
    await emulator.control("values", {"values": items})


def from_b(value: dict[str, Any] | None) -> bool:
    """B's timestamps are 10 minutes behind the host clock, A's are not."""
    return bool(value) and value["last_update_ms"] < now_ms() + SKEW_MS / 2


def shows_b(watch: Watch, key: Key) -> bool:
    """The tile is live with B's value, as B's own clock gives it."""
    record = watch.client.view.records.get(key) or {}
    value = record.get("value")
    state, raw, text, _ = watch.tile(key)
    if state != "live" or not from_b(value):
        return False
    if key == AVERAGE:
        return raw is None and text == "—"
    if key == DURATION:
        truth = raw_value(value, now_ms() + SKEW_MS)
        return raw is not None and truth is not None and abs(raw - truth) <= 2000
    return raw == B_COUNTS[key]


def duration_off_ms(watch: Watch) -> float | None:
    """How far the running duration shown live from B's value is from what B's own clock
    gives (a clock offset not yet learned shows it 10 minutes long); None for anything else."""
    record = watch.client.view.records.get(DURATION) or {}
    value = record.get("value")
    state, raw, _, _ = watch.tile(DURATION)
    truth = raw_value(value, now_ms() + SKEW_MS)
    if state != "live" or not from_b(value) or raw is None or truth is None:
        return None
    return raw - truth


def shows_a_live(watch: Watch, key: Key) -> bool:
    record = watch.client.view.records.get(key) or {}
    value = record.get("value")
    return watch.tile(key)[0] == "live" and bool(value) and not from_b(value)


def screen(watch: Watch) -> dict[Key, str]:
    """Each tile's state and text, as the TV shows them now."""
    out = {}
    for key in TILES:
        state, _, text, ticks = watch.tile(key)
        out[key] = f"{state} '{text}'" + (" ticking" if ticks else "")
    return out


class Samples:
    """Every 0.1 s: when each tile last showed A's number as live, when all showed B's, every
    sample after that in which one did not, and every sample in which B's running duration was
    shown more than 2 s off."""

    def __init__(self, watch: Watch) -> None:
        self.watch = watch
        self.last_a: dict[Key, float] = {}
        self.all_b: list[float] = []
        self.states: dict[Key, set[str]] = {key: set() for key in TILES}
        self.not_b_after: list[tuple[float, str]] = []
        self.duration_off: list[tuple[float, float]] = []
        self.task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            now = time.monotonic()
            misses = [key for key in TILES if not shows_b(self.watch, key)]
            for key in TILES:
                self.states[key].add(self.watch.tile(key)[0])
                if shows_a_live(self.watch, key):
                    self.last_a[key] = now
            off = duration_off_ms(self.watch)
            if off is not None and abs(off) > 2000:
                self.duration_off.append((now, off))
            if not misses and self.watch.client.connected:
                self.all_b.append(now)
            elif self.all_b:
                shown = screen(self.watch)
                self.not_b_after += [(now, f"{label(k)} {shown[k]}") for k in misses]
            await asyncio.sleep(0.1)

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def first_request(emulator: Emulator, timeout: float = 60) -> float | None:
    """The monotonic time of the first upstream request B received (a REST request, or a
    websocket it opened), sampled every 20 ms."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        stats = await emulator.stats()
        if stats["requests_total"] or stats["ws_total"]:
            return time.monotonic()
        await asyncio.sleep(0.02)
    return None


async def drill(args: argparse.Namespace) -> list[Result]:
    async with Stack("upstream_replaced", tiles=TILES) as stack:
        await stack.start()
        truth = Truth(TILES)
        client, watch, task = await watch_board(stack, truth, list(TILES), texts=True)
        samples = Samples(watch)
        try:
            await set_values(stack.emulator, A_VALUES)
            for key, value in A_VALUES.items():
                if value["type"] == "COUNT":
                    truth.set(key, value["count"])
            a_average = lambda: watch.tile(AVERAGE)[2] == "03:20"  # noqa: E731
            if await wait_for(lambda: watch.all_live_and_true() and a_average(), 90) is None:
                raise SystemExit(f"the board never showed A's values: see {stack.dir}")
            await asyncio.sleep(3)
            before = screen(watch)

            b = stack.new_emulator()
            await stack.start_emulator("--skew-ms", str(SKEW_MS), emulator=b, name="emulator-b")
            await set_values(b, B_VALUES)
            asked = asyncio.create_task(first_request(b))
            samples.start()
            switch_at = time.monotonic()
            watch.mark("ACR_BASE_URL -> emulator B: subscriber, beat, worker restarted")
            stopped = await stack.repoint(b, "-b")
            for key, value in B_COUNTS.items():
                truth.set(key, value)
            b_asked = await asked
            if b_asked is None:
                raise SystemExit(f"nothing asked emulator B within 60 s: see {stack.dir}")
            watch.mark("B's first request")
            await wait_for(lambda: samples.all_b, 60, step=0.05)
            after = screen(watch)
            await asyncio.sleep(max(0.0, switch_at + WATCH_AFTER_SWITCH_S - time.monotonic()))
            end = screen(watch)
            b_stats = await b.stats()
        finally:
            await samples.stop()
            await stop_watching(client, watch, task)
        return [
            judge(stack, watch, samples, switch_at, b_asked, stopped, before, after, end, b_stats)
        ]


def judge(
    stack: Stack,
    watch: Watch,
    samples: Samples,
    switch_at: float,
    b_asked: float,
    stopped: dict[str, float],
    before: dict[Key, str],
    after: dict[Key, str],
    end: dict[Key, str],
    b_stats: dict[str, Any],
) -> Result:
    recovered = samples.all_b[0] - b_asked if samples.all_b else None
    last_a = {k: t - b_asked for k, t in samples.last_a.items()}
    a_late = {k: t for k, t in last_a.items() if t > (recovered or RECOVERY_TARGET_S)}
    wrong = [w for w in watch.wrong if w[0] >= switch_at]
    stale = sorted(label(k) for k, states in samples.states.items() if "stale" in states)
    between = sorted(label(k) for k, states in samples.states.items() if "initializing" in states)
    checks = {
        f"every tile shows B's value within {RECOVERY_TARGET_S:g} s of B's first request": (
            recovered is not None and recovered <= RECOVERY_TARGET_S
        ),
        "no tile shows A's number as live once B's values are shown": not a_late,
        "every tile still shows B's value to the end": not samples.not_b_after,
        "no wrong number (beyond the staleness window)": not wrong,
        "B's running duration never shown more than 2 s off B's clock": not samples.duration_off,
    }
    changed = [k for k in TILES if before[k] != after[k]]
    saw = "before: " + ", ".join(f"{label(k)} {before[k]}" for k in changed)
    saw += "; after: " + ", ".join(f"{label(k)} {after[k]}" for k in changed)
    saw += (
        f"; every tile on B's value {recovered:.1f} s after B's first request"
        if recovered is not None
        else "; B's values were never all shown"
    )
    saw += "; A's numbers live until " + (
        ", ".join(f"{label(k)} {t:+.1f} s" for k, t in sorted(last_a.items())) or "the switch"
    )
    saw += (
        f"; in between: {'initializing on ' + ', '.join(between) if between else 'no initializing'}"
    )
    saw += (
        f"; {'stale: ' + ', '.join(stale) if stale else 'never stale'}; {len(wrong)} wrong numbers"
    )
    details = [f"{'ok' if ok else 'NOT MET'}: {check}" for check, ok in checks.items()]
    details += [f"A's number live at +{t:.1f} s: {label(k)}" for k, t in a_late.items()]
    details += [
        f"not B's after recovery, +{t - b_asked:.1f} s: {e}" for t, e in samples.not_b_after[:5]
    ]
    details += [f"wrong: {text}" for _, text in wrong[:3]]
    details += [
        f"duration {off / 1000:+.1f} s off at +{t - b_asked:.1f} s"
        for t, off in samples.duration_off[:3]
    ]
    details.append(
        "stopped in "
        + ", ".join(f"{n} {s:.1f} s" for n, s in stopped.items())
        + f"; B's first request {b_asked - switch_at:.1f} s after the switch began"
        + f"; B served {b_stats['requests']} and {b_stats['ws_total']} websocket(s)"
    )
    details.append(
        "the TV, tile by tile (before / after / at +30 s):\n"
        + "\n".join(f"    {label(k):18} {before[k]:18} {after[k]:18} {end[k]}" for k in TILES)
    )
    details.append(f"logs: {stack.dir}")
    details.append("timeline (s from the switch):\n" + watch.transcript(switch_at))
    return Result(
        drill="upstream_replaced",
        injected="ACR_BASE_URL re-pointed from emulator A to a fresh emulator B (same key, "
        "clock 10 min behind: every value older than the stored one; B's values differ: "
        "counts, an average with count 0, a new running duration); subscriber, beat and worker "
        "restarted with it, Redis and web kept",
        saw=saw,
        recovery="never" if recovered is None else f"{recovered:.1f} s after B's first request",
        target=f"every tile on B's value <= {RECOVERY_TARGET_S:g} s (one poll + 5 s) after B's "
        "first request; no tile keeps A's number live; no wrong number",
        passed=all(checks.values()),
        details=details,
        command=".venv/bin/python -m bench.drills.upstream_replaced",
    )


if __name__ == "__main__":
    runner.main(drill, __doc__.splitlines()[0], limit=240)
