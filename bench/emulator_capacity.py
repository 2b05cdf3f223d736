"""How many subscribers and values requests the ACR emulator sustains on this machine.

    .venv/bin/python bench/emulator_capacity.py [--subscribers 2000] [--rps 500] [--seconds 20]

Starts the emulator (scenario demo) on a free 127.0.0.1 port and opens the websocket
subscribers from ``--workers`` client processes (the ``websockets`` client, as the dashboard
uses, permessage-deflate included). Then, for ``--seconds``, it offers values requests at a
fixed ``--rps`` schedule while posting a marker value every ``--update-every`` seconds through
``POST /_emulator/values``.

The values load comes from ``wrk`` (C, one thread, paced by ``bench/values_load.lua``) when it
is installed, else, with a printed note, from a paced aiohttp generator in one process. Both
report the requests completed per second against the offered rate, p50/p99 latency (from
the moment each request is sent), requests sent late for their slot, and errors.

Prints subscribers connected, fan-out latency (post sent -> frame received at each
subscriber), the values figures, and the CPU of the emulator, the subscriber processes, the
load generator and the whole machine over the run, so that a saturated client shows. Every
phase is bounded in count and time; only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
LUA_SCRIPT = Path(__file__).resolve().with_name("values_load.lua")
KEY = "bench-key"
MARK_METRIC = "CANTOD01"
MARK_BASE = 10_000_000  # marker counts are MARK_BASE + sequence number
SUBSCRIBED = ["CANTOD01", "CIQGRP01", "AVLGRP01"]
ALL_IDS = ["CIQGRP01", "LWCGRP01", "AWTGRP01", "ATTAGT01", "AVLGRP01", "CANTOD01", "CABGRP01"]
HARD_LIMIT_S = 300
LATE_S = 0.010  # a values request sent more than this after its slot counts as late
GRACE_S = 3  # the generator's run beyond the schedule, for the last answers


# --- websocket subscriber process ----------------------------------------------------------


async def subscriber(
    url: str, marks: dict[int, list[float]], errors: list[str], frames: list[int]
) -> None:
    try:
        async with connect(url, open_timeout=60, max_queue=None, ping_interval=None) as ws:
            # the connection's objects live for the whole run: out of the collector's walk
            # (a full collection over 2,000 sockets stops this client for ~100-200 ms)
            gc.freeze()
            async for message in ws:
                frames[0] += 1
                if MARK_METRIC not in message:
                    continue
                frame = json.loads(message)
                count = frame.get("value", {}).get("count", 0)
                if frame["key"]["metricId"] == MARK_METRIC and count >= MARK_BASE:
                    marks.setdefault(count - MARK_BASE, []).append(time.time())
        errors.append("closed by the emulator")
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # every failure is counted, none stops the others
        errors.append(type(exc).__name__)


async def worker(base: str, count: int) -> None:
    query = urlencode([("id", i) for i in SUBSCRIBED] + [("auth_token", KEY)])
    url = f"{base.replace('http://', 'ws://')}/rest/api/v1/realtime-metric-subscription?{query}"
    gc.set_threshold(20_000, 20, 20)  # as the emulator does (acr_emulator.__main__.tune_gc)
    marks: dict[int, list[float]] = {}
    errors: list[str] = []
    frames = [0]
    tasks = []
    for index in range(count):
        tasks.append(asyncio.create_task(subscriber(url, marks, errors, frames)))
        if index % 50 == 49:
            await asyncio.sleep(0.05)  # don't flood the accept queue
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), HARD_LIMIT_S)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"marks": marks, "errors": errors, "frames": frames[0]}), flush=True)


# --- values load: wrk, or the Python fallback -------------------------------------------------


def values_url(base: str) -> str:
    return f"{base}/rest/api/v1/realtime/metrics/values?" + urlencode([("id", i) for i in ALL_IDS])


def wrk_command(base: str, rps: float, seconds: float, connections: int) -> list[str]:
    """One wrk thread is plenty for a few thousand requests/s and leaves the cores to the
    emulator; the Lua script paces it to ``rps`` and stops issuing after the schedule."""
    total = round(rps * seconds)
    duration = f"{int(seconds + GRACE_S + 0.999)}s"
    return [
        *("wrk", "-t1", f"-c{connections}", f"-d{duration}", "--timeout", "10s"),
        *("-s", str(LUA_SCRIPT), values_url(base), "--", KEY, repr(rps), str(total)),
    ]


async def drive_values(base: str, rps: float, seconds: float, connections: int) -> dict[str, Any]:
    """The fallback generator: ``connections`` request loops on one paced schedule (one
    process, aiohttp). Same JSON shape as the Lua script's ``done()``."""
    url = values_url(base)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors: dict[str, int] = {}
    total = round(rps * seconds)
    state = {"next": 0, "late": 0, "lag": 0.0, "last": 0.0}
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=10)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout) as c:
        begin = time.perf_counter()

        async def loop() -> None:
            while state["next"] < total:
                slot = state["next"]
                state["next"] += 1
                delay = begin + slot / rps - time.perf_counter()
                state["lag"] = max(state["lag"], -delay)
                if delay < -LATE_S:
                    state["late"] += 1
                if delay > 0:
                    await asyncio.sleep(delay)
                started = time.perf_counter()
                try:
                    async with c.get(url) as response:
                        await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    continue
                state["last"] = time.perf_counter()
                if status != 200:
                    statuses[str(status)] = statuses.get(str(status), 0) + 1
                    continue
                latencies.append(state["last"] - started)

        await asyncio.wait_for(
            asyncio.gather(*(loop() for _ in range(connections))), seconds + GRACE_S + 10
        )
    ms = 1000
    return {
        "issued": state["next"],
        "completed": len(latencies) + sum(statuses.values()),
        "ok": len(latencies),
        "not_ok": sum(statuses.values()),
        "statuses": [statuses] if statuses else [],
        "span_s": max(0.0, state["last"] - begin),
        "late": state["late"],
        "max_lag_ms": state["lag"] * ms,
        "p50_ms": percentile(latencies, 0.5) * ms,
        "p99_ms": percentile(latencies, 0.99) * ms,
        "max_ms": max(latencies, default=0) * ms,
        **errors,
    }


