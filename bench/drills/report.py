"""A drill's result: printed, and appended as a row to docs/reliability.md."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

from bench.drills import stack
from bench.drills.stack import ROOT

RELIABILITY = ROOT / "docs" / "reliability.md"
HEADER = """# Reliability: fault drills

Each drill starts the real system on loopback (the emulator as upstream, Redis, the web
process as the Procfile starts it, a Celery worker and beat, the upstream subscriber), injects
one fault, watches what a user sees (a websocket client of a display link that keeps and shows
exactly what `board.js` does, and `/health/`), and measures the recovery. How to run them:
[bench/drills/README.md](../bench/drills/README.md). Every run appends its row below; "user
saw" is read from that client, times are seconds from the injection (or from the fault's end
for recovery). This is a shared 2-core machine: timings include its neighbours.

| drill | command | injected | user saw | recovery | target | result | date | commit |
|---|---|---|---|---|---|---|---|---|
"""


@dataclass
class Result:
    drill: str
    injected: str
    saw: str
    recovery: str
    target: str
    passed: bool
    details: list[str] = field(default_factory=list)
    command: str = ""

    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--", "metrics", "dashboard", "bench/drills")
    return f"{head}+dirty" if dirty else head


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def record(result: Result, append: bool = True) -> None:
    command = result.command or ".venv/bin/python -m " + " ".join(
        ["bench.drills." + result.drill.split(" ")[0], *sys.argv[1:]]
    )
    if os.environ.get("DRILL_OWN_REDIS") == "1" and "--own-redis" not in command:
        command += " --own-redis"
    elif os.environ.get("DRILL_REDIS_URL") and "DRILL_REDIS_URL" not in command:
        command = f"DRILL_REDIS_URL={os.environ['DRILL_REDIS_URL']} {command}"
    print(f"\n=== drill: {result.drill} ===")
    print(f"command:   {command}")
    print(f"injected:  {result.injected}")
    print(f"user saw:  {result.saw}")
    print(f"recovery:  {result.recovery}")
    print(f"target:    {result.target}")
    for line in result.details:
        print(f"  - {line}")
    print(f"RESULT: {result.verdict()}", flush=True)
    if not append:
        return
    if not RELIABILITY.exists():
        RELIABILITY.write_text(HEADER, encoding="utf-8")
    cells = [
        result.drill,
        f"`{command}`",
        result.injected,
        result.saw,
        result.recovery,
        result.target,
        f"**{result.verdict()}**",
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        f"`{commit()}`" + (f" (web: `{stack.WEB_COMMAND}`)" if stack.WEB_COMMAND else ""),
    ]
    with RELIABILITY.open("a", encoding="utf-8") as out:
        out.write("| " + " | ".join(_cell(c) for c in cells) + " |\n")
    RELIABILITY.write_text(with_latest(RELIABILITY.read_text(encoding="utf-8")), encoding="utf-8")


LATEST_START, LATEST_END = "<!-- latest: written by bench/drills/report.py -->", "<!-- /latest -->"

# Drills renamed since some of their rows were written: those rows keep the name they ran under,
# the latest table lists them under today's name and command.
RENAMED = {"daphne_restart": "web_restart"}  # the web process is uvicorn since commit 81d46e9


def current_name(cells: list[str]) -> list[str]:
    """A run row's cells under the drill's current name (and its module in the command)."""
    name, space, variant = cells[0].partition(" ")
    if name not in RENAMED:
        return cells
    new = RENAMED[name]
    command = cells[1].replace(f"bench.drills.{name}", f"bench.drills.{new}")
    return [new + space + variant, command, *cells[2:]]


def with_latest(text: str) -> str:
    """The document with its "latest result per drill" table rebuilt from the run rows."""
    if LATEST_START in text:
        before, rest = text.split(LATEST_START, 1)
        after = rest.split(LATEST_END, 1)[1]
    else:  # first time: the table goes before the table of every run
        at = text.index("| drill | command |")
        before, after = text[:at], "\n" + text[at:]
    latest: dict[str, list[str]] = {}
    for line in after.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == 9 and cells[0] not in ("drill", "---"):
            cells = current_name(cells)
            latest[cells[0]] = cells
    rows = [
        f"| {c[0]} | {c[6]} | {c[4]} | {c[7]} | {c[1]} |"
        for c in latest.values()
        if "before the fix" not in c[0] and "WHAT-IF" not in c[0]  # history and what-ifs
    ]
    table = "\n".join(
        [
            LATEST_START,
            "## Latest result per drill",
            "",
            "| drill | result | recovery | date | command |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "## Every run",
            "",
            LATEST_END,
        ]
    )
    return before + table + after
