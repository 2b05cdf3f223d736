"""The real system on loopback for a drill, and the guarantee that all of it is stopped.

Ported from tests/conftest.py (`start_emulator`, `start_stack`): the same processes with the
production shape of the Procfile (its web command as it stands, a prefork Celery worker with 2
processes, beat, the upstream subscriber), against the emulator (`--scenario static`), a
temporary SQLite database (a board, a display link to it, a staff user) and Redis database 12
(FLUSHDB before and after; `DRILL_REDIS_URL` to change it). Upstream settings are the
production defaults (poll every 5 s, tiles stale after 20 s) so a drill measures what a site
would see.

Every process runs in a session of its own and gets SIGKILL if this process dies
(PR_SET_PDEATHSIG); `Processes.stop_all` stops every group, stopped (SIGSTOP) ones included.
Logs stay in .run/drills/<drill>-<time>/.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
RUNS = ROOT / ".run" / "drills"
DRILL_REDIS_URL = os.environ.get("DRILL_REDIS_URL", "redis://127.0.0.1:6379/12")
PYTHON = sys.executable

# The board every drill watches: (metric id, category) -> the static scenario's value (None:
# a duration, checked for its state only). MARKER is the value drills change upstream.
MARKER = ("CIQGRP01", "Sales")
PROBE = ("CIQGRP01", "Support")
BOARD_TILES: dict[tuple[str, str], int | None] = {
    MARKER: 3,
    PROBE: 1,
    ("AVLGRP01", "Billing"): 2,
    ("CANTOD01", ""): 412,
    ("CABGRP01", "Support"): 14,
    ("LWCGRP01", "Sales"): None,
}
ACTIVE_LINE = "this subscriber is active"


WEB_COMMAND = ""  # the web process's command line, once started (for the results)


def procfile_command(process: str) -> str:
    """A process's command line in the Procfile (what `make run` starts)."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{process}:"):
            return line.split(":", 1)[1].strip()
    raise RuntimeError(f"the Procfile has no {process!r} process")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


_ALL_GROUPS: set[int] = set()


def _kill_leftovers() -> None:
    """Last resort (exit, alarm): SIGKILL every process group this process started."""
    for group in list(_ALL_GROUPS):
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.killpg(group, sig)
            except OSError:
                pass
    _ALL_GROUPS.clear()


atexit.register(_kill_leftovers)


