"""Drill: a Celery worker is SIGKILLed in the middle of a poll, and two beats run by mistake.

1. The pool process running `poll_values` is SIGKILLed while its upstream request is pending
   (the emulator answers 3 s late, `latency_ms`): the poll must be retried once (the same
   task id runs again), not lost, not run twice.
2. The whole worker (main process and pool) is SIGKILLed mid-poll and restarted a second
   later, as a process manager would: polling resumes; the lost poll is replaced by the next
   scheduled one.
3. Upstream values requests per minute with one beat, then with a second beat started by
   mistake: the schedule must not double.

Throughout, history must hold one `Sample` row per (metric, category, moment) at most.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sqlite3
import time

from bench.drills import runner
from bench.drills.observe import (
    Requests,
    Truth,
    Watch,
    stop_watching,
    until_board_live,
    watch_board,
)
from bench.drills.report import Result
from bench.drills.stack import BOARD_TILES, Stack, wait_for

POLL = "metrics.tasks.poll_values"
LATENCY_MS = 4000  # under ACR_TIMEOUT_SECONDS (5): the poll would succeed
COMMAND = ".venv/bin/python -m bench.drills.worker_killed"


def active_polls(stack: Stack) -> list[dict]:
    """poll_values tasks running now (Celery's remote control, as `celery inspect active`)."""
    from dashboard.celery import app

    replies = app.control.inspect(timeout=2.0, limit=1).active() or {}
    return [task for tasks in replies.values() for task in tasks if task["name"] == POLL]


def duplicate_samples(stack: Stack) -> tuple[int, int]:
    """(rows in history, (metric, category, at) groups with more than one row)."""
    with sqlite3.connect(stack.dir / "db.sqlite3", timeout=20) as db:
        rows = db.execute("SELECT COUNT(*) FROM metrics_sample").fetchone()[0]
        dupes = db.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM metrics_sample "
            "GROUP BY metric_id, category, at HAVING COUNT(*) > 1)"
        ).fetchone()[0]
    return rows, dupes


def lines_about(stack: Stack, name: str, task_id: str) -> list[str]:
    return [line for line in stack.log(name).splitlines() if task_id in line]


async def poll_in_flight(stack: Stack, requests: Requests) -> tuple[dict, float]:
    """Waits for a poll whose upstream request is pending; returns (task, request time)."""
    await stack.emulator.faults(latency_ms=LATENCY_MS)
    for _ in range(10):
        seen = len(requests.times)
        await wait_for(lambda seen=seen: len(requests.times) > seen, 15, step=0.02)
        arrived = requests.times[-1]
        polls = await asyncio.to_thread(active_polls, stack)
        if polls and time.monotonic() - arrived < LATENCY_MS / 1000 - 1.0:
            return polls[0], arrived
        print(f"  no poll to kill in time ({len(polls)} running), waiting for the next", flush=True)
    raise SystemExit("no poll in flight was found")


async def child_phase(stack: Stack, watch: Watch, requests: Requests) -> Result:
    task, arrived = await poll_in_flight(stack, requests)
    await asyncio.sleep(max(0.0, arrived + 1.5 - time.monotonic()))
    killed = time.monotonic()
    watch.mark(f"SIGKILL pool process {task['worker_pid']} running poll {task['id'][:8]}")
    os.kill(task["worker_pid"], signal.SIGKILL)
    await stack.emulator.faults()  # only needed to catch a poll in flight
    ok_before = watch.client.view.status.get("poll_ok_ms", 0)
    fresh = await wait_for(
        lambda: watch.client.view.status.get("poll_ok_ms", 0) > ok_before, 30, step=0.05
    )
    await asyncio.sleep(8)
    lines = lines_about(stack, "worker", task["id"])
    received = sum("received" in line for line in lines)
    succeeded = sum("succeeded" in line for line in lines)
    lost = any("WorkerLostError" in line for line in lines) or "WorkerLostError" in stack.log(
        "worker"
    )
    in_window = requests.between(killed, killed + 3.0)  # before the next scheduled tick
    rows, dupes = duplicate_samples(stack)
    retried_once = received == 2 and succeeded == 1
    checks = {
        "the killed poll ran again once (same task id)": retried_once,
        "polling went on": fresh is not None,
        "no duplicate history rows": dupes == 0,
    }
    return Result(
        drill="worker_killed (pool process)",
        injected=f"SIGKILL of the pool process running poll_values, {killed - arrived:.1f} s into "
        f"its upstream request (upstream {LATENCY_MS / 1000:g} s late)",
        saw=f"worker log: {'WorkerLostError, ' if lost else ''}task received {received}x, "
        f"succeeded {succeeded}x; {len(in_window)} values request(s) in the 3 s after the kill; "
        f"poll fresh again after {fresh:.1f} s"
        if fresh is not None
        else "no fresh poll",
        recovery=f"{fresh:.1f} s to the next good poll" if fresh is not None else "never",
        target="retried once, never twice; no duplicate history",
        passed=all(checks.values()),
        details=[f"{'ok' if ok else 'NOT MET'}: {c}" for c, ok in checks.items()]
        + [f"history: {rows} rows, {dupes} duplicated (metric, category, at)"]
        + [f"log: {line[:200]}" for line in lines],
        command=COMMAND,
    )


