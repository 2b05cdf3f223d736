"""How many subscribers and values requests the ACR emulator sustains on this machine.

    .venv/bin/python bench/emulator_capacity.py [--subscribers 2000] [--rps 500] [--seconds 20]

Starts the emulator (scenario demo) on a free 127.0.0.1 port, opens the websocket subscribers
from ``--workers`` client processes, then for ``--seconds`` drives values requests at
``--rps`` (open loop, httpx) while posting a marker value every ``--update-every`` seconds
through ``POST /_emulator/values``. Prints subscribers connected, fan-out latency (post sent
-> frame received at each subscriber), values requests/s with latency, errors, and the
emulator's CPU and RSS from /proc. Everything is bounded in count and time; only loopback
addresses are used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-key"
MARK_METRIC = "CANTOD01"
MARK_BASE = 10_000_000  # marker counts are MARK_BASE + sequence number
SUBSCRIBED = ["CANTOD01", "CIQGRP01", "AVLGRP01"]
ALL_IDS = ["CIQGRP01", "LWCGRP01", "AWTGRP01", "ATTAGT01", "AVLGRP01", "CANTOD01", "CABGRP01"]
HARD_LIMIT_S = 300


# --- client worker process -----------------------------------------------------------------


async def subscriber(url: str, marks: dict[int, list[float]], errors: list[str]) -> None:
    try:
        async with connect(url, open_timeout=30, max_queue=None, ping_interval=None) as ws:
            async for message in ws:
                if MARK_METRIC not in message:
                    continue
                frame = json.loads(message)
                count = frame.get("value", {}).get("count", 0)
                if frame["key"]["metricId"] == MARK_METRIC and count >= MARK_BASE:
                    marks.setdefault(count - MARK_BASE, []).append(time.time())
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # every failure is counted, none stops the others
        errors.append(type(exc).__name__)


async def worker(base: str, count: int) -> None:
    query = urlencode([("id", i) for i in SUBSCRIBED] + [("auth_token", KEY)])
    url = f"{base.replace('http://', 'ws://')}/rest/api/v1/realtime-metric-subscription?{query}"
    marks: dict[int, list[float]] = {}
    errors: list[str] = []
    tasks = []
    for index in range(count):
        tasks.append(asyncio.create_task(subscriber(url, marks, errors)))
        if index % 50 == 49:
            await asyncio.sleep(0.05)  # don't flood the accept queue
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), HARD_LIMIT_S)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"marks": marks, "errors": errors}), flush=True)


# --- driver ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> tuple[float, float]:
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive_values(
    base: str, rps: float, seconds: float, concurrency: int = 48
) -> dict[str, object]:
    url = f"{base}/rest/api/v1/realtime/metrics/values?" + urlencode([("id", i) for i in ALL_IDS])
    latencies: list[float] = []
    errors: dict[str, int] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, limits=limits) as c:
        begin = time.perf_counter()
        total = int(rps * seconds)
        next_slot = 0

        async def loop() -> None:
            # A fixed set of request loops sharing one schedule: open loop at ``rps`` without
            # thousands of tasks queueing on the connection pool.
            nonlocal next_slot
            while next_slot < total:
                slot, next_slot = next_slot, next_slot + 1
                delay = begin + slot / rps - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                started = time.perf_counter()
                try:
                    response = await c.get(url, timeout=10)
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    continue
                if response.status_code != 200:
                    code = str(response.status_code)
                    errors[code] = errors.get(code, 0) + 1
                    continue
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(loop() for _ in range(concurrency)))
        elapsed = time.perf_counter() - begin
    return {
        "sent": total,
        "ok": len(latencies),
        "elapsed": elapsed,
        "lat": latencies,
        "errors": errors,
    }


async def post_marks(base: str, every: float, seconds: float) -> dict[int, float]:
    sent: dict[int, float] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        deadline = time.monotonic() + seconds
        sequence = 0
        while time.monotonic() < deadline:
            body = {
                "metricId": MARK_METRIC,
                "categoryValue": "",
                "value": {"type": "COUNT", "count": MARK_BASE + sequence},
            }
            sent[sequence] = time.time()
            await client.post(f"{base}/_emulator/values", json=body)
            sequence += 1
            await asyncio.sleep(every)
    return sent


def start_emulator(port: int) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "acr_emulator", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--scenario", "demo", "--init-seconds", "0", "--auth-key", KEY]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening" not in line:
        process.kill()
        raise SystemExit(f"the emulator did not start: {line!r}")
    return process


def start_drivers(base: str, rps: int, seconds: float, count: int) -> list[subprocess.Popen[str]]:
    """httpx tops out near 450 requests/s per process here: spread the rate over processes."""
    command = [sys.executable, __file__, "--driver", base, "--seconds", str(seconds)]
    return [
        subprocess.Popen([*command, "--rps", str(rps / count)], stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]


def collect_drivers(drivers: list[subprocess.Popen[str]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"sent": 0, "ok": 0, "elapsed": 0.0, "lat": [], "errors": {}}
    for proc in drivers:
        out, _ = proc.communicate(timeout=HARD_LIMIT_S)
        result = json.loads(out.strip().splitlines()[-1])
        merged["sent"] += result["sent"]
        merged["ok"] += result["ok"]
        merged["elapsed"] = max(merged["elapsed"], result["elapsed"])
        merged["lat"] += result["lat"]
        for name, n in result["errors"].items():
            merged["errors"][name] = merged["errors"].get(name, 0) + n
    return merged


def start_workers(base: str, subscribers: int, workers: int) -> list[subprocess.Popen[str]]:
    shares = [
        subscribers // workers + (1 if i < subscribers % workers else 0) for i in range(workers)
    ]
    procs = []
    for share in shares:
        command = [sys.executable, __file__, "--worker", base, "--subscribers", str(share)]
        procs.append(
            subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        )
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit("a client worker failed to start")
    return procs


async def wait_connected(base: str, expected: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            stats = (await client.get(f"{base}/_emulator/stats")).json()
            if stats["ws_open"] >= expected or time.monotonic() > deadline:
                return stats["ws_open"]
            await asyncio.sleep(0.5)


def report(args, connected, sent, marks, errors, values, cpu, memory) -> None:
    expected = {seq: args.subscribers for seq in sent}
    latencies = [t - sent[seq] for seq, times in marks.items() if seq in sent for t in times]
    received = sum(len(times) for seq, times in marks.items() if seq in sent)
    lat = values["lat"]
    ms = 1000
    print(f"subscribers connected      {connected} / {args.subscribers}")
    print(
        f"fan-out updates            {len(sent)} posted, {received}/{sum(expected.values())} frames"
    )
    print(
        f"fan-out latency            p50 {percentile(latencies, 0.5) * ms:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * ms:.1f} ms, "
        f"max {max(latencies, default=0) * ms:.1f} ms"
    )
    print(
        f"values requests            {values['ok']}/{values['sent']} ok, "
        f"{values['ok'] / values['elapsed']:.0f}/s achieved (target {args.rps:.0f}/s)"
    )
    print(
        f"values latency             p50 {percentile(lat, 0.5) * ms:.1f} ms, "
        f"p99 {percentile(lat, 0.99) * ms:.1f} ms"
    )
    print(f"errors                     values {values['errors'] or 0}, websocket {errors or 0}")
    print(f"emulator CPU               {cpu * 100:.0f}% of one core over the run")
    print(f"emulator RSS               {memory[0]:.0f} MB now, {memory[1]:.0f} MB peak")


async def run(args: argparse.Namespace) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    emulator = start_emulator(port)
    workers: list[subprocess.Popen[str]] = []
    try:
        workers = start_workers(base, args.subscribers, args.workers)
        connected = await wait_connected(base, args.subscribers, timeout=60)
        await asyncio.sleep(1.0)  # let the snapshots go out
        cpu_before, started = cpu_seconds(emulator.pid), time.monotonic()
        drivers = start_drivers(base, args.rps, args.seconds, args.drivers)
        sent = await post_marks(base, args.update_every, args.seconds)
        values = collect_drivers(drivers)
        await asyncio.sleep(2.0)  # the last marks reach everyone
        cpu = (cpu_seconds(emulator.pid) - cpu_before) / (time.monotonic() - started)
        memory = memory_mb(emulator.pid)
        marks: dict[int, list[float]] = {}
        ws_errors: dict[str, int] = {}
        for proc in workers:
            out, _ = proc.communicate("stop\n", timeout=60)
            result = json.loads(out.strip().splitlines()[-1])
            for seq, times in result["marks"].items():
                marks.setdefault(int(seq), []).extend(times)
            for name in result["errors"]:
                ws_errors[name] = ws_errors.get(name, 0) + 1
        report(args, connected, sent, marks, ws_errors, values, cpu, memory)
    finally:
        for proc in [*workers, emulator]:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--rps", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2, help="client processes for the sockets")
    parser.add_argument("--update-every", type=float, default=0.5)
    parser.add_argument("--drivers", type=int, default=2, help="processes for values requests")
    parser.add_argument("--worker", metavar="BASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--driver", metavar="BASE_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker(args.worker, args.subscribers))
        return
    if args.driver:
        result = asyncio.run(drive_values(args.driver, args.rps, args.seconds))
        print(json.dumps(result), flush=True)
        return
    if not 0 < args.seconds <= 120 or not 0 < args.subscribers <= 10_000 or args.rps <= 0:
        parser.error("keep it bounded: 0 < seconds <= 120, 0 < subscribers <= 10000, rps > 0")
    asyncio.run(asyncio.wait_for(run(args), HARD_LIMIT_S))


if __name__ == "__main__":
    main()
