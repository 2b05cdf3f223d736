"""Load on the public widget's JSON endpoint: requests/s and latency, and proof that the
upstream sees no request caused by it.

    .venv/bin/python bench/widget_load.py [--seconds 15] [--connections 64]

Starts its own web server (`--server`: by default the web process as shipped, uvicorn; Daphne
to compare) with test settings, a private Redis database and a temporary SQLite file, and an
emulator (only to count upstream requests: nothing in this run polls it), drives
/widget/<slug>.json with wrk (Debian package `wrk`), and prints and appends the figures to
bench/RESULTS.md. Only 127.0.0.1 is used; everything stops by itself.
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.servers import WEB_SERVERS  # noqa: E402 - after ROOT is on the path

REDIS_URL = "redis://127.0.0.1:6379/11"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def prepare(env: dict[str, str]) -> None:
    """Migrates the temporary database and creates the widget, its metrics and live values."""
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    from metrics import live
    from metrics.acr import clock
    from metrics.models import Metric, Widget

    call_command("migrate", verbosity=0)
    wait = Metric.objects.create(
        metric_id="AWTGRP01",
        name="Average Wait Time",
        category_type="GROUP",
        categories=["Sales"],
        public=True,
    )
    queue = Metric.objects.create(
        metric_id="CIQGRP01",
        name="Calls in Queue",
        category_type="GROUP",
        categories=["Sales"],
        public=True,
    )
    Widget.objects.create(
        slug="sales",
        name="Sales",
        wait_metric=wait,
        wait_category="Sales",
        queue_metric=queue,
        queue_category="Sales",
        public=True,
    )

    async def values():
        now = clock.now_ms()
        await live.get_redis().flushdb()
        await live.write_records(
            [
                {
                    "metric_id": "AWTGRP01",
                    "category": "Sales",
                    "state": "live",
                    "error": "",
                    "value": {
                        "type": "AVERAGE_DURATION",
                        "count": 40,
                        "finished_ms": 5_000_000,
                        "up": 2,
                        "down": 0,
                        "last_update_ms": now,
                    },
                    "upstream_ms": now,
                    "source": "poll",
                    "received_ms": now,
                },
                {
                    "metric_id": "CIQGRP01",
                    "category": "Sales",
                    "state": "live",
                    "error": "",
                    "value": {"type": "COUNT", "count": 5, "last_update_ms": now},
                    "upstream_ms": now,
                    "source": "poll",
                    "received_ms": now,
                },
            ]
        )
        # Fresh for the whole run: this run has no poller.
        await live.update_status(poll_ok_ms=now + 3_600_000, ws_ok_ms=now + 3_600_000)
        await live.close_redis()

    asyncio.run(values())


def run_wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(  # noqa: S603
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def latency(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": latency("50"),
        "p99": latency("99"),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "none",
    }


def run_paced(url: str, seconds: int, connections: int, rate: int) -> dict[str, float]:
    """An open-loop load at `rate` requests/s (bench/values_load.lua paces wrk): latency at the
    target rate, not at saturation. Requests that left late for their slot are counted."""
    out = subprocess.run(  # noqa: S603
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds + 3}s",
            "--timeout",
            "10s",  # noqa: S607
            "-s",
            str(ROOT / "bench" / "values_load.lua"),
            url,
            "--",
            "unused",
            str(rate),
            str(rate * seconds),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    return {
        "rps": result["completed"] / result["span_s"] if result["span_s"] else 0.0,
        "p50": result["p50_ms"],
        "p99": result["p99_ms"],
        "requests": result["completed"],
        "non_2xx": result["not_ok"],
        "socket_errors": f"late {result['late']}, timeouts {result['timeout']}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--rate",
        type=int,
        default=2000,
        help="offered requests/s for the paced run (0: only the closed-loop maximum)",
    )
    parser.add_argument(
        "--server",
        choices=sorted(WEB_SERVERS),
        default="web",
        help="web: as the Procfile runs it (dashboard.web: uvicorn); daphne: Daphne with its"
        " access log; daphne-quiet: Daphne without it",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")

    db = Path(tempfile.mkdtemp()) / "widget-bench.sqlite3"
    emulator_port, web_port = free_port(), free_port()
    env = {
        "DJANGO_SETTINGS_MODULE": "dashboard.test_settings",
        "DATABASE_URL": f"sqlite:///{db}",
        "REDIS_URL": REDIS_URL,
        "ACR_BASE_URL": f"http://127.0.0.1:{emulator_port}",
        "ACR_AUTH_KEY": "bench-key",
        "WIDGET_RATE_LIMIT": str(10**9),  # all load comes from one address here
        "LOG_LEVEL": "WARNING",
    }
    prepare(env)
    procs = [
        subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "acr_emulator",
                "--port",
                str(emulator_port),
                "--scenario",
                "static",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
        ),
        subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", *WEB_SERVERS[args.server](web_port)],
            cwd=ROOT,
            env={**os.environ, **env, "WEB_PORT": str(web_port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        url = f"http://127.0.0.1:{web_port}/widget/sales.json"
        wait_for(url)
        wait_for(f"http://127.0.0.1:{emulator_port}/_emulator/stats")
        print("payload:", httpx.get(url).text)
        upstream_before = httpx.get(f"http://127.0.0.1:{emulator_port}/_emulator/stats").json()
        result = run_wrk(url, args.seconds, args.connections)
        paced = run_paced(url, args.seconds, args.connections, args.rate) if args.rate else None
        upstream_after = httpx.get(f"http://127.0.0.1:{emulator_port}/_emulator/stats").json()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
    upstream = upstream_after["requests_total"] - upstream_before["requests_total"]
    target = paced or result
    verdict = "PASS" if target["rps"] >= 2000 and target["p99"] < 50 and upstream == 0 else "FAIL"
    header = (
        "| load | requests/s | p50 ms | p99 ms | requests | non-2xx | errors | upstream requests "
        "| target |\n|---|---|---|---|---|---|---|---|---|\n"
    )

    def row(name: str, figures: dict, verdict: str) -> str:
        return (
            f"| {name} | {figures['rps']:.0f} | {figures['p50']:.2f} | {figures['p99']:.2f} "
            f"| {figures['requests']} | {figures['non_2xx']} | {figures['socket_errors']} "
            f"| {upstream} | {verdict} |\n"
        )

    table = header + row(f"closed loop, {args.connections} connections", result, "(maximum)")
    if paced:
        table += row(f"paced at {args.rate}/s", paced, verdict + " (>= 2,000/s, p99 < 50 ms, 0)")
    print(table)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,  # noqa: S603,S607
        capture_output=True,
        text=True,
    ).stdout.strip()
    with open(ROOT / "bench" / "RESULTS.md", "a", encoding="utf-8") as results:
        results.write(
            f"\n## Widget JSON load, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"{os.cpu_count()} cores, commit {commit}\n\n"
            f"wrk -c{args.connections}, {args.seconds}s per load,"
            f" against one {args.server} process.\n\n"
            f"{table}\n"
        )


if __name__ == "__main__":
    main()
