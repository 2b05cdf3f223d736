"""Fan-out latency, capacity and upstream cost of the live path, against the physical floor.

    .venv/bin/python bench/fanout.py            # N = 100, 1,000, 2,000; board phases; ramp
    .venv/bin/python bench/fanout.py --quick    # N = 100 and 500, about two minutes
    .venv/bin/python bench/fanout.py --baseline 807c951   # and that commit's stack, first

The path under test is the real one: the emulator (scenario static) changes one value 10 times
a second (POST /_emulator/values, COUNT = a sequence number whose send time the driver keeps)
-> the ONE upstream subscriber (`manage.py subscribe_upstream`) -> Redis live state -> tile
fan-out (metrics/fanout.py) -> the web server (--server, as shipped: `python -m dashboard.web`)
-> N headless `websockets` clients (in --workers processes) opened with a display link to a
board whose only tile is that value. Celery worker and beat run beside it (ACR_POLL_SECONDS=5),
as in production.

Board phases: the same clients on a wall-board of 16 tiles over 5 metrics, all 16 values
changed in one upstream tick (the emulator pushes a frame per value); latency runs until a
client has all 16, and "frames / update" counts the messages it took.

The floor is measured in the same run with the same client swarm: a bare `websockets`
broadcast server (one json.dumps per message, then `websockets.broadcast`), in as many
processes as the web server has workers (sharing the clients' port), fans the same messages
out to the same number of clients (for a board update: one frame with all 16 tiles).
CPU per 1,000 delivered updates: CPU seconds of the web processes (the floor's) over the
phase, per 1,000 updates the clients received.

--baseline REF also runs REF's stack (web, subscriber, Celery) from a temporary git worktree
on the same venv, emulator and clients, so two versions are compared side by side.

Also: web server RSS per idle connection, CPU per process, a bounded ramp to the client count
at which our p99 passes 250 ms, the upstream's requests per minute and websockets (GET
/_emulator/stats) with 1, 10 and N clients open, and (full mode) the same latency phases with
CHANNEL_LAYER=pubsub. Before each phase it waits (bounded) while other processes on the machine
use more than --busy-limit cores, and notes what they used. Prints a table and appends it to
bench/RESULTS.md. Only 127.0.0.1; Redis db 10, or BENCH_REDIS_URL (FLUSHDB at start and end); a
temporary SQLite database; every process it starts is stopped; every phase is bounded in count
and time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.servers import WEB_SERVERS  # noqa: E402 - after ROOT is on the path

# BENCH_REDIS_URL: another database, where several people share one Redis.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
KEY = "bench-fanout-key"
METRIC, CATEGORY = "CIQGRP01", "Sales"
# The board phases: a wall-board of 16 tiles over 5 metrics, all changed in one upstream tick
# (the emulator's COUNT metrics that have categories).
BOARD_TILES = [
    *(("CIQGRP01", c) for c in ("Sales", "Support", "Billing")),
    *(("AVLGRP01", c) for c in ("Sales", "Support", "Billing")),
    *(("CABGRP01", c) for c in ("Sales", "Support", "Billing")),
    *(("CBDDIR01", c) for c in ("Inbound", "Outbound", "Internal")),
    *(("CBACOD01", c) for c in ("1001", "2040", "3100", "7700")),
]
RATE = 10.0  # upstream changes per second
TARGET_P99_MS = 250.0
HARD_LIMIT_S = 1800  # the whole run
# The slowest ticks printed per phase: at 10 a second for 15 s, p99 over N clients is decided by
# the worst one or two ticks, so a periodic stall shows up here by its time in the phase.
SLOWEST_TICKS = 4
SEQ_BASE = 1_000_000  # marker counts: SEQ_BASE + a sequence number, unique over the run


# --- clients (a worker process holds a share of every pool) ------------------------------------


class Pool:
    """Websocket clients of one target; each records (seq, arrival) of every marker tile."""

    def __init__(self, need: int = 1) -> None:
        self.tasks: list[asyncio.Task] = []
        self.records: list[list[tuple[int, float, float, float, float]]] = []
        self.frames: list[int] = []  # "records" messages received, per client
        self.need = need  # marker tiles per update: it is shown when all have arrived
        self.open = 0
        self.failed: dict[str, int] = {}

    async def client(self, url: str, origin: str, index: int, ready: asyncio.Event) -> None:
        from websockets.asyncio.client import connect

        got = self.records[index]
        shown: dict[int, int] = {}  # marker tiles of an update that arrived so far
        try:
            async with connect(
                url,
                origin=origin,
                compression=None,  # no --server choice negotiates permessage-deflate (web: off)
                open_timeout=60,
                ping_interval=None,
                max_queue=None,
            ) as ws:
                self.open += 1
                ready.set()
                try:
                    async for message in ws:
                        now = time.time()
                        # "records" since the layout change; "tiles" from a --baseline before it
                        if '"records"' not in message and '"tiles"' not in message:
                            continue
                        data = json.loads(message)
                        if data.get("type") not in ("records", "tiles"):
                            continue
                        self.frames[index] += 1
                        for tile in data.get("records", data.get("tiles", [])):
                            count = (tile.get("value") or {}).get("count", 0)
                            if count < SEQ_BASE:
                                continue
                            seq = count - SEQ_BASE
                            shown[seq] = shown.get(seq, 0) + 1
                            if shown[seq] == self.need:
                                # the change's time at the source, then for the stages the
                                # subscriber's and the web process's clocks
                                got.append(
                                    (
                                        seq,
                                        now,
                                        tile["upstream_ms"] / 1000,
                                        tile.get("received_ms", 0) / 1000,
                                        data.get("server_time_ms", 0) / 1000,
                                    )
                                )
                                del shown[seq]
                finally:
                    self.open -= 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # counted, never stops the others
            name = type(exc).__name__
            self.failed[name] = self.failed.get(name, 0) + 1
        finally:
            ready.set()

    async def resize(self, url: str, origin: str, n: int) -> None:
        if len(self.tasks) > n:  # all at once: each close may wait for a busy server
            extra, self.tasks = self.tasks[n:], self.tasks[:n]
            del self.records[n:]
            del self.frames[n:]
            for task in extra:
                task.cancel()
            await asyncio.wait_for(asyncio.gather(*extra, return_exceptions=True), 60)
        batch: list[asyncio.Event] = []
        while len(self.tasks) < n:
            ready = asyncio.Event()
            self.records.append([])
            self.frames.append(0)
            index = len(self.tasks)
            self.tasks.append(asyncio.create_task(self.client(url, origin, index, ready)))
            batch.append(ready)
            if len(batch) == 25:  # don't flood the accept queue (and the consumers' DB lookups)
                await asyncio.wait_for(asyncio.gather(*(e.wait() for e in batch)), 60)
                batch = []
        if batch:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in batch)), 60)
        gc.collect()
        gc.freeze()  # long-lived objects out of the collector's walk (pauses skew latency)

    def reset(self) -> None:
        for got in self.records:
            got.clear()
        self.frames = [0] * len(self.frames)

    async def collect(self, sent: dict[int, float], wait: float) -> dict[str, Any]:
        """Waits (bounded) until every client saw the last marker, then scores every client."""
        last = max(sent)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if all(got and got[-1][0] >= last for got in self.records):
                break
            await asyncio.sleep(0.1)
        latencies: list[float] = []
        from_send: list[float] = []
        stages: list[list[float]] = [[], [], []]
        # seq: (its slowest delivery, and that delivery's stages): which ticks make the tail
        slowest: dict[int, list[float]] = {}
        lost = reordered = duplicated = 0
        for got in self.records:
            seen: set[int] = set()
            previous = -1
            for seq, at, changed, received, served in got:
                if seq not in sent:
                    continue
                if seq in seen:
                    duplicated += 1
                    continue
                if seq < previous:
                    reordered += 1
                previous = max(previous, seq)
                seen.add(seq)
                latency = round((at - changed) * 1000, 2)
                latencies.append(latency)
                from_send.append(round((at - sent[seq]) * 1000, 2))
                split = [(received - changed) * 1000, (served - received) * 1000]
                split.append((at - served) * 1000)
                if received != changed:  # ours (the floor has no subscriber): where time went
                    for stage, ms in zip(stages, split, strict=True):
                        stage.append(ms)
                if latency > slowest.get(seq, [-1.0])[0]:
                    slowest[seq] = [latency, *split]
            lost += len(sent) - len(seen)
        return {
            "latencies": latencies,
            "from_send_p99": percentile(from_send, 0.99),
            "stages": [
                [round(percentile(x, q), 2) for q in (0.5, 0.99)] if x else None for x in stages
            ],
            "slowest": sorted(slowest.items(), key=lambda item: -item[1][0])[:SLOWEST_TICKS],
            "lost": lost,
            "reordered": reordered,
            "duplicated": duplicated,
            "open": self.open,
            "clients": len(self.tasks),
            "failed": self.failed,
            "frames": sum(self.frames),
        }


async def worker_main() -> None:
    """Commands on stdin, one JSON object a line; one JSON answer a line on stdout."""
    gc.set_threshold(50_000, 50, 50)
    pools: dict[str, Pool] = {}
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await asyncio.wait_for(reader.readline(), HARD_LIMIT_S)
        if not line:
            break
        command = json.loads(line)
        pool = pools.setdefault(command.get("pool", ""), Pool(command.get("need", 1)))
        answer: dict[str, Any] = {}
        if command["cmd"] == "resize":
            await pool.resize(command["url"], command["origin"], command["n"])
            answer = {"open": pool.open, "failed": pool.failed}
        elif command["cmd"] == "reset":
            pool.reset()
        elif command["cmd"] == "collect":
            sent = {int(k): v for k, v in command["sent"].items()}
            answer = await pool.collect(sent, command["wait"])
        elif command["cmd"] == "quit":
            break
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    for pool in pools.values():
        for task in pool.tasks:
            task.cancel()
        await asyncio.gather(*pool.tasks, return_exceptions=True)


# The clients' malloc, the same in every phase. asyncio reads each socket into a fresh 256 KiB
# buffer, which glibc takes from mmap (then mremap, munmap: three system calls per message)
# until it has freed one big mmapped block, when its threshold rises above 256 KiB for good.
# In a client process that happened after the first phase's results went back (a big JSON):
# the first phase (ours) paid the calls, the next (the floor's) mostly not, and the clients
# spent 1.5x the CPU on our messages. A fixed threshold gives every phase the heap.
CLIENT_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(4 * 1024 * 1024)}


class Workers:
    """The client processes, driven over their stdin/stdout."""

    def __init__(self, count: int) -> None:
        self.procs = [
            subprocess.Popen(  # noqa: S603
                [sys.executable, __file__, "--client-worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                env={**os.environ, **CLIENT_MALLOC},
            )
            for _ in range(count)
        ]

    async def ask_all(
        self, commands: list[dict[str, Any]], timeout: float = 300
    ) -> list[dict[str, Any]]:
        def one(proc: subprocess.Popen, command: dict[str, Any]) -> dict[str, Any]:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(command) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            if not line:
                raise SystemExit("a client worker died")
            return json.loads(line)

        return await asyncio.wait_for(
            asyncio.gather(
                *(asyncio.to_thread(one, p, c) for p, c in zip(self.procs, commands, strict=True))
            ),
            timeout,
        )

    async def ask(self, command: dict[str, Any], timeout: float = 300) -> list[dict[str, Any]]:
        return await self.ask_all([command] * len(self.procs), timeout)

    async def resize(self, pool: str, url: str, origin: str, n: int, need: int) -> int:
        k = len(self.procs)
        shares = [n // k + (1 if i < n % k else 0) for i in range(k)]
        answers = await self.ask_all(
            [
                {"cmd": "resize", "pool": pool, "url": url, "origin": origin, "n": s, "need": need}
                for s in shares
            ]
        )
        return sum(a["open"] for a in answers)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(OSError, ValueError):
                assert proc.stdin is not None
                proc.stdin.write('{"cmd": "quit"}\n')
                proc.stdin.flush()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Poster:
    """The driver's changes to the emulator, as cheap as an HTTP client goes: requests written
    on one kept-alive connection, the answers read (and checked) by a task of their own. The
    upstream runs on its own machine on a real site; here the driver shares the two cores with
    the path under test, and an HTTP client's work on each answer (httpx: about half a
    millisecond) ran just when the subscriber, Redis and the web processes needed a core."""

    def __init__(
        self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.port, self.writer = port, writer
        self.failed: str | None = None
        self.posted = self.answered = 0
        self.task = asyncio.create_task(self._read_answers(reader))

    @classmethod
    async def open(cls, port: int) -> Poster:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(port, reader, writer)

    def post(self, path: str, body: dict[str, Any]) -> None:
        self.check()
        data = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        self.writer.write(head.encode() + data)
        self.posted += 1

    def check(self) -> None:
        if self.failed or self.task.done():
            raise SystemExit(f"the emulator did not take a change: {self.failed or 'no answers'}")

    async def settle(self, timeout: float = 10) -> None:
        """Waits (bounded) until every change posted so far is answered, then checks them."""
        deadline = time.monotonic() + timeout
        while self.answered < self.posted and not self.task.done():
            if time.monotonic() > deadline:
                self.failed = f"{self.posted - self.answered} changes unanswered after {timeout} s"
                break
            await asyncio.sleep(0.01)
        self.check()

    async def _read_answers(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                status = head.split(" ", 2)[1]
                length = next(
                    int(line.split(":", 1)[1])
                    for line in head.split("\r\n")
                    if line.lower().startswith("content-length:")
                )
                body = await reader.readexactly(length)
                self.answered += 1
                if status != "200" and not self.failed:
                    self.failed = f"{status} {body[:200]!r}"
        except Exception as exc:  # anything ends the answers: the next check() says so
            self.failed = self.failed or f"reading the answers: {exc!r}"


# --- the floor: a bare websockets broadcast server ---------------------------------------------


async def floor_main(port: int, pub_port: int) -> None:
    """One of the floor's processes: its share of the clients on `port` (shared with the
    others by SO_REUSEPORT, as uvicorn's workers share theirs), the driver's messages on its
    own `pub_port`."""
    from websockets.asyncio.server import broadcast, serve

    clients: set = set()

    async def handler(ws) -> None:  # type: ignore[no-untyped-def]
        if ws.request.path == "/pub":
            async for message in ws:
                data = json.loads(message)
                data["server_time_ms"] = time.time_ns() // 1_000_000
                for tile in data["records"]:  # the change, as far as the clients know, is now
                    tile["upstream_ms"] = tile["received_ms"] = data["server_time_ms"]
                broadcast(clients, json.dumps(data, separators=(",", ":")))
            return
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    gc.set_threshold(50_000, 50, 50)
    options = {"compression": None, "ping_interval": None}
    async with (
        serve(handler, "127.0.0.1", port, reuse_port=True, **options),
        serve(handler, "127.0.0.1", pub_port, **options),
    ):
        print("listening", flush=True)
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
        await asyncio.wait_for(stop, HARD_LIMIT_S)


# --- processes, machine ------------------------------------------------------------------------


def web_workers() -> int:
    """The web server's processes, as dashboard.web counts them (WEB_WORKERS, else one per
    core, at most 4)."""
    return int(os.environ.get("WEB_WORKERS") or min(4, os.cpu_count() or 1))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{name} did not listen on {port}")


class Processes:
    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: dict[str, subprocess.Popen] = {}

    def start(
        self, name: str, args: list[str], env: dict[str, str], cwd: Path = ROOT
    ) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(  # noqa: S603
            args, cwd=cwd, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        self.running[name] = proc
        return proc

    def stop(self, *names: str) -> None:
        chosen = [n for n in reversed(list(self.running)) if not names or n in names]
        for name in chosen:
            if self.running[name].poll() is None:
                self.running[name].send_signal(signal.SIGTERM)
        for name in chosen:
            proc = self.running.pop(name)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def process_tree(pid: int) -> list[int]:
    """pid and its descendants (uvicorn with WEB_WORKERS > 1 serves from child processes)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(c) for c in children.read_text().split()]
            except OSError:
                pass
    return found


