"""Fixtures that start real components: Redis (a database of its own), the emulator, and, for the
end-to-end tests, every process of the system. Logs of started processes go to .run/test-logs/."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
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
from django.contrib.auth import get_user_model
from playwright.sync_api import expect, sync_playwright

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


def wait_until(condition, *, timeout: float, what: str, step: float = 0.1):
    """Calls `condition` until it returns something truthy, and returns that. Fails naming `what`
    was awaited (and what the condition last returned) when `timeout` seconds pass first: a test
    waits for the state it needs, never for a guessed time."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what} (last: {result!r})")
        time.sleep(step)


class Processes:
    """Started processes, stopped (SIGTERM, then SIGKILL) in reverse order."""

    def __init__(self) -> None:
        self.running: list[tuple[str, subprocess.Popen]] = []

    def start(
        self, name: str, args: list[str], env: dict[str, str], cwd: Path = ROOT
    ) -> subprocess.Popen:
        # A name started again (a restarted web process) goes on in the same log.
        mode = "a" if any(started == name for started, _ in self.running) else "w"
        log = open(LOGS / f"{name}.log", mode)  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(  # noqa: S603
            args, cwd=cwd, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        self.running.append((name, process))
        return process

    def named(self, name: str) -> subprocess.Popen:
        """The process last started as `name`."""
        return next(process for started, process in reversed(self.running) if started == name)

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
    """The emulator as its own process, strict: it answers only the documented request forms,
    as a real server may, so every test that talks to it proves the client sends them."""
    port = port or free_port()
    key = key or "test-" + secrets.token_hex(12)
    process = processes.start(
        "emulator",
        [sys.executable, "-m", "acr_emulator", "--strict", "--port", str(port), *args],
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
    """The test Redis database, empty before and after each test (and this process's memory of
    rate limits counted in it)."""
    from dashboard import ratelimit

    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    client.flushdb()
    ratelimit._over.clear()
    yield client
    client.flushdb()
    ratelimit._over.clear()


@pytest.fixture
def upstream(settings, emulator, redis_db) -> Emulator:
    """Points this process's settings at the emulator."""
    settings.ACR_BASE_URL = emulator.url
    settings.ACR_AUTH_KEY = emulator.auth_key
    return emulator


# --- the whole system and a browser ------------------------------------------------------

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "a-long-test-password-7"


def web_command() -> list[str]:
    """The web process as the Procfile starts it (its port from WEB_PORT; start it with
    WEB_ENV)."""
    return [sys.executable, "-m", "dashboard.web"]


def daphne_command(port: int) -> list[str]:
    """The web process under Daphne, the supported alternative to uvicorn (as
    bench/servers.py runs it)."""
    app = "dashboard.asgi:application"
    return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), app]


# One web worker in tests: quicker to start, lighter on a shared machine (the benchmarks and
# drills run the default, one per core).
WEB_ENV = {"WEB_WORKERS": "1"}


def stack_env(emulator: Emulator, redis_url: str) -> dict[str, str]:
    """The environment of every process of start_stack's system: quick polls and staleness."""
    return system_env(
        emulator,
        redis_url,
        ACR_POLL_SECONDS="1",
        ACR_CATALOG_SECONDS="5",
        ACR_STALE_SECONDS="3",
    )


def start_web(
    processes: Processes, env: dict[str, str], port: int, **web_env: str
) -> subprocess.Popen:
    """The web process on `port` (again, to restart it after a test stopped it); `web_env`
    for it alone (WEB_SERVER="daphne")."""
    return processes.start(
        "web", web_command(), {**env, **WEB_ENV, "WEB_PORT": str(port), **web_env}
    )


def start_stack(
    processes,
    redis_url: str,
    *emulator_args: str,
    env: dict[str, str] | None = None,
    **web_env: str,
):
    """The whole system on free ports (every process also given `env`); returns (base URL,
    emulator). `web_env`: the web process's own variables (WEB_SERVER="daphne",
    WEB_ACCESS_LOG="1")."""
    emulator = start_emulator(
        processes, "--scenario", "static", "--init-seconds", "1", *emulator_args
    )
    port = free_port()
    env = {**stack_env(emulator, redis_url), **(env or {})}
    python = [sys.executable, "-m"]
    web = start_web(processes, env, port, **web_env)
    processes.start(
        "worker",
        [
            *python,
            "celery",
            "-A",
            "dashboard",
            "worker",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],
        env,
    )
    processes.start(
        "beat",
        [
            *python,
            "celery",
            "-A",
            "dashboard",
            "beat",
            "--loglevel=INFO",
            "--schedule",
            str(LOGS / "celerybeat-schedule"),
        ],
        env,
    )
    processes.start("subscriber", [sys.executable, "manage.py", "subscribe_upstream"], env)
    wait_for_port(port, web, "web")
    return f"http://127.0.0.1:{port}", emulator


@pytest.fixture
def stack(processes, redis_db, settings):
    return start_stack(processes, settings.REDIS_URL)


