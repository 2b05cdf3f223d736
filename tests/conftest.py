"""Fixtures that start real components: Redis (a database of its own), the emulator, and, for the
end-to-end tests, every process of the system. Logs of started processes go to .run/test-logs/."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / ".run" / "test-logs"
LOGS.mkdir(parents=True, exist_ok=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, name: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}: see {LOGS / name}.log")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on {port} within {timeout}s")


class Processes:
    """Started processes, stopped (SIGTERM, then SIGKILL) in reverse order."""

    def __init__(self) -> None:
        self.running: list[tuple[str, subprocess.Popen]] = []

    def start(
        self, name: str, args: list[str], env: dict[str, str], cwd: Path = ROOT
    ) -> subprocess.Popen:
        log = open(LOGS / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(  # noqa: S603
            args, cwd=cwd, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        self.running.append((name, process))
        return process

    def stop_all(self) -> None:
        for _, process in reversed(self.running):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _, process in reversed(self.running):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.running.clear()


@dataclass
class Emulator:
    url: str
    auth_key: str
    process: subprocess.Popen

    def control(self, path: str, payload: dict) -> dict:
        response = httpx.post(f"{self.url}/_emulator/{path}", json=payload, timeout=5)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict:
        return httpx.get(f"{self.url}/_emulator/stats", timeout=5).json()


def database_url() -> str:
    """The test database, for processes the tests start (they must see its rows)."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def system_env(emulator: Emulator, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a dashboard process pointed at `emulator` and the test stores."""
    return {
        "DJANGO_SETTINGS_MODULE": "dashboard.test_settings",
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "ACR_BASE_URL": emulator.url,
        "ACR_AUTH_KEY": emulator.auth_key,
        **extra,
    }


@pytest.fixture
def processes():
    started = Processes()
    yield started
    started.stop_all()


def start_emulator(
    processes: Processes, *args: str, port: int | None = None, key: str | None = None
) -> Emulator:
    port = port or free_port()
    key = key or "test-" + secrets.token_hex(12)
    process = processes.start(
        "emulator",
        [sys.executable, "-m", "acr_emulator", "--port", str(port), *args],
        {"ACR_AUTH_KEY": key},
        # TEST_EMULATOR_DIR runs another checkout's emulator (e.g. while this one is being edited).
        cwd=Path(os.environ.get("TEST_EMULATOR_DIR", ROOT)),
    )
    wait_for_port(port, process, "emulator")
    return Emulator(url=f"http://127.0.0.1:{port}", auth_key=key, process=process)


@pytest.fixture
def emulator(processes) -> Emulator:
    """A deterministic upstream: fixed values, metrics ready one second after first asked."""
    return start_emulator(processes, "--scenario", "static", "--init-seconds", "1")


@pytest.fixture
def redis_db(settings):
    """The test Redis database, empty before and after each test."""
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def upstream(settings, emulator, redis_db) -> Emulator:
    """Points this process's settings at the emulator."""
    settings.ACR_BASE_URL = emulator.url
    settings.ACR_AUTH_KEY = emulator.auth_key
    return emulator