class Processes:
    """Started processes by name, each the leader of its own process group."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "a")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(  # noqa: S603
            args,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only ever from the main thread
        )
        log.close()
        self.running[name] = process
        _ALL_GROUPS.add(process.pid)
        return process

    def pid(self, name: str) -> int:
        return self.running[name].pid

    def signal(self, name: str, sig: int) -> None:
        """To the process itself (not its children)."""
        self.running[name].send_signal(sig)

    def kill_group(self, name: str) -> None:
        """SIGKILL to the process and everything it started (a prefork worker's children)."""
        process = self.running.pop(name)
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()
        _ALL_GROUPS.discard(process.pid)

    async def stop(self, name: str, timeout: float = 10) -> float:
        """SIGTERM (after SIGCONT, in case it was stopped), SIGKILL after `timeout`; returns
        how long it took to exit."""
        process = self.running.pop(name)
        started = time.monotonic()
        for sig in (signal.SIGCONT, signal.SIGTERM):
            _signal_group(process.pid, sig)
        while process.poll() is None and time.monotonic() - started < timeout:
            await asyncio.sleep(0.05)
        took = time.monotonic() - started
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()
        _ALL_GROUPS.discard(process.pid)
        return took

    def stop_all(self) -> None:
        """Synchronous, for `finally`: every group gets SIGCONT + SIGTERM, then SIGKILL."""
        names = list(reversed(self.running))
        for name in names:
            for sig in (signal.SIGCONT, signal.SIGTERM):
                _signal_group(self.running[name].pid, sig)
        deadline = time.monotonic() + 10
        for name in names:
            process = self.running.pop(name)
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
            _ALL_GROUPS.discard(process.pid)


def _signal_group(group: int, sig: int) -> None:
    try:
        os.killpg(group, sig)
    except OSError:
        pass


async def wait_for_port(
    port: int, process: subprocess.Popen, name: str, logs: Path, timeout: float = 60
) -> float:
    """Until something listens on `port`; returns the time it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}: see {logs}/{name}.log")
        if port_open(port):
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on {port} within {timeout:.0f} s")


async def wait_for(condition, timeout: float, step: float = 0.1) -> float | None:
    """Seconds until `condition()` (sync or async) is true, or None after `timeout`."""
    started = time.monotonic()
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() - started >= timeout:
            return None
        await asyncio.sleep(step)


@dataclass
class Emulator:
    port: int
    key: str
    args: list[str]
    http: httpx.AsyncClient = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def control(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(f"{self.url}/_emulator/{path}", json=payload)
        response.raise_for_status()
        return response.json()

    async def stats(self) -> dict[str, Any]:
        return (await self.http.get(f"{self.url}/_emulator/stats")).json()

    async def faults(self, **faults: Any) -> dict[str, Any]:
        """Merges `faults` into the active ones; no argument clears them all."""
        return await self.control("faults", faults or {"clear": True})

    async def set_count(self, key: tuple[str, str], count: int) -> None:
        await self.control(
            "values",
            {
                "metricId": key[0],
                "categoryValue": key[1],
                "value": {"type": "COUNT", "count": count},
            },
        )


class Stack:
    """One drill's system. Use as `async with Stack("name") as stack:`; it is stopped (and its
    Redis database emptied) on the way out, whatever happened."""

    def __init__(
        self,
        drill: str,
        own_redis: bool = False,
        tiles: dict[tuple[str, str], int | None] | None = None,
        **env: str,
    ) -> None:
        """`own_redis` (or DRILL_OWN_REDIS=1): a redis-server of its own on a free port rather
        than database 12 of the shared one (tile updates go out by Redis pub/sub, whose
        channels every database of a server shares). `tiles`: the board's tiles (default
        BOARD_TILES)."""
        self.drill = drill
        self.tiles = dict(BOARD_TILES if tiles is None else tiles)
        self.dir = RUNS / f"{drill}-{time.strftime('%Y%m%d-%H%M%S')}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.procs = Processes(self.dir)
        self.own_redis = own_redis or os.environ.get("DRILL_OWN_REDIS") == "1"
        self.redis_port = free_port() if self.own_redis else 0
        redis_url = f"redis://127.0.0.1:{self.redis_port}/12" if self.own_redis else DRILL_REDIS_URL
        self.redis_url = redis_url
        self.web_port = free_port()
        self.http = httpx.AsyncClient(timeout=10)
        self.emulator = Emulator(free_port(), "drill-" + secrets.token_hex(12), [], self.http)
        self.token = ""
        self.staff = ("drill-staff", secrets.token_urlsafe(16))  # an administrator, for /status/
        self.env = {
            "DJANGO_SETTINGS_MODULE": "dashboard.test_settings",
            "DATABASE_URL": f"sqlite:///{self.dir / 'db.sqlite3'}",
            "REDIS_URL": redis_url,
            "ACR_BASE_URL": self.emulator.url,
            "ACR_AUTH_KEY": self.emulator.key,
            "ACR_POLL_SECONDS": "5",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            **env,
        }

    async def __aenter__(self) -> Stack:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.http.aclose()

    def close(self) -> None:
        self.procs.stop_all()
        self.flush_redis()

    def flush_redis(self) -> None:
        import redis

        try:
            redis.Redis.from_url(self.redis_url, socket_timeout=2).flushdb()
        except redis.RedisError:
            pass  # a drill's own Redis may be down at this point

    # --- the database: a board of `tiles`, a display link to it, a staff user

    async def prepare(self) -> None:
        await asyncio.to_thread(self._prepare)

    def _prepare(self) -> None:
        os.environ.update(self.env)
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        from dashboard import boards
        from metrics.models import Board, Metric, Tile

        self.flush_redis()
        call_command("migrate", verbosity=0)
        board = Board.objects.create(name="Drill", slug="drill", columns=3)
        for order, (metric_id, category) in enumerate(self.tiles):
            metric, _ = Metric.objects.get_or_create(
                metric_id=metric_id,
                defaults={"name": metric_id, "category_type": "NONE" if not category else "GROUP"},
            )
            Tile.objects.create(board=board, metric=metric, category=category, order=order)
        _, self.token = boards.create_display_link("drill TV", board=board)
        get_user_model().objects.create_user(
            self.staff[0], password=self.staff[1], is_staff=True, is_superuser=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def display_url(self) -> str:
        return f"{self.base_url}/display/{self.token}/"

    @property
    def display_ws(self) -> str:
        return f"ws://127.0.0.1:{self.web_port}/ws/display/{self.token}/"

    # --- processes

    async def start_redis(self) -> float:
        """The drill's own redis-server (no persistence, as the compose file runs it)."""
        args = ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.dir), "--logfile", ""]
        process = self.procs.start("redis", args, {})
        return await wait_for_port(self.redis_port, process, "redis", self.dir)

    async def start_emulator(
        self, *args: str, emulator: Emulator | None = None, name: str = "emulator"
    ) -> float:
        """The upstream (`emulator`: another one than the stack's, see new_emulator); `args`
        after the defaults, which they override (argparse keeps the last)."""
        emulator = emulator or self.emulator
        if args or not emulator.args:
            # Strict, as in the tests: only the documented request forms are answered.
            emulator.args = ["--strict", "--scenario", "static", "--init-seconds", "1", *args]
        process = self.procs.start(
            name,
            [PYTHON, "-m", "acr_emulator", "--port", str(emulator.port), *emulator.args],
            {"ACR_AUTH_KEY": emulator.key},
        )
        return await wait_for_port(emulator.port, process, name, self.dir)

    def new_emulator(self) -> Emulator:
        """Another upstream server with the same key, on a port of its own (not started)."""
        return Emulator(free_port(), self.emulator.key, [], self.http)

    async def start_web(self, name: str = "web") -> float:
        """The web process exactly as the Procfile starts it (today `python -m dashboard.web`)."""
        global WEB_COMMAND
        WEB_COMMAND = procfile_command("web")
        env = {
            **self.env,
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(self.web_port),
            "PATH": f"{Path(PYTHON).parent}:{os.environ.get('PATH', '')}",
        }
        process = self.procs.start(name, ["bash", "-c", f"exec {WEB_COMMAND}"], env)
        return await wait_for_port(self.web_port, process, name, self.dir)

    def start_worker(self, name: str = "worker", concurrency: int = 2) -> None:
        self.procs.start(
            name,
            [PYTHON, "-m", "celery", "-A", "dashboard", "worker", "--loglevel=INFO"]
            + [f"--concurrency={concurrency}", "--without-gossip", "--without-mingle"]
            + ["--hostname", f"{name}@drill"],
            self.env,
        )

    def start_beat(self, name: str = "beat") -> None:
        self.procs.start(
            name,
            [PYTHON, "-m", "celery", "-A", "dashboard", "beat", "--loglevel=INFO"]
            + ["--schedule", str(self.dir / f"{name}-schedule")],
            self.env,
        )

    def start_subscriber(self, name: str = "subscriber") -> None:
        self.procs.start(name, [PYTHON, "manage.py", "subscribe_upstream"], self.env)

    async def start(self, subscribers: int = 1, emulator_args: tuple[str, ...] = ()) -> None:
        """Database, emulator (with `emulator_args` after the defaults) and every process of
        the system."""
        if self.own_redis and "redis" not in self.procs.running:
            await self.start_redis()
        await self.prepare()
        await self.start_emulator(*emulator_args)
        for n in range(subscribers):
            self.start_subscriber("subscriber" if subscribers == 1 else f"subscriber-{n}")
            if subscribers > 1:
                await asyncio.sleep(1.0)  # the first one started takes the lease
        self.start_worker()
        self.start_beat()
        await self.start_web()

    async def repoint(self, emulator: Emulator, suffix: str) -> dict[str, float]:
        """ACR_BASE_URL now names `emulator`: the processes that read it (the subscriber, beat
        and the worker) are stopped (SIGTERM) and started again with the new URL, named
        `<name><suffix>`, as a deploy of the new setting would; Redis, the database and the web
        process are kept. Returns how long each took to stop."""
        stopped = {}
        for name in ("subscriber", "beat", "worker"):
            running = next(n for n in reversed(self.procs.running) if n.startswith(name))
            stopped[running] = await self.procs.stop(running, timeout=15)
        self.env["ACR_BASE_URL"] = emulator.url
        self.start_subscriber("subscriber" + suffix)
        self.start_worker("worker" + suffix)
        self.start_beat("beat" + suffix)
        return stopped

    async def staff_get(self, path: str) -> httpx.Response:
        """GET `path` as the staff user (logged in through the login form)."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as http:
            page = await http.get("/accounts/login/")
            await http.post(
                "/accounts/login/",
                data={
                    "username": self.staff[0],
                    "password": self.staff[1],
                    "csrfmiddlewaretoken": page.cookies.get("csrftoken", ""),
                },
            )
            return await http.get(path)

    def log(self, name: str) -> str:
        try:
            return (self.dir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""

    async def health(self) -> tuple[int, str]:
        """(HTTP status, "ok" | "degraded" | "down") of /health/ as a monitor sees it."""
        try:
            response = await self.http.get(f"{self.base_url}/health/", timeout=3)
        except httpx.HTTPError as exc:
            return 0, type(exc).__name__
        try:
            return response.status_code, response.json().get("status", "?")
        except ValueError:
            return response.status_code, f"not JSON ({response.headers.get('content-type')})"
