"""Soak benchmark of the wall-board page: does a board that runs for hours keep its memory?

    .venv/bin/python bench/soak_board.py [--updates 60000] [--rate 600] [--pages board,all]

Starts the web process as the Procfile runs it (`python -m dashboard.web`, uvicorn) on a free
127.0.0.1 port (test settings, a temporary SQLite file, Redis database 13, flushed before and
after), creates a staff user (it may see every metric), a catalog of 10 metrics x 5 queues
(COUNT, DURATION, AVERAGE_DURATION) and a board with every tile kind (value, breakdown, trend)
covering every metric, then writes the tile records itself through
metrics.ingest.store_and_publish (no Celery, no emulator).

Each page (the configured board, then /boards/all/) gets a fresh Chromium context: log in, wait
for the first snapshot, warm up with 1,000 updates, force GC, read Performance.getMetrics (JS
heap, DOM nodes, listeners), push --updates at --rate per second, GC, read again. The feed mixes
value types, adds --new-queues queues (the All board adds a tile for each) and every --gap-every
updates writes one record without publishing it, so the page sees a gap and asks for a snapshot.
"Updates received" counts the tile records in the page's websocket frames; at the end every tile
is written once more and the COUNT values the page shows are compared with what was written.

"An hour of accelerated updates": the page's clock cannot be sped up, so the rate is raised
instead; a busy floor sends ~17 updates/s, so 60,000 updates are about an hour of one.
Prints a table and appends it to bench/RESULTS.md; exits 0 even on FAIL (it is a measurement).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import logging
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = "redis://127.0.0.1:6379/13"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = "--no-sandbox --disable-gpu --disable-quic --no-first-run".split()
CHROMIUM_ARGS += "--disable-background-networking --disable-component-update --disable-sync".split()
USER, PASSWORD = "soak", "soak-bench-password-7"
QUEUES = ["Sales", "Support", "Billing", "Retention", "Technical"]
KINDS = {"CIQ": "COUNT", "CAB": "COUNT", "CAN": "COUNT", "AVL": "COUNT", "LWC": "DURATION"}
KINDS |= {"TTM": "DURATION", "HLD": "DURATION", "AWT": "AVERAGE_DURATION"}
KINDS |= {"ATT": "AVERAGE_DURATION", "AHT": "AVERAGE_DURATION"}
METRICS = {f"{m}GRP01": kind for m, kind in KINDS.items()}
NEW_QUEUE_METRICS = ["CANGRP01", "ATTGRP01"]  # value tiles on the board: only All shows them
TILES = [  # kind, metric, category, options: every metric, every tile kind
    ("value", "CIQ", "Sales", {"warning": 5, "critical": 12}),
    ("value", "LWC", "Sales", {"format": "hmmss", "warning": 600}),
    ("value", "AWT", "Support", {"warning": 60, "critical": 120}),
    ("value", "CAB", "Billing", {}),
    ("value", "CAN", "Sales", {}),
    ("value", "AVL", "Support", {"direction": "below", "warning": 3, "critical": 1}),
    ("value", "TTM", "Retention", {"format": "mmss"}),
    ("value", "ATT", "Technical", {}),
    ("breakdown", "CIQ", "", {"warning": 4, "targets": {"Billing": {"warning": 2}}}),
    ("breakdown", "AHT", "", {"warning": 300}),
    ("breakdown", "HLD", "", {}),
    ("trend", "LWC", "Sales", {"trend_hours": 2}),
    ("trend", "AWT", "Support", {"trend_hours": 1}),
]
LIMIT = 10.0  # per cent
LOCK = "soak-board:running"


class DropCounter(logging.Filter):
    """channels_redis logs (rather than raises) each group message a full channel drops."""

    dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        DropCounter.dropped += "over capacity" in record.getMessage()
        return False


def setup(db_path: Path) -> list:
    """Django in this process, the temporary database, the catalog, user and board."""
    env = {"DJANGO_SETTINGS_MODULE": "dashboard.test_settings", "REDIS_URL": REDIS_URL}
    env |= {"DATABASE_URL": f"sqlite:///{db_path}", "ACR_STALE_SECONDS": "3600"}
    os.environ.update(env)  # for the web process too
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)
    import django

    django.setup()
    logging.getLogger("channels_redis.core").addFilter(DropCounter())
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from metrics.acr.values import CatalogMetric
    from metrics.ingest import save_metrics
    from metrics.models import Board, Metric, Sample, Tile

    catalog = [CatalogMetric(m, f"Metric {m[:3]}", "GROUP", tuple(QUEUES)) for m in METRICS]
    save_metrics(catalog)
    get_user_model().objects.create_user(USER, password=PASSWORD, is_staff=True)
    board = Board.objects.create(name="Soak", slug="soak", title="Soak floor", columns=4)
    for order, (kind, metric, category, options) in enumerate(TILES):
        metric = Metric.objects.get(metric_id=metric + "GRP01")
        Tile.objects.create(board=board, order=order, kind=kind, metric=metric, **options,
                            category=category)  # fmt: skip
    now = timezone.now()
    Sample.objects.bulk_create(
        Sample.of(m, c, now - datetime.timedelta(minutes=i), i * 1e3)
        for _, m, c, _ in (t for t in TILES if t[0] == "trend")
        for i in range(1, 60)
    )
    return catalog


class Feed:
    """Tile records through the project's own write path. Every write is accepted (its upstream
    timestamp always moves on), so `published` is exactly what goes to the browsers."""

    def __init__(self, catalog: list) -> None:
        from metrics.live import catalog_to_wire

        self.catalog = {m["metric_id"]: m for m in catalog_to_wire(catalog)}
        self.queues = {m: list(QUEUES) for m in METRICS}
        self.rng = random.Random(7)
        self.stamps: dict[tuple[str, str], int] = {}
        self.counts: dict[tuple[str, str], int] = {}  # the last COUNT published per tile
        self.published = self.hidden = self.new_queues = 0

    def records(self, pairs: list[tuple[str, str]]) -> list[dict]:
        from metrics.acr import values as v
        from metrics.records import value_records

        rng, values = self.rng, []
        for metric, queue in pairs:
            now = max(time.time_ns() // 1_000_000, self.stamps.get((metric, queue), 0) + 1)
            self.stamps[(metric, queue)] = now
            finished, up, count = rng.randint(0, 3_600_000), rng.randint(0, 3), rng.randint(0, 40)
            if METRICS[metric] == "COUNT":
                value = v.CountValue(count, now)
            elif METRICS[metric] == "DURATION":
                value = v.DurationValue(finished, up, 0, now)
            else:
                value = v.AverageDurationValue(finished, up, 0, count, now)
            values.append(v.MetricValue(metric, queue, value))
        return value_records(values, self.catalog, source="websocket", now_ms=now)

    async def send(self, pairs: list[tuple[str, str]]) -> None:
        from metrics.ingest import store_and_publish

        for r in await store_and_publish(self.records(pairs)):
            self.published += 1
            if r["value"]["type"] == "COUNT":
                self.counts[(r["metric_id"], r["category"])] = r["value"]["count"]

    async def batch(self, n: int, gap_every: int) -> None:
        from metrics.live import write_records

        metrics = self.rng.choices(list(METRICS), k=n)
        pairs = [(m, self.rng.choice(self.queues[m])) for m in metrics]
        if gap_every and (self.published + n) // gap_every > self.published // gap_every:
            self.hidden += len(await write_records(self.records(pairs[:1])))  # not published
        await self.send(pairs)

    def add_queue(self) -> None:
        self.new_queues += 1
        self.queues[NEW_QUEUE_METRICS[self.new_queues % 2]].append(f"New {self.new_queues}")

    async def sweep(self) -> None:
        """Writes every tile once, so the values the page ends with are known."""
        await self.send([(m, q) for m, queues in self.queues.items() for q in queues])


async def push(feed: Feed, count: int, args, gap_every: int = 0, new: int = 0) -> float:
    """`count` updates at args.rate per second; returns the rate achieved."""
    start, done, step = time.monotonic(), 0, count // (new + 1)
    while done < count:
        n = min(args.batch, count - done)
        await feed.batch(n, gap_every)
        if new and done // step < (done + n) // step <= new:
            feed.add_queue()
        done += n
        await asyncio.sleep(max(0.0, start + done / args.rate - time.monotonic()))
    return done / (time.monotonic() - start)


class PageCounter:
    def __init__(self) -> None:
        self.tiles = self.snapshots = 0

    def frame(self, payload: str | bytes) -> None:
        message = json.loads(payload)
        self.tiles += len(message["records"]) if message["type"] == "records" else 0
        self.snapshots += message["type"] == "snapshot"

    async def settle(self, target: int, quiet: float = 5, limit: float = 120) -> None:
        """Until the page received `target` tile records, or nothing came for `quiet` s."""
        last, since, deadline = -1, time.monotonic(), time.monotonic() + limit
        while self.tiles < target and time.monotonic() < min(deadline, since + quiet):
            if self.tiles != last:
                last, since = self.tiles, time.monotonic()
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # the page's own 1 s refresh


async def measure(cdp, page) -> dict[str, float]:
    for _ in range(3):
        await cdp.send("HeapProfiler.collectGarbage")
    found = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
    shown = await page.evaluate("document.querySelectorAll('[data-state]').length")
    return {k: found[k] for k in ("JSHeapUsedSize", "Nodes", "JSEventListeners")} | {"shown": shown}


async def run_page(browser, base: str, path: str, feed: Feed, args) -> dict:
    context = await browser.new_context(viewport={"width": 1920, "height": 1080})
    page, counter = await context.new_page(), PageCounter()
    page.on("websocket", lambda ws: ws.on("framereceived", counter.frame))
    await page.goto(base + "/accounts/login/?next=/")
    await page.fill("#id_username", USER)
    await page.fill("#id_password", PASSWORD)
    await page.click("button[type=submit]")
    await page.get_by_role("link", name="All metrics").wait_for()
    await page.goto(base + path)
    await page.locator('.tile[data-state="live"]').first.wait_for(timeout=30_000)
    if path != "/boards/all/":
        await page.locator(".trend-plot .main-svg").nth(1).wait_for(timeout=30_000)
    cdp = await context.new_cdp_session(page)
    await cdp.send("Performance.enable")
    sent, seen = feed.published, counter.tiles
    await push(feed, 1000, args)  # warm-up
    await counter.settle(seen + feed.published - sent)
    start, dropped = await measure(cdp, page), DropCounter.dropped
    sent, seen, snaps, hidden = feed.published, counter.tiles, counter.snapshots, feed.hidden
    rate = await push(feed, args.updates, args, args.gap_every, args.new_queues)
    await feed.sweep()
    await counter.settle(seen + feed.published - sent)
    end = await measure(cdp, page)
    shown = await page.eval_on_selector_all(
        "[data-metric-id][data-state]",
        "els => els.map(e => [e.dataset.metricId, e.dataset.category, e.dataset.value])",
    )
    checked = [str(feed.counts[(m, c)]) == v for m, c, v in shown if (m, c) in feed.counts]
    await context.close()
    return {
        "updates sent (published)": f"{feed.published - sent:,}",
        "updates written unpublished (gaps)": feed.hidden - hidden,
        "achieved rate (updates/s)": f"{rate:.0f}",
        "updates received by the page": f"{counter.tiles - seen:,}",
        "group messages dropped (channel full)": f"{DropCounter.dropped - dropped:,}",
        "snapshots re-fetched": counter.snapshots - snaps,
        "values shown start / end": f"{start['shown']} / {end['shown']}",
        "final COUNT values correct": f"{sum(checked)}/{len(checked)}",
        "JS heap start / end (MB)": f"{start['JSHeapUsedSize'] / 2**20:.2f} / "
        f"{end['JSHeapUsedSize'] / 2**20:.2f}",
        "JS heap growth": growth(start, end, "JSHeapUsedSize"),
        "DOM nodes start / end": f"{start['Nodes']:.0f} / {end['Nodes']:.0f}",
        "DOM nodes growth": growth(start, end, "Nodes"),
        "JS listeners start / end": f"{start['JSEventListeners']:.0f} / "
        f"{end['JSEventListeners']:.0f}",
    }


def growth(start: dict, end: dict, key: str) -> str:
    return f"{100 * (end[key] - start[key]) / start[key]:+.1f} %"


def passed(result: dict) -> bool:
    return all(float(result[k][:-2]) <= LIMIT for k in ("JS heap growth", "DOM nodes growth"))


def table(results: dict[str, dict]) -> str:
    for result in results.values():
        result["result (limit +10 %)"] = "PASS" if passed(result) else "**FAIL**"
    lines = ["| | " + " | ".join(results) + " |", "| --- |" + " --- |" * len(results)]
    for row in next(iter(results.values())):
        lines.append(f"| {row} | " + " | ".join(str(r[row]) for r in results.values()) + " |")
    return "\n".join(lines)


def machine() -> str:
    cpu = [line.split(":")[1].strip() for line in open("/proc/cpuinfo") if "model name" in line]
    git = ["git", "rev-parse", "--short", "HEAD"]
    head = subprocess.run(git, cwd=ROOT, capture_output=True, text=True).stdout.strip()
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())  # others skew rates
    return f"{now}, nproc {os.cpu_count()}, {cpu[0] if cpu else '?'}, commit {head or '?'}, {load}"


async def soak(args, catalog: list, base: str) -> dict[str, dict]:
    from playwright.async_api import async_playwright

    from metrics import ingest, live

    feed = Feed(catalog)
    await live.store_catalog(catalog)
    await feed.sweep()  # every tile has a value before a page opens

    async def keep_fresh() -> None:  # the status a subscriber would keep fresh
        while True:
            await ingest.report_subscription(True, "")
            await asyncio.sleep(3)

    fresh, results = asyncio.create_task(keep_fresh()), {}
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for path in [{"board": "/boards/soak/", "all": "/boards/all/"}[p] for p in args.pages]:
                print(f"soaking {path} ...", flush=True)
                results[path] = await run_page(browser, base, path, feed, args)
            await browser.close()
    finally:
        fresh.cancel()
        await live.close_redis()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=60_000)
    parser.add_argument("--rate", type=float, default=600, help="updates per second")
    parser.add_argument("--batch", type=int, default=10, help="records per store_and_publish")
    parser.add_argument("--gap-every", type=int, default=3000, help="an unpublished write every N")
    parser.add_argument("--new-queues", type=int, default=2, help="new queues during each soak")
    parser.add_argument("--pages", default="board,all", type=lambda s: s.split(","))
    parser.add_argument("--no-results", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()

    import redis

    store = redis.Redis.from_url(REDIS_URL)
    if store.exists(LOCK):  # two runs would flush each other's state
        sys.exit(f"another soak run is using {REDIS_URL} ({LOCK} is set): wait for it to end")
    store.flushdb()
    budget = len(args.pages) * (3 * args.updates / args.rate + 300)
    store.set(LOCK, os.getpid(), ex=int(budget) + 120)
    tmp, web = Path(tempfile.mkdtemp(prefix="soak-board-")), None
    try:
        catalog = setup(tmp / "db.sqlite3")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        serve = [sys.executable, "-m", "dashboard.web"]  # the web process as the Procfile runs it
        env = {**os.environ, "WEB_PORT": str(port)}
        with open(tmp / "web.log", "w") as log:
            web = subprocess.Popen(serve, cwd=ROOT, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while not listening(port):
            if web.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "The web server did not start:\n" + (tmp / "web.log").read_text()
                )
            time.sleep(0.1)
        results = asyncio.run(
            asyncio.wait_for(soak(args, catalog, f"http://127.0.0.1:{port}"), budget)
        )
    finally:
        if web is not None:
            web.terminate()
            try:
                web.wait(timeout=10)
            except subprocess.TimeoutExpired:
                web.kill()
                web.wait()
        store.flushdb()
        shutil.rmtree(tmp, ignore_errors=True)
    report = table(results)
    print(f"\n{report}\n")
    failed = [path for path, result in results.items() if not passed(result)]
    print(f"FAIL: {', '.join(failed)} grew by more than {LIMIT:.0f} %" if failed else "PASS")
    if not args.no_results:
        run = f"--updates {args.updates} --rate {args.rate:g} --gap-every {args.gap_every}"
        with open(Path(__file__).with_name("RESULTS.md"), "a", encoding="utf-8") as out:
            out.write(f"\n## Board soak ({run})\n\n{machine()}\n\n{report}\n")


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


if __name__ == "__main__":
    main()