def start_generator(args: argparse.Namespace, base: str) -> tuple[subprocess.Popen[str], str]:
    use_wrk = args.generator == "wrk" or (args.generator == "auto" and shutil.which("wrk"))
    if args.generator == "wrk" and not shutil.which("wrk"):
        raise SystemExit("--generator wrk: wrk is not installed (apt-get install -y wrk)")
    if use_wrk:
        command = wrk_command(base, args.rps, args.seconds, args.connections)
        name = "wrk (1 thread)"
    else:
        if args.generator == "auto":
            print(
                "note: wrk not found, using the Python values generator instead; it costs more "
                "CPU on the same cores (apt-get install -y wrk, see bench/README.md)",
                flush=True,
            )
        command = [sys.executable, __file__, "--driver", base, "--seconds", str(args.seconds)]
        command += ["--rps", str(args.rps), "--connections", str(args.connections)]
        name = "python/aiohttp (1 process)"
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, name


def finish_generator(process: subprocess.Popen[str]) -> dict[str, Any]:
    """The generator's JSON result (once reaped, its CPU time is in RUSAGE_CHILDREN)."""
    out, err = process.communicate(timeout=HARD_LIMIT_S)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        raise SystemExit(f"the values generator failed ({process.returncode}): {err or out}")
    return json.loads(lines[-1])


