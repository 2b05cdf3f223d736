"""Runs fault drills by name, or all of them in turn, each in a process of its own.

.venv/bin/python -m bench.drills list
.venv/bin/python -m bench.drills upstream_down [drill options]
.venv/bin/python -m bench.drills all [--no-record]
"""

from __future__ import annotations

import subprocess
import sys

from bench.drills.stack import PYTHON, ROOT

# (module, arguments, hard limit in seconds): the `all` run, in this order.
DRILLS: list[tuple[str, list[str], int]] = [
    ("upstream_down", [], 330),
    ("upstream_down", ["--mode", "refuse"], 330),
    ("upstream_slow", [], 330),
    ("upstream_5xx", [], 330),
    ("key_rotated", [], 330),
    ("upstream_replaced", [], 270),
    ("websocket_blocked", [], 270),
    ("subscriber_failover", [], 330),
    ("redis_restart", [], 330),
    ("worker_killed", [], 450),
    ("web_restart", [], 450),
    ("web_restart", ["--down", "10"], 450),
]


def run(module: str, args: list[str], limit: int) -> int:
    command = [PYTHON, "-m", f"bench.drills.{module}", *args]
    print(f"\n##### {' '.join(command[1:])}", flush=True)
    try:
        # The drill stops what it started; this limit only guards against a hung drill.
        return subprocess.run(command, cwd=ROOT, timeout=limit + 60).returncode  # noqa: S603
    except subprocess.TimeoutExpired:
        print(f"{module} did not finish within {limit + 60} s", flush=True)
        return 2


def main() -> None:
    names = sorted({module for module, _, _ in DRILLS})
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help", "list"):
        print(__doc__)
        print("drills: " + ", ".join(names))
        return
    name, extra = sys.argv[1], sys.argv[2:]
    if name == "all":
        codes = [(f"{m} {' '.join(a)}".strip(), run(m, a + extra, t)) for m, a, t in DRILLS]
        print("\n##### summary")
        for label, code in codes:
            print(f"{'PASS' if code == 0 else 'FAIL'}  {label}")
        sys.exit(0 if all(code == 0 for _, code in codes) else 1)
    if name not in names:
        sys.exit(f"no drill {name!r}; drills: {', '.join(names)}")
    limit = max(t for m, _, t in DRILLS if m == name)
    sys.exit(run(name, extra, limit))


if __name__ == "__main__":
    main()