async def worker_phase(stack: Stack, watch: Watch, requests: Requests) -> Result:
    task, arrived = await poll_in_flight(stack, requests)
    await asyncio.sleep(max(0.0, arrived + 1.5 - time.monotonic()))
    killed = time.monotonic()
    watch.mark("SIGKILL the whole worker (main + pool); restarted 1 s later")
    stack.procs.kill_group("worker")
    await stack.emulator.faults()
    await asyncio.sleep(1.0)
    stack.start_worker("worker")
    ok_before = watch.client.view.status.get("poll_ok_ms", 0)
    fresh = await wait_for(
        lambda: watch.client.view.status.get("poll_ok_ms", 0) > ok_before, 60, step=0.05
    )
    await asyncio.sleep(max(3.0, killed + 20 - time.monotonic()))
    lines = lines_about(stack, "worker", task["id"])
    rows, dupes = duplicate_samples(stack)
    checks = {"polling resumed": fresh is not None, "no duplicate history rows": dupes == 0}
    return Result(
        drill="worker_killed (whole worker)",
        injected="SIGKILL of the worker's main and pool processes mid-poll, restarted after 1 s",
        saw=(f"poll fresh again {fresh:.1f} s after the kill" if fresh else "no fresh poll")
        + f"; the killed poll {'ran again' if len(lines) > 1 else 'was not run again'} "
        f"(the next scheduled poll replaced it); {len(requests.between(killed, killed + 20))} "
        "values requests in the 20 s after",
        recovery=f"{fresh:.1f} s to the next good poll (worker start included)"
        if fresh is not None
        else "never",
        target="polling resumes; no duplicate history",
        passed=all(checks.values()),
        details=[f"{'ok' if ok else 'NOT MET'}: {c}" for c, ok in checks.items()]
        + [f"history: {rows} rows, {dupes} duplicated (metric, category, at)"],
        command=COMMAND,
    )


async def beats_phase(stack: Stack, requests: Requests, window: float) -> Result:
    async def rate() -> float:
        start = time.monotonic()
        await asyncio.sleep(window)
        return len(requests.between(start, start + window)) * 60 / window

    one = await rate()
    stack.start_beat("beat-2")
    await wait_for(lambda: "beat: Starting" in stack.log("beat-2"), 60)
    await asyncio.sleep(2)
    two = await rate()
    sent = {
        name: len(re.findall(r"Scheduler: Sending due task poll-values", stack.log(name)))
        for name in ("beat", "beat-2")
    }
    # The standby must take over when the active beat dies (the lease lets it).
    active = "beat" if sent["beat"] >= sent["beat-2"] else "beat-2"
    standby = "beat-2" if active == "beat" else "beat"
    killed = time.monotonic()
    stack.procs.kill_group(active)
    await asyncio.sleep(25)
    around = [killed - 5.0, *requests.between(killed - 5.0, killed + 25), killed + 25]
    gap = max(b - a for a, b in zip(around, around[1:], strict=False))
    rows, dupes = duplicate_samples(stack)
    ratio = two / one if one else float("inf")
    checks = {
        "the schedule did not double (ratio <= 1.25)": ratio <= 1.25,
        f"the standby beat took over (longest pause {gap:.1f} s <= 20 s)": gap <= 20,
        "no duplicate history rows": dupes == 0,
    }
    return Result(
        drill="worker_killed (two beats)",
        injected=f"a second `celery beat` started by mistake ({window:g} s with one, then two)",
        saw=f"upstream values requests: {one:.1f}/min with one beat, {two:.1f}/min with two "
        f"(x{ratio:.2f}); poll-values sent by beat {sent['beat']}x, by beat-2 {sent['beat-2']}x; "
        f"{active} SIGKILLed: {standby} took over, longest pause between polls {gap:.1f} s; "
        f"history {rows} rows, {dupes} duplicated",
        recovery=f"{gap:.1f} s without a poll after the active beat was killed",
        target="two beats do not double the schedule; the other takes over (<= 20 s)",
        passed=all(checks.values()),
        details=[f"{'ok' if ok else 'NOT MET'}: {c}" for c, ok in checks.items()]
        + [f"logs: {stack.dir}"],
        command=COMMAND,
    )


async def drill(args: argparse.Namespace) -> list[Result]:
    # LOG_LEVEL=DEBUG: this drill reads the per-task lines ("Task ... received", "succeeded")
    # and beat's "Sending due task" lines, which are DEBUG since the logs were quieted.
    async with Stack("worker_killed", LOG_LEVEL="DEBUG") as stack:
        await stack.start()
        truth = Truth(BOARD_TILES)
        client, watch, task = await watch_board(stack, truth, list(BOARD_TILES))
        requests = Requests(stack)
        requests.start()
        try:
            await until_board_live(stack, watch, truth)
            await asyncio.sleep(3)
            results = [await child_phase(stack, watch, requests)]
            results.append(await worker_phase(stack, watch, requests))
            await asyncio.sleep(5)
            results.append(await beats_phase(stack, requests, args.window))
        finally:
            if requests.task:
                requests.task.cancel()
            await stop_watching(client, watch, task)
        return results


if __name__ == "__main__":

    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--window", type=float, default=60.0, help="per beat count (60 s)")

    runner.main(drill, __doc__.splitlines()[0], limit=420, add_arguments=arguments)
