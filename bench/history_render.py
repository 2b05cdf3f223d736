"""History chart benchmark: a full day of one-second samples for 50 series, drawn in a browser.

    .venv/bin/python bench/history_render.py [--series 50] [--hours 24] [--runs 5]
    .venv/bin/python bench/history_render.py --database-url postgres://postgres@127.0.0.1/bench_history

Builds a database of its own (a temporary SQLite file by default; with --database-url a
PostgreSQL database it creates and drops), migrates it, writes one DURATION metric with --series
categories and one sample per second per category over the last --hours (86,400 x 50 = 4.32
million rows), rolls them up per minute as the beat task would have, then starts the web server on
a free 127.0.0.1 port and opens the history page in headless Chromium as a logged-in
administrator.

Each run reloads the page and reads what history.js records: the request (query, reduction and
JSON in the server, plus transfer and parse) and Plotly's drawing of every series; the first
run also loads Plotly itself (4.6 MB; the request waits for it). Target: the whole, from asking
to a drawn chart, under 1 s.
Prints a table and appends it to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = "redis://127.0.0.1:6379/11"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = "--no-sandbox --disable-gpu --disable-quic --no-first-run".split()
CHROMIUM_ARGS += "--disable-background-networking --disable-component-update --disable-sync".split()
USER, PASSWORD = "history-bench", "history-bench-password-7"
METRIC = "LWCAGT01"
TARGET_MS = 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def create_postgres_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')


def drop_postgres_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fill(series: int, hours: float) -> int:
    """The metric, a user, and one sample per second per category (a random walk in ms)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction

    from metrics import history
    from metrics.models import Metric, SampleMinute

    call_command("migrate", verbosity=0)
    get_user_model().objects.create_user(USER, password=PASSWORD, is_staff=True)
    categories = [f"Agent {n:02d}" for n in range(1, series + 1)]
    Metric.objects.create(
        metric_id=METRIC, name="Longest call", category_type="AGENT", categories=categories
    )
    end = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    seconds = int(hours * 3600)
    moments = [end - datetime.timedelta(seconds=s) for s in range(seconds, 0, -1)]
    stamps = [
        (connection.ops.adapt_datetimefield_value(at), int(at.timestamp() * 1000)) for at in moments
    ]
    sql = (
        "INSERT INTO metrics_sample (metric_id, category, at, at_ms, value) VALUES (%s,%s,%s,%s,%s)"
    )
    rng = random.Random(7)
    rows = 0
    for category in categories:
        value = rng.uniform(0, 300_000)
        batch = []
        for at, at_ms in stamps:
            value = max(0.0, value + rng.gauss(0, 2_000))
            batch.append((METRIC, category, at, at_ms, round(value)))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, batch)
        rows += len(batch)
        print(f"\r  wrote {rows:,} samples", end="", flush=True)
    print()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE metrics_sample")
    # As beat's roll_up_samples would have done during the day (it re-rolls its newest minutes).
    started, done = time.monotonic(), -1
    while history.rolled_up_until() != done:
        done = history.rolled_up_until()
        history.roll_up(int(end.timestamp() * 1000))
    print(
        f"  rolled up into {SampleMinute.objects.count():,} minutes in"
        f" {time.monotonic() - started:.1f} s"
    )
    return rows


def measure(base_url: str, runs: int) -> list[dict]:
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.goto(f"{base_url}/accounts/login/?next=/history/")
        page.fill("#id_username", USER)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        for run in range(runs):
            if run:
                page.reload()
            # The page draws its default range, the last 24 hours, as it loads.
            page.wait_for_selector("#history-chart[data-render-ms]", timeout=120_000)
            chart = page.locator("#history-chart")
            timings = {
                name: int(chart.get_attribute(f"data-{name}-ms"))
                for name in ("fetch", "draw", "render")
            }
            timings["series"] = int(chart.get_attribute("data-series"))
            timings["paths"] = page.locator("#history-chart .scatterlayer path.js-line").count()
            timings["points"] = int(
                page.locator("#history-state").inner_text().split(", ")[1].split()[0]
            )
            results.append(timings)
            print(f"  run {run + 1}: {timings}")
        browser.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=50)
    parser.add_argument("--hours", type=float, default=24, help="data written; the page shows 24 h")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="history-bench-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    env = {
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "DJANGO_SECRET_KEY": "history-bench-secret",
        "SECURE_HTTPS": "0",
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "ACR_AUTH_KEY": "unused-by-this-benchmark",
        "LOG_LEVEL": "WARNING",
    }
    if database_url.startswith("postgres"):
        create_postgres_database(database_url)
    setup_django(env)
    started = time.monotonic()
    rows = fill(args.series, args.hours)
    print(f"  {rows:,} samples in {time.monotonic() - started:.0f} s")

    port = free_port()
    log = open(workdir / "web.log", "w")  # noqa: SIM115 - closed at exit
    web = subprocess.Popen(
        [sys.executable, "-m", "dashboard.web"],  # the web process as the Procfile runs it
        cwd=ROOT,
        env={**os.environ, **env, "WEB_PORT": str(port)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        results = measure(f"http://127.0.0.1:{port}", args.runs)
    finally:
        web.terminate()
        web.wait(timeout=10)
        log.close()
        from django.db import connections

        connections.close_all()
        if database_url.startswith("postgres"):
            drop_postgres_database(database_url)

    warm = results[1:] or results
    p50 = {k: statistics.median(r[k] for r in warm) for k in ("fetch", "draw", "render")}
    worst = max(r["render"] for r in warm)
    verdict = "PASS" if worst < TARGET_MS else "FAIL"
    engine = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
    print()
    print(f"{args.series} series x {args.hours:g} h of 1-s samples = {rows:,} rows ({engine})")
    print(f"drawn: {results[-1]['paths']} lines, {results[-1]['points']:,} points")
    print(f"first run (loads Plotly): {results[0]['render']} ms")
    print(
        f"warm runs ({len(warm)}): request p50 {p50['fetch']:.0f} ms,"
        f" draw p50 {p50['draw']:.0f} ms, total p50 {p50['render']:.0f} ms,"
        f" max {worst} ms -> {verdict} (target < {TARGET_MS} ms)"
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    now = datetime.datetime.now(datetime.UTC)
    section = (
        f"\n## History chart render, {now:%Y-%m-%d %H:%M} UTC, 2 cores, commit {commit}\n\n"
        f"{args.series} series x {args.hours:g} h of one-second samples ({rows:,} rows, {engine}),"
        f" the history page's last 24 hours in headless Chromium at 1920x1080;"
        f" {results[-1]['paths']} lines, {results[-1]['points']:,} points drawn.\n\n"
        "| run | request ms | draw ms | total ms |\n|---|---|---|---|\n"
        + "".join(
            f"| {n or 'first (loads Plotly)'} | {r['fetch']} | {r['draw']} | {r['render']} |\n"
            for n, r in enumerate(results)
        )
        + f"\nWarm runs: total p50 {p50['render']:.0f} ms, max {worst} ms: **{verdict}**"
        f" (target < {TARGET_MS} ms).\n"
    )
    with open(ROOT / "bench" / "RESULTS.md", "a", encoding="utf-8") as results_file:
        results_file.write(section)


if __name__ == "__main__":
    main()