def cpu_seconds(pid: int) -> float:
    """CPU time of pid and its descendants."""
    total = 0.0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rss_mb(pid: int) -> float:
    """Resident memory of pid and its descendants."""
    total = 0.0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))
    return total


def machine_busy() -> float:
    """Busy CPU seconds of all cores, from /proc/stat."""
    fields = [int(f) for f in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def slowest_ticks(answers: list[dict[str, Any]], sent: dict[int, float]) -> list[str]:
    """The slowest ticks over the client processes: when in the phase, how slow, and (ours)
    the stages of that delivery."""
    worst: dict[int, list[float]] = {}
    for answer in answers:
        for seq, split in answer["slowest"]:
            seq = int(seq)
            if split[0] > worst.get(seq, [-1.0])[0]:
                worst[seq] = split
    start = min(sent.values())
    ticks = sorted(worst.items(), key=lambda item: -item[1][0])[:SLOWEST_TICKS]
    return [
        f"+{sent[seq] - start:.1f} s {latency:.1f} ms ("
        + " / ".join(f"{ms:.1f}" for ms in split)
        + ")"
        for seq, (latency, *split) in ticks
    ]


def combine_stages(per_worker: list[list[list[float] | None]]) -> list[tuple[float, float]] | None:
    """(p50, p99) of each stage over the client processes: the mean p50, the worst p99."""
    if not per_worker or any(stage is None for stages in per_worker for stage in stages):
        return None
    return [
        (
            sum(w[i][0] for w in per_worker) / len(per_worker),  # type: ignore[index]
            max(w[i][1] for w in per_worker),  # type: ignore[index]
        )
        for i in range(len(per_worker[0]))
    ]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- the run -----------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="fanout-"))
        self.procs = Processes(self.tmp)
        self.workers = Workers(args.workers)
        self.seq = 0
        self.emulator_port = free_port()
        self.floor_port = free_port()
        # The floor runs in as many processes as the web server has workers.
        self.floor_pub_ports = [free_port() for _ in range(web_workers())]
        self.web_port = 0
        self.token = self.board_token = ""
        self.layer = ""
        self.variant = "ours"  # or the --baseline ref, while its stack runs
        self.baseline_tree: Path | None = None
        self.env = {
            "DJANGO_SETTINGS_MODULE": "dashboard.test_settings",
            "DATABASE_URL": f"sqlite:///{self.tmp / 'fanout.sqlite3'}",
            "REDIS_URL": REDIS_URL,
            "ACR_BASE_URL": f"http://127.0.0.1:{self.emulator_port}",
            "ACR_AUTH_KEY": KEY,
            "ACR_POLL_SECONDS": "5",
            "LOG_LEVEL": "WARNING",
        }
        if args.fix_socket_timeout:
            self.env["DJANGO_SETTINGS_MODULE"] = "bench.fanout_settings"
        self.phases: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.http = httpx.AsyncClient(timeout=10)
        self.poster: Poster | None = None

    # -- set-up

    def prepare(self) -> None:
        """Migrates the temporary database; a board whose one tile is the marker value, and a
        display link to it."""
        os.environ.update(self.env)
        import django

        django.setup()
        import redis
        from django.core.management import call_command

        from dashboard import boards
        from metrics.models import Board, Metric, Tile

        redis.Redis.from_url(REDIS_URL).flushdb()
        call_command("migrate", verbosity=0)
        metric = Metric.objects.create(
            metric_id=METRIC, name="Calls in Queue", category_type="GROUP", categories=["Sales"]
        )
        board = Board.objects.create(name="Fan-out", slug="fanout")
        Tile.objects.create(board=board, metric=metric, category=CATEGORY)
        _, self.token = boards.create_display_link("bench", board=board)
        wall = Board.objects.create(name="Wall", slug="wall")
        for order, (metric_id, category) in enumerate(BOARD_TILES):
            metric, _ = Metric.objects.get_or_create(
                metric_id=metric_id,
                defaults={"name": metric_id, "category_type": "GROUP", "categories": []},
            )
            metric.categories = sorted({*metric.categories, category})
            metric.save()
            Tile.objects.create(board=wall, order=order, metric=metric, category=category)
        _, self.board_token = boards.create_display_link("bench wall", board=wall)

    def start_emulator_and_floor(self) -> None:
        py = sys.executable
        emulator = self.procs.start(
            "emulator",
            [py, "-m", "acr_emulator", "--port", str(self.emulator_port), "--auth-key", KEY]
            + ["--scenario", "static", "--init-seconds", "0"],
            {},
        )
        wait_for_port(self.emulator_port, emulator, "emulator")
        for i, pub_port in enumerate(self.floor_pub_ports):
            floor = self.procs.start(
                f"floor-{i}",
                [py, __file__, "--floor-server", str(self.floor_port)]
                + ["--floor-pub", str(pub_port)],
                {},
            )
            wait_for_port(pub_port, floor, "floor")

    def add_baseline_tree(self) -> None:
        """A git worktree of --baseline: its stack runs from there, on the same venv."""
        self.baseline_tree = self.tmp / "baseline"
        subprocess.run(  # noqa: S603
            ["git", "worktree", "add", "--detach", str(self.baseline_tree), self.args.baseline],  # noqa: S607
            cwd=ROOT,
            check=True,
            capture_output=True,
        )

    def start_stack(self, layer: str, tree: Path = ROOT) -> None:
        """The web server, the subscriber, Celery worker and beat, with this channel layer,
        from this source tree."""
        self.layer = layer
        self.web_port = free_port()
        env = {**self.env, "CHANNEL_LAYER": layer}
        py = sys.executable
        web = self.procs.start(
            "web",
            [py, "-m", *WEB_SERVERS[self.args.server](self.web_port)],
            {**env, "WEB_PORT": str(self.web_port)},
            tree,
        )
        self.procs.start("subscriber", [py, "manage.py", "subscribe_upstream"], env, tree)
        celery = [py, "-m", "celery", "-A", "dashboard"]
        self.procs.start(
            "worker",
            [*celery, "worker", "--pool=solo", "--without-gossip", "--without-mingle"]
            + ["--loglevel=WARNING"],
            env,
            tree,
        )
        self.procs.start(
            "beat",
            [*celery, "beat", "--loglevel=WARNING", "--schedule", str(self.tmp / "beat")],
            env,
            tree,
        )
        wait_for_port(self.web_port, web, self.args.server)

    def stop_stack(self) -> None:
        self.procs.stop("beat", "worker", "subscriber", "web")

    def pids(self, *names: str) -> list[int]:
        return [self.procs.running[n].pid for n in names if n in self.procs.running]

    @property
    def ours_url(self) -> str:
        return f"ws://127.0.0.1:{self.web_port}/ws/display/{self.token}/"

    @property
    def ours_origin(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    async def resize(self, pool: str, n: int) -> int:
        if pool == "ours":
            url, origin = self.ours_url, self.ours_origin
        elif pool == "board":
            url = f"ws://127.0.0.1:{self.web_port}/ws/display/{self.board_token}/"
            origin = self.ours_origin
        else:
            url = f"ws://127.0.0.1:{self.floor_port}/ws"
            origin = f"http://127.0.0.1:{self.floor_port}"
        need = len(BOARD_TILES) if pool in ("board", "floor-board") else 1
        opened = await self.workers.resize(pool, url, origin, n, need)
        if opened < n:
            self.notes.append(f"{pool}: only {opened} of {n} clients connected")
        return opened

    async def wait_until_live(self) -> None:
        """Until a posted marker reaches a client through the whole path (subscriber up)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            result = await self.measure("ours", 1, seconds=1.0, record=False)
            if result["received"]:
                return
        raise SystemExit("no update reached a client within 60 s: see the logs in " + str(self.tmp))

    # -- quiet machine

    def our_pids(self) -> list[int]:
        return [p.pid for p in self.procs.running.values()] + self.workers.pids() + [os.getpid()]

    async def others_busy(self, seconds: float = 2.0) -> float:
        """Cores used by processes other than ours (Redis included: it is shared)."""
        pids = self.our_pids()
        ours0, busy0 = sum(cpu_seconds(p) for p in pids), machine_busy()
        await asyncio.sleep(seconds)
        ours1, busy1 = sum(cpu_seconds(p) for p in pids), machine_busy()
        return max(0.0, (busy1 - busy0) - (ours1 - ours0)) / seconds

    async def wait_quiet(self) -> tuple[float, float]:
        """Waits (at most --max-wait s per phase) while others use more than --busy-limit
        cores; returns (cores used by others, 1-min load average) when the phase starts."""
        deadline = time.monotonic() + self.args.max_wait
        others = await self.others_busy()
        while others > self.args.busy_limit and time.monotonic() < deadline:
            print(f"  others use {others:.2f} cores (load {loadavg():.2f}): waiting", flush=True)
            await asyncio.sleep(5)
            others = await self.others_busy()
        return others, loadavg()

    # -- one latency phase

    async def post_marker(self, target: str, seq: int, pubs: list[Any]) -> None:
        """The update: the marker value, or (board phases) every board tile in one tick."""
        count = SEQ_BASE + seq
        tiles = BOARD_TILES if target in ("board", "floor-board") else [(METRIC, CATEGORY)]
        if target in ("ours", "board"):
            values = [
                {"metricId": m, "categoryValue": c, "value": {"type": "COUNT", "count": count}}
                for m, c in tiles
            ]
            if self.poster is None:  # one connection for the run: a lost one fails the run
                self.poster = await Poster.open(self.emulator_port)
            self.poster.post("/_emulator/values", {"values": values})
        else:  # the floor: one frame with the whole update, as good as it gets
            now = time.time_ns() // 1_000_000
            records = [
                {
                    "metric_id": m,
                    "category": c,
                    "state": "live",
                    "value": {"type": "COUNT", "count": count, "last_update_ms": now},
                    "error": "",
                    "upstream_ms": now,
                    "source": "websocket",
                    "received_ms": now,
                    "seq": seq,
                    "rseq": seq,
                }
                for m, c in tiles
            ]
            message = json.dumps({"type": "records", "records": records})
            for pub in pubs:  # each floor process, as each web worker reads its own copy
                await pub.send(message)

    async def measure(
        self, target: str, n: int, seconds: float, record: bool = True, label: str = ""
    ) -> dict[str, Any]:
        from websockets.asyncio.client import connect

        opened = await self.resize(target, n)
        others, load = (0.0, loadavg()) if not record else await self.wait_quiet()
        await self.workers.ask({"cmd": "reset", "pool": target})
        names = ["web", "subscriber", "worker", "beat", "emulator"]
        floor = target.startswith("floor")
        if floor:
            names = [f"floor-{i}" for i in range(len(self.floor_pub_ports))]
        server_pids = self.pids(*names)
        client_pids = self.workers.pids()
        cpu0 = {p: cpu_seconds(p) for p in server_pids + client_pids}
        busy0, t0 = machine_busy(), time.monotonic()
        stats0 = (await self.http.get(self.stats_url)).json()
        sent: dict[int, float] = {}
        pubs = []
        if floor:
            for port in self.floor_pub_ports:
                pubs.append(await connect(f"ws://127.0.0.1:{port}/pub", compression=None))
        try:
            begin = time.monotonic()
            for i in range(max(1, round(seconds * RATE))):
                await asyncio.sleep(max(0.0, begin + i / RATE - time.monotonic()))
                self.seq += 1
                sent[self.seq] = time.time()
                await self.post_marker(target, self.seq, pubs)
            if self.poster is not None:
                await self.poster.settle()
        finally:
            for pub in pubs:
                await pub.close()
        answers = await self.workers.ask(
            {"cmd": "collect", "pool": target, "sent": sent, "wait": self.args.drain}
        )
        elapsed = time.monotonic() - t0
        stats1 = (await self.http.get(self.stats_url)).json()
        cpu = {p: (cpu_seconds(p) - c) / elapsed for p, c in cpu0.items()}
        server_cpu = {name: cpu.get(pid, 0.0) for name, pid in zip(names, server_pids, strict=True)}
        if floor:
            server_cpu = {"floor": sum(server_cpu.values())}
        latencies = [x for a in answers for x in a["latencies"]]
        result = {
            "label": label or target,
            "target": target,
            "variant": "-" if floor else self.variant,
            "layer": "-" if floor else self.layer,
            "n": n,
            "open": opened,
            "updates": len(sent),
            "received": len(latencies),
            "expected": len(sent) * n,
            "lost": sum(a["lost"] for a in answers),
            "reordered": sum(a["reordered"] for a in answers),
            "duplicated": sum(a["duplicated"] for a in answers),
            "p50": percentile(latencies, 0.50),
            "p95": percentile(latencies, 0.95),
            "p99": percentile(latencies, 0.99),
            "from_send_p99": max(a["from_send_p99"] for a in answers),
            "max": max(latencies, default=float("nan")),
            "frames_per_update": sum(a["frames"] for a in answers) / max(1, len(sent) * n),
            "stages": combine_stages([a["stages"] for a in answers]),
            "slowest": slowest_ticks(answers, sent),
            "server_cpu": server_cpu,
            # CPU seconds of the web processes (the floor's) per 1,000 updates delivered.
            "cpu_per_1k": (server_cpu["floor" if floor else "web"] * elapsed)
            / max(1, len(latencies))
            * 1000,
            "clients_cpu": sum(cpu[p] for p in client_pids),
            "machine_cpu": (machine_busy() - busy0) / elapsed,
            "others_before": others,
            "load_before": load,
            "upstream_requests": stats1["requests_total"] - stats0["requests_total"],
            "ws_open": stats1["ws_open"],
        }
        if record:
            self.phases.append(result)
            main_cpu = result["server_cpu"].get("web", result["server_cpu"].get("floor", 0))
            print(
                f"  {result['label']:<14} N={n:<5} p50 {result['p50']:7.1f}  p95 "
                f"{result['p95']:7.1f}  p99 {result['p99']:7.1f}  max {result['max']:7.1f} ms  "
                f"lost {result['lost']}  reordered {result['reordered']}  frames/update "
                f"{result['frames_per_update']:.1f}  server CPU "
                f"{main_cpu * 100:.0f} % ({result['cpu_per_1k'] * 1000:.1f} ms/1k)  "
                f"clients {result['clients_cpu'] * 100:.0f} %  "
                f"(others {others:.2f} cores, load {load:.2f})"
                + (
                    "  stages p50 " + " / ".join(f"{a:.1f}" for a, _ in result["stages"])
                    if result["stages"]
                    else ""
                ),
                flush=True,
            )
            print("    slowest ticks: " + "; ".join(result["slowest"]), flush=True)
        return result

    @property
    def stats_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}/_emulator/stats"

    # -- capacity and upstream cost

    async def idle_rss(self, n: int) -> float:
        await self.resize("ours", n)
        await asyncio.sleep(3)
        return rss_mb(self.pids("web")[0])

    async def upstream_window(self, n: int, seconds: float) -> dict[str, Any]:
        opened = await self.resize("ours", n)
        s0 = (await self.http.get(self.stats_url)).json()
        t0 = time.monotonic()
        begin = t0
        i = 0
        while time.monotonic() - begin < seconds:  # the marker keeps changing meanwhile
            await asyncio.sleep(max(0.0, begin + i / RATE - time.monotonic()))
            self.seq += 1
            await self.post_marker("ours", self.seq, [])
            i += 1
        if self.poster is not None:
            await self.poster.settle()
        s1 = (await self.http.get(self.stats_url)).json()
        minutes = (time.monotonic() - t0) / 60
        by_kind = {
            k: round((s1["requests"].get(k, 0) - s0["requests"].get(k, 0)) / minutes, 1)
            for k in s1["requests"]
        }
        row = {
            "n": n,
            "open": opened,
            "seconds": round(minutes * 60),
            "rpm": (s1["requests_total"] - s0["requests_total"]) / minutes,
            "by_kind": by_kind,
            "ws_open": s1["ws_open"],
            "ws_new": s1["ws_total"] - s0["ws_total"],
        }
        print(
            f"  upstream with {n:>5} clients: {row['rpm']:.1f} requests/min {by_kind}, "
            f"{row['ws_open']} websocket(s) open, {row['ws_new']} new",
            flush=True,
        )
        return row

    # -- the whole run

    async def run(self) -> dict[str, Any]:
        a = self.args
        out: dict[str, Any] = {"layers": {}}
        await asyncio.to_thread(self.prepare)  # Django ORM: not in the event loop
        self.start_emulator_and_floor()
        stacks = [("ours", ROOT, layer) for layer in a.layers]
        if a.baseline:
            self.add_baseline_tree()
            assert self.baseline_tree is not None
            stacks.insert(0, (a.baseline, self.baseline_tree, a.layers[0]))
        for variant, tree, layer in stacks:
            main = (variant, layer) == ("ours", a.layers[0])  # capacity, ramp, upstream cost
            first = (variant, tree, layer) == stacks[0]  # the floors are measured once
            name = f"{variant} ({layer})" if a.baseline else f"ours ({layer})"
            print(f"stack: {name}", flush=True)
            self.variant = variant
            self.start_stack(layer, tree)
            await self.wait_until_live()
            await self.measure("ours", 10, seconds=2.0, record=False)  # warm-up
            rss_base = await self.idle_rss(10)
            rss: dict[int, float] = {}
            for n in a.clients:
                rss[n] = await self.idle_rss(n)
                await self.measure("ours", n, a.seconds, label=name)
                if first:
                    await self.measure("floor", n, a.seconds, label="floor")
                    await self.resize("floor", 0)
                if a.board:
                    await self.resize("ours", 0)
                    await self.measure("board", n, a.seconds, label=f"{name} board")
                    await self.resize("board", 0)
                    if first:
                        await self.measure("floor-board", n, a.seconds, label="floor board")
                        await self.resize("floor-board", 0)
            crossed = None
            if a.ramp and main:
                crossed = next(
                    (
                        p["n"]
                        for p in self.phases
                        if p["target"] == "ours" and p["variant"] == "ours" and p["p99"] > 250
                    ),
                    None,
                )
                for n in a.ramp:
                    if crossed is not None:
                        break
                    phase = await self.measure("ours", n, a.ramp_seconds, label=f"ramp ({layer})")
                    if phase["p99"] > TARGET_P99_MS or phase["open"] < n:
                        crossed = n
            top = max(a.clients)
            upstream = []
            if main:
                await self.wait_quiet()
                for n in (1, 10, top):
                    upstream.append(await self.upstream_window(n, a.upstream_seconds))
            await self.resize("ours", 0)
            if variant == "ours":
                out["layers"][layer] = {
                    "rss_base": rss_base,
                    "rss": rss,
                    "crossed": crossed,
                    "upstream": upstream,
                }
            self.stop_stack()
        return out

    async def close(self) -> None:
        await self.http.aclose()
        if self.poster is not None:
            self.poster.writer.close()
        self.workers.stop()
        self.procs.stop()
        if self.baseline_tree is not None:
            subprocess.run(  # noqa: S603
                ["git", "worktree", "remove", "--force", str(self.baseline_tree)],  # noqa: S607
                cwd=ROOT,
                check=False,
            )
        with contextlib.suppress(Exception):
            import redis

            redis.Redis.from_url(REDIS_URL).flushdb()


# --- report ------------------------------------------------------------------------------------


def fmt(x: float) -> str:
    return "-" if x != x else f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def machine_line() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "bench/fanout.py", "dashboard", "metrics"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"nproc {os.cpu_count()}, `{model}`, commit `{commit}`" + (
        " + uncommitted changes (bench/fanout.py, settings/metrics)" if dirty else ""
    )


def report(args: argparse.Namespace, bench: Bench, out: dict[str, Any], started: str) -> str:
    phases = bench.phases
    floors = {
        target: {p["n"]: p for p in phases if p["target"] == floor_target}
        for target, floor_target in (("ours", "floor"), ("board", "floor-board"))
    }
    floor = floors["ours"]
    lines = [
        "| phase | N | open | p50 ms | p95 ms | p99 ms | max ms | p99 / floor p99 "
        "| p99 from the driver's send | received | lost | reordered | frames / update "
        "| server CPU (% of a core) | web CPU ms / 1,000 delivered | / floor's "
        "| clients CPU | machine CPU | others before (cores) / load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in phases:
        cpu = ", ".join(f"{k} {v * 100:.0f}" for k, v in p["server_cpu"].items() if v >= 0.005)
        ratio = cpu_ratio = "-"
        its_floor = floors.get(p["target"], {}).get(p["n"])
        if its_floor is not None:
            ratio = f"{p['p99'] / its_floor['p99']:.2f}x"
            cpu_ratio = f"{p['cpu_per_1k'] / its_floor['cpu_per_1k']:.2f}x"
        lines.append(
            f"| {p['label']} | {p['n']} | {p['open']} | {fmt(p['p50'])} | {fmt(p['p95'])} "
            f"| {fmt(p['p99'])} | {fmt(p['max'])} | {ratio} | {fmt(p['from_send_p99'])} "
            f"| {p['received']}/{p['expected']} "
            f"| {p['lost']} | {p['reordered']} | {p['frames_per_update']:.1f} "
            f"| {cpu} | {p['cpu_per_1k'] * 1000:.1f} | {cpu_ratio} | {p['clients_cpu'] * 100:.0f} "
            f"| {p['machine_cpu'] * 100:.0f} | {p['others_before']:.2f} / {p['load_before']:.2f} |"
        )
    first = args.layers[0]
    cap = out["layers"][first]
    top = max(args.clients)
    ns = sorted(cap["rss"])
    per_conn = (cap["rss"][top] - cap["rss_base"]) * 1024 / max(1, top - 10)
    marginal = ""
    if len(ns) > 1:
        lo = ns[-2]
        marginal = (
            f"; marginal {lo} -> {top}: "
            f"{(cap['rss'][top] - cap['rss'][lo]) * 1024 / (top - lo):.0f} KB"
        )
    top_phase = next(
        p for p in phases if p["target"] == "ours" and p["variant"] == "ours" and p["n"] == top
    )
    crossed = cap["crossed"]
    ramp_text = (
        f"p99 > {TARGET_P99_MS:.0f} ms first at N = {crossed}"
        if crossed
        else f"p99 stayed <= {TARGET_P99_MS:.0f} ms up to N = {max(args.ramp or [top])}"
        if args.ramp
        else "not run"
    )
    lines += [
        "",
        f"- {args.server} RSS idle: {cap['rss_base']:.0f} MB with 10 clients, "
        + ", ".join(f"{cap['rss'][n]:.0f} MB with {n}" for n in ns)
        + f" -> {per_conn:.0f} KB per idle connection{marginal}",
        f"- CPU at N = {top} ({first}): "
        + ", ".join(f"{k} {v * 100:.0f} %" for k, v in top_phase["server_cpu"].items())
        + f" of one core; clients {top_phase['clients_cpu'] * 100:.0f} %; machine "
        f"{top_phase['machine_cpu'] * 100:.0f} % of {(os.cpu_count() or 1) * 100} %",
        f"- Ramp ({first}): {ramp_text}",
    ]
    if cap["upstream"]:
        lines += [
            "",
            "| clients open | window s | upstream requests/min | by kind (/min) "
            "| upstream websockets open | new |",
            "|---|---|---|---|---|---|",
        ]
        for u in cap["upstream"]:
            kinds = ", ".join(f"{k} {v:g}" for k, v in u["by_kind"].items())
            lines.append(
                f"| {u['n']} | {u['seconds']} | {u['rpm']:.1f} | {kinds} | {u['ws_open']} "
                f"| {u['ws_new']} |"
            )
    # targets
    ours = [
        p
        for p in phases
        if p["target"] == "ours"
        and p["variant"] == "ours"
        and p["layer"] == first
        and p["n"] in floor
    ]
    ratios = [p["p99"] / floor[p["n"]]["p99"] for p in ours]
    cpu_ratios = [p["cpu_per_1k"] / floor[p["n"]]["cpu_per_1k"] for p in ours]
    ns_ours = [p["n"] for p in ours]
    lossless = all(
        p["lost"] == 0 and p["reordered"] == 0
        for p in phases
        if p["target"] in ("ours", "board") and p["variant"] == "ours"
    )
    upstream = cap["upstream"]
    # Catalog and mapping calls come once a minute: a window may hold one more or fewer of each
    # whatever the clients, so each kind may differ by one call per window, no more.
    one_call = max((60 / u["seconds"] for u in upstream), default=0) + 0.1
    kinds = {k for u in upstream for k in u["by_kind"]}
    flat = bool(upstream) and (
        all(
            max(u["by_kind"].get(k, 0) for u in upstream)
            - min(u["by_kind"].get(k, 0) for u in upstream)
            <= one_call
            for k in kinds
        )
        and all(u["ws_open"] == 1 for u in upstream)
    )

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**NOT met**"

    lines += [
        "",
        "Targets:",
        f"- p99 <= 1.5x floor p99 at every N ({first}): "
        f"{verdict(all(r <= 1.5 for r in ratios))} "
        f"({', '.join(f'{p_n}: {r:.2f}x' for p_n, r in zip(ns_ours, ratios, strict=True))})",
        f"- web CPU per 1,000 delivered updates <= 1.5x the floor's ({first}): "
        f"{verdict(all(r <= 1.5 for r in cpu_ratios))} "
        f"({', '.join(f'{p_n}: {r:.2f}x' for p_n, r in zip(ns_ours, cpu_ratios, strict=True))})",
        f"- zero lost or reordered updates: {verdict(lossless)}",
        f"- <= 30 KB per idle connection: {verdict(per_conn <= 30)} ({per_conn:.0f} KB)",
        f"- upstream load independent of clients: {verdict(flat)}",
    ]
    staged = [p for p in phases if p.get("stages")]
    if staged:
        lines += [
            "",
            "Where the time went, p50 / p99 ms (the emulator changes the value -> the subscriber "
            "has its frame -> the web process builds the browser frame -> the client has parsed "
            "it):",
            "",
            "| phase | N | emulator -> subscriber | subscriber -> web process "
            "| web process -> client |",
            "|---|---|---|---|---|",
        ]
        for p in staged:
            cells = " | ".join(f"{fmt(a)} / {fmt(b)}" for a, b in p["stages"])
            lines.append(f"| {p['label']} | {p['n']} | {cells} |")
    boards = [p for p in phases if p["target"] == "board" and p["layer"] == first]
    if boards:
        lines += [
            "",
            f"Board of {len(BOARD_TILES)} tiles changed in one tick (p99, frames per update):",
        ]
        for variant in dict.fromkeys(p["variant"] for p in boards):
            lines.append(
                f"- {variant}: "
                + ", ".join(
                    f"N = {p['n']}: {fmt(p['p99'])} ms, {p['frames_per_update']:.1f} frames"
                    for p in boards
                    if p["variant"] == variant
                )
            )
    for note in bench.notes:
        lines.append(f"- note: {note}")
    table = "\n".join(lines)
    mode = "--quick" if args.quick else "full"
    return (
        f"\n## fanout.py ({mode}, {args.server}), {started} UTC\n\n"
        f"- Machine: {machine_line()}; load average at start {args.load_at_start}\n"
        f"- Command: `.venv/bin/python bench/fanout.py {' '.join(sys.argv[1:])}`; "
        + (
            "channel layer Redis socket_timeout=None (bench/fanout_settings.py); "
            if args.fix_socket_timeout
            else "settings as shipped (dashboard.test_settings); "
        )
        + f"{RATE:.0f} changes/s, {args.seconds:g} s per phase, {args.workers} client processes "
        "(asyncio `websockets`, no compression); latency = the change at its source (the "
        "value's time at the emulator; the floor server's receipt) -> frame parsed by the "
        "client; the driver's send (its POST to the emulator, its message to the floor) is the "
        "start of the 'from the driver's send' column; board phases: until the client has "
        f"all {len(BOARD_TILES)} tiles of the update (the floor sends them in one frame)"
        + (f"; `{args.baseline}` = that commit's stack" if args.baseline else "")
        + ".\n\n"
        f"{table}\n"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 100, 500; about a minute")
    parser.add_argument("--clients", type=int, nargs="+", help="N per phase (100 1000 2000)")
    parser.add_argument("--seconds", type=float, help="updates per phase / 10 (15; quick 5)")
    parser.add_argument("--workers", type=int, default=2, help="client processes (2)")
    parser.add_argument("--layers", nargs="+", choices=["core", "pubsub"], help="core pubsub")
    parser.add_argument("--no-ramp", action="store_true")
    parser.add_argument(
        "--no-board", dest="board", action="store_false", help="skip the 16-tile board phases"
    )
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="also measure the stack of this git commit (from a temporary worktree), first",
    )
    parser.add_argument(
        "--server",
        choices=sorted(WEB_SERVERS),
        default="web",
        help="web (as shipped), daphne or daphne-quiet",
    )
    parser.add_argument("--ramp-seconds", type=float, default=8)
    parser.add_argument("--upstream-seconds", type=float, help="per window (40; quick 10)")
    parser.add_argument("--drain", type=float, default=20, help="max wait for the last update")
    parser.add_argument("--busy-limit", type=float, default=1.0, help="others' cores to wait on")
    parser.add_argument("--max-wait", type=float, default=120, help="max wait per phase, s")
    parser.add_argument("--no-append", action="store_true", help="don't append to RESULTS.md")
    parser.add_argument(
        "--fix-socket-timeout",
        action="store_true",
        help="channel layer without redis-py 8's 5 s socket timeout (bench/fanout_settings.py)",
    )
    parser.add_argument("--client-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--floor-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--floor-pub", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.clients = args.clients or ([100, 500] if args.quick else [100, 1000, 2000])
    args.seconds = args.seconds or (5 if args.quick else 15)
    args.layers = args.layers or (["core"] if args.quick else ["core", "pubsub"])
    args.upstream_seconds = args.upstream_seconds or (10 if args.quick else 40)
    top = max(args.clients)
    args.ramp = [] if args.quick or args.no_ramp else [top + 500, top + 1000, top + 2000]
    if args.quick:
        args.max_wait = min(args.max_wait, 30)
    if any(n > 5000 for n in args.clients):
        parser.error("at most 5,000 clients")
    return args


async def amain(args: argparse.Namespace) -> None:
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    args.load_at_start = Path("/proc/loadavg").read_text().split()[:3]
    print(f"load average {' '.join(args.load_at_start)}; top:", flush=True)
    top = subprocess.run(["top", "-bn1"], capture_output=True, text=True).stdout  # noqa: S607
    print("\n".join(top.splitlines()[:12]), flush=True)
    args.load_at_start = " ".join(args.load_at_start)
    bench = Bench(args)
    try:
        out = await asyncio.wait_for(bench.run(), HARD_LIMIT_S)
    finally:
        await bench.close()
    text = report(args, bench, out, started)
    print(text)
    if not args.no_append:
        with open(ROOT / "bench" / "RESULTS.md", "a", encoding="utf-8") as results:
            results.write(text)
        print("appended to bench/RESULTS.md")
    print(f"logs: {bench.tmp}")


def main() -> None:
    args = parse_args()
    if args.client_worker:
        asyncio.run(worker_main())
    elif args.floor_server:
        asyncio.run(floor_main(args.floor_server, args.floor_pub))
    else:
        asyncio.run(amain(args))


if __name__ == "__main__":
    main()
