"""The command line every drill shares: a hard time limit, cleanup on any exit, results."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable

from bench.drills import report, stack

Drill = Callable[[argparse.Namespace], Awaitable[list[report.Result]]]


def _on_alarm(signum: int, frame: object) -> None:
    print("hard time limit passed: killing everything this drill started", flush=True)
    stack._kill_leftovers()
    os._exit(3)


def _on_term(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")  # `finally` blocks stop the processes


def main(
    drill: Drill,
    description: str,
    limit: float,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--no-record", action="store_true", help="don't append to the docs")
    parser.add_argument("--limit", type=float, default=limit, help=f"hard limit, s ({limit:g})")
    parser.add_argument(
        "--own-redis",
        action="store_true",
        help="a redis-server of its own instead of database 12 of the shared one",
    )
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args()
    if args.own_redis:
        os.environ["DRILL_OWN_REDIS"] = "1"
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Django's settings log INFO
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(int(args.limit) + 30)  # the last resort, if even the cleanup hangs
    try:
        results = asyncio.run(asyncio.wait_for(drill(args), args.limit))
    except TimeoutError:
        print(f"FAIL: the drill did not finish within {args.limit:g} s", flush=True)
        sys.exit(2)
    finally:
        stack._kill_leftovers()
    for result in results:
        report.record(result, append=not args.no_record)
    sys.exit(0 if all(r.passed for r in results) else 1)
