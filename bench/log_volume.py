"""How many log lines does the running system write? (issue 19: < 50 a minute with a board open)

    .venv/bin/python bench/log_volume.py [--minutes 5] [--no-record]

Starts the whole system exactly as `make run` does (`bash scripts/run.sh`: web, worker, beat,
subscriber and the bundled emulator under honcho, the demo seeded) on a temporary SQLite
database, on WEB_PORT / ACR_EMULATOR_PORT (free ports when unset) and REDIS_URL (default
redis://127.0.0.1:6379/11; FLUSHDB before and after), opens the demo's TV link in headless
Chromium, waits until its tiles are live, then keeps it open for --minutes and counts the lines
honcho prints, per process. Start-up lines (until the board is live) are counted apart; the
target applies to the minutes with the board open. Prints a table (and the most frequent line
shapes, to see what speaks) and appends it to bench/RESULTS.md; every line of the run is kept
in .run/log-volume.log.

tests/test_log_volume.py runs the same for 75 s in the suite.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = "--no-sandbox --disable-gpu --disable-quic --no-first-run".split()
CHROMIUM_ARGS += "--disable-background-networking --disable-component-update --disable-sync".split()
TARGET_PER_MINUTE = 50
RAW = ROOT / ".run" / "log-volume.log"  # every line of the last run, as honcho printed it
# honcho's prefix: "16:10:02 worker.1   | text" (and "16:10:02 system     | web.1 started").
HONCHO_LINE = re.compile(r"^\d\d:\d\d:\d\d (\S+?)(?:\.\d+)?\s+\| ?(.*)$")
TV_LINK = re.compile(r"TV link[^:]*: (http\S+/display/\S+/)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Line:
    at: float  # monotonic
    process: str  # honcho's name (web, worker, ...), "system" for honcho's own, "run.sh" before
    text: str


@dataclass
class SystemRun:
    """`bash scripts/run.sh` in a session of its own, every output line kept with its time."""

    env: dict[str, str]
    lines: list[Line] = field(default_factory=list)
    process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            ["bash", "scripts/run.sh"],  # noqa: S607
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw in self.process.stdout:
            found = HONCHO_LINE.match(raw.rstrip("\n"))
            name, text = (found.group(1), found.group(2)) if found else ("run.sh", raw.rstrip())
            self.lines.append(Line(time.monotonic(), name, text))

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := pattern.search(line.text):
                    return found
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"scripts/run.sh exited: {self.tail()}")
            time.sleep(0.2)
        raise RuntimeError(f"not within {timeout:.0f} s: {pattern.pattern}\n{self.tail()}")

    def wait_for_port(self, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"nothing listens on {port} after {timeout:.0f} s\n{self.tail()}")

    def tail(self, n: int = 30) -> str:
        return "\n".join(f"{line.process} | {line.text}" for line in self.lines[-n:])

    def stop(self) -> None:
        """Ctrl-C, as a person stops `make run` (honcho stops every process), SIGKILL after
        20 s."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def system_env(web_port: int, emulator_port: int, redis_url: str, database: Path) -> dict:
    """make run's environment, on these ports and stores; LOG_* and WEB_* pass through."""
    return {
        "WEB_PORT": str(web_port),
        "ACR_EMULATOR_PORT": str(emulator_port),
        "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{database}",
        "PYTHONUNBUFFERED": "1",  # each line reaches honcho (and its minute) when written
    }


def open_board(tv_link: str, hold_seconds: float, on_live) -> int:
    """Opens the TV link in Chromium, calls `on_live()` once every tile on it is live, keeps
    it open `hold_seconds`; returns how many tile updates (frames) the page received."""
    from playwright.sync_api import expect, sync_playwright

    frames = [0]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.on(
            "websocket",
            lambda ws: ws.on("framereceived", lambda _: frames.__setitem__(0, frames[0] + 1)),
        )
        page.goto(tv_link)
        tiles = page.locator(".tile[data-state]")
        expect(tiles.first).to_be_visible(timeout=60_000)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.tile[data-state]')]"
            ".every(t => t.dataset.state === 'live')",
            timeout=60_000,
        )
        on_live()
        page.wait_for_timeout(hold_seconds * 1000)
        browser.close()
    return frames[0]


