"""Upstream faults for 30 s: down (emulator killed, or refusing connections), slow (5 s
answers), 5xx bursts, or the auth key rotated (401).

What a user must see: tiles go stale with a reason when nothing confirms them any more, no tile
shows a number the upstream no longer holds as live (beyond the staleness window that `stale`
promises), and everything is live and right again within 10 s of the upstream's return.

During each fault the marker tile's value is changed upstream (when the upstream is reachable
for the emulator's control API), so a system that kept showing the old value as live would be
caught. The emulator's latency and status faults touch REST requests and websocket handshakes
only, not frames on an open websocket: those drills also drop the websocket (`slow`) or leave
it up (`5xx`), and the tiles may rightly stay live while the websocket brings values.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import time

from bench.drills import runner
from bench.drills.observe import Truth, stop_watching, watch_board
from bench.drills.report import Result
from bench.drills.stack import BOARD_TILES, MARKER, Stack, wait_for

RECOVERY_TARGET_S = 10.0
STALE_S = 20.0  # ACR_STALE_SECONDS in production (max(20, 3 x poll))
INJECTED = {
    "kill": "emulator SIGKILLed for {s:g} s, then restarted on the same port",
    "refuse": "`refuse` + `drop_websockets` faults for {s:g} s (connections closed unanswered)",
    "slow": "`latency_ms: 5000` + `drop_websockets` for {s:g} s (REST and handshakes 5 s late)",
    "5xx": "5xx bursts for {s:g} s: every 6 s the next 3 REST answers are 500, 502 or 503",
    "key": "auth key rotated upstream (401, websocket closed 1008); key file updated after {s:g} s",
}
# Faults that leave nothing to confirm the tiles: they must turn stale.
CUT_OFF = {"kill", "refuse", "key"}


async def inject(stack: Stack, mode: str) -> None:
    emulator = stack.emulator
    if mode == "kill":
        stack.procs.kill_group("emulator")
    elif mode == "refuse":
        await emulator.faults(refuse=True, drop_websockets=True)
    elif mode == "slow":
        await emulator.faults(latency_ms=5000, drop_websockets=True)
    elif mode == "key":
        emulator.key = "drill-" + secrets.token_hex(12)
        await emulator.control("auth-key", {"key": emulator.key, "disconnect": True})


async def during(stack: Stack, mode: str, truth: Truth, seconds: float, watch) -> None:
    """The fault's duration: the marker changes upstream after 5 s; 5xx bursts every 6 s."""
    started = time.monotonic()
    changed = False
    burst = 0
    while (elapsed := time.monotonic() - started) < seconds:
        if mode == "5xx" and elapsed >= burst * 6:
            status = (500, 502, 503)[burst % 3]
            await stack.emulator.faults(http_status=status, count=3)
            watch.mark(f"burst: the next 3 REST answers are {status}")
            burst += 1
        if not changed and elapsed >= 5 and mode != "kill":
            await stack.emulator.set_count(MARKER, 12)
            truth.set(MARKER, 12)
            watch.mark("marker set to 12 upstream")
            changed = True
        await asyncio.sleep(0.1)


async def restore(stack: Stack, mode: str, truth: Truth) -> None:
    if mode == "kill":
        await stack.start_emulator()
        for key, value in BOARD_TILES.items():  # a restarted static emulator
            if value is not None:
                truth.reset(key, value)
        await stack.emulator.set_count(MARKER, 13)
        truth.set(MARKER, 13)
    elif mode == "key":
        path = stack.dir / "acr_key"
        (stack.dir / "acr_key.new").write_text(stack.emulator.key + "\n")
        (stack.dir / "acr_key.new").replace(path)  # atomic, as a secret mount update is
    else:
        await stack.emulator.faults()


async def run(args: argparse.Namespace, mode: str) -> list[Result]:
    seconds = args.seconds
    env = {}
    name = {"kill": "upstream_down", "refuse": "upstream_down", "slow": "upstream_slow"}.get(
        mode, "upstream_5xx" if mode == "5xx" else "key_rotated"
    )
    async with Stack(name) as stack:
        if mode == "key":
            (stack.dir / "acr_key").write_text(stack.emulator.key + "\n")
            env = {"ACR_AUTH_KEY": "", "ACR_AUTH_KEY_FILE": str(stack.dir / "acr_key")}
            stack.env.update(env)
        await stack.start()
        truth = Truth(BOARD_TILES)
        client, watch, task = await watch_board(stack, truth, list(BOARD_TILES))
        try:
            await stack.emulator.set_count(MARKER, 11)
            truth.set(MARKER, 11)
            if await wait_for(watch.all_live_and_true, 90) is None:
                return [failed(name, mode, seconds, "the board never became all live", stack)]
            await asyncio.sleep(3)
            fault_at = time.monotonic()
            logs_from = log_sizes(stack)
            watch.mark(f"inject: {mode}")
            await inject(stack, mode)
            await during(stack, mode, truth, seconds, watch)
            await restore(stack, mode, truth)
            back_at = time.monotonic()
            watch.mark("the upstream is back")
            recovered = await wait_for(watch.all_live_and_true, 60, step=0.05)
            await asyncio.sleep(3)  # nothing must flap back
        finally:
            await stop_watching(client, watch, task)
        said = state_lines(stack, logs_from)
        return [judge(name, mode, seconds, watch, fault_at, back_at, recovered, stack, said)]


