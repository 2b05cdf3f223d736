"""The websocket subscription over real sockets: handshake, snapshot, change-only pushes."""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import ALT_PREFIX, KEY, PREFIX
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


async def receive(ws, count: int, timeout: float = 2.0) -> list[dict]:
    return [json.loads(await asyncio.wait_for(ws.recv(), timeout)) for _ in range(count)]


async def assert_silent(ws, seconds: float = 0.3) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), seconds)


async def control(http, emulator, path: str, body: dict) -> dict:
    response = await http.post(f"{emulator.base}/_emulator/{path}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    ("ids", "token", "status"),
    [
        (["CIQGRP01"], None, 401),
        (["CIQGRP01"], "wrong-key", 401),
        (["CIQGRP01"], "", 401),
        ([], KEY, 400),
        ([""], KEY, 400),
        (["NOPE0001"], KEY, 403),
        (["HIDDEN01"], KEY, 403),
        (["CIQGRP01", "HIDDEN01"], KEY, 403),
    ],
)
async def test_bad_handshakes_are_refused_before_the_upgrade(emulator, ids, token, status):
    with pytest.raises(InvalidStatus) as refused:
        async with connect(emulator.ws_url(ids, token=token)):
            pass
    assert refused.value.response.status_code == status
    assert KEY.encode() not in (refused.value.response.body or b"")
    assert emulator.engine.stats()["ws_total"] == 0


@pytest.mark.parametrize("prefix", [PREFIX, ALT_PREFIX])
async def test_it_sends_a_snapshot_identical_to_the_rest_results(emulator, http, prefix):
    ids = ["CIQGRP01", "CANTOD01"]
    rest = (await http.get(emulator.values_url(*ids), headers=emulator.auth)).json()["results"]
    async with connect(emulator.ws_url(ids, prefix=prefix)) as ws:
        frames = await receive(ws, 4)
        await assert_silent(ws)
    assert sorted(frames, key=json.dumps) == sorted(rest, key=json.dumps)


async def test_comma_separated_ids_subscribe_too(emulator):
    async with connect(emulator.ws_url(["CIQGRP01,AVLGRP01"])) as ws:
        frames = await receive(ws, 6)
    assert {f["key"]["metricId"] for f in frames} == {"CIQGRP01", "AVLGRP01"}


async def test_a_set_value_is_pushed_once_to_subscribers_of_that_metric(emulator, http):
    async with (
        connect(emulator.ws_url(["CIQGRP01"])) as queue_ws,
        connect(emulator.ws_url(["CANTOD01"])) as other_ws,
    ):
        await receive(queue_ws, 3)
        await receive(other_ws, 1)
        body = {
            "metricId": "CIQGRP01",
            "categoryValue": "Support",
            "value": {"type": "COUNT", "count": 9},
        }
        returned = await control(http, emulator, "values", body)
        [frame] = await receive(queue_ws, 1)
        assert frame == returned
        assert frame["key"] == {"metricId": "CIQGRP01", "categoryValue": "Support"}
        assert frame["value"] == {
            "lastUpdateTime": "2024-03-12T10:00:00.000-06:00",
            "count": 9,
            "type": "COUNT",
        }
        await assert_silent(queue_ws)
        await assert_silent(other_ws, 0.1)
    rest = (await http.get(emulator.values_url("CIQGRP01"), headers=emulator.auth)).json()
    assert frame in rest["results"]


async def test_several_values_set_together_are_pushed_together(emulator, http):
    async with connect(emulator.ws_url(["CIQGRP01", "CANTOD01"])) as ws:
        await receive(ws, 4)
        values = [
            {"metricId": "CIQGRP01", "categoryValue": c, "value": {"type": "COUNT", "count": n}}
            for n, c in enumerate(["Sales", "Support", "Billing"], start=1)
        ]
        values.append(
            {"metricId": "CANTOD01", "categoryValue": "", "value": {"type": "COUNT", "count": 4}}
        )
        returned = await control(http, emulator, "values", {"values": values})
        frames = await receive(ws, 4)
        await assert_silent(ws)
    assert frames == returned
    assert [f["value"]["count"] for f in frames] == [1, 2, 3, 4]


async def test_a_batch_with_one_bad_value_changes_nothing(emulator, http):
    values = [
        {"metricId": "CIQGRP01", "categoryValue": "Sales", "value": {"type": "COUNT", "count": 50}},
        {"metricId": "CIQGRP01", "categoryValue": "Nope", "value": {"type": "COUNT", "count": 51}},
    ]
    before = (await http.get(emulator.values_url("CIQGRP01"), headers=emulator.auth)).json()
    response = await http.post(f"{emulator.base}/_emulator/values", json={"values": values})
    assert response.status_code == 404
    after = (await http.get(emulator.values_url("CIQGRP01"), headers=emulator.auth)).json()
    assert after == before


@pytest.mark.parametrize("values", [[], "x", [1], None])
async def test_a_batch_must_be_a_list_of_values(emulator, http, values):
    response = await http.post(f"{emulator.base}/_emulator/values", json={"values": values})
    assert response.status_code == 400
    assert "values" in response.json()["error"]


async def test_durations_are_not_resent_as_time_passes(emulator, http):
    async with connect(emulator.ws_url(["LWCGRP01"])) as ws:
        await receive(ws, 3)
        await control(http, emulator, "clock", {"advance_ms": 60_000})
        await assert_silent(ws)


