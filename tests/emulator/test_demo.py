"""The demo scenario end to end: what a subscribed client sees stays self-consistent."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from acr_emulator.valuemodel import duration_at, parse_timestamp, same_reading, value_from_json

ALL_IDS = ["CIQGRP01", "LWCGRP01", "AWTGRP01", "ATTAGT01", "AVLGRP01", "CANTOD01", "CABGRP01"]


async def drain(ws, into: list[dict], quiet: float = 0.05) -> None:
    while True:
        try:
            into.append(json.loads(await asyncio.wait_for(ws.recv(), quiet)))
        except TimeoutError:
            return


async def test_a_subscriber_sees_consistent_values_over_five_simulated_minutes(
    start_emulator, http
):
    emulator = await start_emulator(scenario="demo", seed=3)
    frames: list[dict] = []
    async with connect(emulator.ws_url(ALL_IDS), max_queue=None) as ws:
        await drain(ws, frames, quiet=0.3)
        snapshot = len(frames)
        assert snapshot == 3 * 5 + 8 + 1
        for _ in range(300):
            response = await http.post(
                f"{emulator.base}/_emulator/clock", json={"advance_ms": 1_000}
            )
            assert response.status_code == 200
            await drain(ws, frames, quiet=0.002)
        await drain(ws, frames, quiet=0.3)
    updates = frames[snapshot:]
    assert len(updates) > 20, "five minutes of demo should move"
    latest: dict[tuple, object] = {}
    for frame in frames:
        key = (frame["key"]["metricId"], frame["key"]["categoryValue"])
        value = value_from_json(frame["value"], default_ms=0)
        old = latest.get(key)
        if old is not None:
            assert value.last_update_ms > old.last_update_ms
            # Only real changes are pushed; a duration that merely kept running is not.
            assert not same_reading(old, value)
            if key[0] == "ATTAGT01":
                # Talk time only accumulates: an update never moves the client's number.
                assert value.finished_ms == duration_at(old, value.last_update_ms)
            if key[0] in ("CANTOD01", "CABGRP01"):
                assert value.count > old.count
        if key[0] in ("CIQGRP01", "AVLGRP01"):
            assert value.count >= 0
        latest[key] = value
    # Every value the REST endpoint reports is the last one pushed.
    body = (await http.get(emulator.values_url(*ALL_IDS), headers=emulator.auth)).json()
    for result in body["results"]:
        key = (result["key"]["metricId"], result["key"]["categoryValue"])
        assert value_from_json(result["value"], default_ms=0) == latest[key]


async def test_the_demo_starts_at_the_emulator_clock(start_emulator, http):
    emulator = await start_emulator(scenario="demo", skew_ms=60_000)
    body = (await http.get(emulator.values_url("CANTOD01"), headers=emulator.auth)).json()
    stamp = body["results"][0]["value"]["lastUpdateTime"]
    assert parse_timestamp(stamp) == emulator.clock.now_ms()
    assert body["results"][0]["value"]["count"] > 0


async def test_a_set_value_is_pinned_against_the_simulation_unless_asked(start_emulator, http):
    emulator = await start_emulator(scenario="demo", seed=3)
    for category, pin in (("Sales", True), ("Support", False)):
        body = {
            "metricId": "CIQGRP01",
            "categoryValue": category,
            "value": {"type": "COUNT", "count": 77},
            "pin": pin,
        }
        assert (await http.post(f"{emulator.base}/_emulator/values", json=body)).status_code == 200
    await http.post(f"{emulator.base}/_emulator/clock", json={"advance_ms": 1_000})
    body = (await http.get(emulator.values_url("CIQGRP01"), headers=emulator.auth)).json()
    counts = {r["key"]["categoryValue"]: r["value"]["count"] for r in body["results"]}
    assert counts["Sales"] == 77
    assert counts["Support"] < 77  # the simulation took it back on its next step


COUNT_IDS = ["CIQGRP01", "AVLGRP01", "CANTOD01", "CABGRP01", "CBDDIR01", "CBACOD01"]


@pytest.mark.parametrize("seed", [1, 5])
@pytest.mark.parametrize("local_time", ["03:00", "07:41", "21:48"])
async def test_the_demo_is_busy_within_a_minute_at_any_hour(start_emulator, http, local_time, seed):
    """A newcomer who starts the demo at night still sees queues rise and fall at once:
    at least 6 of the 17 count values change within a minute of emulator time."""
    start = parse_timestamp(f"2024-03-12T{local_time}:00.000-06:00")
    emulator = await start_emulator(scenario="demo", seed=seed, start_ms=start)
    frames: list[dict] = []
    async with connect(emulator.ws_url(COUNT_IDS), max_queue=None) as ws:
        await drain(ws, frames, quiet=0.3)
        snapshot = len(frames)
        for _ in range(60):
            await http.post(f"{emulator.base}/_emulator/clock", json={"advance_ms": 1_000})
            await drain(ws, frames, quiet=0.002)
        await drain(ws, frames, quiet=0.3)
    changed = {(f["key"]["metricId"], f["key"]["categoryValue"]) for f in frames[snapshot:]}
    assert len(changed) >= 6, f"at {local_time} only {sorted(changed)} changed in a minute"
    queue = {}
    rose = fell = False
    for frame in frames:
        if frame["key"]["metricId"] == "CIQGRP01":
            category, count = frame["key"]["categoryValue"], frame["value"]["count"]
            rose = rose or count > queue.get(category, count)
            fell = fell or count < queue.get(category, count)
            queue[category] = count
    assert rose and fell, f"at {local_time} no queue rose and fell in a minute"
