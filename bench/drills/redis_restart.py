"""Drill: Redis restarts mid-run (down a few seconds, back empty: no persistence, as the
compose file runs it).

It needs a Redis of its own: `redis-server --port P --save '' --appendonly no` on a free
port, stopped with SIGTERM and started again on the same port. Web, worker, beat and
subscriber must reconnect by themselves, and a TV that stays connected must show fresh values
again (after a restart every sequence number starts from zero, and the channel layer's group
memberships are gone). The marker changes upstream every second from the restart on; "values
flow again" is the first moment the TV shows the upstream's current marker as live.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import time

from bench.drills import runner
from bench.drills.observe import Requests, Truth, stop_watching, until_board_live, watch_board
from bench.drills.report import Result
from bench.drills.stack import (
    ACTIVE_LINE,
    BOARD_TILES,
    MARKER,
    Stack,
    wait_for,
)

TARGET_S = 20.0


async def drill(args: argparse.Namespace) -> list[Result]:
    if not shutil.which("redis-server"):
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    async with Stack("redis_restart", own_redis=True) as stack:
        await stack.start()
        truth = Truth(BOARD_TILES)
        client, watch, task = await watch_board(stack, truth, list(BOARD_TILES))
        requests = Requests(stack)
        requests.start()
        marker = 100
        try:
            await until_board_live(stack, watch, truth)
            await asyncio.sleep(3)
            stopped = time.monotonic()
            snapshots, closes = client.view.snapshots, len(client.closed_at)
            watch.mark("Redis stopped (SIGTERM)")
            await stack.procs.stop("redis")
            await asyncio.sleep(args.down)
            await stack.start_redis()
            back = time.monotonic()
            watch.mark("Redis is back, empty")
            ws_total = (await stack.emulator.stats())["ws_total"]

            async def flowing() -> bool:
                """Changes the marker every 0.5 s; True once the TV shows the current one."""
                nonlocal marker
                if int((time.monotonic() - back) * 2) >= marker - 100:
                    marker += 1
                    await stack.emulator.set_count(MARKER, marker)
                    truth.set(MARKER, marker)
                state, value = watch.state(MARKER)
                return client.connected and state == "live" and value == marker

            flowed = await wait_for(flowing, 90, step=0.05)
            await asyncio.sleep(5)
            web = watch.first(back, "/health/", lambda text: text.startswith("200"))
            polls = requests.between(back, time.monotonic())
            stats = await stack.emulator.stats()
            # Active again after the outage: counted from the stop, not from `back` (the
            # subscriber may take the lease within the milliseconds before the drill sees the
            # port open, and was then wrongly counted as never active again).
            wall_stopped = time.time() - (time.monotonic() - stopped)
            resubscribed = any(
                _logged_after(stack.log(name), ACTIVE_LINE, wall_stopped) for name in ["subscriber"]
            )
        finally:
            if requests.task:
                requests.task.cancel()
            await stop_watching(client, watch, task)
        reconnected = len(client.closed_at) > closes
        resynced = client.view.snapshots > snapshots
        poll_after = polls[0] - back if polls else None
        wrong = [w for w in watch.wrong if w[0] >= stopped]
        checks = {
            "web answers /health/ again": web is not None,
            "worker and beat poll again": poll_after is not None,
            "subscriber active again, one upstream websocket": resubscribed
            and stats["ws_open"] == 1
            and stats["ws_total"] > ws_total,
            f"the TV shows fresh values within {TARGET_S:g} s": flowed is not None
            and flowed <= TARGET_S,
            "no wrong number": not wrong,
        }
        how = "reconnected and took a snapshot" if reconnected else "stayed connected"
        if not reconnected and resynced:
            how += ", asked for a snapshot"
        return [
            Result(
                drill="redis_restart",
                injected=f"Redis (own server, no persistence) stopped for {args.down:g} s, "
                "restarted empty on the same port",
                saw=f"the TV {how}; fresh live values "
                + (f"{flowed:.1f} s after Redis returned" if flowed is not None else "NEVER")
                + (f"; /health/ 200 again at +{web:.1f} s" if web is not None else "")
                + (f"; first poll at +{poll_after:.1f} s" if poll_after is not None else "")
                + f"; {len(wrong)} samples with a wrong live number",
                recovery=f"{flowed:.1f} s until live values flow again"
                if flowed is not None
                else "never",
                target=f"every process reconnects by itself; fresh values <= {TARGET_S:g} s",
                passed=all(checks.values()),
                details=[f"{'ok' if ok else 'NOT MET'}: {c}" for c, ok in checks.items()]
                + [f"wrong: {text}" for _, text in wrong[:3]]
                + [f"logs: {stack.dir}", "timeline:\n" + watch.transcript(stopped)],
                command=".venv/bin/python -m bench.drills.redis_restart",
            )
        ]


def _logged_after(log: str, text: str, wall: float) -> bool:
    from datetime import datetime

    for line in log.splitlines():
        if text in line:
            try:
                at = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()  # noqa: DTZ007
            except ValueError:
                continue
            if at >= wall:
                return True
    return False


if __name__ == "__main__":

    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--down", type=float, default=5.0, help="Redis down for (5 s)")

    runner.main(drill, __doc__.splitlines()[0], limit=300, add_arguments=arguments)