@pytest.fixture
def browser():
    """Chromium; every page, response and websocket frame it sees is scanned for a key."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        seen = KeyScan()
        new_context = browser.new_context

        def watched_context(**options):
            context = new_context(**options)
            context.on("page", seen.watch_page)
            return context

        browser.new_context = watched_context
        browser.new_page = lambda **options: watched_context(**options).new_page()
        yield browser
        seen.finish()
        browser.close()
        seen.assert_clean()


@pytest.fixture
def page(browser):
    return browser.new_page()


@pytest.fixture
def staff_user():
    """An administrator: sees every board and metric. (Created before Playwright starts: its
    sync API runs an event loop in this thread, where Django refuses ORM calls.)"""
    return get_user_model().objects.create_user("staff_user", password=PASSWORD, is_staff=True)


def log_in(page, base_url, username="staff_user", path="/"):
    """Logs in through the login form, as a person would, landing on `path`."""
    page.goto(base_url + path)
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    if path == "/":
        expect(page.get_by_role("link", name="All metrics")).to_be_visible()


def count_record(metric_id: str, category: str, count: int, at: int, **extra) -> dict:
    """A live COUNT record as ingest stores it."""
    return {
        "metric_id": metric_id,
        "category": category,
        "state": "live",
        "error": "",
        "value": {"type": "COUNT", "count": count, "last_update_ms": at},
        "upstream_ms": at,
        "source": "poll",
        "received_ms": at,
        **extra,
    }


def queued_webhooks(redis_db) -> list[list[dict]]:
    """The jobs of each send_webhooks task waiting in the Celery queue (the broker is the same
    Redis)."""
    messages = [json.loads(raw) for raw in redis_db.lrange("celery", 0, -1)]
    return [
        json.loads(base64.b64decode(message["body"]))[0][0]
        for message in messages
        if message["headers"]["task"] == "dashboard.tasks.send_webhooks"
    ]


def in_thread(function, *args):
    """Runs a function (or coroutine function, in a loop of its own) in another thread:
    Playwright's sync API owns this thread's event loop, and Django refuses ORM calls there."""
    import asyncio
    import inspect
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from metrics import live

    async def main():
        try:
            return await function(*args)
        finally:
            await live.close_redis()

    def run():
        try:
            return asyncio.run(main()) if inspect.iscoroutinefunction(function) else function(*args)
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result(timeout=10)


# --- the upstream key must never reach anything a browser receives -----------------------------

# Every key the tests give an emulator matches this (see start_emulator).
KEY_PATTERN = re.compile(r"test-[0-9a-f]{24}")


class KeyScan:
    """Collects what a browser received and finds any upstream key in it."""

    def __init__(self) -> None:
        self.pages: list = []
        self.responses: list = []
        self.texts: list[tuple[str, str]] = []

    def watch_page(self, page) -> None:
        self.pages.append(page)
        page.on("response", lambda response: self.responses.append(response))
        page.on(
            "websocket",
            lambda ws: ws.on(
                "framereceived", lambda frame: self.texts.append((f"frame on {ws.url}", str(frame)))
            ),
        )

    def finish(self) -> None:
        for page in self.pages:
            if not page.is_closed():
                self.texts.append((f"page {page.url}", page.content()))
        for response in self.responses:
            try:
                self.texts.append((f"response {response.url}", response.text()))
            except Exception:  # noqa: BLE001, S110 - bodies of redirects and aborted loads
                pass

    def assert_clean(self) -> None:
        leaks = [where for where, text in self.texts if KEY_PATTERN.search(text)]
        assert not leaks, f"the upstream key reached the browser: {leaks[:5]}"


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Each test gets its own channel layer: channels_redis keeps per-channel asyncio locks that a
    test's event loop can leave held (a backup cleaner still running when the loop closed), and
    the next test's loop then fails with "bound to a different event loop"."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def no_key_in_responses(monkeypatch):
    """Every response the Django test client and every frame a WebsocketCommunicator gets in the
    suite is scanned for an upstream key."""
    from channels.testing import WebsocketCommunicator
    from django.test import Client

    def check(where: str, text: str) -> None:
        assert not KEY_PATTERN.search(text), f"the upstream key reached a browser: {where}"

    original_request = Client.request

    def request(self, **environ):
        response = original_request(self, **environ)
        if not response.streaming:
            check(environ.get("PATH_INFO", ""), response.content.decode("utf-8", "replace"))
        return response

    original_receive = WebsocketCommunicator.receive_output

    async def receive_output(self, timeout=1):
        message = await original_receive(self, timeout)
        check("websocket frame", str(message))
        return message

    monkeypatch.setattr(Client, "request", request)
    monkeypatch.setattr(WebsocketCommunicator, "receive_output", receive_output)


def assert_ticks_with_the_clock(page, selector: str) -> None:
    """The element's data-value (ms) grows by 2 s with no new message, keeping time with the
    clock (waited for, not slept on: loading Plotly can hold a tick back on a cold machine)."""
    element = page.locator(selector)
    started, first = time.monotonic(), int(element.get_attribute("data-value"))
    page.wait_for_function(
        "([selector, first]) => Number(document.querySelector(selector).dataset.value) - first"
        " >= 2000",
        arg=[selector, first],
        timeout=10_000,
    )
    advanced = int(element.get_attribute("data-value")) - first
    elapsed_ms = (time.monotonic() - started) * 1000
    assert elapsed_ms - 1500 <= advanced <= elapsed_ms + 1100, (advanced, elapsed_ms)


def screenshot_folder(tmp_path: Path) -> Path:
    """Where a test shoots its screenshots: docs/screenshots only when asked for (SCREENSHOTS=1,
    `make screenshots`), else a temporary folder: a test run never changes tracked files."""
    return ROOT / "docs" / "screenshots" if os.environ.get("SCREENSHOTS") == "1" else tmp_path
