"""Drill: the active upstream subscriber is SIGKILLed, then (with a new standby started, as a
process manager would) the next active one is SIGSTOPped for longer than its lease and resumed.

Two subscribers run (`manage.py subscribe_upstream`, a Redis lease of 10 s with the lease
token as fencing token). A probe value changes upstream every 0.5 s; the standby has taken
over when one of those changes reaches the TV *by websocket* (the Celery poll would bring
them too, every 5 s, and is told apart by the record's `source`).

The fencing check needs a value that only the stopped subscriber holds and that would win if
it were written: while it is stopped (and nobody else has read the upstream yet), the marker
is set to V1, the emulator's clock is set back, and the marker is set to V2, whose timestamp
is older than V1's. Everybody else stores V2; the stopped one still has V1 in its socket. On
SIGCONT it must not write V1 (the TV never shows it, Redis never holds it), must not become
active again, and a write with its lease token, made by the drill itself, must be refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from datetime import datetime

from bench.drills import runner
from bench.drills.observe import Truth, Watch, stop_watching, watch_board
from bench.drills.report import Result
from bench.drills.stack import ACTIVE_LINE, BOARD_TILES, MARKER, PROBE, Stack, wait_for

TAKEOVER_TARGET_S = 20.0
LEASE_S = 10.0
LEASE_KEY = "acr:subscriber:lease"
LIVE_RECORD = "acr:live:record"
PROBE_TILE = f"tile {PROBE[0]}/{PROBE[1]}: live"
STATE_LINES = (ACTIVE_LINE, "lost the subscriber lease", "waiting as a standby", "fenced off")


def is_active(stack: Stack, name: str) -> bool:
    """The subscriber's last state line in its log says it is active."""
    log = stack.log(name)
    last = max(STATE_LINES, key=log.rfind)
    return last == ACTIVE_LINE and ACTIVE_LINE in log


def log_time(stack: Stack, name: str, text: str, after: float) -> float | None:
    """Wall time of the first log line with `text` at or after `after` (wall seconds)."""
    for line in stack.log(name).splitlines():
        if text in line:
            try:
                at = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()  # noqa: DTZ007
            except ValueError:
                continue
            if at >= after - 0.01:
                return at
    return None


class Prober:
    """Changes the probe value upstream every 0.5 s (values from `start` up)."""

    def __init__(self, stack: Stack, truth: Truth, start: int) -> None:
        self.stack, self.truth, self.next = stack, truth, start
        self.first = start
        self.task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            await self.stack.emulator.set_count(PROBE, self.next)
            self.truth.set(PROBE, self.next)
            self.next += 1
            await asyncio.sleep(0.5)

    def start(self) -> None:
        self.first = self.next
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    def by_websocket(self, watch: Watch) -> bool:
        record = watch.client.view.records.get(PROBE) or {}
        value = (record.get("value") or {}).get("count", -1)
        return record.get("source") == "websocket" and value >= self.first


async def redis_get(stack: Stack, *command: str) -> str | None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(stack.redis_url, decode_responses=True)
    try:
        return await client.execute_command(*command)
    finally:
        await client.aclose()


