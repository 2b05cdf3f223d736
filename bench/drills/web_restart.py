"""Drill: the web server (whatever the Procfile's `web` runs: `python -m dashboard.web`) restarts
(SIGTERM, then started again on the same port) with 500 TVs open.

The TVs are asyncio `websockets` clients of a display link (observe.BoardClient), in
--workers processes. They reconnect with exactly the policy of static/metrics/live.js (the
connection board.js uses): after a close, wait random() * min(8 s, 0.5 s * 2^attempt),
attempt + 1, attempt back to 0 on open; a TV also sends a HEAD for its page from the second
attempt on. So the drill measures our policy, not a policy of its own. A TV has resubscribed
when it holds a fresh snapshot. Target: 95 % within 10 s of the web server listening again,
all within 30 s, reconnects spread by jitter (histogram).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter

from bench.drills import observe, runner, stack
from bench.drills.report import Result
from bench.drills.stack import MARKER, Stack, wait_for

P95_TARGET_S = 10.0
MAX_TARGET_S = 30.0


class Swarm:
    """The client processes and the events they report."""

    def __init__(self) -> None:
        self.procs: list[asyncio.subprocess.Process] = []
        self.events: list[tuple[int, str, float]] = []
        self.readers: list[asyncio.Task] = []

    async def start(self, st: Stack, clients: int, workers: int, cap_ms: int) -> None:
        shares = [clients // workers + (1 if i < clients % workers else 0) for i in range(workers)]
        first = 0
        for share in shares:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *["-m", "bench.drills.clients", "--ws", st.display_ws, "--page", st.display_url],
                *["--first", str(first), "--count", str(share), "--cap-ms", str(cap_ms)],
                cwd=stack.ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                start_new_session=True,
                preexec_fn=stack._die_with_parent,  # noqa: PLW1509
                env={**os.environ, "PYTHONPATH": str(stack.ROOT)},
            )
            stack._ALL_GROUPS.add(proc.pid)
            self.procs.append(proc)
            self.readers.append(asyncio.create_task(self._read(proc)))
            first += share

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            event = json.loads(line)
            self.events.append((event["c"], event["e"], event["t"]))

    def with_snapshot_after(self, t: float) -> dict[int, float]:
        """Each client's first snapshot at or after wall time `t`."""
        first: dict[int, float] = {}
        for client, kind, at in self.events:
            if kind == "snapshot" and at >= t and client not in first:
                first[client] = at
        return first

    def count(self, kind: str, after: float, before: float = float("inf")) -> Counter:
        return Counter(c for c, k, at in self.events if k == kind and after <= at < before)

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
            stack._ALL_GROUPS.discard(proc.pid)
        for reader in self.readers:
            reader.cancel()


