"""Shared fixtures: the emulator running in-process on a real 127.0.0.1 socket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from aiohttp import web

from acr_emulator import EmulatorConfig, create_app
from acr_emulator.clock import EmulatorClock
from acr_emulator.engine import Emulator
from acr_emulator.server import ENGINE
from acr_emulator.valuemodel import parse_timestamp

KEY = "service-user-key-7f3a"
PREFIX = "/rest/api/v1"
ALT_PREFIX = "/api/v1"
# A Tuesday mid-morning in the emulator's default zone.
START_MS = parse_timestamp("2024-03-12T10:00:00.000-06:00")


@dataclass
class RunningEmulator:
    base: str
    app: web.Application
    clock: EmulatorClock

    @property
    def engine(self) -> Emulator:
        return self.app[ENGINE]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.engine.auth_key}"}

    def url(self, path: str, prefix: str = PREFIX) -> str:
        return f"{self.base}{prefix}{path}"

    def values_url(self, *ids: str, prefix: str = PREFIX) -> str:
        return self.url("/realtime/metrics/values?" + urlencode([("id", i) for i in ids]), prefix)

    def ws_url(self, ids: list[str], token: str | None = KEY, prefix: str = PREFIX) -> str:
        query = [("id", i) for i in ids]
        if token is not None:
            query.append(("auth_token", token))
        ws_base = self.base.replace("http://", "ws://")
        return f"{ws_base}{prefix}/realtime-metric-subscription?{urlencode(query)}"


StartEmulator = Callable[..., Awaitable[RunningEmulator]]


@pytest.fixture
async def start_emulator() -> AsyncIterator[StartEmulator]:
    """Factory: ``await start_emulator(init_seconds=3, ...)`` with a manual clock
    (at ``START_MS`` unless ``start_ms=`` says otherwise)."""
    runners: list[web.AppRunner] = []

    async def start(**overrides: Any) -> RunningEmulator:
        options: dict[str, Any] = {
            "auth_key": KEY,
            "scenario": "static",
            "init_seconds": 0,
            "seed": 7,
        }
        start_ms = overrides.pop("start_ms", START_MS)
        options.update(overrides)
        config = EmulatorConfig(**options)
        clock = EmulatorClock.manual(start_ms, skew_ms=config.skew_ms)
        app = create_app(config, clock=clock)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        return RunningEmulator(f"http://{host}:{port}", app, clock)

    yield start
    for runner in reversed(runners):
        await runner.cleanup()


@pytest.fixture
async def emulator(start_emulator: StartEmulator) -> RunningEmulator:
    """Static scenario, metrics ready at once."""
    return await start_emulator()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client