async def kill_phase(stack: Stack, watch: Watch, truth: Truth, names: list[str]) -> Result:
    active = next(n for n in names if is_active(stack, n))
    standby = next(n for n in names if n != active)
    prober = Prober(stack, truth, 100)
    wall, t0 = time.time(), time.monotonic()
    watch.mark(f"SIGKILL {active}")
    stack.procs.kill_group(active)
    prober.start()
    took = await wait_for(lambda: prober.by_websocket(watch), 40, step=0.05)
    watch.mark("a new probe value arrived by websocket: the standby took over")
    await prober.stop()
    logged = log_time(stack, standby, ACTIVE_LINE, wall)
    ws_open = (await stack.emulator.stats())["ws_open"]
    wrong = [w for w in watch.wrong if w[0] >= t0]
    checks = {
        f"took over within {TAKEOVER_TARGET_S:g} s": took is not None and took <= TAKEOVER_TARGET_S,
        "one upstream websocket": ws_open == 1,
        "no wrong number": not wrong,
    }
    return Result(
        drill="subscriber_failover (SIGKILL)",
        injected=f"SIGKILL of the active subscriber ({active}); {standby} on standby",
        saw=(f"probe values by websocket again after {took:.1f} s" if took else "no values by ws")
        + (f" ({standby} logged 'active' at +{logged - wall:.1f} s)" if logged else "")
        + f"; tiles stayed live (the poll kept them fresh); {len(wrong)} wrong numbers",
        recovery=f"{took:.1f} s to takeover" if took is not None else "never",
        target=f"standby takes over <= {TAKEOVER_TARGET_S:g} s",
        passed=all(checks.values()),
        details=[f"{'ok' if ok else 'NOT MET'}: {c}" for c, ok in checks.items()]
        + ["timeline (probe values left out):\n" + watch.transcript(t0, skip=PROBE_TILE)],
        command=".venv/bin/python -m bench.drills.subscriber_failover",
    )


async def stop_phase(
    stack: Stack, watch: Watch, truth: Truth, names: list[str], stopped_s: float
) -> Result:
    active = next(n for n in names if is_active(stack, n))
    standby = next(n for n in names if n != active)
    token = await redis_get(stack, "GET", LEASE_KEY)
    newest = max(watch.client.view.records[k]["upstream_ms"] for k in (MARKER, PROBE))
    t0 = time.monotonic()
    watch.mark(f"SIGSTOP {active}")
    stack.procs.signal(active, signal.SIGSTOP)

    # V1 for the stopped one only: right after a poll, before anyone reads the upstream again.
    polls = (await stack.emulator.stats())["requests"]["values"]
    await wait_for(
        lambda: _polled_since(stack, polls), 10, step=0.02
    )  # the poll just happened: the next is ~5 s away
    await stack.emulator.set_count(MARKER, 21)
    truth.set(MARKER, 21)
    skew = -int((time.time() * 1000 - newest) / 2)
    await stack.emulator.control("clock", {"skew_ms": skew})
    await stack.emulator.set_count(MARKER, 22)
    truth.set(MARKER, 22)
    watch.mark(f"marker 21 (V1), emulator clock {skew / 1000:+.1f} s, marker 22 (V2, older)")

    prober = Prober(stack, truth, 200)
    prober.start()
    took = await wait_for(lambda: prober.by_websocket(watch), 40, step=0.05)
    watch.mark("a new probe value arrived by websocket: the standby took over")
    await asyncio.sleep(max(0.0, stopped_s - (time.monotonic() - t0)))
    await prober.stop()
    await asyncio.sleep(1.0)

    resumed_wall, resumed = time.time(), time.monotonic()
    watch.mark(f"SIGCONT {active} (stopped {resumed - t0:.1f} s)")
    stack.procs.signal(active, signal.SIGCONT)
    await asyncio.sleep(12)
    refused = await fenced_write(stack, token)
    stored = json.loads(await redis_get(stack, "HGET", LIVE_RECORD, f"{MARKER[0]}\x1f{MARKER[1]}"))
    await stack.emulator.control("clock", {"skew_ms": 0})

    after = [e for t, e in watch.timeline if t >= resumed]
    showed_v1 = any(e.startswith(f"tile {MARKER[0]}/{MARKER[1]}: live 21") for e in after)
    banners = sorted({e[8:] for e in after if e.startswith("banner: ") and e != "banner: (none)"})
    woke = max(
        log_time(stack, active, "lost the subscriber lease", resumed_wall) or 0,
        log_time(stack, active, "fenced off", resumed_wall) or 0,
    )
    active_again = log_time(stack, active, ACTIVE_LINE, resumed_wall) is not None
    ws_open = (await stack.emulator.stats())["ws_open"]
    checks = {
        f"took over within {TAKEOVER_TARGET_S:g} s": took is not None and took <= TAKEOVER_TARGET_S,
        "the resumed one stood down (log)": bool(woke) and not active_again,
        "V1 never shown": not showed_v1,
        "V1 never stored": stored["value"]["count"] == 22,
        "a write with its token is refused": refused,
        "one upstream websocket": ws_open == 1,
        "no banner caused by the resumed one": not banners,
    }
    how = "fenced off" if "fenced off" in stack.log(active)[-4000:] else "lost its lease"
    return Result(
        drill="subscriber_failover (SIGSTOP)",
        injected=f"SIGSTOP of the active subscriber ({active}) for {resumed - t0:.0f} s "
        f"(lease {LEASE_S:g} s), then SIGCONT; {standby} on standby",
        saw=(f"probe values by websocket again after {took:.1f} s" if took else "no takeover")
        + f"; after SIGCONT: the old one {how} and stood down, V1 (21) "
        + ("SHOWN" if showed_v1 else "never shown")
        + f", the marker stayed {stored['value']['count']}"
        + (f"; banners after SIGCONT: {banners}" if banners else "; no banner"),
        recovery=f"{took:.1f} s to takeover" if took is not None else "never",
        target=f"standby takes over <= {TAKEOVER_TARGET_S:g} s; the resumed one publishes nothing",
        passed=all(checks.values()),
        details=[f"{'ok' if ok else 'NOT MET'}: {c}" for c, ok in checks.items()]
        + [f"logs: {stack.dir}", "timeline (probe values left out):"]
        + [watch.transcript(t0, skip=PROBE_TILE)],
        command=".venv/bin/python -m bench.drills.subscriber_failover",
    )