# --- driver ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def runqueue_wait(pid: int) -> float:
    """Seconds the process has spent runnable but waiting for a CPU (/proc/PID/schedstat)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores, from /proc/stat."""
    fields = [int(f) for f in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def rusage_cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


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


async def post_marks(base: str, every: float, seconds: float) -> dict[int, float]:
    sent: dict[int, float] = {}
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as client:
        begin = time.monotonic()
        sequence = 0
        while sequence * every < seconds:
            await asyncio.sleep(max(0.0, begin + sequence * every - time.monotonic()))
            body = {
                "metricId": MARK_METRIC,
                "categoryValue": "",
                "value": {"type": "COUNT", "count": MARK_BASE + sequence},
            }
            sent[sequence] = time.time()
            async with client.post(f"{base}/_emulator/values", json=body) as response:
                response.raise_for_status()
            sequence += 1
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
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as client:
        while True:
            async with client.get(f"{base}/_emulator/stats") as response:
                stats = await response.json()
            if stats["ws_open"] >= expected or time.monotonic() > deadline:
                return stats["ws_open"]
            await asyncio.sleep(0.5)


def report(args: argparse.Namespace, r: dict[str, Any]) -> None:
    sent, marks, values = r["sent"], r["marks"], r["values"]
    latencies = [t - sent[seq] for seq, times in marks.items() if seq in sent for t in times]
    received = sum(len(times) for seq, times in marks.items() if seq in sent)
    expected = len(sent) * args.subscribers
    ms = 1000
    # completed per second over the schedule (or longer, if the answers came in late)
    achieved = values["ok"] / max(values["span_s"], args.seconds)
    value_errors = {name: n for s in values["statuses"] for name, n in s.items()}
    for name in ("connect", "read", "write", "timeout"):
        if values.get(name):
            value_errors[name] = values[name]
    for name, n in values.items():  # exception names from the Python generator
        if name[0].isupper():
            value_errors[name] = n
    ws_errors: dict[str, int] = {}
    for name in r["ws_errors"]:
        ws_errors[name] = ws_errors.get(name, 0) + 1
    r["summary"] = {
        "connected": r["connected"],
        "fanout_p50": percentile(latencies, 0.5) * ms,
        "fanout_p99": percentile(latencies, 0.99) * ms,
        "frames": f"{received}/{expected}",
        "rps": achieved,
        "values_p50": values["p50_ms"],
        "values_p99": values["p99_ms"],
        "errors": sum(value_errors.values()) + sum(ws_errors.values()),
        "emulator_cpu": r["cpu"]["emulator"] * 100,
    }
    print(f"values generator           {r['generator']}, {args.connections} connections")
    print(f"subscribers connected      {r['connected']} / {args.subscribers}")
    print(f"fan-out updates            {len(sent)} posted, {received}/{expected} marker frames")
    print(
        f"fan-out latency            p50 {percentile(latencies, 0.5) * ms:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * ms:.1f} ms, "
        f"max {max(latencies, default=0) * ms:.1f} ms"
    )
    print(f"frames received            {r['frames']} in all ({r['frames'] / r['window']:.0f}/s)")
    print(
        f"values requests            {values['ok']}/{values['issued']} ok of "
        f"{round(args.rps * args.seconds)} scheduled, {achieved:.0f}/s achieved "
        f"(target {args.rps:.0f}/s), {values['late']} sent >{LATE_S * ms:.0f} ms late "
        f"(max lag {values['max_lag_ms']:.0f} ms)"
    )
    print(
        f"values latency             p50 {values['p50_ms']:.1f} ms, "
        f"p99 {values['p99_ms']:.1f} ms, max {values['max_ms']:.1f} ms"
    )
    print(f"errors                     values {value_errors or 0}, websocket {ws_errors or 0}")
    cpu = r["cpu"]
    ours = sum(cpu[k] for k in ("emulator", "workers", "generator", "driver"))
    print(
        f"CPU (% of one core)        emulator {cpu['emulator'] * 100:.0f}, subscribers "
        f"{cpu['workers'] * 100:.0f} ({args.workers} proc), generator "
        f"{cpu['generator'] * 100:.0f}, this driver {cpu['driver'] * 100:.0f}; machine "
        f"{cpu['machine'] * 100:.0f} of {(os.cpu_count() or 1) * 100} "
        f"(other processes and kernel {max(0.0, cpu['machine'] - ours) * 100:.0f})"
    )
    print(
        f"emulator waited for a CPU  {cpu['emulator_waited'] * 1000:.0f} ms in all "
        f"({cpu['emulator_waited'] / r['window'] * 100:.1f} % of the run)"
    )
    print(f"emulator RSS               {r['memory'][0]:.0f} MB now, {r['memory'][1]:.0f} MB peak")
    s = r["summary"]
    print(
        f"| {s['connected']}/{args.subscribers} | {s['fanout_p50']:.0f} / {s['fanout_p99']:.0f} "
        f"| {s['frames']} | {s['rps']:.0f} / {args.rps:.0f} | {s['values_p50']:.1f} / "
        f"{s['values_p99']:.1f} | {s['errors']} | {s['emulator_cpu']:.0f} % |"
    )


async def run(args: argparse.Namespace) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    emulator = start_emulator(port)
    workers: list[subprocess.Popen[str]] = []
    generator: subprocess.Popen[str] | None = None
    try:
        workers = start_workers(base, args.subscribers, args.workers)
        connected = await wait_connected(base, args.subscribers, timeout=90)
        await asyncio.sleep(1.0)  # let the snapshots go out
        pids = {"emulator": [emulator.pid], "workers": [w.pid for w in workers]}
        before = {k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()}
        waited_before = runqueue_wait(emulator.pid)
        busy_before, started = machine_busy(), time.monotonic()
        children_before = rusage_cpu(resource.RUSAGE_CHILDREN)
        self_before = rusage_cpu(resource.RUSAGE_SELF)
        generator, generator_name = start_generator(args, base)
        sent = await post_marks(base, args.update_every, args.seconds)
        values = await asyncio.to_thread(finish_generator, generator)
        # only the generator was reaped in between
        generator_cpu = rusage_cpu(resource.RUSAGE_CHILDREN) - children_before
        await asyncio.sleep(2.0)  # the last marks reach everyone
        window = time.monotonic() - started
        cpu = {k: (sum(cpu_seconds(p) for p in v) - before[k]) / window for k, v in pids.items()}
        busy_after = machine_busy()
        cpu["emulator_waited"] = runqueue_wait(emulator.pid) - waited_before
        cpu["machine"] = (
            (busy_after[0] - busy_before[0])
            / (busy_after[1] - busy_before[1])
            * (os.cpu_count() or 1)
        )
        cpu["generator"] = generator_cpu / window
        cpu["driver"] = (rusage_cpu(resource.RUSAGE_SELF) - self_before) / window
        memory = memory_mb(emulator.pid)
        marks: dict[int, list[float]] = {}
        ws_errors: list[str] = []
        frames = 0
        for proc in workers:
            out, _ = proc.communicate("stop\n", timeout=60)
            result = json.loads(out.strip().splitlines()[-1])
            for seq, times in result["marks"].items():
                marks.setdefault(int(seq), []).extend(times)
            ws_errors += result["errors"]
            frames += result["frames"]
        report(
            args,
            {
                "connected": connected,
                "sent": sent,
                "marks": marks,
                "ws_errors": ws_errors,
                "frames": frames,
                "window": window,
                "values": values,
                "generator": generator_name,
                "cpu": cpu,
                "memory": memory,
            },
        )
    finally:
        for proc in [generator, *workers, emulator]:
            if proc is not None and proc.poll() is None:
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
    parser.add_argument("--workers", type=int, default=1, help="client processes for the sockets")
    parser.add_argument("--update-every", type=float, default=0.5)
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="values load: wrk if installed (auto), or the Python/aiohttp fallback",
    )
    parser.add_argument("--connections", type=int, default=64, help="for the values requests")
    parser.add_argument("--worker", metavar="BASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--driver", metavar="BASE_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker(args.worker, args.subscribers))
        return
    if args.driver:
        result = asyncio.run(drive_values(args.driver, args.rps, args.seconds, args.connections))
        print(json.dumps(result), flush=True)
        return
    if not 0 < args.seconds <= 120 or not 0 < args.subscribers <= 10_000 or args.rps <= 0:
        parser.error("keep it bounded: 0 < seconds <= 120, 0 < subscribers <= 10000, rps > 0")
    if not 1 <= args.workers <= 16 or not 1 <= args.connections <= 1000:
        parser.error("keep it bounded: 1 <= workers <= 16, 1 <= connections <= 1000")
    asyncio.run(asyncio.wait_for(run(args), HARD_LIMIT_S))


if __name__ == "__main__":
    main()