def policy(cap_ms: int) -> str:
    if cap_ms == observe.BACKOFF_CAP_MS:
        return (
            "policy: static/metrics/board.js's, delay = random() *"
            f" min({cap_ms / 1000:g} s, 0.5 s * 2^attempt)"
        )
    return (
        f"policy: WHAT-IF, NOT board.js's: delay = random() * min({cap_ms / 1000:g} s, "
        "0.5 s * 2^attempt)"
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def histogram(values: list[float], width: float = 1.0, top: float = 30.0) -> list[str]:
    bins = Counter(min(int(v // width), int(top // width)) for v in values)
    peak = max(bins.values(), default=1)
    lines = []
    for b in range(0, int(top // width) + 1):
        label = (
            f"{b * width:4.0f}-{(b + 1) * width:<3.0f}s" if b < top // width else f">{top:.0f} s "
        )
        n = bins.get(b, 0)
        lines.append(f"  {label} {n:4d} {'#' * round(50 * n / peak)}")
    while lines and lines[-1].split()[-1] == "0" and len(lines) > 1:  # trailing empty bins
        lines.pop()
    return lines


async def drill(args: argparse.Namespace) -> list[Result]:
    async with Stack("web_restart") as st:
        await st.start()
        await st.emulator.set_count(MARKER, 11)
        swarm = Swarm()
        try:
            await swarm.start(st, args.clients, args.workers, args.cap_ms)
            ready = await wait_for(lambda: len(swarm.with_snapshot_after(0)) >= args.clients, 180)
            if ready is None:
                raise SystemExit(
                    f"only {len(swarm.with_snapshot_after(0))} of {args.clients} TVs connected"
                )
            print(f"{args.clients} TVs connected in {ready:.1f} s", flush=True)
            await asyncio.sleep(5)
            killed = time.time()
            stopping = await st.procs.stop("web", timeout=10)
            await asyncio.sleep(args.down)  # e.g. a deploy that takes a while
            down = time.time()
            starting = await st.start_web()
            up = time.time()
            print(
                f"web server stopped in {stopping:.1f} s, listening again {starting:.1f} s "
                "after its start",
                flush=True,
            )
            await wait_for(
                lambda: len(swarm.with_snapshot_after(killed)) >= args.clients, MAX_TARGET_S + 20
            )
            await asyncio.sleep(2)
            marked = time.time()
            await st.emulator.set_count(MARKER, 12)  # values reach the new server's sockets
            await wait_for(lambda: len(swarm.count("marker", marked)) >= args.clients, 20)
        finally:
            await swarm.stop()
        resync = swarm.with_snapshot_after(killed)
        from_up = [at - up for at in resync.values()]
        from_kill = [at - killed for at in resync.values()]
        closed = len(swarm.count("close", killed - 1))
        attempts = swarm.count("attempt", killed)
        total = sum(attempts.values())
        marker = len(swarm.count("marker", marked))
        within = sum(1 for v in from_up if v <= P95_TARGET_S) / args.clients
        p95, worst = percentile(from_up, 0.95), max(from_up, default=float("inf"))
        all_back = len(resync) == args.clients
        checks = {
            f"95 % resubscribed within {P95_TARGET_S:g} s": within >= 0.95,
            f"all within {MAX_TARGET_S:g} s": all_back and worst <= MAX_TARGET_S,
            "a value changed after the restart reached every TV": marker == args.clients,
        }
        per_client = Counter(attempts.values())
        details = [f"{'ok' if ok else 'NOT MET'}: {c}" for c, ok in checks.items()]
        details += [
            f"web server `{stack.WEB_COMMAND}`: SIGTERM -> exit {stopping:.1f} s, down "
            f"{args.down:g} s more, start -> listening {up - down:.1f} s",
            f"{closed} sockets closed by the restart; {len(resync)}/{args.clients} resubscribed",
            f"from the server listening: p50 {percentile(from_up, 0.5):.1f} s, p95 {p95:.1f} s, "
            f"max {worst:.1f} s; {within * 100:.0f} % within {P95_TARGET_S:g} s",
            f"from the SIGTERM: p50 {percentile(from_kill, 0.5):.1f} s, "
            f"p95 {percentile(from_kill, 0.95):.1f} s, max {max(from_kill, default=0):.1f} s",
            "connection attempts per TV after the SIGTERM: "
            + ", ".join(f"{k}: {v}" for k, v in sorted(per_client.items()))
            + f" ({total} in all; from the 2nd on, each also sends a HEAD, as board.js does)",
            f"a value changed upstream after the restart reached {marker}/{args.clients} TVs",
            policy(args.cap_ms),
            "resubscribed, seconds after the server listened again (1 s bins):\n"
            + "\n".join(histogram(from_up)),
            f"logs: {st.dir}",
        ]
        what_if = "" if args.cap_ms == observe.BACKOFF_CAP_MS else " WHAT-IF cap"
        return [
            Result(
                drill=f"web_restart{what_if}",
                injected=f"web server (`{stack.WEB_COMMAND}`) restarted (SIGTERM, new process "
                "on the same port"
                + (f" {args.down:g} s later" if args.down else "")
                + f") with {args.clients} TVs connected",
                saw=f"{closed} TVs lost their socket and reconnected with "
                + ("a what-if backoff" if what_if else "board.js's backoff")
                + "; "
                f"resubscribed p50 {percentile(from_up, 0.5):.1f} s, p95 {p95:.1f} s, max "
                f"{worst:.1f} s after the server listened again ({up - killed:.1f} s after "
                "SIGTERM)",
                recovery=f"{within * 100:.0f} % within {P95_TARGET_S:g} s, all within "
                f"{worst:.1f} s",
                target="95 % <= 10 s, all <= 30 s, spread by jitter",
                passed=all(checks.values()),
                details=details,
                command=".venv/bin/python -m bench.drills.web_restart"
                + (f" --down {args.down:g}" if args.down else "")
                + (f" --cap-ms {args.cap_ms}" if args.cap_ms != observe.BACKOFF_CAP_MS else ""),
            )
        ]


if __name__ == "__main__":

    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--clients", type=int, default=500, help="TVs (500)")
        parser.add_argument("--workers", type=int, default=2, help="client processes (2)")
        parser.add_argument("--down", type=float, default=0.0, help="extra downtime, s (0)")
        parser.add_argument(
            "--cap-ms",
            type=int,
            default=observe.BACKOFF_CAP_MS,
            help="what-if: another backoff cap than live.js's reconnectDelay (8000 ms)",
        )

    runner.main(drill, __doc__.splitlines()[0], limit=420, add_arguments=arguments)