async def _polled_since(stack: Stack, count: int) -> bool:
    return (await stack.emulator.stats())["requests"]["values"] > count


async def fenced_write(stack: Stack, token: str | None) -> bool:
    """A write with the stopped subscriber's lease token and the newest timestamp there is:
    True when the fencing refuses it."""
    from metrics import live

    record = {
        "metric_id": MARKER[0],
        "category": MARKER[1],
        "state": "live",
        "error": "",
        "value": {"type": "COUNT", "count": 23, "last_update_ms": 2**52},
        "upstream_ms": 2**52,
        "source": "websocket",
        "received_ms": int(time.time() * 1000),
    }
    try:
        await live.write_records([record], fence=token or "no-token")
    except live.LeaseLost:
        return True
    finally:
        await live.close_redis()
    return False


async def drill(args: argparse.Namespace) -> list[Result]:
    async with Stack("subscriber_failover") as stack:
        await stack.start(subscribers=2)
        names = ["subscriber-0", "subscriber-1"]
        truth = Truth(BOARD_TILES)
        client, watch, task = await watch_board(stack, truth, list(BOARD_TILES))
        try:
            await stack.emulator.set_count(MARKER, 11)
            truth.set(MARKER, 11)
            ready = await wait_for(
                lambda: watch.all_live_and_true() and sum(is_active(stack, n) for n in names) == 1,
                90,
            )
            if ready is None:
                raise SystemExit(f"the board never became live: see {stack.dir}")
            await asyncio.sleep(2)
            results = [await kill_phase(stack, watch, truth, names)]
            names = [n for n in names if n in stack.procs.running] + ["subscriber-2"]
            stack.start_subscriber("subscriber-2")  # what a process manager does
            await wait_for(lambda: "waiting as a standby" in stack.log("subscriber-2"), 60)
            await asyncio.sleep(5)
            results.append(await stop_phase(stack, watch, truth, names, args.stopped))
        finally:
            await stop_watching(client, watch, task)
        return results


if __name__ == "__main__":

    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--stopped", type=float, default=25.0, help="SIGSTOP length (25 s)")

    runner.main(drill, __doc__.splitlines()[0], limit=300, add_arguments=arguments)