# The processes that talk to the upstream, and the lines that tell an operator of its state.
UPSTREAM_SIDE = ("worker", "subscriber")
STATE_LINE = re.compile(r" (WARNING|ERROR|CRITICAL) |upstream recovered|subscribed to ")


def log_sizes(stack: Stack) -> dict[str, int]:
    return {name: len(stack.log(name)) for name in UPSTREAM_SIDE}


def state_lines(stack: Stack, since: dict[str, int]) -> list[str]:
    """What the worker and the subscriber logged from `since` (offsets in their logs): with the
    logs quieted, a line per change of state, nothing per poll."""
    return [
        f"{name}: {line}"
        for name in UPSTREAM_SIDE
        for line in stack.log(name)[since[name] :].splitlines()
        if STATE_LINE.search(line)
    ]


def judge(name, mode, seconds, watch, fault_at, back_at, recovered, stack, said) -> Result:
    reason_at = watch.first(fault_at, "banner", lambda text: "Upstream:" in text)
    reasons = list(
        dict.fromkeys(
            entry.split("Upstream: ", 1)[1]
            for t, entry in watch.timeline
            if fault_at <= t <= back_at and entry.startswith("banner: ") and "Upstream:" in entry
        )
    )
    marker_tile = f"tile {MARKER[0]}/{MARKER[1]}"
    stale_at = watch.first(fault_at, marker_tile, lambda text: text.startswith("stale"))
    down_at = watch.first(fault_at, "/health/", lambda text: text.startswith("503"))
    stale_in_time = stale_at is not None and stale_at <= STALE_S + 5
    after_fault = [w for w in watch.wrong if w[0] >= fault_at]
    saw = ["no reason shown"]
    if reason_at is not None:
        shown = " / ".join(f"'{r}'" for r in reasons[:3]) + (" / ..." if len(reasons) > 3 else "")
        saw = [f"upstream banner from +{reason_at:.1f} s: {shown}"]
    if stale_at is not None and stale_at < seconds + 1:
        saw.append(f"tiles stale at +{stale_at:.1f} s (last value kept, 'stale since')")
    else:
        saw.append("tiles stayed live (values kept coming)")
    if down_at is not None and down_at < seconds + 1:
        saw.append(f"/health/ 503 down at +{down_at:.1f} s")
    saw.append(f"{len(after_fault)} samples with a wrong live number")
    checks = {
        "a reason was shown": reason_at is not None and reason_at <= seconds,
        "no wrong number": not after_fault,
        f"recovered within {RECOVERY_TARGET_S:g} s": recovered is not None
        and recovered <= RECOVERY_TARGET_S,
    }
    if mode in CUT_OFF:
        checks[f"stale within {STALE_S + 5:g} s"] = stale_in_time
    checks["the log says what broke"] = any("upstream broke" in line for line in said)
    checks["the log says when it recovered"] = any("upstream recovered" in line for line in said)
    details = [f"{'ok' if ok else 'NOT MET'}: {check}" for check, ok in checks.items()]
    details += [f"wrong: {text}" for _, text in after_fault[:3]]
    details.append(f"log lines of state (worker, subscriber) from the injection: {len(said)}")
    details += [f"log: {line[:180]}" for line in said[:12]]
    details.append(f"logs: {stack.dir}")
    details.append("timeline (s from the injection):\n" + watch.transcript(fault_at))
    return Result(
        drill=f"{name} ({mode})",
        injected=INJECTED[mode].format(s=seconds),
        saw="; ".join(saw),
        recovery="never" if recovered is None else f"{recovered:.1f} s after the upstream returned",
        target="stale with a reason, no wrong number, recovered <= 10 s",
        passed=all(checks.values()),
        details=details,
        command=f".venv/bin/python -m bench.drills.{name}"
        + (f" --mode {mode}" if name == "upstream_down" else ""),
    )


def failed(name: str, mode: str, seconds: float, why: str, stack: Stack) -> Result:
    return Result(
        drill=f"{name} ({mode})",
        injected=INJECTED[mode].format(s=seconds),
        saw=why,
        recovery="-",
        target="stale with a reason, no wrong number, recovered <= 10 s",
        passed=False,
        details=[f"logs: {stack.dir}"],
    )


def main(mode: str | None, description: str) -> None:
    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--seconds", type=float, default=30.0, help="fault length (30)")
        if mode is None:
            parser.add_argument("--mode", choices=["kill", "refuse"], default="kill")

    async def drill(args: argparse.Namespace) -> list[Result]:
        return await run(args, mode or args.mode)

    runner.main(drill, description, limit=300, add_arguments=arguments)