@dataclass
class Counts:
    minutes: float
    startup: collections.Counter
    steady: collections.Counter
    per_minute: list[int]
    shapes: list[tuple[str, int]]

    @property
    def rate(self) -> float:
        return sum(self.steady.values()) / self.minutes


def shape(line: Line) -> str:
    """A line with its numbers, times and ids blanked: lines that differ only there are one."""
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<id>", line.text)
    return f"{line.process}: " + re.sub(r"\d+(\.\d+)?", "N", text)[:110]


def count(lines: list[Line], live_at: float, end_at: float) -> Counts:
    steady = [line for line in lines if live_at <= line.at <= end_at]
    minutes = (end_at - live_at) / 60
    bins = [0] * max(1, round(minutes))
    for line in steady:
        bins[min(len(bins) - 1, int((line.at - live_at) // 60))] += 1
    return Counts(
        minutes=minutes,
        startup=collections.Counter(line.process for line in lines if line.at < live_at),
        steady=collections.Counter(line.process for line in steady),
        per_minute=bins,
        shapes=collections.Counter(shape(line) for line in steady).most_common(12),
    )


def measure(seconds: float, env: dict[str, str]) -> tuple[Counts, SystemRun, int]:
    """Runs the system with a board open for `seconds`; returns the counts, the run and the
    number of websocket frames the board received."""
    run = SystemRun(env)
    run.start()
    try:
        tv_link = run.wait_for(TV_LINK, timeout=180).group(1)
        run.wait_for_port(int(env["WEB_PORT"]), timeout=120)
        marks: dict[str, float] = {}
        frames = open_board(tv_link, seconds, lambda: marks.setdefault("live", time.monotonic()))
        end = time.monotonic()
    finally:
        run.stop()
    return count(run.lines, marks["live"], end), run, frames


def report(counts: Counts, frames: int, label: str) -> str:
    names = sorted(set(counts.startup) | set(counts.steady))
    rows = [
        f"| {name} | {counts.startup[name]} | {counts.steady[name]} | "
        f"{counts.steady[name] / counts.minutes:.1f} |"
        for name in names
    ]
    verdict = "met" if counts.rate < TARGET_PER_MINUTE else "NOT MET"
    return "\n".join(
        [
            f"### Log volume, {label}",
            "",
            f"`bench/log_volume.py`: `make run`'s processes, the demo TV link open in Chromium "
            f"for {counts.minutes:.1f} min ({frames} websocket frames received).",
            "",
            "| process | start-up lines | lines with the board open | per minute |",
            "| --- | --- | --- | --- |",
            *rows,
            f"| **total** | {sum(counts.startup.values())} | {sum(counts.steady.values())} | "
            f"**{counts.rate:.1f}** |",
            "",
            f"Per minute: {counts.per_minute}. Target < {TARGET_PER_MINUTE}/min: {verdict}.",
            "",
            "Most frequent lines with the board open:",
            "",
            *[f"    {n:4d}  {text}" for text, n in counts.shapes],
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/11")
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    web_port = int(os.environ.get("WEB_PORT") or free_port())
    emulator_port = int(os.environ.get("ACR_EMULATOR_PORT") or free_port())
    with tempfile.TemporaryDirectory() as folder:
        env = system_env(web_port, emulator_port, redis_url, Path(folder) / "db.sqlite3")
        try:
            counts, run, frames = measure(args.minutes * 60, env)
        finally:
            store.flushdb()
    RAW.parent.mkdir(exist_ok=True)
    RAW.write_text("".join(f"{line.process} | {line.text}\n" for line in run.lines))
    day = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = report(counts, frames, day)
    print(text)
    print(f"every line of this run: {RAW}")
    if not args.no_record:
        with (ROOT / "bench" / "RESULTS.md").open("a", encoding="utf-8") as results:
            results.write("\n" + text)
    sys.exit(0)


if __name__ == "__main__":
    main()
