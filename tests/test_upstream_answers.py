"""What a real server can answer, followed: a refused metric isolated from the one websocket, a
websocket 401 that waits out the auth pause, websockets blocked on the way, and a replaced
upstream whose timestamps are older than the ones stored. A real emulator process, real Redis,
the subscriber in this process."""

import asyncio
import logging
import time

import httpx
import pytest

from metrics import health, ingest, live
from metrics.acr import clock
from metrics.management.commands import subscribe_upstream
from metrics.records import record_value
from tests.conftest import start_emulator

pytestmark = pytest.mark.django_db(transaction=True)


async def control(emulator, path: str, body: dict) -> dict:
    async with httpx.AsyncClient(base_url=emulator.url) as http:
        response = await http.post(f"/_emulator/{path}", json=body)
        response.raise_for_status()
        return response.json()


async def stats(emulator) -> dict:
    async with httpx.AsyncClient(base_url=emulator.url) as http:
        return (await http.get("/_emulator/stats")).json()


async def eventually(check, timeout: float = 15.0, what: str = "the condition"):
    """Polls an async `check` until it returns something truthy; fails with `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        await asyncio.sleep(0.2)


async def record(metric_id: str, category: str) -> dict | None:
    snapshot = await live.read_snapshot()
    return next(
        (
            r
            for r in snapshot["records"]
            if (r["metric_id"], r["category"]) == (metric_id, category)
        ),
        None,
    )


@pytest.fixture
async def subscriber(upstream):
    task = asyncio.create_task(subscribe_upstream.run())
    yield task
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_refused_metric_is_an_error_tile_while_the_websocket_carries_the_others(
    upstream, subscriber
):
    await control(upstream, "faults", {"refused_metrics": ["CANTOD01"]})

    async def refused_tile():
        found = await record("CANTOD01", "")
        return found if found and found["state"] == "error" else None

    tile = await eventually(refused_tile, what="CANTOD01 shown as an error")
    assert "403" in tile["error"]
    await eventually(lambda: _ws_open(upstream, 1), what="one upstream websocket without CANTOD01")
    await control(
        upstream,
        "values",
        {"metricId": "CIQGRP01", "categoryValue": "Sales", "value": {"type": "COUNT", "count": 77}},
    )

    async def pushed():
        found = await record("CIQGRP01", "Sales")
        return found if found and found["value"] and found["value"]["count"] == 77 else None

    assert (await eventually(pushed, what="the pushed value"))["source"] == "websocket"
    assert (await stats(upstream))["ws_open"] == 1
    status = await live.read_status()
    assert status["ws_error"] == "" and status["ws_blocked"] == 0


async def _ws_open(emulator, count: int) -> bool:
    return (await stats(emulator))["ws_open"] == count


async def test_a_refused_metric_is_asked_again_at_each_catalog_refresh(upstream, subscriber):
    await control(upstream, "faults", {"refused_metrics": ["CANTOD01"]})
    await eventually(lambda: live.read_refused(), what="CANTOD01 found refused")
    await control(upstream, "faults", {"refused_metrics": []})
    await ingest.refresh_catalog()
    assert await live.read_refused() == {}
    found = await record("CANTOD01", "")
    assert found["state"] in ("live", "initializing")

    async def resubscribed():
        snapshot = await live.read_snapshot()
        return any(
            r["metric_id"] == "CANTOD01" and r["source"] == "websocket" for r in snapshot["records"]
        )

    await eventually(resubscribed, what="CANTOD01 back on the websocket")


async def test_a_websocket_401_waits_out_the_auth_pause(
    upstream, subscriber, settings, tmp_path, caplog
):
    key_file = tmp_path / "key"
    key_file.write_text(upstream.auth_key)
    settings.ACR_AUTH_KEY_FILE = str(key_file)
    settings.ACR_AUTH_RETRY_SECONDS = 60
    await eventually(lambda: _ws_open(upstream, 1), what="the first subscription")
    caplog.set_level(logging.DEBUG, logger="metrics.acr.stream")  # a repeated failure: DEBUG
    await control(upstream, "auth-key", {"key": "rotated-key", "disconnect": True})

    def refusals():  # handshakes refused (ingest also says once that the upstream broke)
        return [
            r
            for r in caplog.records
            if r.name == "metrics.acr.stream" and "(401)" in r.getMessage()
        ]

    async def refused_once():
        return refusals()

    await eventually(refused_once, what="a 401 on the websocket")
    refused_at = time.monotonic()
    await asyncio.sleep(6)  # the old backoff (cap 8 s, full jitter) tried 3-4 times by now
    assert len(refusals()) == 1, [r.getMessage() for r in refusals()]
    assert await ingest.auth_paused()  # REST waits too
    key_file.write_text("rotated-key")  # the operator puts the new key in place
    await eventually(lambda: _ws_open(upstream, 1), what="a subscription with the new key")
    assert time.monotonic() - refused_at < 6 + 5


async def test_blocked_websockets_leave_polling_in_charge_and_say_so(upstream, subscriber, caplog):
    caplog.set_level(logging.INFO, logger="metrics")
    await control(upstream, "faults", {"refuse_websockets": 403})
    await ingest.poll_values()  # the scheduled poll

    async def blocked():
        status = await live.read_status()
        return status if status["ws_blocked"] == 403 else None

    status = await eventually(blocked, what="the push channel reported blocked")
    assert "on the way" in status["ws_error"]
    assert await live.read_refused() == {}  # no metric is blamed for it
    report = await health.read_health()
    assert report["status"] == "degraded"
    assert report["upstream"]["websocket_blocked"] == 403
    said = [r.getMessage() for r in caplog.records if "refused on the way" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("websockets are refused on the way (403)")
    await control(upstream, "faults", {"refuse_websockets": None})
    await eventually(lambda: _ws_open(upstream, 1), timeout=20, what="the websocket back")

    async def unblocked():
        return (await live.read_status())["ws_blocked"] == 0

    await eventually(unblocked, what="the blocked flag cleared")


async def test_a_replaced_upstream_with_older_timestamps_is_followed_by_the_poll(
    upstream, processes, settings
):
    average = {
        "type": "AVERAGE_DURATION",
        "finishedDuration": 600_000,
        "numCountingUp": 0,
        "numCountingDown": 0,
        "count": 3,
    }
    await control(
        upstream, "values", {"metricId": "AWTGRP01", "categoryValue": "Sales", "value": average}
    )
    await eventually(lambda: _polled_ready(), what="a first poll with values")
    before = await record("AWTGRP01", "Sales")
    assert before["value"]["count"] == 3
    # ACR_BASE_URL now names another server (a standby, a rebuilt one): its clock is ten
    # minutes behind, and its average has no calls yet.
    replacement = start_emulator(
        processes,
        "--scenario",
        "static",
        "--init-seconds",
        "1",
        "--skew-ms",
        "-600000",
        key=upstream.auth_key,
    )
    settings.ACR_BASE_URL = replacement.url
    await control(
        replacement,
        "values",
        {"metricId": "AWTGRP01", "categoryValue": "Sales", "value": {**average, "count": 0}},
    )
    # A new server answers "initializing" at first, then its values.
    await eventually(lambda: _polled_ready(), what="the replacement's first values")
    after = await record("AWTGRP01", "Sales")
    assert after["upstream_ms"] < before["upstream_ms"]
    assert after["value"]["count"] == 0
    assert record_value(after, at_ms=clock.now_ms()) is None  # no number, not the old 03:20


async def _polled_ready() -> bool:
    await ingest.poll_values()
    found = await record("AWTGRP01", "Sales")
    return bool(found and found["state"] == "live")