async def test_a_warming_metric_is_sent_when_it_becomes_ready(start_emulator, http):
    emulator = await start_emulator(init_seconds=3)
    async with connect(emulator.ws_url(["CIQGRP01"])) as ws:
        await assert_silent(ws, 0.2)
        # Updates to a metric that is not ready yet are not sent either.
        body = {
            "metricId": "CIQGRP01",
            "categoryValue": "Sales",
            "value": {"type": "COUNT", "count": 5},
        }
        await control(http, emulator, "values", body)
        await assert_silent(ws, 0.2)
        await control(http, emulator, "clock", {"advance_ms": 3_000})
        frames = await receive(ws, 3)
    assert {f["key"]["categoryValue"]: f["value"]["count"] for f in frames} == {
        "Sales": 5,
        "Support": 1,
        "Billing": 0,
    }


async def test_a_subscription_keeps_its_metrics_warm(start_emulator, http):
    emulator = await start_emulator(init_seconds=3, cold_after_seconds=60)
    async with connect(emulator.ws_url(["CIQGRP01"])) as ws:
        await control(http, emulator, "clock", {"advance_ms": 3_000})
        await receive(ws, 3)
        await control(http, emulator, "clock", {"advance_ms": 3_600_000})
        response = await http.get(emulator.values_url("CIQGRP01"), headers=emulator.auth)
        assert response.status_code == 200


async def test_going_cold_resends_the_snapshot_once_ready_again(start_emulator, http):
    emulator = await start_emulator(init_seconds=3)
    async with connect(emulator.ws_url(["CANTOD01"])) as ws:
        await control(http, emulator, "clock", {"advance_ms": 3_000})
        await receive(ws, 1)
        await control(http, emulator, "cold", {})
        await assert_silent(ws, 0.2)
        await control(http, emulator, "clock", {"advance_ms": 3_000})
        [frame] = await receive(ws, 1)
    assert frame["value"]["count"] == 412


async def test_it_answers_pings(emulator):
    async with connect(emulator.ws_url(["CANTOD01"])) as ws:
        pong = await ws.ping()
        await asyncio.wait_for(pong, 2)


async def test_a_rotated_key_refuses_the_old_one(emulator, http):
    await control(http, emulator, "auth-key", {"key": "rotated-key"})
    with pytest.raises(InvalidStatus) as refused:
        async with connect(emulator.ws_url(["CANTOD01"], token=KEY)):
            pass
    assert refused.value.response.status_code == 401
    async with connect(emulator.ws_url(["CANTOD01"], token="rotated-key")) as ws:
        await receive(ws, 1)
    old = await http.get(
        emulator.values_url("CANTOD01"), headers={"Authorization": f"Bearer {KEY}"}
    )
    assert old.status_code == 401
    new = await http.get(
        emulator.values_url("CANTOD01"), headers={"Authorization": "Bearer rotated-key"}
    )
    assert new.status_code == 200


async def test_rotation_can_disconnect_open_subscriptions(emulator, http):
    async with connect(emulator.ws_url(["CANTOD01"])) as ws:
        await receive(ws, 1)
        await control(http, emulator, "auth-key", {"key": "rotated-key", "disconnect": True})
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 2)
    assert ws.close_code == 1008


async def test_stats_count_open_and_total_subscriptions(emulator, http):
    async with connect(emulator.ws_url(["CANTOD01"])) as ws:
        await receive(ws, 1)
        async with connect(emulator.ws_url(["CANTOD01"])) as ws2:
            await receive(ws2, 1)
            stats = (await http.get(f"{emulator.base}/_emulator/stats")).json()
            assert (stats["ws_open"], stats["ws_total"]) == (2, 2)
    for _ in range(50):
        stats = (await http.get(f"{emulator.base}/_emulator/stats")).json()
        if stats["ws_open"] == 0:
            break
        await asyncio.sleep(0.02)
    assert (stats["ws_open"], stats["ws_total"]) == (0, 2)


async def test_many_subscribers_all_receive_an_update(emulator, http):
    count = 300
    sockets = await asyncio.gather(*(connect(emulator.ws_url(["CANTOD01"])) for _ in range(count)))
    try:
        await asyncio.gather(*(receive(ws, 1, timeout=10) for ws in sockets))
        body = {
            "metricId": "CANTOD01",
            "categoryValue": "",
            "value": {"type": "COUNT", "count": 500},
        }
        await control(http, emulator, "values", body)
        frames = await asyncio.gather(*(receive(ws, 1, timeout=10) for ws in sockets))
        assert all(f[0]["value"]["count"] == 500 for f in frames)
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets))


async def test_strict_subscriptions_take_repeated_ids(start_emulator):
    emulator = await start_emulator(strict=True)
    async with connect(emulator.ws_url(["CIQGRP01", "AVLGRP01"])) as ws:
        frames = await receive(ws, 6)
    assert {f["key"]["metricId"] for f in frames} == {"CIQGRP01", "AVLGRP01"}


async def test_strict_subscriptions_read_a_comma_joined_id_as_one_unknown_id(start_emulator):
    # 5.0 documents only ?id=A&id=B; strict mode reads "A,B" literally: no such metric, 403.
    emulator = await start_emulator(strict=True)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(emulator.ws_url(["CIQGRP01,AVLGRP01"])):
            pass
    assert refused.value.response.status_code == 403
