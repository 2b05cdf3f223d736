"""Injected faults on the websocket side, over real sockets."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from test_faults import get_faults, set_faults
from test_websocket import assert_silent, control, receive
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus

SET_SUPPORT_QUEUE = {
    "metricId": "CIQGRP01",
    "categoryValue": "Support",
    "value": {"type": "COUNT", "count": 9},
}


async def test_drop_websockets_closes_every_subscriber_abnormally_once(emulator, http):
    async with (
        connect(emulator.ws_url(["CANTOD01"])) as first,
        connect(emulator.ws_url(["CIQGRP01"])) as second,
    ):
        await receive(first, 1)
        await receive(second, 3)
        assert await set_faults(http, emulator, {"drop_websockets": True}) == {}
        for ws in (first, second):
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 2)
            assert ws.close_code == 1011
    assert emulator.engine.stats()["ws_open"] == 0
    async with connect(emulator.ws_url(["CANTOD01"])) as again:  # not persisted
        await receive(again, 1)


async def test_a_stalled_server_keeps_the_socket_open_but_sends_nothing(emulator, http):
    async with connect(emulator.ws_url(["CIQGRP01"])) as ws:
        await receive(ws, 3)
        await set_faults(http, emulator, {"stall_websockets": True})
        await control(http, emulator, "values", SET_SUPPORT_QUEUE)
        await assert_silent(ws, 0.4)
        assert emulator.engine.stats()["ws_open"] == 1
        async with connect(emulator.ws_url(["CANTOD01"])) as late:
            await assert_silent(late, 0.2)  # even the snapshot waits
            await set_faults(http, emulator, {"stall_websockets": False})
            [snapshot] = await receive(late, 1)
        [frame] = await receive(ws, 1)
    assert frame["value"]["count"] == 9
    assert snapshot["key"]["metricId"] == "CANTOD01"


async def test_a_malformed_frame_is_sent_verbatim_once(emulator, http):
    async with (
        connect(emulator.ws_url(["CIQGRP01"])) as first,
        connect(emulator.ws_url(["CANTOD01"])) as second,
    ):
        await receive(first, 3)
        await receive(second, 1)
        garbage = '{"key": {"metricId": "CIQGRP01", "categoryVal'
        assert await set_faults(http, emulator, {"malformed_frame": garbage}) == {}
        for ws in (first, second):
            assert await asyncio.wait_for(ws.recv(), 2) == garbage
        await control(http, emulator, "values", SET_SUPPORT_QUEUE)
        [frame] = await receive(first, 1)
        assert frame["value"]["count"] == 9
        await assert_silent(second, 0.1)


async def test_array_frames_batch_the_snapshot_and_the_pushes(emulator, http):
    await set_faults(http, emulator, {"array_frames": True})
    async with connect(emulator.ws_url(["CIQGRP01", "AVLGRP01"])) as ws:
        snapshot = [json.loads(await asyncio.wait_for(ws.recv(), 2)) for _ in range(2)]
        assert all(isinstance(batch, list) and len(batch) == 3 for batch in snapshot)
        await control(http, emulator, "values", SET_SUPPORT_QUEUE)
        pushed = json.loads(await asyncio.wait_for(ws.recv(), 2))
        assert isinstance(pushed, list) and len(pushed) == 1
        assert pushed[0]["value"]["count"] == 9
        # Several keys changing at once arrive as one array.
        await set_faults(http, emulator, {"unknown_type": True})
        batch = json.loads(await asyncio.wait_for(ws.recv(), 2))
        assert [item["value"]["type"] for item in batch] == ["MAX_DURATION"] * 3
        await assert_silent(ws, 0.1)


async def test_unknown_type_is_pushed_to_subscribers_and_switched_back(emulator, http):
    async with connect(emulator.ws_url(["AVLGRP01"])) as ws:
        await receive(ws, 3)
        await set_faults(http, emulator, {"unknown_type": True})
        frames = await receive(ws, 3)
        assert {f["value"]["type"] for f in frames} == {"MAX_DURATION"}
        assert all(f["value"]["maxDuration"] >= 1234 for f in frames)
        await set_faults(http, emulator, {"unknown_type": False})
        frames = await receive(ws, 3)
        assert {f["value"]["type"] for f in frames} == {"COUNT"}


async def test_latency_and_refuse_apply_to_websocket_handshakes(emulator, http):
    await set_faults(http, emulator, {"latency_ms": 300})
    started = time.monotonic()
    async with connect(emulator.ws_url(["CANTOD01"])) as ws:
        assert time.monotonic() - started >= 0.3
        await receive(ws, 1)
    await set_faults(http, emulator, {"refuse": True})
    with pytest.raises(InvalidMessage, match="did not receive a valid HTTP response"):
        async with connect(emulator.ws_url(["CANTOD01"]), open_timeout=2):
            pass
    assert emulator.engine.stats()["ws_total"] == 1
    await set_faults(http, emulator, {"clear": True})
    assert await get_faults(http, emulator) == {}
    async with connect(emulator.ws_url(["CANTOD01"])) as ws:
        await receive(ws, 1)


async def test_hostile_names_reach_subscribers_with_the_same_ids(emulator, http):
    await set_faults(http, emulator, {"hostile_names": True})
    async with connect(emulator.ws_url(["CIQGRP01"])) as ws:
        frames = await receive(ws, 3)
    assert {f["key"]["metricId"] for f in frames} == {"CIQGRP01"}
    assert "مبيعات <b>" in {f["key"]["categoryValue"] for f in frames}


async def test_refused_metrics_stay_listed_but_answer_403_on_both_paths(emulator, http):
    await set_faults(http, emulator, {"refused_metrics": ["CANTOD01"]})
    listed = (await http.get(emulator.url("/realtime/metrics"), headers=emulator.auth)).json()
    assert "CANTOD01" in {metric["metricId"] for metric in listed}
    refused = await http.get(emulator.values_url("CANTOD01", "CIQGRP01"), headers=emulator.auth)
    assert refused.status_code == 403
    alone = await http.get(emulator.values_url("CIQGRP01"), headers=emulator.auth)
    assert alone.status_code in (200, 206)
    with pytest.raises(InvalidStatus) as refusal:
        async with connect(emulator.ws_url(["CIQGRP01", "CANTOD01"])):
            pass
    assert refusal.value.response.status_code == 403
    async with connect(emulator.ws_url(["CIQGRP01"])) as ws:
        await receive(ws, 3)
    await set_faults(http, emulator, {"refused_metrics": []})
    again = await http.get(emulator.values_url("CANTOD01"), headers=emulator.auth)
    assert again.status_code in (200, 206)


async def test_refused_websockets_answer_the_handshake_while_rest_goes_on(emulator, http):
    assert await set_faults(http, emulator, {"refuse_websockets": 403}) == {
        "refuse_websockets": 403
    }
    with pytest.raises(InvalidStatus) as refusal:
        async with connect(emulator.ws_url(["CIQGRP01"])):
            pass
    assert refusal.value.response.status_code == 403
    rest = await http.get(emulator.values_url("CIQGRP01"), headers=emulator.auth)
    assert rest.status_code in (200, 206)
    await set_faults(http, emulator, {"refuse_websockets": None})
    async with connect(emulator.ws_url(["CIQGRP01"])) as ws:
        await receive(ws, 3)
